"""The gRPC face of a Provider: the v1 Identity, Node, Pods, Streams and Stats services.

They translate RPCs into Provider calls and ProviderError into gRPC status,
and enforce the protocol rules every plugin shares so providers need not:
capability gating (an RPC whose capability the provider did not list answers
UNIMPLEMENTED), the WatchPodStatus snapshot/SYNCED/changes sequence, the
`start`-first rule and the final `exit` frame of Exec and Attach, the
`start`-first rule of PortForward, and the empty-UID checks of spec.md §7.

`serve()` registers them; tests register them on an in-process server
(`vkhost_sdk.ProviderServices`).
Thread-safe: gRPC calls the servicers from its worker threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Iterator, List, Optional, Set

import grpc

from vkhost.provider.v1 import (identity_pb2, identity_pb2_grpc, node_pb2_grpc, pods_pb2,
                                pods_pb2_grpc, stats_pb2_grpc, streams_pb2, streams_pb2_grpc)

from .errors import ProviderError
from .provider import Provider
from .sessions import PortForwardSession, ProcessSession, StreamContext

_log = logging.getLogger("vkhost_sdk")
Event = pods_pb2.WatchPodStatusResponse
# How often SDK-served streams look for cancellation and shutdown.
_POLL_SECONDS = 0.2


def _unimplemented(context: grpc.ServicerContext, capability: int, rpc: str) -> None:
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  f"{rpc} is not available: the plugin does not list "
                  f"{identity_pb2.Capability.Name(capability)}")


def _abort_for(context: grpc.ServicerContext, rpc: str, error: BaseException) -> None:
    """Ends the RPC with the status `error` stands for."""
    if isinstance(error, ProviderError):
        context.abort(error.code, error.message)
    _log.error("%s failed with an unexpected error", rpc, exc_info=error)
    context.abort(grpc.StatusCode.INTERNAL, f"{rpc} failed inside the plugin: {error!r}")


class Shared:
    """What the services share: the provider, its capabilities (read once, at
    construction, since they must not change) and the open streams and session
    threads, which shutdown cancels and joins. Thread-safe."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.capabilities: Set[int] = {int(c) for c in provider.capabilities()}
        self._lock = threading.Lock()
        self._streams: Set[StreamContext] = set()
        self._threads: List[threading.Thread] = []
        self._shutting_down = False

    def has(self, capability: int) -> bool:
        return capability in self.capabilities

    def open_stream(self, context: grpc.ServicerContext) -> StreamContext:
        """A StreamContext cancelled when the RPC ends or the plugin shuts down."""
        stream = StreamContext()
        with self._lock:
            if self._shutting_down:
                stream.cancel()
            self._streams.add(stream)
        if not context.add_callback(stream.cancel):
            stream.cancel()  # the RPC already ended
        return stream

    def close_stream(self, stream: StreamContext) -> None:
        with self._lock:
            self._streams.discard(stream)

    def track(self, thread: threading.Thread) -> None:
        """Remembers a session thread so shutdown can join it."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def begin_shutdown(self) -> None:
        """Cancels every open stream so it ends promptly."""
        with self._lock:
            self._shutting_down = True
            streams = list(self._streams)
        for stream in streams:
            stream.cancel()

    def join_threads(self, timeout: float) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)


def _call(context: grpc.ServicerContext, rpc: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as error:  # noqa: BLE001 - every error becomes an RPC status
        _abort_for(context, rpc, error)


class IdentityService(identity_pb2_grpc.IdentityServicer):
    """Identity: plugin info, the capability set fixed at start, Probe."""

    def __init__(self, shared: Shared) -> None:
        self._s = shared

    def GetPluginInfo(self, request, context):
        return _call(context, "Identity.GetPluginInfo", self._s.provider.plugin_info)

    def GetCapabilities(self, request, context):
        return identity_pb2.GetCapabilitiesResponse(capabilities=sorted(self._s.capabilities))

    def Probe(self, request, context):
        return _call(context, "Identity.Probe", self._s.provider.probe)


class NodeService(node_pb2_grpc.NodeServicer):
    """Node: GetNode and WatchNode, gated by NODE_INFO and WATCH_NODE."""

    def __init__(self, shared: Shared) -> None:
        self._s = shared

    def GetNode(self, request, context):
        if not self._s.has(identity_pb2.CAPABILITY_NODE_INFO):
            _unimplemented(context, identity_pb2.CAPABILITY_NODE_INFO, "Node.GetNode")
        return _call(context, "Node.GetNode", self._s.provider.get_node, request)

    def WatchNode(self, request, context):
        if not self._s.has(identity_pb2.CAPABILITY_WATCH_NODE):
            _unimplemented(context, identity_pb2.CAPABILITY_WATCH_NODE, "Node.WatchNode")
        yield from _server_stream(self._s, context, "Node.WatchNode",
                                  lambda stream: self._s.provider.watch_node(request, stream),
                                  lambda status: status)


def _server_stream(shared: Shared, context: grpc.ServicerContext, rpc: str,
                   open_items: Callable[[StreamContext], Any],
                   frame: Callable[[Any], Any]) -> Iterator[Any]:
    """Relays what the provider's generator yields until it ends or the stream is cancelled."""
    stream = shared.open_stream(context)
    try:
        items = iter(_call(context, rpc, open_items, stream))
        while not stream.cancelled:
            try:
                item = next(items)
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001
                _abort_for(context, rpc, error)
            yield frame(item)
    finally:
        shared.close_stream(stream)


class PodsService(pods_pb2_grpc.PodsServicer):
    """Pods: the empty-UID and no-container checks, UPDATE_POD gating, and
    WatchPodStatus served from the provider's PodStatusFeed."""

    def __init__(self, shared: Shared) -> None:
        self._s = shared

    def CreatePod(self, request, context):
        pod = request.pod
        if not pod.uid:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "CreatePod: the pod has no uid")
        if not pod.containers:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"CreatePod: pod {pod.namespace}/{pod.name} has no containers")
        _call(context, "Pods.CreatePod", self._s.provider.create_pod, pod)
        return pods_pb2.CreatePodResponse()

    def UpdatePod(self, request, context):
        if not self._s.has(identity_pb2.CAPABILITY_UPDATE_POD):
            _unimplemented(context, identity_pb2.CAPABILITY_UPDATE_POD, "Pods.UpdatePod")
        if not request.pod.uid:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "UpdatePod: the pod has no uid")
        _call(context, "Pods.UpdatePod", self._s.provider.update_pod, request.pod)
        return pods_pb2.UpdatePodResponse()

    def DeletePod(self, request, context):
        if not request.pod.uid:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "DeletePod: the pod reference has no uid")
        grace: Optional[int] = None
        if request.HasField("grace_period_seconds"):
            grace = request.grace_period_seconds
        _call(context, "Pods.DeletePod", self._s.provider.delete_pod, request.pod, grace)
        return pods_pb2.DeletePodResponse()

    def GetPodStatus(self, request, context):
        status = _call(context, "Pods.GetPodStatus", self._s.provider.get_pod_status, request.pod)
        return pods_pb2.GetPodStatusResponse(status=status)

    def ListPods(self, request, context):
        pods = _call(context, "Pods.ListPods", self._s.provider.list_pods)
        return pods_pb2.ListPodsResponse(pods=list(pods))

    def WatchPodStatus(self, request, context):
        """Subscribes before listing so that a change racing with the snapshot
        is delivered after SYNCED rather than lost; identical statuses are skipped."""
        if not self._s.has(identity_pb2.CAPABILITY_WATCH_POD_STATUS):
            _unimplemented(context, identity_pb2.CAPABILITY_WATCH_POD_STATUS,
                           "Pods.WatchPodStatus")
        stream = self._s.open_stream(context)
        subscription = self._s.provider.pod_status_feed.subscribe()
        try:
            snapshot = _call(context, "Pods.WatchPodStatus", self._s.provider.list_pods)
            last_sent = {}
            for status in snapshot:
                last_sent[status.pod.uid] = status.SerializeToString(deterministic=True)
                yield Event(type=Event.TYPE_STATUS, status=status)
            yield Event(type=Event.TYPE_SYNCED)
            while not stream.cancelled:
                event = subscription.next(timeout=_POLL_SECONDS)
                if event is None:
                    continue
                uid = event.status.pod.uid
                if event.type == Event.TYPE_STATUS:
                    data = event.status.SerializeToString(deterministic=True)
                    if last_sent.get(uid) == data:
                        continue
                    last_sent[uid] = data
                else:
                    last_sent.pop(uid, None)
                yield event
        finally:
            subscription.close()
            self._s.close_stream(stream)


class StatsService(stats_pb2_grpc.StatsServicer):
    """Stats: GetStatsSummary, gated by STATS."""

    def __init__(self, shared: Shared) -> None:
        self._s = shared

    def GetStatsSummary(self, request, context):
        if not self._s.has(identity_pb2.CAPABILITY_STATS):
            _unimplemented(context, identity_pb2.CAPABILITY_STATS, "Stats.GetStatsSummary")
        return _call(context, "Stats.GetStatsSummary", self._s.provider.get_stats_summary)


class StreamsService(streams_pb2_grpc.StreamsServicer):
    """Streams: ContainerLogs relayed from the provider's generator; Exec, Attach
    and PortForward run the provider on a worker thread per session (its
    blocking loop must be able to finish, and the RPC end with its exit frame,
    while the host still has its send side open) and relay what it writes."""

    def __init__(self, shared: Shared) -> None:
        self._s = shared

    def ContainerLogs(self, request, context):
        if not self._s.has(identity_pb2.CAPABILITY_CONTAINER_LOGS):
            _unimplemented(context, identity_pb2.CAPABILITY_CONTAINER_LOGS, "Streams.ContainerLogs")
        if request.previous and not self._s.has(identity_pb2.CAPABILITY_CONTAINER_LOGS_PREVIOUS):
            _unimplemented(context, identity_pb2.CAPABILITY_CONTAINER_LOGS_PREVIOUS,
                           "Streams.ContainerLogs with previous")
        yield from _server_stream(
            self._s, context, "Streams.ContainerLogs",
            lambda stream: self._s.provider.container_logs(request, stream),
            lambda entry: streams_pb2.ContainerLogsResponse(entries=[entry]))

    def Exec(self, request_iterator, context):
        if not self._s.has(identity_pb2.CAPABILITY_EXEC):
            _unimplemented(context, identity_pb2.CAPABILITY_EXEC, "Streams.Exec")
        yield from self._process_session(request_iterator, context, "Exec", self._s.provider.exec)

    def Attach(self, request_iterator, context):
        if not self._s.has(identity_pb2.CAPABILITY_ATTACH):
            _unimplemented(context, identity_pb2.CAPABILITY_ATTACH, "Streams.Attach")
        yield from self._process_session(request_iterator, context, "Attach",
                                         self._s.provider.attach)

    def PortForward(self, request_iterator, context):
        if not self._s.has(identity_pb2.CAPABILITY_PORT_FORWARD):
            _unimplemented(context, identity_pb2.CAPABILITY_PORT_FORWARD, "Streams.PortForward")
        first = self._first_frame(request_iterator, context, "PortForward")
        stream = self._s.open_stream(context)
        session = PortForwardSession(request_iterator, stream)
        yield from self._run_session(context, "Streams.PortForward", stream, session,
                                     lambda: self._s.provider.port_forward(first.start, session))

    def _first_frame(self, request_iterator: Iterator[Any], context: grpc.ServicerContext,
                     rpc: str) -> Any:
        try:
            first = next(request_iterator, None)
        except Exception:  # noqa: BLE001 - the host cancelled before sending anything
            first = None
        if first is None:
            context.abort(grpc.StatusCode.CANCELLED, "the stream ended before its start frame")
        if first.WhichOneof("frame") != "start":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{rpc}: the first request frame must be `start`")
        return first

    def _process_session(self, request_iterator, context, rpc: str,
                         handler: Callable[[Any, ProcessSession], Any]) -> Iterator[Any]:
        first = self._first_frame(request_iterator, context, rpc)
        stream = self._s.open_stream(context)
        session = ProcessSession(request_iterator, stream, tty=first.start.tty)
        result = yield from self._run_session(context, f"Streams.{rpc}", stream, session,
                                              lambda: handler(first.start, session))
        if isinstance(result, streams_pb2.ExitStatus):
            yield streams_pb2.ExecResponse(exit=result)
        else:
            yield streams_pb2.ExecResponse(exit=streams_pb2.ExitStatus(exit_code=int(result or 0)))

    def _run_session(self, context, rpc: str, stream: StreamContext, session: Any,
                     work: Callable[[], Any]):
        """Runs `work` on a worker thread and relays the frames it writes.

        Returns what `work` returned; ends the RPC with the status of what it raised.
        """
        outcome: dict = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["result"] = work()
            except BaseException as error:  # noqa: BLE001 - reported on the RPC
                outcome["error"] = error
            finally:
                done.set()

        worker = threading.Thread(target=run, name=f"vkhost-{rpc}", daemon=True)
        self._s.track(worker)
        self._s.track(session._reader)
        worker.start()
        try:
            while True:
                try:
                    frame = session.outgoing.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    if done.is_set() and session.outgoing.empty():
                        break
                    continue
                yield frame
            worker.join()
        finally:
            self._s.close_stream(stream)
        if "error" in outcome:
            _abort_for(context, rpc, outcome["error"])
        return outcome.get("result")


class ProviderServices:
    """Owns the service objects for one server.

    Construct, `register_with(server)`, start the server; call
    `begin_shutdown()` before stopping the server so open streams end at once.
    """

    def __init__(self, provider: Provider) -> None:
        self.shared = Shared(provider)

    def register_with(self, server: grpc.Server) -> None:
        identity_pb2_grpc.add_IdentityServicer_to_server(IdentityService(self.shared), server)
        node_pb2_grpc.add_NodeServicer_to_server(NodeService(self.shared), server)
        pods_pb2_grpc.add_PodsServicer_to_server(PodsService(self.shared), server)
        streams_pb2_grpc.add_StreamsServicer_to_server(StreamsService(self.shared), server)
        stats_pb2_grpc.add_StatsServicer_to_server(StatsService(self.shared), server)

    def begin_shutdown(self) -> None:
        self.shared.begin_shutdown()

    def join_threads(self, timeout: float) -> None:
        self.shared.join_threads(timeout)
