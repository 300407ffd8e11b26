"""The Provider base class: what a plugin author subclasses.

Override the operations your backend supports and list the matching
capabilities in `capabilities()`; every method not overridden fails its RPC
with UNIMPLEMENTED and names itself. The SDK gates optional RPCs by the
capabilities you list, exactly as the C++ SDK does: an RPC whose capability is
not listed answers UNIMPLEMENTED without calling your method (spec.md §3).

Errors: raise `vkhost_sdk.NotFound`, `InvalidArgument`, ... (vkhost_sdk.errors);
the SDK ends the RPC with that code. Return values are the generated
messages of vkhost.provider.v1 (`from vkhost_sdk import v1`).

Threading: the SDK calls these methods concurrently from gRPC worker
threads, several at once and while streams are open. Implementations must be
thread-safe.
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Union

from vkhost.provider.v1 import identity_pb2, node_pb2, pods_pb2, stats_pb2, streams_pb2

from .errors import Unimplemented
from .feed import PodStatusFeed
from .sessions import PortForwardSession, ProcessSession, StreamContext


def _not_implemented(rpc: str) -> Unimplemented:
    return Unimplemented(f"{rpc} is not implemented by this plugin")


class Provider:
    """Base class of a vkhost provider plugin (see the module docstring)."""

    def __init__(self) -> None:
        self._feed = PodStatusFeed()

    # --- Identity (mandatory) ---

    def plugin_info(self) -> identity_pb2.GetPluginInfoResponse:
        """Name (a DNS-1123 label) and version. Must not fail."""
        raise NotImplementedError("a Provider must override plugin_info()")

    def capabilities(self) -> Sequence[int]:
        """The optional features implemented (v1.CAPABILITY_*). Constant for the process.

        List CAPABILITY_WATCH_POD_STATUS only if the provider publishes to
        `pod_status_feed`.
        """
        return ()

    def probe(self) -> identity_pb2.ProbeResponse:
        """Readiness of the backend. Default: ready."""
        return identity_pb2.ProbeResponse(ready=True)

    # --- Node (CAPABILITY_NODE_INFO, CAPABILITY_WATCH_NODE) ---

    def get_node(self, request: node_pb2.GetNodeRequest) -> node_pb2.NodeStatus:
        """The backend's node facts."""
        raise _not_implemented("Node.GetNode")

    def watch_node(self, request: node_pb2.WatchNodeRequest,
                   stream: StreamContext) -> Iterable[node_pb2.NodeStatus]:
        """Yields the current NodeStatus, then one per change, until `stream.cancelled`."""
        raise _not_implemented("Node.WatchNode")

    # --- Pods (create, delete, get status and list are mandatory) ---

    def create_pod(self, pod: pods_pb2.Pod) -> None:
        """Accepts `pod` and returns at once; progress is status (spec.md §5.2).

        Idempotent by UID. The SDK has already refused an empty UID and a pod
        without containers with INVALID_ARGUMENT.
        """
        raise _not_implemented("Pods.CreatePod")

    def update_pod(self, pod: pods_pb2.Pod) -> None:
        """Applies what may change on a running pod (CAPABILITY_UPDATE_POD). NotFound if unknown."""
        raise _not_implemented("Pods.UpdatePod")

    def delete_pod(self, pod: pods_pb2.PodRef, grace_period_seconds: Optional[int]) -> None:
        """Starts termination and returns; success for an unknown UID.

        `grace_period_seconds` None means the pod's own grace period.
        """
        raise _not_implemented("Pods.DeletePod")

    def get_pod_status(self, pod: pods_pb2.PodRef) -> pods_pb2.PodStatus:
        """The pod's whole status; raise NotFound for an unknown UID."""
        raise _not_implemented("Pods.GetPodStatus")

    def list_pods(self) -> List[pods_pb2.PodStatus]:
        """The status of every pod the plugin has, terminating ones included."""
        raise _not_implemented("Pods.ListPods")

    # --- Streams ---

    def container_logs(self, request: streams_pb2.ContainerLogsRequest,
                       stream: StreamContext) -> Iterable[streams_pb2.LogEntry]:
        """Yields log entries in order (CAPABILITY_CONTAINER_LOGS).

        Raise NotFound before yielding for an unknown pod or container. With
        `request.follow`, keep yielding until the container instance ended or
        `stream.cancelled`; `vkhost_sdk.logs.read_log` does all of this for a
        log file written with `vkhost_sdk.logs.LogWriter`.
        """
        raise _not_implemented("Streams.ContainerLogs")

    def exec(self, start: streams_pb2.ExecStart,
             session: ProcessSession) -> Union[streams_pb2.ExitStatus, int]:
        """Runs a command in a running container (CAPABILITY_EXEC).

        Return its exit status (or just the code); the SDK sends it as the last
        frame. Raise NotFound / FailedPrecondition before anything started.
        `vkhost_sdk.local.run_process` runs a local process for a session.
        """
        raise _not_implemented("Streams.Exec")

    def attach(self, start: streams_pb2.AttachStart,
               session: ProcessSession) -> Union[streams_pb2.ExitStatus, int]:
        """Attaches to a container's main process (CAPABILITY_ATTACH); as exec()."""
        raise _not_implemented("Streams.Attach")

    def port_forward(self, start: streams_pb2.PortForwardStart,
                     session: PortForwardSession) -> None:
        """Relays one TCP connection to a pod port (CAPABILITY_PORT_FORWARD).

        `vkhost_sdk.local.relay_tcp` relays to a local address.
        """
        raise _not_implemented("Streams.PortForward")

    # --- Stats (CAPABILITY_STATS) ---

    def get_stats_summary(self) -> stats_pb2.GetStatsSummaryResponse:
        """Current usage of the node and every running pod."""
        raise _not_implemented("Stats.GetStatsSummary")

    @property
    def pod_status_feed(self) -> PodStatusFeed:
        """Publish status changes here to get WatchPodStatus for free."""
        return self._feed
