"""PodJob: one pod run as a batch job of local processes.

Once the queue gives it a slot, a job's thread prepares the pod directory
(volume files, emptyDirs), runs the init containers one after another, each
to successful completion, then the app containers side by side, each as a
local process group whose stdout and stderr go to a log file per container
instance. restartPolicy decides what happens when a process exits: Never
keeps it terminated, OnFailure restarts it after a non-zero exit, Always
restarts it after any exit (as the kubelet does; such a job holds its slot
until the pod is deleted). Restarts wait with an exponential backoff.

Termination (DeletePod, activeDeadlineSeconds, plugin shutdown) sends
SIGTERM to every process group and SIGKILL once the grace period is over.
The job is finished when no container will run again; the owner then frees
the slot and writes the accounting record.

Threading: the job thread runs the containers (one supervisor thread per app
container, two log pumps per process). `status()`, `request_stop()`,
`tick()` and the read accessors may be called from any thread; all state is
guarded by `lock`. The `publish` callback is called with `lock` held, so a
pod's statuses are published in order, and must not call back into the job;
`on_finished` is called without it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import threading
import time
from typing import Callable, Dict, List, Optional

from vkhost_sdk import logs, status, v1

from .accounting import CANCELLED, COMPLETED, FAILED, TIMEOUT, ContainerUsage, JobRecord

# Restart backoff: doubles from the first value up to the cap, like the
# kubelet's CrashLoopBackOff but shorter, since batch jobs are short.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
DEFAULT_GRACE_SECONDS = 30
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class PodRejected(Exception):
    """The pod can never run on this backend; str() says why (INVALID_ARGUMENT)."""


def validate(pod: v1.Pod) -> None:
    """Raises PodRejected for a pod this backend can never run."""
    for container in list(pod.init_containers) + list(pod.containers):
        if not container.command and not container.args:
            raise PodRejected(
                f"container {container.name!r} has no command: the batch backend runs each "
                "container's command as a local process and cannot run an image's entrypoint "
                "(set spec.containers[].command)")
    for volume in pod.volumes:
        if volume.WhichOneof("source") == "unresolved":
            raise PodRejected(f"volume {volume.name!r} is a {volume.unresolved.kind} volume, "
                              "which the batch backend cannot provide")


def _env_name(volume: str) -> str:
    return "VKHOST_VOLUME_" + re.sub(r"[^A-Za-z0-9]", "_", volume).upper()


@dataclasses.dataclass
class _Instance:
    """One run of a container: its process and log file."""

    number: int  # 0 for the first run, then one per restart
    log_path: str
    process: Optional[subprocess.Popen] = None
    # Set once its output is drained and its end recorded (log followers wait for it).
    ended: threading.Event = dataclasses.field(default_factory=threading.Event)
    # The main process was reaped: its pid may be reused, never signal it again.
    reaped: bool = False
    term_sent: bool = False


class ContainerRun:
    """The state of one container of the job; guarded by the job's lock."""

    def __init__(self, spec: v1.Container, init: bool, restart_policy: int, log_dir: str) -> None:
        self.spec = spec
        self.init = init
        self.sidecar = init and spec.restart_policy == v1.RESTART_POLICY_ALWAYS
        self.restart_policy = v1.RESTART_POLICY_ALWAYS if self.sidecar else restart_policy
        self.log_dir = log_dir
        self.state = status.waiting("Queued")
        self.last_state: Optional[v1.ContainerState] = None
        self.restart_count = 0
        self.instances: List[_Instance] = []
        self.exit_code: Optional[int] = None
        self.cpu_user = 0.0
        self.cpu_system = 0.0
        self.max_rss_kib = 0
        self.stopping = False  # no more restarts (pod terminating, sidecar ending)

    @property
    def current(self) -> Optional[_Instance]:
        return self.instances[-1] if self.instances else None

    @property
    def running(self) -> bool:
        return self.state.WhichOneof("state") == "running"

    def should_restart(self, exit_code: int) -> bool:
        if self.stopping:
            return False
        if self.init and not self.sidecar:
            return exit_code != 0 and self.restart_policy != v1.RESTART_POLICY_NEVER
        if self.restart_policy == v1.RESTART_POLICY_NEVER:
            return False
        if self.restart_policy == v1.RESTART_POLICY_ON_FAILURE:
            return exit_code != 0
        return True  # ALWAYS and UNSPECIFIED (Kubernetes' default)

    def container_status(self, uid: str) -> v1.ContainerStatus:
        return status.container_status(self.spec, self.state, restart_count=self.restart_count,
                                       last_state=self.last_state,
                                       container_id=f"batch://{uid}/{self.spec.name}")

    def usage(self) -> ContainerUsage:
        return ContainerUsage(name=self.spec.name, init=self.init, restarts=self.restart_count,
                              exit_code=self.exit_code, cpu_user_seconds=round(self.cpu_user, 6),
                              cpu_system_seconds=round(self.cpu_system, 6),
                              max_rss_kib=self.max_rss_kib)


class PodJob:
    """One pod as a batch job (see the module docstring for threading)."""

    def __init__(self, pod: v1.Pod, work_dir: str,
                 publish: Callable[[v1.PodStatus], None],
                 on_finished: Callable[["PodJob"], None]) -> None:
        self.pod = pod
        self.uid = pod.uid
        self.dir = os.path.join(work_dir, "pods", pod.uid)
        self.lock = threading.RLock()
        self._publish = publish
        self._on_finished = on_finished
        self.submit_time = time.time()
        self.start_time: Optional[float] = None
        self.end_time: Optional[float] = None
        self.state = "queued"  # queued, running, finished
        self.queue_message = ""
        self.pod_reason = "Queued"
        self.pod_message = ""
        self.phase = v1.POD_PHASE_UNSPECIFIED
        self.end_state = ""
        self.stop_requested = threading.Event()
        self.deleted = False  # DeletePod asked for it; the provider's lock guards this
        self.kill_deadline: Optional[float] = None
        policy = pod.restart_policy
        self.init_runs = [ContainerRun(c, True, policy, os.path.join(self.dir, "logs", c.name))
                          for c in pod.init_containers]
        self.app_runs = [ContainerRun(c, False, policy, os.path.join(self.dir, "logs", c.name))
                         for c in pod.containers]
        self._thread: Optional[threading.Thread] = None
        self._sidecars: List[threading.Thread] = []  # job thread only

    # --- reading ---

    def runs(self) -> List[ContainerRun]:
        return self.init_runs + self.app_runs

    def find(self, name: str) -> Optional[ContainerRun]:
        for run in self.runs():
            if run.spec.name == name:
                return run
        return None

    def status(self) -> v1.PodStatus:
        """The pod's whole current status."""
        with self.lock:
            result = status.pod_status(
                self.pod, phase=self.phase, reason=self.pod_reason, message=self.pod_message,
                start_time=self.start_time,
                init_containers=[r.container_status(self.uid) for r in self.init_runs],
                containers=[r.container_status(self.uid) for r in self.app_runs],
                pod_ips=[self.pod.host_ip] if self.pod.host_ip and self.start_time else [])
            return result

    def publish(self) -> None:
        """Publishes the current status; under the lock so a pod's statuses stay in order."""
        with self.lock:
            self._publish(self.status())

    def environment(self, run: ContainerRun) -> Dict[str, str]:
        """The process environment of a container: a minimal base, volumes, then the pod's env."""
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
               "HOME": self.dir, "HOSTNAME": self.pod.hostname or self.pod.name,
               "VKHOST_POD_DIR": self.dir, "VKHOST_POD_UID": self.uid,
               "VKHOST_POD_NAME": self.pod.name, "VKHOST_POD_NAMESPACE": self.pod.namespace}
        for volume in self.pod.volumes:
            env[_env_name(volume.name)] = self.volume_path(volume)
        for var in run.spec.env:
            env[var.name] = var.value
        return env

    def volume_path(self, volume: v1.Volume) -> str:
        if volume.WhichOneof("source") == "host_path":
            return volume.host_path.path
        return os.path.join(self.dir, "volumes", volume.name)

    def working_dir(self, run: ContainerRun) -> str:
        return run.spec.working_dir or self.dir

    # --- queue-side updates (called by the provider) ---

    def set_queue_position(self, message: str) -> None:
        with self.lock:
            if self.state != "queued" or message == self.queue_message:
                return
            self.queue_message = message
            self.pod_message = message
            for run in self.runs():
                run.state = status.waiting("Queued", message)
            self.publish()

    def start(self) -> None:
        """Starts the job's thread; the job holds a slot from now until on_finished."""
        with self.lock:
            self.state = "running"
            self.start_time = time.time()
            self.pod_reason = self.pod_message = ""
            for run in self.init_runs:
                run.state = status.waiting("PodInitializing" if run is not self.init_runs[0]
                                           else "ContainerCreating")
            for run in self.app_runs:
                run.state = status.waiting("PodInitializing" if self.init_runs
                                           else "ContainerCreating")
            self.publish()
            self._thread = threading.Thread(target=self._run, name=f"job-{self.pod.name}",
                                            daemon=True)
            self._thread.start()

    def update(self, pod: v1.Pod) -> None:
        """Applies what may change on a running pod: labels, annotations, the deadline."""
        with self.lock:
            self.pod.labels.clear()
            self.pod.labels.update(pod.labels)
            self.pod.annotations.clear()
            self.pod.annotations.update(pod.annotations)
            if pod.HasField("active_deadline_seconds"):
                self.pod.active_deadline_seconds = pod.active_deadline_seconds
            else:
                self.pod.ClearField("active_deadline_seconds")

    def request_stop(self, grace_seconds: Optional[float]) -> None:
        """Starts termination: SIGTERM now, SIGKILL after the grace period.

        A later call with a shorter grace period shortens it; a longer one
        does not extend it (spec.md §5.1 rule 4).
        """
        if grace_seconds is None:
            grace_seconds = (self.pod.termination_grace_period_seconds
                             if self.pod.HasField("termination_grace_period_seconds")
                             else DEFAULT_GRACE_SECONDS)
        with self.lock:
            deadline = time.monotonic() + max(0.0, float(grace_seconds))
            if self.kill_deadline is None or deadline < self.kill_deadline:
                self.kill_deadline = deadline
            self.stop_requested.set()
            for run in self.runs():
                run.stopping = True
                self._signal(run, signal.SIGKILL if grace_seconds <= 0 else signal.SIGTERM)

    def tick(self, now: float) -> None:
        """Housekeeping: SIGKILL after the grace period, activeDeadlineSeconds."""
        with self.lock:
            if self.state != "running":
                return
            if self.kill_deadline is not None and time.monotonic() >= self.kill_deadline:
                for run in self.runs():
                    self._signal(run, signal.SIGKILL)
            deadline = self.pod.active_deadline_seconds \
                if self.pod.HasField("active_deadline_seconds") else None
            if deadline is not None and self.start_time is not None and \
                    now - self.start_time > deadline and not self.stop_requested.is_set():
                self.end_state = TIMEOUT
                self.phase = v1.POD_PHASE_FAILED
                self.pod_reason = "DeadlineExceeded"
                self.pod_message = f"Pod was active on the node longer than the specified " \
                                   f"deadline ({deadline} s)"
                self.request_stop(None)
                self.publish()

    def _signal(self, run: ContainerRun, signum: int) -> None:
        instance = run.current
        if instance is None or instance.process is None or instance.reaped:
            return
        if signum == signal.SIGTERM:
            if instance.term_sent:
                return
            instance.term_sent = True
        try:
            os.killpg(instance.process.pid, signum)
        except OSError:
            pass

    def join(self, timeout: Optional[float] = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- the job thread ---

    def _run(self) -> None:
        try:
            self._prepare_directory()
            if self._run_init_containers():
                self._run_app_containers()
        except OSError as e:
            with self.lock:
                self.phase = v1.POD_PHASE_FAILED
                self.pod_reason = "BatchJobError"
                self.pod_message = f"cannot prepare the job: {e}"
                for run in self.runs():
                    if not run.state.HasField("terminated"):
                        run.state = status.terminated(128, reason="StartError",
                                                      message=self.pod_message)
                self.publish()
        finally:
            self._finish()

    def _prepare_directory(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        for run in self.runs():
            os.makedirs(run.log_dir, exist_ok=True)
        for volume in self.pod.volumes:
            kind = volume.WhichOneof("source")
            if kind == "host_path":
                continue
            root = self.volume_path(volume)
            os.makedirs(root, exist_ok=True)
            if kind == "files":
                for f in volume.files.files:
                    if f.path.startswith("/") or ".." in f.path.split("/"):
                        continue  # the host never sends these; never write outside the volume
                    path = os.path.join(root, f.path)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as out:
                        out.write(f.content)
                    os.chmod(path, f.mode or 0o644)

    def _run_init_containers(self) -> bool:
        """Runs init containers in order; True when the app containers may start."""
        supervisors: List[threading.Thread] = []
        for index, run in enumerate(self.init_runs):
            if self.stop_requested.is_set():
                return False
            if run.sidecar:
                supervisors.append(self._supervise_in_thread(run))
                continue
            exit_code = self._supervise(run)
            if exit_code != 0:
                with self.lock:
                    if not self.stop_requested.is_set():
                        self.phase = v1.POD_PHASE_FAILED
                        self.pod_reason = "InitContainerFailed"
                        self.pod_message = f"init container {run.spec.name!r} exited with " \
                                           f"{exit_code}"
                        self.publish()
                self._stop_sidecars(supervisors)
                return False
            with self.lock:
                if index + 1 < len(self.init_runs):
                    self.init_runs[index + 1].state = status.waiting("ContainerCreating")
        self._sidecars = supervisors
        return not self.stop_requested.is_set()

    def _run_app_containers(self) -> None:
        supervisors = [self._supervise_in_thread(run) for run in self.app_runs]
        for thread in supervisors:
            thread.join()
        self._stop_sidecars(self._sidecars)

    def _stop_sidecars(self, supervisors: List[threading.Thread]) -> None:
        with self.lock:
            for run in self.init_runs:
                if run.sidecar:
                    run.stopping = True
                    self._signal(run, signal.SIGTERM)
        for thread in supervisors:
            thread.join()

    def _supervise_in_thread(self, run: ContainerRun) -> threading.Thread:
        thread = threading.Thread(target=self._supervise, args=(run,),
                                  name=f"container-{run.spec.name}", daemon=True)
        thread.start()
        return thread

    def _supervise(self, run: ContainerRun) -> int:
        """Runs `run` until it will not be restarted; returns its last exit code."""
        delay = BACKOFF_FIRST_SECONDS
        while True:
            exit_code = self._run_instance(run)
            with self.lock:
                restart = run.should_restart(exit_code)
                if restart:
                    run.last_state = run.state
                    run.state = status.waiting(
                        "CrashLoopBackOff",
                        f"back-off {delay:g}s restarting failed container={run.spec.name}")
                    self.publish()
            if not restart:
                return exit_code
            if self.stop_requested.wait(delay):
                return exit_code
            delay = min(delay * 2, BACKOFF_CAP_SECONDS)
            with self.lock:
                run.restart_count += 1

    def _run_instance(self, run: ContainerRun) -> int:
        """Runs one instance of a container to its end; returns the exit code."""
        with self.lock:
            if run.stopping:
                return run.exit_code if run.exit_code is not None else 0
        instance = _Instance(number=len(run.instances),
                             log_path=os.path.join(run.log_dir, f"{len(run.instances)}.log"))
        writer = logs.LogWriter(instance.log_path)
        argv = list(run.spec.command) + list(run.spec.args)
        try:
            with self.lock:
                if run.stopping:  # stopped while the log file was being opened
                    return run.exit_code if run.exit_code is not None else 0
                run.instances.append(instance)
                started = time.time()
                try:
                    instance.process = subprocess.Popen(
                        argv, stdin=subprocess.PIPE if run.spec.stdin else subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, env=self.environment(run),
                        cwd=self.working_dir(run), start_new_session=True)
                except OSError as e:
                    code = 127 if isinstance(e, FileNotFoundError) else 126
                    instance.ended.set()
                    run.exit_code = code
                    run.state = status.terminated(
                        code, reason="StartError", started_at=started,
                        message=f"cannot run {argv[0]!r} in {self.working_dir(run)}: {e.strerror}")
                    self.publish()
                    return code
                run.state = status.running(started)
                self.publish()
            pumps = [threading.Thread(target=writer.pump, args=(stream, pipe), daemon=True)
                     for stream, pipe in ((v1.LogEntry.STREAM_STDOUT, instance.process.stdout),
                                          (v1.LogEntry.STREAM_STDERR, instance.process.stderr))]
            for pump in pumps:
                pump.start()
            _, wait_status, usage = os.wait4(instance.process.pid, 0)
            with self.lock:
                instance.reaped = True
                instance.process.returncode = os.waitstatus_to_exitcode(wait_status)
                # Like a container, the instance ends with its main process. Its
                # group id cannot be reused while stragglers are in it.
                try:
                    os.killpg(instance.process.pid, signal.SIGKILL)
                except OSError:
                    pass
            for pump in pumps:
                pump.join()
            if instance.process.stdin is not None:
                instance.process.stdin.close()
            return self._record_exit(run, instance, started, usage)
        finally:
            writer.close()

    def _record_exit(self, run: ContainerRun, instance: _Instance, started: float,
                     usage: "os.struct_rusage") -> int:
        code = instance.process.returncode
        signum = -code if code < 0 else 0
        exit_code = 128 + signum if signum else code
        with self.lock:
            run.cpu_user += usage.ru_utime
            run.cpu_system += usage.ru_stime
            run.max_rss_kib = max(run.max_rss_kib, usage.ru_maxrss)
            run.exit_code = exit_code
            run.state = status.terminated(exit_code, signal=signum, started_at=started,
                                          finished_at=time.time())
            instance.ended.set()
            self.publish()
        return exit_code

    def _finish(self) -> None:
        with self.lock:
            self.state = "finished"
            self.end_time = time.time()
            if not self.end_state:
                self.end_state = self._end_state()
        self._on_finished(self)

    def _end_state(self) -> str:
        if self.stop_requested.is_set():
            return CANCELLED
        if self.phase == v1.POD_PHASE_FAILED:
            return FAILED
        return COMPLETED if all(r.exit_code == 0 for r in self.app_runs) else FAILED

    # --- accounting and stats ---

    def record(self) -> JobRecord:
        """The accounting record; complete once the job finished (or never started)."""
        with self.lock:
            codes = [r.exit_code for r in self.app_runs + self.init_runs if r.exit_code]
            return JobRecord(uid=self.uid, namespace=self.pod.namespace, name=self.pod.name,
                             state=self.end_state or CANCELLED, exit_code=codes[0] if codes else 0,
                             submit_time=self.submit_time, start_time=self.start_time,
                             end_time=self.end_time or time.time(),
                             containers=[r.usage() for r in self.runs()])

    def cpu_and_memory(self, run: ContainerRun) -> "tuple[float, Optional[int]]":
        """(CPU seconds so far, resident bytes now or None) of a container."""
        with self.lock:
            cpu = run.cpu_user + run.cpu_system
            instance = run.current
            pid = instance.process.pid if instance and instance.process and \
                not instance.reaped else None
        if pid is None:
            return cpu, None
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{pid}/statm", "rb") as f:
                resident_pages = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            return cpu, None
        # utime, stime, cutime, cstime are fields 14-17 of stat (11-14 after the name).
        ticks = sum(int(x) for x in fields[11:15])
        return cpu + ticks / _CLOCK_TICKS, resident_pages * _PAGE_BYTES
