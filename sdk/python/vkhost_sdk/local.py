"""Ready-made session bodies for backends that run things on this machine.

- `run_process()` runs a command as a local process for an exec (or attach)
  session: stdin from the host, stdout/stderr to it, a pseudo-terminal with
  resizes when the session asks for a tty, the exit status in the shell's
  convention (126 cannot run, 127 not found, 128+N killed by signal N). The
  process is killed when the host goes away (spec.md §6 rule 5).
- `relay_tcp()` relays a port-forward session to a local TCP address.

Both block the calling thread (the SDK's session worker) until the session is
over, using helper threads of their own that they join before returning.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import signal
import socket
import struct
import subprocess
import termios
import threading
from typing import Callable, Dict, List, Optional, Sequence

from vkhost.provider.v1 import streams_pb2

from .sessions import PortForwardSession, ProcessSession

_POLL_SECONDS = 0.1
_READ_BYTES = 32 * 1024


def _exit_status(returncode: int) -> streams_pb2.ExitStatus:
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        return streams_pb2.ExitStatus(exit_code=128 - returncode,
                                      message=f"killed by signal {-returncode} {name}".strip())
    return streams_pb2.ExitStatus(exit_code=returncode)


def _set_window(fd: int, width: int, height: int) -> None:
    if width and height:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass


def run_process(argv: Sequence[str], session: ProcessSession, *, stdin: bool = True,
                env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                terminal_size: Optional[streams_pb2.TerminalSize] = None) -> streams_pb2.ExitStatus:
    """Runs `argv` locally for `session` and returns its exit status.

    With `session.tty` the process gets a pseudo-terminal (stderr merged,
    resize frames applied, close_stdin sent as end-of-transmission). Without
    `stdin` the process's stdin is closed at once. A command that cannot be
    started returns 127 (not found) or 126 with a message; nothing raises.
    """
    if not argv:
        return streams_pb2.ExitStatus(exit_code=126, message="no command given")
    master = slave = -1
    try:
        if session.tty:
            master, slave = pty.openpty()
            if terminal_size is not None:
                _set_window(master, terminal_size.width, terminal_size.height)
            process = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave,
                                       env=env, cwd=cwd, start_new_session=True)
            os.close(slave)
            slave = -1
        else:
            process = subprocess.Popen(list(argv),
                                       stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       env=env, cwd=cwd, start_new_session=True)
    except FileNotFoundError:
        return streams_pb2.ExitStatus(exit_code=127, message=f"{argv[0]}: command not found")
    except OSError as e:
        return streams_pb2.ExitStatus(exit_code=126, message=f"cannot run {argv[0]}: {e.strerror}")
    finally:
        if slave >= 0:
            os.close(slave)
    finished = threading.Event()
    threads: List[threading.Thread] = []

    def start(target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        threads.append(thread)

    if session.tty:
        session.on_resize = lambda w, h: _set_window(master, w, h)
        start(_copy_fd, master, session.write_stdout)
        if stdin:
            start(_feed_terminal, session, master, finished)
    else:
        start(_copy_pipe, process.stdout, session.write_stdout)
        start(_copy_pipe, process.stderr, session.write_stderr)
        if stdin:
            start(_feed_pipe, session, process.stdin, finished)
    while True:
        try:
            process.wait(timeout=_POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            if session.cancelled:
                _kill_group(process)
    finished.set()
    for thread in threads:
        thread.join()
    if master >= 0:
        os.close(master)
    return _exit_status(process.returncode)


def _copy_pipe(source, write: Callable[[bytes], bool]) -> None:
    with source:
        for chunk in iter(lambda: source.read1(_READ_BYTES), b""):
            if not write(chunk):
                return


def _copy_fd(fd: int, write: Callable[[bytes], bool]) -> None:
    while True:
        try:
            chunk = os.read(fd, _READ_BYTES)
        except OSError as e:
            if e.errno == errno.EIO:  # the terminal's last process closed it
                return
            raise
        if not chunk or not write(chunk):
            return


def _feed_pipe(session: ProcessSession, sink, finished: threading.Event) -> None:
    try:
        while not finished.is_set():
            item = session.read(timeout=_POLL_SECONDS)
            if item is None or item.kind == "resize":
                continue
            if item.kind != "stdin":
                return  # stdin closed or the session ended: end-of-file
            sink.write(item.data)
            sink.flush()
    except (BrokenPipeError, ValueError):
        pass  # the process stopped reading
    finally:
        try:
            sink.close()
        except BrokenPipeError:
            pass


def _feed_terminal(session: ProcessSession, master: int, finished: threading.Event) -> None:
    while not finished.is_set():
        item = session.read(timeout=_POLL_SECONDS)
        if item is None:
            continue
        try:
            if item.kind == "stdin":
                os.write(master, item.data)
            elif item.kind == "resize":
                _set_window(master, item.width, item.height)
            elif item.kind == "stdin_closed":
                os.write(master, b"\x04")
            else:
                return
        except OSError:
            return


def relay_tcp(session: PortForwardSession, host: str, port: int,
              connect_timeout: float = 5.0) -> None:
    """Relays `session` to host:port until the remote side closes or the host goes away.

    A connection that fails is reported with an error frame (spec.md §6 rule
    4); nothing raises.
    """
    try:
        connection = socket.create_connection((host, port), timeout=connect_timeout)
    except OSError as e:
        session.write_error(f"cannot connect to {host}:{port}: {e.strerror or e}")
        return
    connection.settimeout(None)
    remote_closed = threading.Event()

    def to_host() -> None:
        try:
            while True:
                data = connection.recv(_READ_BYTES)
                if not data or not session.write(data):
                    return
        except OSError:
            return
        finally:
            remote_closed.set()

    reader = threading.Thread(target=to_host, daemon=True)
    reader.start()
    try:
        while not remote_closed.is_set():
            item = session.read(timeout=_POLL_SECONDS)
            if item is None:
                continue
            if item.kind == "data":
                connection.sendall(item.data)
            elif item.kind == "close_write":
                connection.shutdown(socket.SHUT_WR)
            else:
                break  # the host went away
    except OSError:
        pass
    finally:
        if not remote_closed.is_set():
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        reader.join()
        connection.close()
