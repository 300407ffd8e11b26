"""Container log files: write them as output arrives, serve ContainerLogs from them.

`LogWriter` appends one record per line, in the CRI log format the kubelet
uses (`<RFC3339Nano time> <stdout|stderr> <F|P> <bytes>`; F = the line ended
with a newline, P = it did not), so each line keeps its time and stream.
`read_log()` is a ready-made body for `Provider.container_logs`: it applies
the request's since_time, tail_lines, limit_bytes and follow (spec.md §6
rule 1) to such a file and yields `v1.LogEntry` messages.
"""

from __future__ import annotations

import calendar
import collections
import threading
import time
from typing import BinaryIO, Callable, Iterator, Optional

from vkhost.provider.v1 import streams_pb2

from .sessions import StreamContext

LogEntry = streams_pb2.LogEntry
_STREAM_NAMES = {LogEntry.STREAM_STDOUT: b"stdout", LogEntry.STREAM_STDERR: b"stderr"}
_STREAM_VALUES = {v: k for k, v in _STREAM_NAMES.items()}
# Longest line kept in one record; longer lines are split into P records.
MAX_LINE_BYTES = 16 * 1024
# How often a followed log looks for new lines.
_FOLLOW_POLL_SECONDS = 0.1


def _format_time(nanos: int) -> bytes:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z").encode()


def _parse_time(text: bytes) -> int:
    """Nanoseconds since the epoch of an RFC 3339 UTC time as _format_time writes it."""
    whole, _, fraction = text.rstrip(b"Z").decode().partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


class LogWriter:
    """Appends log records to one file. Thread-safe (stdout and stderr pumps share it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "ab", buffering=0)

    def write_line(self, stream: int, line: bytes, when_ns: Optional[int] = None) -> None:
        """Records one line (with or without its trailing newline) of `stream`."""
        when = _format_time(time.time_ns() if when_ns is None else when_ns)
        name = _STREAM_NAMES.get(stream, b"stdout")
        while line:
            piece, line = line[:MAX_LINE_BYTES], line[MAX_LINE_BYTES:]
            complete = piece.endswith(b"\n")
            record = b" ".join([when, name, b"F" if complete else b"P",
                                piece[:-1] if complete else piece]) + b"\n"
            with self._lock:
                self._file.write(record)

    def pump(self, stream: int, source: BinaryIO) -> None:
        """Copies `source` line by line until end-of-file, then closes it.

        Runs on the caller's thread (start one thread per pipe).
        """
        try:
            for line in iter(lambda: source.readline(MAX_LINE_BYTES), b""):
                self.write_line(stream, line)
        finally:
            source.close()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _parse_record(record: bytes) -> Optional[LogEntry]:
    parts = record.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    when, name, tag = parts[0], parts[1], parts[2]
    content = parts[3] if len(parts) == 4 else b""
    try:
        nanos = _parse_time(when)
    except ValueError:
        return None
    entry = LogEntry(stream=_STREAM_VALUES.get(name, LogEntry.STREAM_STDOUT),
                     line=content + (b"\n" if tag == b"F" else b""))
    entry.time.FromNanoseconds(nanos)
    return entry


def _records(f: BinaryIO) -> Iterator[LogEntry]:
    """Complete records from the current position; stops before a half-written one."""
    while True:
        position = f.tell()
        record = f.readline()
        if not record:
            return
        if not record.endswith(b"\n"):
            f.seek(position)  # the writer is mid-record: read it next time
            return
        entry = _parse_record(record)
        if entry is not None:
            yield entry


def read_log(path: str, request: streams_pb2.ContainerLogsRequest, stream: StreamContext,
             finished: Callable[[], bool] = lambda: True) -> Iterator[LogEntry]:
    """Yields the entries of a LogWriter file that `request` asks for.

    Applies since_time, then tail_lines, then limit_bytes (cutting the last
    line to fit). With `request.follow` it keeps yielding new entries until
    `finished()` is true (the container instance terminated) and the file is
    drained, or `stream.cancelled`. A missing file reads as empty.
    """
    since_ns = request.since_time.ToNanoseconds() if request.HasField("since_time") else None
    budget: Optional[int] = request.limit_bytes if request.HasField("limit_bytes") else None

    def admit(entries) -> Iterator[LogEntry]:
        nonlocal budget
        for entry in entries:
            if since_ns is not None and entry.time.ToNanoseconds() < since_ns:
                continue
            if budget is not None:
                if budget <= 0:
                    return
                if len(entry.line) > budget:
                    entry.line = entry.line[:budget]
                budget -= len(entry.line)
            yield entry

    f = _open_when_present(path, stream, finished, request.follow)
    if f is None:
        return
    with f:
        existing = list(admit_since(_records(f), since_ns))
        if request.HasField("tail_lines"):
            existing = list(collections.deque(existing, maxlen=max(0, request.tail_lines)))
        since_ns = None  # already applied to `existing`; new lines are newer
        for entry in admit(existing):
            yield entry
        if budget is not None and budget <= 0:
            return
        while request.follow and not stream.cancelled:
            done = finished()  # read before draining, so nothing written before it is missed
            for entry in admit(_records(f)):
                yield entry
            if done or (budget is not None and budget <= 0):
                return
            stream.sleep(_FOLLOW_POLL_SECONDS)


def end_offset(path: str) -> int:
    """The current size of a log file (0 when absent), for follow_from()."""
    try:
        with open(path, "rb") as f:
            return f.seek(0, 2)
    except FileNotFoundError:
        return 0


def follow_from(path: str, offset: int, stream: StreamContext,
                finished: Callable[[], bool]) -> Iterator[LogEntry]:
    """Yields the entries written after byte `offset` (from end_offset()) until
    `finished()` and the file is drained, or `stream.cancelled`.

    What attach needs: output from a moment taken before anything that could
    produce it (such as sending stdin) was started.
    """
    f = _open_when_present(path, stream, finished, follow=True)
    if f is None:
        return
    with f:
        f.seek(offset)
        while not stream.cancelled:
            done = finished()
            yield from _records(f)
            if done:
                return
            stream.sleep(_FOLLOW_POLL_SECONDS)


def admit_since(entries: Iterator[LogEntry], since_ns: Optional[int]) -> Iterator[LogEntry]:
    """The entries at or after `since_ns` (all when None)."""
    for entry in entries:
        if since_ns is None or entry.time.ToNanoseconds() >= since_ns:
            yield entry


def _open_when_present(path: str, stream: StreamContext, finished: Callable[[], bool],
                       follow: bool) -> Optional[BinaryIO]:
    """The open file; with follow, waits for it to appear until finished()."""
    while True:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            if not follow or finished() or stream.cancelled:
                return None
            stream.sleep(_FOLLOW_POLL_SECONDS)

