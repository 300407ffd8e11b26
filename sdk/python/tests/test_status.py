"""The status builders and the PodStatusFeed."""

import datetime

from vkhost_sdk import PodStatusFeed, status, v1

Event = v1.WatchPodStatusResponse


def spec() -> v1.Pod:
    return v1.Pod(uid="u", namespace="ns", name="p",
                  init_containers=[v1.Container(name="init", image="busybox")],
                  containers=[v1.Container(name="b", image="img:1"), v1.Container(name="a")])


def test_timestamps():
    assert status.timestamp(1.5).ToNanoseconds() == 1_500_000_000
    naive = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert status.timestamp(naive).ToSeconds() == 1704164645
    assert status.timestamp().seconds > 1_600_000_000


def test_container_states():
    assert status.waiting().waiting.reason == "ContainerCreating"
    assert status.running(10).running.started_at.seconds == 10
    done = status.terminated(0, started_at=1, finished_at=2)
    assert (done.terminated.reason, done.terminated.finished_at.seconds) == ("Completed", 2)
    assert status.terminated(2).terminated.reason == "Error"
    assert status.terminated(137, signal=9, reason="OOMKilled").terminated.signal == 9


def test_container_status_defaults_ready_to_running():
    c = spec().containers[0]
    up = status.container_status(c, status.running(), restart_count=2,
                                 last_state=status.terminated(1))
    assert (up.name, up.image, up.ready, up.started, up.restart_count) == ("b", "img:1", True, True, 2)
    assert up.last_state.terminated.exit_code == 1
    down = status.container_status("x", status.waiting())
    assert not down.ready and not down.started


def test_all_waiting_keeps_spec_order_and_leaves_phase_to_the_host():
    s = status.all_waiting(spec(), "Queued", "position 1")
    assert [c.name for c in s.container_statuses] == ["b", "a"]
    assert [c.name for c in s.init_container_statuses] == ["init"]
    assert s.container_statuses[0].state.waiting.message == "position 1"
    assert s.phase == v1.POD_PHASE_UNSPECIFIED
    assert not s.HasField("start_time")
    assert (s.pod.uid, s.pod.namespace, s.pod.name) == ("u", "ns", "p")


def test_feed_coalesces_per_pod_in_arrival_order():
    feed = PodStatusFeed()
    with feed.subscribe() as sub:
        a1 = status.pod_status(v1.PodRef(uid="a"), message="1")
        feed.publish(a1)
        feed.publish(status.pod_status(v1.PodRef(uid="b")))
        feed.publish(status.pod_status(v1.PodRef(uid="a"), message="2"))
        first, second = sub.next(1), sub.next(1)
        assert (first.status.pod.uid, first.status.message) == ("a", "2")
        assert second.status.pod.uid == "b"
        assert sub.next(0.01) is None


def test_feed_deleted_carries_the_unsent_final_status():
    feed = PodStatusFeed()
    sub = feed.subscribe()
    final = status.pod_status(v1.PodRef(uid="a"), containers=[
        status.container_status("c", status.terminated(0))])
    feed.publish(final)
    feed.publish_deleted(v1.PodRef(uid="a"))
    event = sub.next(1)
    assert event.type == Event.TYPE_DELETED
    assert event.status.container_statuses[0].state.terminated.reason == "Completed"
    sub.close()
    feed.publish(final)  # no subscriber left: nothing queued anywhere
    assert sub.next(0.01) is None
