"""BatchProvider: the vkhost provider of the batch plugin.

Every pod becomes a job in one FIFO queue with a fixed number of slots
(`--slots`), the way an HPC scheduler runs jobs on a partition. A pod waits
in the queue as Pending with reason `Queued` and its position in the
message; when a slot frees up the oldest queued pod starts (PodJob runs its
containers as local processes) and keeps the slot until it finished. Each
finished job leaves an accounting record (accounting.py), also visible
through the stats RPC as CPU time.

Capabilities: WATCH_POD_STATUS, UPDATE_POD, NODE_INFO, CONTAINER_LOGS,
CONTAINER_LOGS_PREVIOUS, EXEC, ATTACH, PORT_FORWARD, STATS. Attach streams
the main process's output, and stdin to it when the container has
`stdin: true`.

Threading: gRPC threads call the Provider methods; one housekeeping thread
starts queued jobs, updates queue positions and enforces kill deadlines and
activeDeadlineSeconds; each running job has its own threads (job.py).
`_lock` guards the job table and the queue; lock order is provider → job.
"""

from __future__ import annotations

import collections
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
from typing import Deque, Dict, List, Optional

from vkhost_sdk import (FailedPrecondition, InvalidArgument, NotFound, Provider, local, logs,
                        status, v1)

from .accounting import AccountingLog, JobRecord
from .job import PodJob, PodRejected, validate

_log = logging.getLogger("vkhost_batch")
_HOUSEKEEPING_SECONDS = 0.2
VERSION = "0.1.0"


def _memory_bytes() -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class BatchProvider(Provider):
    """Pods as batch jobs in a local queue with slots (see the module docstring)."""

    def __init__(self, slots: int, work_dir: Optional[str], accounting: AccountingLog,
                 max_pods: int = 110) -> None:
        """`work_dir` None means a temporary directory, made for the first pod and
        removed by shutdown(); a given one is created if needed and kept."""
        super().__init__()
        if slots < 1:
            raise ValueError("--slots must be at least 1")
        self.slots = slots
        self._temporary_work_dir = work_dir is None
        self.work_dir = "" if work_dir is None else os.path.abspath(work_dir)
        if self.work_dir:
            os.makedirs(self.work_dir, exist_ok=True)
        self.accounting = accounting
        self.max_pods = max_pods
        self.started = time.time()
        self._lock = threading.Condition()
        self._jobs: Dict[str, PodJob] = {}
        self._queue: Deque[str] = collections.deque()
        self._running: set = set()
        self._records: Dict[str, JobRecord] = {}
        self._stopping = False
        self._housekeeper = threading.Thread(target=self._housekeeping, name="batch-queue",
                                             daemon=True)
        self._housekeeper.start()

    # --- Identity and node ---

    def plugin_info(self) -> v1.GetPluginInfoResponse:
        return v1.GetPluginInfoResponse(
            name="batch", version=VERSION,
            manifest={"slots": str(self.slots),
                      "work_dir": self.work_dir or "(temporary, made for the first pod)",
                      "accounting_file": self.accounting.path or "(none)"})

    def capabilities(self) -> List[int]:
        return [v1.CAPABILITY_WATCH_POD_STATUS, v1.CAPABILITY_UPDATE_POD,
                v1.CAPABILITY_NODE_INFO, v1.CAPABILITY_CONTAINER_LOGS,
                v1.CAPABILITY_CONTAINER_LOGS_PREVIOUS, v1.CAPABILITY_EXEC, v1.CAPABILITY_ATTACH,
                v1.CAPABILITY_PORT_FORWARD, v1.CAPABILITY_STATS]

    def get_node(self, request: v1.GetNodeRequest) -> v1.NodeStatus:
        capacity = {"cpu": str(os.cpu_count() or 1), "pods": str(self.max_pods)}
        memory = _memory_bytes()
        if memory:
            capacity["memory"] = str(memory)
        uname = platform.uname()
        return v1.NodeStatus(
            capacity=capacity,
            labels={"vkhost.io/batch-slots": str(self.slots)},
            system_info=v1.NodeSystemInfo(
                operating_system="linux", kernel_version=uname.release,
                architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(uname.machine,
                                                                          uname.machine),
                container_runtime_version=f"batch://{VERSION}"))

    # --- Pods ---

    def create_pod(self, pod: v1.Pod) -> None:
        try:
            validate(pod)
        except PodRejected as e:
            raise InvalidArgument(str(e)) from None
        with self._lock:
            if pod.uid in self._jobs:
                return  # idempotent by UID: the first spec stays
            if not self.work_dir:
                # Made lazily, so that a plugin killed before its first pod leaves nothing.
                self.work_dir = tempfile.mkdtemp(prefix="vkhost-batch-")
            job = PodJob(pod, self.work_dir, self.pod_status_feed.publish, self._job_finished)
            self._jobs[pod.uid] = job
            self._queue.append(pod.uid)
            _log.info("queued %s/%s (%s) at position %d", pod.namespace, pod.name, pod.uid,
                      len(self._queue))
            # A free slot starts the job now, without a passing Queued status.
            self._start_queued_jobs()
            self._update_queue_positions()

    def update_pod(self, pod: v1.Pod) -> None:
        self._job(pod.uid).update(pod)

    def delete_pod(self, pod: v1.PodRef, grace_period_seconds: Optional[int]) -> None:
        with self._lock:
            job = self._jobs.get(pod.uid)
            if job is None:
                return
            if pod.uid in self._queue:
                self._queue.remove(pod.uid)
                job.end_time = time.time()
                self._forget(job, record=True)
                self._update_queue_positions()
                return
            if job.state == "finished":
                self._forget(job, record=False)
                return
            job.deleted = True  # forgotten by _job_finished once its processes ended
        job.request_stop(grace_period_seconds)

    def get_pod_status(self, pod: v1.PodRef) -> v1.PodStatus:
        return self._job(pod.uid).status()

    def list_pods(self) -> List[v1.PodStatus]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [job.status() for job in jobs]

    # --- Streams ---

    def container_logs(self, request: v1.ContainerLogsRequest, stream):
        job = self._job(request.pod.uid)
        run = job.find(request.container)
        if run is None:
            raise NotFound(f"pod {request.pod.namespace}/{request.pod.name} has no container "
                           f"{request.container!r}")
        with job.lock:
            instances = list(run.instances)
            queue_message = job.queue_message if job.state == "queued" else ""
        if request.previous:
            if len(instances) < 2:
                raise NotFound(f"container {request.container!r} has no previous instance")
            instance = instances[-2]
        elif instances:
            instance = instances[-1]
        else:
            raise FailedPrecondition(
                f"container {request.container!r} has not started yet"
                + (f" ({queue_message})" if queue_message else ""))
        return logs.read_log(instance.log_path, request, stream, finished=instance.ended.is_set)

    def exec(self, start: v1.ExecStart, session) -> v1.ExitStatus:
        job = self._job(start.pod.uid)
        run = job.find(start.container)
        if run is None:
            raise NotFound(f"pod {start.pod.namespace}/{start.pod.name} has no container "
                           f"{start.container!r}")
        with job.lock:
            if not run.running:
                raise FailedPrecondition(f"container {start.container!r} is not running")
            env, cwd = job.environment(run), job.working_dir(run)
        return local.run_process(list(start.command), session, stdin=start.stdin, env=env,
                                 cwd=cwd, terminal_size=start.terminal_size)

    def attach(self, start: v1.AttachStart, session) -> v1.ExitStatus:
        """Streams the main process's output from now on, and stdin to it when the
        container has `stdin: true`; ends with its exit code, or when the host detaches."""
        job = self._job(start.pod.uid)
        run = job.find(start.container)
        if run is None:
            raise NotFound(f"pod {start.pod.namespace}/{start.pod.name} has no container "
                           f"{start.container!r}")
        with job.lock:
            instance = run.current
            if not run.running or instance is None or instance.process is None:
                raise FailedPrecondition(f"container {start.container!r} is not running")
            stdin = instance.process.stdin if start.stdin else None
        # Output from this moment on; taken before stdin can make the process write.
        offset = logs.end_offset(instance.log_path)
        feeder, output_over = None, threading.Event()
        if stdin is not None:
            feeder = threading.Thread(target=_feed_stdin, daemon=True,
                                      args=(session, stdin, run.spec.stdin_once, output_over))
            feeder.start()
        for entry in logs.follow_from(instance.log_path, offset, session.stream,
                                      finished=instance.ended.is_set):
            write = session.write_stderr if entry.stream == v1.LogEntry.STREAM_STDERR \
                else session.write_stdout
            if not write(entry.line):
                break
        output_over.set()
        if feeder is not None:
            feeder.join()
        with job.lock:
            code = run.exit_code if instance.ended.is_set() and run.exit_code is not None else 0
        return v1.ExitStatus(exit_code=code)

    def port_forward(self, start: v1.PortForwardStart, session) -> None:
        self._job(start.pod.uid)  # NOT_FOUND for an unknown pod
        # Batch processes share the machine's network: the pod's ports are local ports.
        local.relay_tcp(session, "127.0.0.1", start.port)

    # --- Stats ---

    def get_stats_summary(self) -> v1.GetStatsSummaryResponse:
        now = status.timestamp()
        with self._lock:
            jobs = [job for job in self._jobs.values() if job.start_time is not None]
        response = v1.GetStatsSummaryResponse()
        response.node.start_time.CopyFrom(status.timestamp(self.started))
        node_cpu = 0.0
        for job in jobs:
            pod = response.pods.add(pod=status.pod_ref(job.pod),
                                    start_time=status.timestamp(job.start_time))
            pod_cpu, pod_memory = 0.0, None
            for run in job.runs():
                cpu, memory = job.cpu_and_memory(run)
                container = pod.containers.add(name=run.spec.name)
                if run.instances:
                    container.start_time.CopyFrom(status.timestamp(job.start_time))
                container.cpu.time.CopyFrom(now)
                container.cpu.usage_core_nano_seconds = int(cpu * 1e9)
                if memory is not None:
                    container.memory.time.CopyFrom(now)
                    container.memory.working_set_bytes = memory
                    container.memory.rss_bytes = memory
                    pod_memory = (pod_memory or 0) + memory
                pod_cpu += cpu
            pod.cpu.time.CopyFrom(now)
            pod.cpu.usage_core_nano_seconds = int(pod_cpu * 1e9)
            if pod_memory is not None:  # unknown once no process runs, which is not zero
                pod.memory.time.CopyFrom(now)
                pod.memory.working_set_bytes = pod_memory
            node_cpu += pod_cpu
        response.node.cpu.time.CopyFrom(now)
        response.node.cpu.usage_core_nano_seconds = int(node_cpu * 1e9)
        return response

    def accounting_records(self) -> List[JobRecord]:
        """Records of finished jobs whose pods still exist (for tests and tools)."""
        with self._lock:
            return list(self._records.values())

    # --- lifecycle ---

    def shutdown(self, grace_seconds: float = 1.0) -> None:
        """Stops the queue, kills every job's processes (SIGTERM, SIGKILL after grace)
        and removes a temporary work directory.

        The batch backend keeps no state across plugin restarts, so it does
        not leave processes behind that a new plugin could not report.
        """
        with self._lock:
            self._stopping = True
            self._queue.clear()
            running = [self._jobs[uid] for uid in self._running]
            self._lock.notify_all()
        for job in running:
            job.request_stop(grace_seconds)
        deadline = time.monotonic() + grace_seconds
        for job in running:
            job.join(max(0.0, deadline - time.monotonic()))
        for job in running:
            job.request_stop(0)  # SIGKILL what is left
        for job in running:
            job.join(1.0)
        self._housekeeper.join(1.0)
        with self._lock:
            if self._temporary_work_dir and self.work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
                self.work_dir = ""

    def _job(self, uid: str) -> PodJob:
        with self._lock:
            job = self._jobs.get(uid)
        if job is None:
            raise NotFound(f"no pod with UID {uid!r} on this node")
        return job

    def _housekeeping(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                self._start_queued_jobs()
                running = [self._jobs[uid] for uid in self._running]
                self._lock.wait(_HOUSEKEEPING_SECONDS)
            now = time.time()
            for job in running:
                job.tick(now)

    def _start_queued_jobs(self) -> None:
        started = False
        while self._queue and len(self._running) < self.slots and not self._stopping:
            job = self._jobs[self._queue.popleft()]
            self._running.add(job.uid)
            _log.info("starting %s/%s (%s): slot %d of %d", job.pod.namespace, job.pod.name,
                      job.uid, len(self._running), self.slots)
            job.start()
            started = True
        if started:
            self._update_queue_positions()

    def _update_queue_positions(self) -> None:
        total = len(self._queue)
        for position, uid in enumerate(self._queue, start=1):
            self._jobs[uid].set_queue_position(
                f"waiting for a batch slot: position {position} of {total} in the queue, "
                f"{len(self._running)} of {self.slots} slots busy")

    def _job_finished(self, job: PodJob) -> None:
        """Called by a job's thread once no container of it will run again."""
        with self._lock:
            self._running.discard(job.uid)
            record = job.record()
            self.accounting.append(record)
            if job.uid in self._jobs:
                self._records[job.uid] = record
                if job.deleted:
                    self._forget(job, record=False)
            self._lock.notify_all()

    def _forget(self, job: PodJob, record: bool) -> None:
        """Drops a pod for good (spec.md §5.2 rule 4). Caller holds _lock."""
        if record:
            self.accounting.append(job.record())
        self._jobs.pop(job.uid, None)
        self._records.pop(job.uid, None)
        job.publish()
        self.pod_status_feed.publish_deleted(status.pod_ref(job.pod))


def _feed_stdin(session, sink, once: bool, done: threading.Event) -> None:
    """Copies the attached client's stdin to the process until it closes, the
    client detaches or `done` (the process ended) is set.

    The pipe stays open for the next attach unless the container says stdinOnce.
    """
    try:
        while not done.is_set():
            item = session.read(timeout=0.1)
            if item is None or item.kind == "resize":
                continue
            if item.kind != "stdin":
                break
            sink.write(item.data)
            sink.flush()
    except (ValueError, OSError):
        return  # the process ended or closed its stdin
    if once:
        try:
            sink.close()
        except OSError:
            pass
