"""kubectl attach and kubectl exec -it through the real API server to vkhost.

`-t` makes kubectl demand a terminal on its stdin, so these tests run kubectl
on a pseudo-terminal. The mock plugin's `sh` with a tty prompts with "$ ",
echoes each line with CRLF and runs the mock's commands; a container whose
command is `cat` with `stdin: true` echoes what an attached client writes.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_attach_tty.py -v
"""

import fcntl
import os
import pathlib
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import unittest
from typing import List, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_kubelet_api import proxied_kubelet_args  # noqa: E402
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402


class Terminal:
    """kubectl running on a pseudo-terminal, as a user at a shell runs it."""

    def __init__(self, argv: List[str], env: dict, rows: int = 40, cols: int = 120):
        self.master, slave = pty.openpty()
        self.set_size(rows, cols, fd=slave)
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                        env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.screen = b""

    def read_until(self, expected: bytes, timeout: float = 30.0) -> bool:
        """Reads output until `expected` appears; False on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while expected not in self.screen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                return expected in self.screen
        return True

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def set_size(self, rows: int, cols: int, fd: Optional[int] = None) -> None:
        """Resizes the terminal and tells kubectl, as a terminal emulator does."""
        fcntl.ioctl(self.master if fd is None else fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))
        if fd is None:
            # kubectl is not this terminal's session leader, so the kernel
            # sends it no SIGWINCH of its own.
            self.process.send_signal(signal.SIGWINCH)

    def wait(self, timeout: float = 30.0) -> Optional[int]:
        """Drains output until kubectl exits; its exit code, or None if it did not."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        try:
            return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: kubectl exited and closed the terminal
            return False
        self.screen += chunk
        return bool(chunk)


class AttachAndTtyTest(VkhostTestCase):
    """Interactive sessions: a tty shell, and attaching to a container's stdin."""

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return proxied_kubelet_args(cls.cp)

    def kubectl_env(self) -> dict:
        return dict(os.environ, KUBECONFIG=str(self.cp.kubeconfig))

    def kubectl_argv(self, *args: str) -> List[str]:
        return [str(self.cp.bin_dir / "kubectl"), *args]

    def terminal(self, *args: str) -> Terminal:
        term = Terminal(self.kubectl_argv(*args), self.kubectl_env())
        self.addCleanup(term.close)
        return term

    def start_pod(self, command: List[str], **container) -> tuple:
        namespace = self.make_namespace()
        name = unique_name("tty")
        self.create_pod(self.pod_manifest(namespace, name, command, container=container))
        self.wait_running(namespace, name)
        return namespace, name

    def test_exec_it_runs_an_interactive_shell_and_reports_its_exit(self):
        namespace, name = self.start_pod(RUN_FOREVER)
        term = self.terminal("exec", "-it", name, "-n", namespace, "--", "sh")
        self.assertTrue(term.read_until(b"$ "), f"no prompt: {term.screen!r}"
                        + self.diagnostics())
        term.write(b"echo hello from a tty\r")
        # The echoed command line, then the command's own output on a new line.
        self.assertTrue(term.read_until(b"\nhello from a tty"), f"no output: {term.screen!r}")
        # kubectl sends the terminal size when it starts and on SIGWINCH; the
        # mock's shell prints the last size the plugin received.
        # kubectl sends the first size from a goroutine of its own, which may
        # lose the race with what is typed at once: ask until it is in.
        initial = False
        for _ in range(20):
            term.write(b"stty size\r")
            if term.read_until(b"\n40 120", timeout=1):
                initial = True
                break
        self.assertTrue(initial, f"no initial size: {term.screen!r}")
        term.set_size(50, 100)
        resized = False
        for _ in range(20):  # the resize and stdin streams are not ordered
            term.write(b"stty size\r")
            if term.read_until(b"\n50 100", timeout=1):
                resized = True
                break
        self.assertTrue(resized, f"resize did not reach the plugin: {term.screen!r}")
        term.write(b"exit 4\r")
        self.assertEqual(term.wait(), 4, f"output: {term.screen!r}" + self.diagnostics())

    def test_attach_forwards_stdin_to_a_container_and_prints_its_output(self):
        namespace, name = self.start_pod(["cat"], stdin=True)
        attach = subprocess.Popen(
            self.kubectl_argv("attach", "-i", name, "-n", namespace, "-c", "main"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.kubectl_env())
        try:
            # kubectl attach connects before it reads stdin; the container
            # echoes each line it gets, and closing stdin ends `cat`.
            out, err = attach.communicate(b"first line\nsecond line\n", timeout=60)
        except subprocess.TimeoutExpired:
            attach.kill()
            out, err = attach.communicate()
            self.fail(f"kubectl attach did not finish: {out!r} {err!r}" + self.diagnostics())
        self.assertIn(b"first line\nsecond line\n", out, err.decode() + self.diagnostics())

    def test_attach_it_reaches_a_tty_container(self):
        namespace, name = self.start_pod(["sh"], stdin=True, tty=True)
        term = self.terminal("attach", "-it", name, "-n", namespace, "-c", "main")
        # As the kubelet does, nothing is replayed on attach: press enter for a prompt.
        self.assertTrue(term.read_until(b"try pressing enter"), f"{term.screen!r}"
                        + self.diagnostics())
        term.write(b"\r")
        self.assertTrue(term.read_until(b"$ "), f"no prompt: {term.screen!r}")
        term.write(b"echo attached\r")
        self.assertTrue(term.read_until(b"attached\r\n"), f"no echo: {term.screen!r}")


if __name__ == "__main__":
    unittest.main()
