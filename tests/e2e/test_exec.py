"""kubectl exec and port-forward through the real API server to vkhost's kubelet API.

kubectl here speaks SPDY/3.1 (its WebSocket default is switched off), and as
vkhost declares ExtendWebSocketsToKubelet the API server passes SPDY through
to the node unchanged; vkhost bridges the session to the mock plugin's
Streams.Exec. test_websocket.py and test_attach_tty.py cover kubectl's
default, WebSocket. The mock runs a few commands itself: echo, cat,
sh -c 'exit N', env, sleep. Port-forward goes the same way to
Streams.PortForward; every port of a mock pod echoes what it receives.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_exec.py -v
"""

import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import unittest
from typing import List

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_kubelet_api import proxied_kubelet_args  # noqa: E402
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402


class ExecTest(VkhostTestCase):
    """kubectl exec reaches the plugin and reports its exit code."""

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return proxied_kubelet_args(cls.cp)

    # kubectl's switches back to SPDY for exec/attach and port-forward.
    SPDY_ONLY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false",
                 "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}

    @classmethod
    def setUpClass(cls):
        saved = {k: os.environ.get(k) for k in cls.SPDY_ONLY}
        os.environ.update(cls.SPDY_ONLY)
        cls.addClassCleanup(cls._restore_environment, saved)
        super().setUpClass()

    @staticmethod
    def _restore_environment(saved):
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    _pod = None  # (namespace, name), created by the first test that needs it

    def running_pod(self) -> tuple:
        # One pod serves every test of the class: exec does not change it.
        cls = type(self)
        if cls._pod is None:
            namespace = self.make_namespace()
            name = unique_name("exec")
            self.create_pod(self.pod_manifest(namespace, name, RUN_FOREVER))
            self.wait_running(namespace, name)
            cls._pod = (namespace, name)
        return cls._pod

    def exec(self, *command: str, stdin: bool = False, input=None):
        namespace, name = self.running_pod()
        flags = ["-i"] if stdin else []
        return self.cp.kubectl_run("exec", *flags, name, "-n", namespace, "--", *command,
                                   input=input, timeout=60)

    def test_echo_prints_its_arguments(self):
        result = self.exec("echo", "hi")
        self.assertEqual(result.returncode, 0, result.stderr + self.diagnostics())
        self.assertEqual(result.stdout, "hi\n")

    def test_exec_reaches_the_node_over_spdy(self):
        since = self.vkhost.log_size()
        self.assertEqual(self.exec("true").returncode, 0, self.diagnostics())
        upgrades = [line for line in self.vkhost.log_text(since).splitlines()
                    if "upgrade request POST /exec " in line]
        self.assertTrue(upgrades, "vkhost logged no /exec upgrade" + self.diagnostics())
        self.assertIn('Upgrade="SPDY/3.1"', upgrades[-1])

    def test_exit_code_is_kubectls_exit_code(self):
        result = self.exec("sh", "-c", "exit 3")
        self.assertEqual(result.returncode, 3, result.stderr + self.diagnostics())
        self.assertIn("command terminated with exit code 3", result.stderr)

    def test_stdin_is_piped_through(self):
        result = self.exec("cat", stdin=True, input="data\nmore data\n")
        self.assertEqual(result.returncode, 0, result.stderr + self.diagnostics())
        self.assertEqual(result.stdout, "data\nmore data\n")

    def test_large_stdin_round_trips(self):
        payload = "".join(f"line {i:06d} {'x' * 90}\n" for i in range(3000))  # ~300 KB
        result = self.exec("cat", stdin=True, input=payload)
        self.assertEqual(result.returncode, 0, result.stderr + self.diagnostics())
        self.assertEqual(len(result.stdout), len(payload))
        self.assertEqual(result.stdout, payload)

    def test_env_shows_the_container_environment(self):
        result = self.exec("env")
        self.assertEqual(result.returncode, 0, result.stderr + self.diagnostics())
        self.assertRegex(result.stdout, re.compile(r"^KUBERNETES_SERVICE_HOST=", re.M))

    def test_unknown_command_exits_127(self):
        result = self.exec("frobnicate")
        self.assertEqual(result.returncode, 127, result.stderr + self.diagnostics())

    # --- port-forward (the pod's ports echo, so one pod serves these too) ---

    def test_port_forward_echoes_on_two_connections(self):
        namespace, name = self.running_pod()
        forward = PortForward(self, namespace, name, 8080)
        try:
            self.assertIsNotNone(forward.local_port,
                                 "kubectl printed no 'Forwarding from' line: "
                                 + "".join(forward.output) + self.diagnostics())
            first = b"hello through port-forward\n"
            second = bytes(range(256)) * 64  # 16 KiB, every byte value
            self.assertEqual(echo_round_trip(forward.local_port, first), first)
            self.assertEqual(echo_round_trip(forward.local_port, second), second)
            self.assertIsNone(forward.process.poll(),
                              "kubectl port-forward exited after two connections")
        finally:
            stderr = forward.stop()
        self.assertNotIn("error forwarding port", stderr)

    def test_port_forward_connections_can_overlap(self):
        namespace, name = self.running_pod()
        forward = PortForward(self, namespace, name, 8080)
        try:
            self.assertIsNotNone(forward.local_port, "".join(forward.output))
            a = socket.create_connection(("127.0.0.1", forward.local_port), timeout=30)
            b = socket.create_connection(("127.0.0.1", forward.local_port), timeout=30)
            with a, b:
                a.sendall(b"from a")
                b.sendall(b"from b")
                self.assertEqual(recv_exactly(b, 6), b"from b")
                self.assertEqual(recv_exactly(a, 6), b"from a")
        finally:
            forward.stop()


class PortForward:
    """A running `kubectl port-forward pod/<name> :<port>`; stop() ends it."""

    def __init__(self, test: VkhostTestCase, namespace: str, name: str, port: int):
        cp = test.cp
        argv = [str(cp.bin_dir / "kubectl"), "--kubeconfig", str(cp.kubeconfig),
                "port-forward", "-n", namespace, f"pod/{name}", f":{port}"]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.local_port = None
        self.output: List[str] = []
        # kubectl prints "Forwarding from 127.0.0.1:NNNNN -> 8080" once it listens;
        # the reader thread keeps draining stdout so kubectl never blocks on it.
        ready = threading.Event()

        def read_stdout():
            for line in self.process.stdout:
                self.output.append(line)
                found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> ", line)
                if found and self.local_port is None:
                    self.local_port = int(found.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read_stdout, daemon=True)
        self.reader.start()
        ready.wait(timeout=60)

    def stop(self) -> str:
        """Ends kubectl; returns its stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        self.reader.join(timeout=10)
        return stderr or ""


def recv_exactly(conn: socket.socket, count: int) -> bytes:
    """Reads until `count` bytes arrived or the peer closed."""
    received = b""
    while len(received) < count:
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def echo_round_trip(port: int, payload: bytes) -> bytes:
    """Sends `payload` to 127.0.0.1:port and reads as many bytes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(payload)
        return recv_exactly(conn, len(payload))


if __name__ == "__main__":
    unittest.main()
