"""Typed builders for the status messages a provider reports.

A pod's status is a `v1.PodStatus` holding one `v1.ContainerStatus` per
container, each with a `v1.ContainerState` that is waiting, running or
terminated (spec.md §5.2). These helpers build them with the conventions the
host expects, so a provider writes

    pod_status(pod, containers=[container_status(c, running(started)) for c in pod.containers])

instead of filling oneofs by hand. Times are `datetime` (naive means UTC),
seconds since the epoch as a float, or None for "now". Pure functions,
thread-safe.
"""

from __future__ import annotations

import datetime
import time
from typing import Iterable, Optional, Union

from google.protobuf import timestamp_pb2

from vkhost.provider.v1 import pods_pb2

TimeLike = Union[None, float, int, datetime.datetime, timestamp_pb2.Timestamp]


def timestamp(when: TimeLike = None) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp for `when` (None = now)."""
    result = timestamp_pb2.Timestamp()
    if when is None:
        result.FromNanoseconds(time.time_ns())
    elif isinstance(when, timestamp_pb2.Timestamp):
        result.CopyFrom(when)
    elif isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        result.FromDatetime(when.astimezone(datetime.timezone.utc))
    else:
        result.FromNanoseconds(int(float(when) * 1e9))
    return result


def pod_ref(pod: Union[pods_pb2.Pod, pods_pb2.PodRef]) -> pods_pb2.PodRef:
    """The PodRef (uid, namespace, name) of a Pod or a copy of a PodRef."""
    return pods_pb2.PodRef(uid=pod.uid, namespace=pod.namespace, name=pod.name)


def waiting(reason: str = "ContainerCreating", message: str = "") -> pods_pb2.ContainerState:
    """A waiting state, e.g. waiting("Queued", "position 3 in the queue")."""
    return pods_pb2.ContainerState(
        waiting=pods_pb2.ContainerStateWaiting(reason=reason, message=message))


def running(started_at: TimeLike = None) -> pods_pb2.ContainerState:
    """A running state that started at `started_at` (None = now)."""
    return pods_pb2.ContainerState(
        running=pods_pb2.ContainerStateRunning(started_at=timestamp(started_at)))


def terminated(exit_code: int, *, reason: Optional[str] = None, message: str = "",
               signal: int = 0, started_at: TimeLike = None, finished_at: TimeLike = None,
               container_id: str = "") -> pods_pb2.ContainerState:
    """A terminated state. `reason` defaults to Completed (exit 0) or Error."""
    if reason is None:
        reason = "Completed" if exit_code == 0 else "Error"
    return pods_pb2.ContainerState(terminated=pods_pb2.ContainerStateTerminated(
        exit_code=exit_code, signal=signal, reason=reason, message=message,
        started_at=timestamp(started_at), finished_at=timestamp(finished_at),
        container_id=container_id))


def container_status(container: Union[pods_pb2.Container, str], state: pods_pb2.ContainerState, *,
                     ready: Optional[bool] = None, started: Optional[bool] = None,
                     restart_count: int = 0, last_state: Optional[pods_pb2.ContainerState] = None,
                     image: str = "", image_id: str = "",
                     container_id: str = "") -> pods_pb2.ContainerStatus:
    """The status of one container (a spec Container or its name) in `state`.

    `ready` and `started` default to "the container runs", right for a
    container without probes.
    """
    is_running = state.WhichOneof("state") == "running"
    if isinstance(container, str):
        name = container
    else:
        name = container.name
        image = image or container.image
    status = pods_pb2.ContainerStatus(
        name=name, state=state, restart_count=restart_count, image=image, image_id=image_id,
        container_id=container_id,
        ready=is_running if ready is None else ready,
        started=is_running if started is None else started)
    if last_state is not None:
        status.last_state.CopyFrom(last_state)
    return status


def pod_status(pod: Union[pods_pb2.Pod, pods_pb2.PodRef], *,
               containers: Iterable[pods_pb2.ContainerStatus] = (),
               init_containers: Iterable[pods_pb2.ContainerStatus] = (),
               phase: int = pods_pb2.POD_PHASE_UNSPECIFIED, reason: str = "", message: str = "",
               start_time: TimeLike = None, pod_ips: Iterable[str] = ()) -> pods_pb2.PodStatus:
    """A whole PodStatus for `pod`.

    Leave `phase` UNSPECIFIED (recommended, spec.md §5.2 rule 3): the host then
    derives it from the container states and the restart policy. `start_time`
    (when the backend started working on the pod) stays unset when None.
    """
    status = pods_pb2.PodStatus(
        pod=pod_ref(pod), phase=phase, reason=reason, message=message, pod_ips=list(pod_ips),
        container_statuses=list(containers), init_container_statuses=list(init_containers))
    if start_time is not None:
        status.start_time.CopyFrom(timestamp(start_time))
    return status


def all_waiting(pod: pods_pb2.Pod, reason: str = "ContainerCreating", message: str = "",
                **pod_fields) -> pods_pb2.PodStatus:
    """A status in which every (init) container of `pod` waits with `reason`.

    What a provider reports right after CreatePod (spec.md §5.2 rule 2);
    `pod_fields` go to pod_status().
    """
    return pod_status(
        pod,
        init_containers=[container_status(c, waiting(reason, message))
                         for c in pod.init_containers],
        containers=[container_status(c, waiting(reason, message)) for c in pod.containers],
        **pod_fields)
