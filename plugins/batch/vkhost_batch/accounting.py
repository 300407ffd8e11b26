"""Job accounting: one record per finished job, like an HPC scheduler's sacct.

A record says when the job was submitted, started and ended, how it ended
(COMPLETED, FAILED, CANCELLED or TIMEOUT), its exit code and the CPU time
and peak memory its processes used, per job and per container. Records go to
an append-only JSON-lines file (one object per line, `--accounting-file`)
and stay in memory for the stats RPC while the pod exists.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import threading
from typing import Any, Dict, List, Optional

_log = logging.getLogger("vkhost_batch")

# Job end states, in the words HPC users know.
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMEOUT = "TIMEOUT"


def iso_time(seconds: Optional[float]) -> Optional[str]:
    """RFC 3339 UTC time with microseconds, or None."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(
        timespec="microseconds").replace("+00:00", "Z")


@dataclasses.dataclass
class ContainerUsage:
    """What one container (all its instances together) used."""

    name: str
    init: bool
    restarts: int
    exit_code: Optional[int]  # of the last instance; None if it never ran
    cpu_user_seconds: float
    cpu_system_seconds: float
    max_rss_kib: int


@dataclasses.dataclass
class JobRecord:
    """The accounting record of one job (= one pod)."""

    uid: str
    namespace: str
    name: str
    state: str
    exit_code: int
    submit_time: float
    start_time: Optional[float]
    end_time: float
    containers: List[ContainerUsage]

    @property
    def cpu_seconds(self) -> float:
        return sum(c.cpu_user_seconds + c.cpu_system_seconds for c in self.containers)

    def to_json(self) -> Dict[str, Any]:
        """The JSON object written to the accounting file (documented in README.md)."""
        started = self.start_time
        return {
            "uid": self.uid,
            "namespace": self.namespace,
            "name": self.name,
            "state": self.state,
            "exit_code": self.exit_code,
            "submit_time": iso_time(self.submit_time),
            "start_time": iso_time(started),
            "end_time": iso_time(self.end_time),
            "queued_seconds": round((started if started is not None else self.end_time)
                                    - self.submit_time, 6),
            "run_seconds": round(self.end_time - started, 6) if started is not None else 0.0,
            "cpu_user_seconds": round(sum(c.cpu_user_seconds for c in self.containers), 6),
            "cpu_system_seconds": round(sum(c.cpu_system_seconds for c in self.containers), 6),
            "max_rss_kib": max((c.max_rss_kib for c in self.containers), default=0),
            "containers": [dataclasses.asdict(c) for c in self.containers],
        }


class AccountingLog:
    """Appends JobRecords to a JSON-lines file (none when `path` is empty). Thread-safe.

    A write that fails is logged, never raised: accounting must not stop jobs.
    """

    def __init__(self, path: str = "") -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, record: JobRecord) -> None:
        line = json.dumps(record.to_json(), sort_keys=True)
        _log.info("job %s/%s (%s) ended %s, exit code %d, %.3f CPU seconds", record.namespace,
                  record.name, record.uid, record.state, record.exit_code, record.cpu_seconds)
        if not self.path:
            return
        with self._lock:
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError as e:
                _log.error("cannot append to the accounting file %s: %s", self.path, e.strerror)
