"""The gRPC services over a Provider, through a real channel: gating, errors, streams."""

from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List

import grpc
import pytest

from vkhost_sdk import InvalidArgument, NotFound, Provider, local, status, v1

Event = v1.WatchPodStatusResponse


def pod(uid: str = "u1", containers=("main",)) -> v1.Pod:
    return v1.Pod(uid=uid, namespace="ns", name=f"pod-{uid}",
                  containers=[v1.Container(name=c, command=["true"]) for c in containers])


class RecordingProvider(Provider):
    """Implements every RPC; lists only the capabilities it is given."""

    def __init__(self, capabilities: List[int]) -> None:
        super().__init__()
        self._capabilities = capabilities
        self.calls: List[str] = []
        self.pods: Dict[str, v1.PodStatus] = {}

    def plugin_info(self):
        return v1.GetPluginInfoResponse(name="recording", version="0")

    def capabilities(self):
        return self._capabilities

    def create_pod(self, p):
        self.calls.append("create")
        if p.name == "pod-never":
            raise InvalidArgument("this backend can never run it")
        if p.name == "pod-boom":
            raise RuntimeError("boom")
        self.pods[p.uid] = status.all_waiting(p)
        self.pod_status_feed.publish(self.pods[p.uid])

    def update_pod(self, p):
        self.calls.append("update")

    def delete_pod(self, ref, grace):
        self.calls.append(f"delete grace={grace}")
        if self.pods.pop(ref.uid, None) is not None:
            self.pod_status_feed.publish_deleted(ref)

    def get_pod_status(self, ref):
        if ref.uid not in self.pods:
            raise NotFound(f"no pod {ref.uid}")
        return self.pods[ref.uid]

    def list_pods(self):
        return list(self.pods.values())

    def get_node(self, request):
        return v1.NodeStatus(capacity={"cpu": "1"})

    def get_stats_summary(self):
        return v1.GetStatsSummaryResponse()

    def container_logs(self, request, stream):
        if request.container != "main":
            raise NotFound("no such container")
        for i in range(3):
            entry = v1.LogEntry(stream=v1.LogEntry.STREAM_STDOUT, line=f"line {i}\n".encode())
            entry.time.CopyFrom(status.timestamp())
            yield entry
        while request.follow and stream.sleep(0.05):
            pass

    def exec(self, start, session):
        if start.pod.uid not in self.pods:
            raise NotFound("no such pod")
        return local.run_process(list(start.command), session, stdin=start.stdin,
                                 terminal_size=start.terminal_size)

    def port_forward(self, start, session):
        local.relay_tcp(session, "127.0.0.1", start.port)


ALL = [v1.CAPABILITY_WATCH_POD_STATUS, v1.CAPABILITY_UPDATE_POD, v1.CAPABILITY_NODE_INFO,
       v1.CAPABILITY_CONTAINER_LOGS, v1.CAPABILITY_EXEC, v1.CAPABILITY_PORT_FORWARD,
       v1.CAPABILITY_STATS]


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        result = call()
        if hasattr(result, "__iter__"):
            list(result)
    return error.value.code()


def exec_frames(stubs, frames, timeout=30):
    return list(stubs.streams.Exec(iter(frames), timeout=timeout))


def test_unlisted_capabilities_are_unimplemented_without_calling_the_provider(serve_provider):
    provider = RecordingProvider([])
    stubs = serve_provider(provider)
    gated = [
        lambda: stubs.pods.UpdatePod(v1.UpdatePodRequest(pod=pod())),
        lambda: stubs.node.GetNode(v1.GetNodeRequest()),
        lambda: stubs.stats.GetStatsSummary(v1.GetStatsSummaryRequest()),
        lambda: stubs.pods.WatchPodStatus(v1.WatchPodStatusRequest()),
        lambda: stubs.streams.ContainerLogs(v1.ContainerLogsRequest(container="main")),
        lambda: exec_frames(stubs, [v1.ExecRequest(start=v1.ExecStart(command=["true"]))]),
        lambda: list(stubs.streams.PortForward(iter([v1.PortForwardRequest(
            start=v1.PortForwardStart(port=1))]))),
    ]
    for call in gated:
        assert code_of(call) == grpc.StatusCode.UNIMPLEMENTED
    assert provider.calls == []
    caps = stubs.identity.GetCapabilities(v1.GetCapabilitiesRequest())
    assert list(caps.capabilities) == []


def test_listed_capabilities_reach_the_provider(serve_provider):
    stubs = serve_provider(RecordingProvider(ALL))
    stubs.pods.CreatePod(v1.CreatePodRequest(pod=pod()))
    stubs.pods.UpdatePod(v1.UpdatePodRequest(pod=pod()))
    assert stubs.node.GetNode(v1.GetNodeRequest()).capacity["cpu"] == "1"
    caps = stubs.identity.GetCapabilities(v1.GetCapabilitiesRequest())
    assert list(caps.capabilities) == sorted(ALL)


def test_default_methods_are_unimplemented(serve_provider):
    class Bare(Provider):
        def plugin_info(self):
            return v1.GetPluginInfoResponse(name="bare")

        def capabilities(self):
            return [v1.CAPABILITY_EXEC]

    stubs = serve_provider(Bare())
    assert code_of(lambda: stubs.pods.ListPods(v1.ListPodsRequest())) == grpc.StatusCode.UNIMPLEMENTED
    assert code_of(lambda: exec_frames(stubs, [v1.ExecRequest(start=v1.ExecStart())])) \
        == grpc.StatusCode.UNIMPLEMENTED
    assert stubs.identity.Probe(v1.ProbeRequest()).ready


def test_errors_become_status_codes(serve_provider):
    provider = RecordingProvider(ALL)
    stubs = serve_provider(provider)
    create = lambda p: lambda: stubs.pods.CreatePod(v1.CreatePodRequest(pod=p))  # noqa: E731
    assert code_of(create(pod(uid=""))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(create(pod(containers=()))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(create(v1.Pod(uid="x", name="pod-never", containers=[v1.Container(name="c")]))) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(create(v1.Pod(uid="y", name="pod-boom", containers=[v1.Container(name="c")]))) \
        == grpc.StatusCode.INTERNAL
    assert code_of(lambda: stubs.pods.GetPodStatus(v1.GetPodStatusRequest(
        pod=v1.PodRef(uid="nope")))) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stubs.pods.DeletePod(v1.DeletePodRequest(pod=v1.PodRef()))) \
        == grpc.StatusCode.INVALID_ARGUMENT


def test_delete_passes_grace_period_or_none(serve_provider):
    provider = RecordingProvider(ALL)
    stubs = serve_provider(provider)
    stubs.pods.DeletePod(v1.DeletePodRequest(pod=v1.PodRef(uid="a")))
    stubs.pods.DeletePod(v1.DeletePodRequest(pod=v1.PodRef(uid="a"), grace_period_seconds=0))
    assert provider.calls == ["delete grace=None", "delete grace=0"]


def test_watch_sends_snapshot_synced_then_changes(serve_provider):
    provider = RecordingProvider(ALL)
    stubs = serve_provider(provider)
    stubs.pods.CreatePod(v1.CreatePodRequest(pod=pod("before")))
    events = stubs.pods.WatchPodStatus(v1.WatchPodStatusRequest(), timeout=30)
    first, synced = next(events), next(events)
    assert first.type == Event.TYPE_STATUS and first.status.pod.uid == "before"
    assert synced.type == Event.TYPE_SYNCED
    stubs.pods.CreatePod(v1.CreatePodRequest(pod=pod("after")))
    change = next(events)
    assert change.type == Event.TYPE_STATUS and change.status.pod.uid == "after"
    # Publishing an unchanged status sends nothing; a deletion does.
    provider.pod_status_feed.publish(provider.pods["after"])
    stubs.pods.DeletePod(v1.DeletePodRequest(pod=v1.PodRef(uid="after")))
    deleted = next(events)
    assert deleted.type == Event.TYPE_DELETED and deleted.status.pod.uid == "after"
    events.cancel()


def test_logs_stream_and_errors(serve_provider):
    stubs = serve_provider(RecordingProvider(ALL))
    ref = v1.PodRef(uid="u1")
    lines = [e.line for r in stubs.streams.ContainerLogs(
        v1.ContainerLogsRequest(pod=ref, container="main"), timeout=30) for e in r.entries]
    assert lines == [b"line 0\n", b"line 1\n", b"line 2\n"]
    assert code_of(lambda: stubs.streams.ContainerLogs(
        v1.ContainerLogsRequest(pod=ref, container="other"), timeout=30)) == grpc.StatusCode.NOT_FOUND
    # previous without CONTAINER_LOGS_PREVIOUS is refused by the SDK.
    assert code_of(lambda: stubs.streams.ContainerLogs(
        v1.ContainerLogsRequest(pod=ref, container="main", previous=True), timeout=30)) \
        == grpc.StatusCode.UNIMPLEMENTED


def test_followed_logs_end_when_cancelled(serve_provider):
    stubs = serve_provider(RecordingProvider(ALL))
    call = stubs.streams.ContainerLogs(
        v1.ContainerLogsRequest(pod=v1.PodRef(uid="u1"), container="main", follow=True))
    assert len([next(call) for _ in range(3)]) == 3
    call.cancel()
    assert code_of(lambda: next(call)) == grpc.StatusCode.CANCELLED


def run_exec(stubs, command, *frames):
    responses = exec_frames(stubs, [v1.ExecRequest(start=v1.ExecStart(
        pod=v1.PodRef(uid="u1"), container="main", command=command, stdin=True, stdout=True,
        stderr=True)), *frames])
    out = b"".join(r.stdout for r in responses)
    err = b"".join(r.stderr for r in responses)
    exits = [r.exit for r in responses if r.HasField("exit")]
    assert len(exits) == 1 and responses[-1].HasField("exit"), responses
    return out, err, exits[0]


def test_exec_streams_stdin_output_and_exit_code(serve_provider):
    provider = RecordingProvider(ALL)
    stubs = serve_provider(provider)
    stubs.pods.CreatePod(v1.CreatePodRequest(pod=pod()))
    out, _, exit_status = run_exec(stubs, ["cat"], v1.ExecRequest(stdin=b"hello "),
                                   v1.ExecRequest(stdin=b"world\n"), v1.ExecRequest(close_stdin=True))
    assert (out, exit_status.exit_code) == (b"hello world\n", 0)
    out, err, exit_status = run_exec(stubs, ["sh", "-c", "echo out; echo err >&2; exit 3"],
                                     v1.ExecRequest(close_stdin=True))
    assert (out, err, exit_status.exit_code) == (b"out\n", b"err\n", 3)
    _, _, exit_status = run_exec(stubs, ["/no/such/command"])
    assert exit_status.exit_code == 127 and exit_status.message


def test_exec_with_tty_gets_a_terminal_of_the_requested_size(serve_provider):
    provider = RecordingProvider(ALL)
    stubs = serve_provider(provider)
    stubs.pods.CreatePod(v1.CreatePodRequest(pod=pod()))
    responses = exec_frames(stubs, [
        v1.ExecRequest(start=v1.ExecStart(pod=v1.PodRef(uid="u1"), command=[
            "sh", "-c", "stty size; echo to-stderr >&2"], stdout=True, stderr=True, tty=True,
            terminal_size=v1.TerminalSize(width=100, height=30)))])
    out = b"".join(r.stdout for r in responses)
    assert out.replace(b"\r", b"").splitlines() == [b"30 100", b"to-stderr"]
    assert not any(r.stderr for r in responses)  # merged into stdout
    assert responses[-1].exit.exit_code == 0


def test_exec_protocol_errors(serve_provider):
    stubs = serve_provider(RecordingProvider(ALL))
    assert code_of(lambda: exec_frames(stubs, [v1.ExecRequest(stdin=b"x")])) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: exec_frames(stubs, [v1.ExecRequest(start=v1.ExecStart(
        pod=v1.PodRef(uid="unknown"), command=["true"]))])) == grpc.StatusCode.NOT_FOUND


def test_exec_cancel_kills_the_process(serve_provider, tmp_path):
    provider = RecordingProvider(ALL)
    stubs = serve_provider(provider)
    stubs.pods.CreatePod(v1.CreatePodRequest(pod=pod()))
    marker = tmp_path / "pid"
    stop = threading.Event()

    def frames():
        yield v1.ExecRequest(start=v1.ExecStart(pod=v1.PodRef(uid="u1"), command=[
            "sh", "-c", f"echo $$ > {marker}; echo started; exec sleep 600"], stdout=True))
        stop.wait(30)

    call = stubs.streams.Exec(frames())
    assert next(call).stdout == b"started\n"
    pid = int(marker.read_text())
    call.cancel()
    stop.set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    break
        except (FileNotFoundError, ProcessLookupError):  # gone, even mid-read
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"exec'd process {pid} still runs after the RPC was cancelled")


def test_port_forward_relays_to_a_local_echo_server(serve_provider):
    stubs = serve_provider(RecordingProvider(ALL))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def echo_once():
        connection, _ = listener.accept()
        with connection:
            while data := connection.recv(1024):
                connection.sendall(data)

    server = threading.Thread(target=echo_once)
    server.start()
    reply_seen = threading.Event()

    def frames():
        yield v1.PortForwardRequest(start=v1.PortForwardStart(pod=v1.PodRef(uid="u1"), port=port))
        yield v1.PortForwardRequest(data=b"ping")
        reply_seen.wait(30)
        yield v1.PortForwardRequest(close_write=True)

    received = b""
    for response in stubs.streams.PortForward(frames(), timeout=30):
        assert not response.error
        received += response.data
        if received == b"ping":
            reply_seen.set()
    server.join()
    listener.close()
    assert received == b"ping"


def test_port_forward_refused_connection_is_an_error_frame(serve_provider):
    stubs = serve_provider(RecordingProvider(ALL))
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    responses = list(stubs.streams.PortForward(iter([v1.PortForwardRequest(
        start=v1.PortForwardStart(pod=v1.PodRef(uid="u1"), port=port))]), timeout=30))
    assert [r.WhichOneof("frame") for r in responses] == ["error"]
