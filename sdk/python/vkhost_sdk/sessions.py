"""What a provider's stream methods get: cancellation, exec/attach and port-forward sessions.

- `StreamContext`: for server streams (ContainerLogs, WatchNode). Tells the
  provider when the host went away or the plugin is shutting down, and offers
  an interruptible sleep for follow loops.
- `ProcessSession`: one Exec or Attach. Input (stdin bytes, terminal resizes,
  stdin closed) arrives through `read()` or the `stdin()` iterator; output
  goes through `write_stdout()` / `write_stderr()`. The provider method
  returns the exit status, which the SDK sends as the last frame (spec.md §6
  rule 2).
- `PortForwardSession`: one PortForward connection; `read()` data and
  close_write, `write()` data back, `write_error()` for a failed connection.

Threading: input is read by one thread at a time and output written by one
thread at a time, but reading and writing may happen on two threads at once
(a provider pumping stdin on a thread of its own while it copies output).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any, Callable, Iterable, Iterator, Optional

from vkhost.provider.v1 import streams_pb2

# Frames stay under the 32 KiB spec.md §6 rule 6 recommends.
MAX_FRAME_BYTES = 32 * 1024
# Frames read ahead of the provider, enough to keep a chatty host moving.
_MAX_QUEUED_INPUT = 64
# Frames written ahead of the gRPC stream.
_MAX_QUEUED_OUTPUT = 16
# How often blocked waits look at cancellation.
_POLL_SECONDS = 0.1


class StreamContext:
    """Cancellation of one stream RPC: the host cancelled it or the plugin stops.

    Thread-safe. The SDK creates it; providers only read it.
    """

    def __init__(self) -> None:
        self._done = threading.Event()

    def cancel(self) -> None:
        """Marks the stream as over (the SDK calls this; idempotent)."""
        self._done.set()

    @property
    def cancelled(self) -> bool:
        """True once the host went away or the plugin is shutting down."""
        return self._done.is_set()

    def sleep(self, seconds: float) -> bool:
        """Waits `seconds`; returns False early when the stream is cancelled."""
        return not self._done.wait(seconds)


@dataclasses.dataclass(frozen=True)
class SessionInput:
    """One frame from the host in an exec or attach session.

    kind is "stdin" (data holds the bytes), "resize" (width, height),
    "stdin_closed" (the process should see end-of-file) or "ended" (the host
    closed its side or went away; nothing follows).
    """

    kind: str
    data: bytes = b""
    width: int = 0
    height: int = 0


@dataclasses.dataclass(frozen=True)
class PortForwardInput:
    """One frame from the host in a port-forward session.

    kind is "data", "close_write" (half-close the pod side) or "ended".
    """

    kind: str
    data: bytes = b""


_ENDED_SESSION = SessionInput("ended")
_ENDED_FORWARD = PortForwardInput("ended")


class _BidiSession:
    """The shared machinery of bidi sessions: a reader thread and an output queue.

    The reader thread turns request frames after `start` into inputs; the
    servicer drains `outgoing` into the gRPC response stream.
    """

    def __init__(self, requests: Iterator[Any], context: StreamContext,
                 convert: Callable[[Any], Optional[Any]], ended: Any) -> None:
        self._context = context
        self._convert = convert
        self._ended_input = ended
        self._inputs: "queue.Queue[Any]" = queue.Queue(maxsize=_MAX_QUEUED_INPUT)
        self._input_over = False  # touched by the reading provider thread only
        self.outgoing: "queue.Queue[Any]" = queue.Queue(maxsize=_MAX_QUEUED_OUTPUT)
        self._write_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_requests, args=(requests,),
                                         name="vkhost-session-reader", daemon=True)
        self._reader.start()

    @property
    def cancelled(self) -> bool:
        """True once the host went away or the plugin is shutting down."""
        return self._context.cancelled

    @property
    def stream(self) -> StreamContext:
        """The session's cancellation, e.g. for vkhost_sdk.logs.read_log()."""
        return self._context

    def join_reader(self, timeout: float) -> None:
        """Waits for the reader thread, which ends with the RPC."""
        self._reader.join(timeout)

    def _read_requests(self, requests: Iterator[Any]) -> None:
        try:
            for request in requests:
                converted = self._convert(request)
                if converted is None:
                    continue  # a repeated start or an unknown frame: ignore
                while not self._context.cancelled:
                    try:
                        self._inputs.put(converted, timeout=_POLL_SECONDS)
                        break
                    except queue.Full:
                        continue
                if self._context.cancelled:
                    break
        except Exception:  # noqa: BLE001 - a cancelled RPC ends its iterator with an error
            pass
        finally:
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self._inputs.put(self._ended_input, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                if self._context.cancelled:
                    # Nobody may be reading: make room so a later read sees the end.
                    try:
                        self._inputs.get_nowait()
                    except queue.Empty:
                        pass

    def _read(self, timeout: Optional[float]) -> Optional[Any]:
        if self._input_over:
            return self._ended_input
        try:
            item = self._inputs.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._ended_input:
            self._input_over = True
        return item

    def _send(self, frame: Any) -> bool:
        """Queues one response frame; False once the host is gone."""
        with self._write_lock:
            while not self._context.cancelled:
                try:
                    self.outgoing.put(frame, timeout=_POLL_SECONDS)
                    return True
                except queue.Full:
                    continue
            return False


def _chunks(data: bytes) -> Iterable[bytes]:
    if not data:
        return
    for offset in range(0, len(data), MAX_FRAME_BYTES):
        yield data[offset:offset + MAX_FRAME_BYTES]


def _session_input(request: Any) -> Optional[SessionInput]:
    frame = request.WhichOneof("frame")
    if frame == "stdin":
        return SessionInput("stdin", data=request.stdin)
    if frame == "resize":
        return SessionInput("resize", width=request.resize.width, height=request.resize.height)
    if frame == "close_stdin":
        return SessionInput("stdin_closed")
    return None


def _forward_input(request: Any) -> Optional[PortForwardInput]:
    frame = request.WhichOneof("frame")
    if frame == "data":
        return PortForwardInput("data", data=request.data)
    if frame == "close_write":
        return PortForwardInput("close_write")
    return None


class ProcessSession(_BidiSession):
    """One exec or attach session (see the module docstring for threading)."""

    def __init__(self, requests: Iterator[Any], context: StreamContext, tty: bool) -> None:
        super().__init__(requests, context, _session_input, _ENDED_SESSION)
        self.tty = tty
        # Called with (width, height) for resize frames seen by stdin().
        self.on_resize: Optional[Callable[[int, int], None]] = None

    def read(self, timeout: Optional[float] = None) -> Optional[SessionInput]:
        """The next input, or None when `timeout` seconds passed first.

        Returns kind "ended" once the host closed its side or went away, and
        at once on every later call.
        """
        return self._read(timeout)

    def stdin(self) -> Iterator[bytes]:
        """Yields stdin bytes until stdin is closed or the session ends.

        Resize frames met on the way go to `on_resize` when set.
        """
        while True:
            item = self._read(None)
            if item.kind == "stdin":
                yield item.data
            elif item.kind == "resize":
                if self.on_resize is not None:
                    self.on_resize(item.width, item.height)
            else:
                return

    def write_stdout(self, data: bytes) -> bool:
        """Sends `data` on stdout (in frames under 32 KiB); False once the host is gone."""
        return all(self._send(streams_pb2.ExecResponse(stdout=chunk)) for chunk in _chunks(data))

    def write_stderr(self, data: bytes) -> bool:
        """Sends `data` on stderr, or on stdout with a tty; False once the host is gone."""
        if self.tty:
            return self.write_stdout(data)
        return all(self._send(streams_pb2.ExecResponse(stderr=chunk)) for chunk in _chunks(data))


class PortForwardSession(_BidiSession):
    """One port-forward connection (see the module docstring for threading)."""

    def __init__(self, requests: Iterator[Any], context: StreamContext) -> None:
        super().__init__(requests, context, _forward_input, _ENDED_FORWARD)

    def read(self, timeout: Optional[float] = None) -> Optional[PortForwardInput]:
        """The next input ("data", "close_write" or "ended"), None on timeout."""
        return self._read(timeout)

    def write(self, data: bytes) -> bool:
        """Sends `data` to the host; False once it is gone."""
        return all(self._send(streams_pb2.PortForwardResponse(data=chunk))
                   for chunk in _chunks(data))

    def write_error(self, message: str) -> bool:
        """Reports a failed connection; return from port_forward() afterwards."""
        return self._send(streams_pb2.PortForwardResponse(error=message))
