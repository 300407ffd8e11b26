"""The batch plugin through gRPC: queue and slots, restart policies, logs, accounting."""

from __future__ import annotations

import os
import grpc
import pytest

from vkhost_batch.accounting import AccountingLog
from vkhost_batch.provider import BatchProvider
from vkhost_sdk import v1

SLEEP = ["sleep", "600"]


def test_second_job_queues_behind_a_full_slot_then_runs(make_batch):
    batch = make_batch(slots=1)
    first = batch.create(["sh", "-c", "echo first; sleep 1"])
    second = batch.create(["sh", "-c", "echo second"])
    queued = batch.status(second)
    assert queued.reason == "Queued"
    assert "position 1 of 1" in queued.message
    assert queued.container_statuses[0].state.waiting.reason == "Queued"
    batch.wait_state(first, "running")
    done = batch.wait_state(second, "terminated")
    assert done.state.terminated.exit_code == 0
    assert batch.status(second).reason == ""
    assert batch.logs(second) == b"second\n"
    records = batch.wait_for("two accounting records", lambda: len(batch.accounting()) == 2
                             and batch.accounting())
    assert [r["name"] for r in records] == [first.name, second.name]
    assert all(r["state"] == "COMPLETED" and r["exit_code"] == 0 for r in records)
    # The second job waited for the first one's slot.
    assert records[1]["start_time"] >= records[0]["end_time"]
    assert records[1]["queued_seconds"] > 0.5


def test_failed_job_is_accounted_with_its_exit_code(make_batch):
    batch = make_batch()
    pod = batch.create(["sh", "-c", "echo oops >&2; exit 3"])
    done = batch.wait_state(pod, "terminated")
    assert (done.state.terminated.exit_code, done.state.terminated.reason) == (3, "Error")
    assert done.restart_count == 0
    record = batch.wait_for("accounting", batch.accounting)[0]
    assert (record["state"], record["exit_code"]) == ("FAILED", 3)
    assert record["containers"][0]["exit_code"] == 3
    assert batch.logs(pod) == b"oops\n"


def test_on_failure_restarts_until_success_and_keeps_previous_logs(make_batch, tmp_path):
    batch = make_batch()
    marker = tmp_path / "tried"
    pod = batch.create(["sh", "-c", f"if [ -e {marker} ]; then echo ok; else touch {marker}; "
                                    "echo failing; exit 1; fi"],
                       policy=v1.RESTART_POLICY_ON_FAILURE)
    done = batch.wait_for("a successful run", lambda: (
        s := batch.status(pod).container_statuses[0]).state.HasField("terminated")
        and s.state.terminated.exit_code == 0 and s)
    assert done.restart_count == 1
    assert done.last_state.terminated.exit_code == 1
    assert batch.logs(pod) == b"ok\n"
    assert batch.logs(pod, previous=True) == b"failing\n"


def test_init_containers_run_first_in_order(make_batch, tmp_path):
    batch = make_batch()
    trace = tmp_path / "trace"
    pod = batch.create(["sh", "-c", f"echo app >> {trace}"],
                       init=[["sh", "-c", f"sleep 0.2; echo init0 >> {trace}"],
                             ["sh", "-c", f"echo init1 >> {trace}"]])
    batch.wait_state(pod, "terminated")
    assert trace.read_text().split() == ["init0", "init1", "app"]
    assert all(s.state.terminated.reason == "Completed"
               for s in batch.status(pod).init_container_statuses)


def test_failing_init_container_fails_the_pod(make_batch):
    batch = make_batch()
    pod = batch.create(["true"], init=[["false"]])
    batch.wait_for("pod failed", lambda: batch.status(pod).phase == v1.POD_PHASE_FAILED)
    status = batch.status(pod)
    assert status.init_container_statuses[0].state.terminated.exit_code == 1
    assert status.container_statuses[0].state.WhichOneof("state") == "waiting"


def test_delete_running_job_terminates_it_and_forgets_it(make_batch, tmp_path):
    batch = make_batch()
    pid_file = tmp_path / "pid"
    pod = batch.create(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 600"])
    batch.wait_state(pod, "running")
    batch.wait_for("pid file", lambda: pid_file.exists() and pid_file.read_text().strip())
    pid = int(pid_file.read_text())
    batch.pods.DeletePod(v1.DeletePodRequest(pod=v1.PodRef(uid=pod.uid), grace_period_seconds=5))
    batch.wait_for("forgotten", lambda: batch.forgotten(pod))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    record = batch.wait_for("accounting", batch.accounting)[0]
    assert (record["state"], record["exit_code"]) == ("CANCELLED", 143)


def test_delete_queued_job_forgets_it_at_once(make_batch):
    batch = make_batch(slots=1)
    batch.create(SLEEP)
    queued = batch.create(["true"])
    batch.pods.DeletePod(v1.DeletePodRequest(pod=v1.PodRef(uid=queued.uid)))
    assert batch.forgotten(queued)
    record = batch.wait_for("accounting", batch.accounting)[0]
    assert (record["name"], record["state"], record["start_time"]) == (queued.name, "CANCELLED", None)


def test_active_deadline_fails_the_job(make_batch):
    batch = make_batch()
    pod = batch.create(SLEEP, active_deadline_seconds=1)
    batch.wait_state(pod, "terminated")
    status = batch.status(pod)
    assert (status.phase, status.reason) == (v1.POD_PHASE_FAILED, "DeadlineExceeded")
    record = batch.wait_for("accounting", batch.accounting)[0]
    assert record["state"] == "TIMEOUT"


def test_pod_without_command_is_invalid(make_batch):
    batch = make_batch()
    pod = v1.Pod(uid="u", name="p", containers=[v1.Container(name="c", image="nginx")])
    with pytest.raises(grpc.RpcError) as error:
        batch.pods.CreatePod(v1.CreatePodRequest(pod=pod), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has no command" in error.value.details()


def test_env_volumes_and_exec(make_batch):
    batch = make_batch()
    pod = v1.Pod(uid="env-pod", namespace="ns", name="env", containers=[v1.Container(
        name="main", command=["sh", "-c", 'cat "$VKHOST_VOLUME_CONFIG/greeting"; echo " $WHO"; '
                                          "exec sleep 600"],
        env=[v1.EnvVar(name="WHO", value="world")])],
        volumes=[v1.Volume(name="config", files=v1.FilesVolume(
            kind="configMap", files=[v1.VolumeFile(path="greeting", content=b"hello")]))])
    batch.pods.CreatePod(v1.CreatePodRequest(pod=pod), timeout=30)
    batch.wait_state(pod, "running")
    assert batch.wait_for("log", lambda: batch.logs(pod)) == b"hello world\n"
    responses = list(batch.streams.Exec(iter([v1.ExecRequest(start=v1.ExecStart(
        pod=v1.PodRef(uid=pod.uid), container="main", command=["sh", "-c", "pwd"],
        stdout=True))]), timeout=30))
    assert b"".join(r.stdout for r in responses).strip() == os.path.join(
        batch.provider.work_dir, "pods", pod.uid).encode()
    assert responses[-1].exit.exit_code == 0


def test_stats_report_cpu_time(make_batch):
    batch = make_batch()
    pod = batch.create(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"])
    batch.wait_state(pod, "terminated")
    summary = batch.stats.GetStatsSummary(v1.GetStatsSummaryRequest(), timeout=30)
    [pod_stats] = [p for p in summary.pods if p.pod.uid == pod.uid]
    assert pod_stats.cpu.usage_core_nano_seconds > 0
    assert pod_stats.containers[0].name == "main"


def test_logs_of_a_queued_container_are_refused_politely(make_batch):
    batch = make_batch(slots=1)
    batch.create(SLEEP)
    queued = batch.create(["true"])
    with pytest.raises(grpc.RpcError) as error:
        batch.logs(queued)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "position 1" in error.value.details()


def test_attach_streams_output_and_stdin_then_the_exit_code(make_batch):
    batch = make_batch()
    pod = v1.Pod(uid="attach-pod", namespace="ns", name="attach", containers=[v1.Container(
        name="main", stdin=True, command=["sh", "-c", "read line; echo got $line; exit 4"])])
    batch.pods.CreatePod(v1.CreatePodRequest(pod=pod), timeout=30)
    batch.wait_state(pod, "running")
    responses = list(batch.streams.Attach(iter([
        v1.AttachRequest(start=v1.AttachStart(pod=v1.PodRef(uid=pod.uid), container="main",
                                              stdin=True, stdout=True)),
        v1.AttachRequest(stdin=b"hello\n")]), timeout=30))
    assert b"".join(r.stdout for r in responses) == b"got hello\n"
    assert responses[-1].exit.exit_code == 4


def test_plugin_shutdown_kills_jobs_that_ignore_sigterm(make_batch, tmp_path):
    batch = make_batch()
    pid_file = tmp_path / "pid"
    pod = batch.create(["sh", "-c", f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 1; done"])
    batch.wait_state(pod, "running")
    batch.wait_for("pid file", lambda: pid_file.exists() and pid_file.read_text().strip())
    pid = int(pid_file.read_text())
    batch.provider.shutdown(grace_seconds=0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_temporary_work_dir_is_made_for_the_first_pod_and_removed_on_shutdown():
    provider = BatchProvider(1, None, AccountingLog())
    try:
        assert provider.work_dir == ""
        provider.create_pod(v1.Pod(uid="t", name="t", containers=[
            v1.Container(name="main", command=["true"])]))
        work_dir = provider.work_dir
        assert os.path.isdir(work_dir)
    finally:
        provider.shutdown()
    assert not os.path.exists(work_dir)
