"""exec, attach, port-forward and /run over WebSocket, straight to vkhost and through kubectl.

vkhost's kubelet port speaks the WebSocket transports the kubelet speaks:
exec/attach with the channel subprotocols (v5.channel.k8s.io: stdin 0, stdout 1,
stderr 2, a metav1.Status on 3, resize 4, and the CLOSE signal 255 for stdin;
v4.channel.k8s.io without CLOSE), kubelet-native port-forward (v4.channel.k8s.io,
?port=, data channel 2i and error channel 2i+1, each opened by the port as two
little-endian bytes) and kubectl's SPDY port-forward tunnelled in WebSocket
binary messages (SPDY/3.1+portforward.k8s.io).

DirectWebSocketTest talks to the kubelet port itself with the API server's
kubelet-client certificate, using the small RFC 6455 client below (standard
library only), against the mock plugin. ThroughApiServerTest makes the node
declare ExtendWebSocketsToKubelet in status.declaredFeatures, which makes
kube-apiserver (1.36+, gate on by default) proxy kubectl's WebSocket requests
unchanged to vkhost instead of translating them to SPDY, and runs kubectl exec
and port-forward through it.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_websocket.py -v
"""

import base64
import fcntl
import http.client
import json
import os
import pathlib
import pty
import select
import socket
import ssl
import struct
import subprocess
import sys
import termios
import time
import unittest
import urllib.parse
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_exec import PortForward, echo_round_trip  # noqa: E402
from test_kubelet_api import proxied_kubelet_args  # noqa: E402
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE_SIGNAL = 0, 1, 2, 3, 4, 255
# The mock refuses pods with this image (--reject-image); vkhost marks them Failed.
REJECTED_IMAGE = "example.com/vkhost-e2e/rejected:1"


class HandshakeRefused(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class KubeletWebSocket:
    """One WebSocket to vkhost's kubelet port: TLS with a client certificate, masked frames.

    Raises HandshakeRefused when the answer is not 101. Not thread-safe.
    """

    def __init__(self, port: int, path: str, protocols: Sequence[str],
                 cert: Tuple[str, str], timeout: float = 30.0, method: str = "GET"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # vkhost's serving certificate is self-signed
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = context.wrap_socket(raw)
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode(errors="replace").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                self.headers[name.strip().lower()] = value.strip()
        if self.status != 101:
            length = int(self.headers.get("content-length", "0"))
            body = self._read_exactly(length) if length else b""
            self.sock.close()
            raise HandshakeRefused(self.status, body.decode(errors="replace"))
        self.protocol = self.headers.get("sec-websocket-protocol", "")

    # Bytes ----------------------------------------------------------------

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed before {marker!r}")
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise ConnectionError("connection closed mid-frame")
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    # Frames ---------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_channel(self, channel: int, data: bytes = b"") -> None:
        self.send_frame(OP_BINARY, bytes([channel]) + data)

    def recv_frame(self) -> Tuple[int, bytes]:
        """(opcode, payload) of the next frame; raises ConnectionError at EOF."""
        first, second = self._read_exactly(2)
        if first & 0x80 == 0:
            raise AssertionError("the server fragmented a message (not expected here)")
        if second & 0x80:
            raise AssertionError("the server masked a frame (RFC 6455 forbids it)")
        n = second & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exactly(8))[0]
        return first & 0x0F, self._read_exactly(n)

    def recv_message(self) -> Tuple[int, bytes]:
        """The next data or close frame; pongs are skipped, pings answered."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode != OP_PONG:
                return opcode, payload

    def close(self, code: int = 1000) -> None:
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code))
        except OSError:
            pass
        self.sock.close()

    def drop(self) -> None:
        """Goes away without a close frame, as a killed client does."""
        self.sock.close()


class ChannelSession:
    """What one exec/attach session sent on each channel, up to the server's close frame."""

    def __init__(self, ws: KubeletWebSocket):
        self.ws = ws
        self.channels: Dict[int, bytes] = {}
        self.messages: List[Tuple[int, bytes]] = []
        self.close_code: Optional[int] = None

    def read_to_close(self) -> "ChannelSession":
        while self.close_code is None:
            opcode, payload = self.ws.recv_message()
            if opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                self.ws.close()
                break
            channel, data = payload[0], payload[1:]
            self.messages.append((channel, data))
            self.channels[channel] = self.channels.get(channel, b"") + data
        return self

    def status(self) -> dict:
        raw = self.channels.get(ERROR, b"")
        return json.loads(raw) if raw else {}

    def exit_code(self) -> Optional[int]:
        status = self.status()
        if status.get("status") == "Success":
            return 0
        for cause in status.get("details", {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
        return None


def exec_path(route: str, namespace: str, pod: str, container: str, command: Sequence[str] = (),
              stdin: bool = False, stdout: bool = True, stderr: bool = True,
              tty: bool = False) -> str:
    query = [("command", c) for c in command]
    for name, on in (("input", stdin), ("output", stdout), ("error", stderr), ("tty", tty)):
        if on:
            query.append((name, "1"))
    return f"/{route}/{namespace}/{pod}/{container}?" + urllib.parse.urlencode(query)


class DirectWebSocketCase(VkhostTestCase):
    """Helpers for talking WebSocket straight to vkhost's kubelet port."""

    MOCK_ARGS = [f"--reject-image={REJECTED_IMAGE}"]

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return [f"--client-ca-file={cls.cp.ca_cert}"]

    _pod = None

    def running_pod(self) -> tuple:
        cls = type(self)
        if cls._pod is None:
            namespace = self.make_namespace()
            name = unique_name("ws")
            self.create_pod(self.pod_manifest(namespace, name, RUN_FOREVER))
            self.wait_running(namespace, name)
            cls._pod = (namespace, name)
        return cls._pod

    def connect(self, path: str, protocols: Sequence[str]) -> KubeletWebSocket:
        return KubeletWebSocket(self.vkhost.kubelet_port, path, protocols,
                                (self.cp.kubelet_client_cert, self.cp.kubelet_client_key))

    def run_exec(self, command: Sequence[str], protocol: str = "v5.channel.k8s.io",
                 stdin_data: Optional[bytes] = None, **flags) -> ChannelSession:
        namespace, name = self.running_pod()
        ws = self.connect(exec_path("exec", namespace, name, "main", command,
                                    stdin=stdin_data is not None, **flags), [protocol])
        self.assertEqual(ws.protocol, protocol)
        if stdin_data is not None:
            ws.send_channel(STDIN, stdin_data)
            ws.send_channel(CLOSE_SIGNAL, bytes([STDIN]))
        return ChannelSession(ws).read_to_close()


class DirectWebSocketTest(DirectWebSocketCase):
    """The WebSocket transports on vkhost's kubelet port, with the mock plugin behind."""

    # exec -------------------------------------------------------------------

    def test_exec_v5_stdout_status_and_normal_close(self):
        session = self.run_exec(["echo", "hello", "websocket"])
        self.assertEqual(session.channels.get(STDOUT), b"hello websocket\n",
                         f"{session.messages}\n{self.diagnostics()}")
        self.assertEqual(session.status(), {"metadata": {}, "status": "Success"})
        self.assertEqual(session.close_code, 1000)
        # The first message is the kubelet's readiness signal: empty, on stdout.
        self.assertEqual(session.messages[0], (STDOUT, b""))

    def test_exec_exit_code_travels_as_status_cause(self):
        session = self.run_exec(["sh", "-c", "exit 3"])
        status = session.status()
        self.assertEqual(status["reason"], "NonZeroExitCode", status)
        self.assertEqual(session.exit_code(), 3, status)

    def test_exec_stderr_is_channel_2(self):
        session = self.run_exec(["frobnicate"])
        self.assertIn(b"not found", session.channels.get(STDERR, b""), session.messages)
        self.assertEqual(session.exit_code(), 127, session.status())

    def test_exec_stdin_then_v5_close_ends_cat(self):
        payload = b"".join(b"line %05d\n" % i for i in range(5000))  # ~55 KB
        session = self.run_exec(["cat"], stdin_data=payload)
        self.assertEqual(session.channels.get(STDOUT), payload)
        self.assertEqual(session.exit_code(), 0, session.status())

    def test_exec_v4_without_close_signal(self):
        session = self.run_exec(["echo", "four"], protocol="v4.channel.k8s.io")
        self.assertEqual(session.channels.get(STDOUT), b"four\n")
        self.assertEqual(session.exit_code(), 0)

    def test_exec_tty_resize_reaches_the_shell(self):
        namespace, name = self.running_pod()
        ws = self.connect(exec_path("exec", namespace, name, "main", ["sh"], stdin=True,
                                    stderr=False, tty=True), ["v5.channel.k8s.io"])
        ws.send_channel(RESIZE, b'{"Width":120,"Height":40}')
        ws.send_channel(STDIN, b"stty size\n")
        ws.send_channel(STDIN, b"exit 4\n")
        session = ChannelSession(ws).read_to_close()
        self.assertIn(b"40 120", session.channels.get(STDOUT, b""), session.messages)
        self.assertEqual(session.exit_code(), 4, session.status())

    def test_attach_to_the_container_output(self):
        namespace, name = self.running_pod()
        ws = self.connect(exec_path("attach", namespace, name, "main"), ["v5.channel.k8s.io"])
        try:
            received = b""
            while b"line" not in received:
                opcode, payload = ws.recv_message()
                self.assertEqual(opcode, OP_BINARY)
                if payload[0] == STDOUT:
                    received += payload[1:]
            self.assertIn(f"{namespace}/{name}/main".encode(), received)
        finally:
            ws.drop()  # detaching leaves the container running

    # errors -----------------------------------------------------------------

    def test_unknown_pod_and_container_are_404(self):
        namespace, name = self.running_pod()
        for path in (exec_path("exec", namespace, "ghost", "main", ["true"]),
                     exec_path("exec", namespace, name, "sidecar", ["true"]),
                     f"/portForward/{namespace}/ghost?port=80"):
            with self.assertRaises(HandshakeRefused) as refused:
                self.connect(path, ["v5.channel.k8s.io", "v4.channel.k8s.io"])
            self.assertEqual(refused.exception.status, 404, path)

    def test_bad_requests_are_400(self):
        namespace, name = self.running_pod()
        cases = [
            (exec_path("exec", namespace, name, "main", ["true"]), ["base64.binary.k8s.io"]),
            (exec_path("exec", namespace, name, "main", ["true"], stdout=False, stderr=False),
             ["v5.channel.k8s.io"]),
            (f"/portForward/{namespace}/{name}", ["v4.channel.k8s.io"]),
            (f"/portForward/{namespace}/{name}?port=0", ["v4.channel.k8s.io"]),
        ]
        for path, protocols in cases:
            with self.assertRaises(HandshakeRefused) as refused:
                self.connect(path, protocols)
            self.assertEqual(refused.exception.status, 400, (path, refused.exception.body))
            self.assertTrue(refused.exception.body.strip(), path)

    def test_exec_in_a_pod_the_plugin_does_not_know_reports_an_error(self):
        # The pod exists (bound to the node, so the upgrade is accepted) but
        # the plugin refused to run it: the plugin's error arrives as the
        # status, and the session ends rather than hangs.
        namespace = self.make_namespace()
        name = unique_name("rejected")
        manifest = self.pod_manifest(namespace, name, RUN_FOREVER)
        manifest["spec"]["containers"][0]["image"] = REJECTED_IMAGE
        self.create_pod(manifest)
        self.wait_pod(namespace, name, "Failed", lambda p: p["status"].get("phase") == "Failed")
        ws = self.connect(exec_path("exec", namespace, name, "main", ["true"]),
                          ["v5.channel.k8s.io"])
        session = ChannelSession(ws).read_to_close()
        status = session.status()
        self.assertEqual(status.get("status"), "Failure", session.messages)
        self.assertTrue(status.get("message"), status)
        self.assertIsNone(session.exit_code())

        ws = self.connect(f"/portForward/{namespace}/{name}?port=8080", ["v4.channel.k8s.io"])
        session = ChannelSession(ws).read_to_close()
        self.assertIn(b"error forwarding port 8080", session.channels.get(1, b""),
                      session.messages)

    # port-forward -------------------------------------------------------------

    def test_port_forward_native_channels_echo_both_ways(self):
        namespace, name = self.running_pod()
        ws = self.connect(f"/portForward/{namespace}/{name}?port=8080&port=9090",
                          ["v4.channel.k8s.io"])
        try:
            prefixes = {}
            while len(prefixes) < 4:
                opcode, payload = ws.recv_message()
                self.assertEqual(opcode, OP_BINARY)
                prefixes[payload[0]] = payload[1:]
            self.assertEqual(prefixes, {0: struct.pack("<H", 8080), 1: struct.pack("<H", 8080),
                                        2: struct.pack("<H", 9090), 3: struct.pack("<H", 9090)})
            for channel, data in ((0, b"to 8080"), (2, bytes(range(256)) * 40)):
                ws.send_channel(channel, data)
                echoed = b""
                while len(echoed) < len(data):
                    opcode, payload = ws.recv_message()
                    self.assertEqual(payload[0], channel, payload[:20])
                    echoed += payload[1:]
                self.assertEqual(echoed, data)
        finally:
            ws.close()

    # /run -------------------------------------------------------------------------

    def test_run_returns_the_output(self):
        namespace, name = self.running_pod()
        status, body = kubelet_post(self.vkhost.kubelet_port,
                                    f"/run/{namespace}/{name}/main?cmd=echo%20ran%20it",
                                    (self.cp.kubelet_client_cert, self.cp.kubelet_client_key))
        self.assertEqual((status, body), (200, "ran it\n"))
        status, body = kubelet_post(self.vkhost.kubelet_port,
                                    f"/run/{namespace}/{name}/main?cmd=false",
                                    (self.cp.kubelet_client_cert, self.cp.kubelet_client_key))
        self.assertEqual(status, 500)
        self.assertIn("exited with 1", body)


class IdleTimeoutTest(DirectWebSocketCase):
    """--streaming-connection-idle-timeout closes a session that moves nothing."""

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return [*super().vkhost_args(), "--streaming-connection-idle-timeout=2s"]

    def test_an_idle_exec_is_closed(self):
        namespace, name = self.running_pod()
        ws = self.connect(exec_path("exec", namespace, name, "main", ["cat"], stdin=True),
                          ["v5.channel.k8s.io"])
        ws.send_channel(STDIN, b"before idling\n")
        started = time.monotonic()
        received = b""
        try:
            while True:  # cat echoes, then nothing moves until vkhost hangs up
                opcode, payload = ws.recv_message()
                if opcode == OP_CLOSE:
                    break
                received += payload[1:]
        except OSError:
            pass  # closed without a close frame (a hang-up too), or our 30 s timeout
        finally:
            ws.drop()
        self.assertIn(b"before idling", received)
        self.assertLess(time.monotonic() - started, 25,
                        "vkhost kept an idle session past its 2 s idle timeout")
        self.assertIn("closing a streaming connection idle for", self.vkhost.log_text())


def read_pty_until(fd: int, marker: Optional[bytes], timeout: float = 30.0) -> bytes:
    """Reads a pty master until `marker` shows up (None: until the other end closes)."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker is None or marker not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {marker!r} on the terminal; got {data!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end is gone
            break
        if not chunk:
            break
        data += chunk
    return data


def kubelet_post(port: int, path: str, cert: Tuple[str, str]) -> Tuple[int, str]:
    """POST with no body straight to the kubelet port; returns (status, body)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
    try:
        conn.request("POST", path, body=b"")
        answer = conn.getresponse()
        return answer.status, answer.read().decode(errors="replace")
    finally:
        conn.close()


class ThroughApiServerTest(VkhostTestCase):
    """kubectl exec, attach and port-forward reach vkhost over WebSocket via kube-apiserver."""

    # Log lines come every 100 ms, so attach has output fast.
    MOCK_ARGS = ["--log-interval=100ms"]

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return proxied_kubelet_args(cls.cp)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # What vkhost's node controller should publish itself (see
        # stream_bridge.h); a merge patch of the status keeps it either way.
        cls.cp.kubectl("patch", "node", cls.node, "--subresource=status", "--type=merge",
                       "-p", json.dumps({"status": {
                           "declaredFeatures": ["ExtendWebSocketsToKubelet"]}}))
        cls.wait_class("the node to declare ExtendWebSocketsToKubelet", lambda: (
            "ExtendWebSocketsToKubelet" in cls.cp.kubectl_json("get", "node", cls.node)
            .get("status", {}).get("declaredFeatures", [])))

    _pod = None

    def running_pod(self) -> tuple:
        cls = type(self)
        if cls._pod is None:
            namespace = self.make_namespace()
            name = unique_name("wsk")
            self.create_pod(self.pod_manifest(namespace, name, RUN_FOREVER))
            self.wait_running(namespace, name)
            cls._pod = (namespace, name)
        return cls._pod

    def websocket_upgrades_since(self, offset: int, route: str) -> int:
        text = self.vkhost.log_text(offset)
        return sum(1 for line in text.splitlines()
                   if f"upgrade request GET /{route} " in line and 'Upgrade="websocket"' in line)

    def kubectl_exec(self, *command: str, stdin: Optional[str] = None):
        namespace, name = self.running_pod()
        flags = ["-i"] if stdin is not None else []
        return self.cp.kubectl_run("exec", *flags, name, "-n", namespace, "--", *command,
                                   input=stdin, timeout=60)

    def test_kubectl_exec_goes_over_websocket(self):
        self.running_pod()
        offset = self.vkhost.log_size()
        result = self.kubectl_exec("echo", "via", "websocket")
        self.assertEqual(result.returncode, 0, result.stderr + self.diagnostics())
        self.assertEqual(result.stdout, "via websocket\n")
        self.assertGreaterEqual(self.websocket_upgrades_since(offset, "exec"), 1,
                                "the API server did not proxy a WebSocket to vkhost\n"
                                + self.diagnostics())

    def test_kubectl_exec_exit_code_and_stdin(self):
        result = self.kubectl_exec("sh", "-c", "exit 5")
        self.assertEqual(result.returncode, 5, result.stderr + self.diagnostics())
        result = self.kubectl_exec("cat", stdin="piped\nthrough websocket\n")
        self.assertEqual(result.returncode, 0, result.stderr + self.diagnostics())
        self.assertEqual(result.stdout, "piped\nthrough websocket\n")

    def test_kubectl_exec_tty_sends_the_terminal_size(self):
        namespace, name = self.running_pod()
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        argv = [str(self.cp.bin_dir / "kubectl"), "--kubeconfig", str(self.cp.kubeconfig),
                "exec", "-it", name, "-n", namespace, "--", "sh"]
        process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                   start_new_session=True)
        os.close(slave)
        output = b""
        try:
            # The mock shell prompts "$ " on a tty; answer once it is there.
            output += read_pty_until(master, b"$ ")
            # kubectl sends the first size from a goroutine of its own, which
            # may lose the race with what is typed at once: ask until it is in.
            for _ in range(20):
                os.write(master, b"stty size\n")
                output += read_pty_until(master, b"$ ")
                if b"33 101" in output:
                    break
                time.sleep(0.2)
            os.write(master, b"exit 6\n")
            output += read_pty_until(master, None)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(master)
        self.assertIn(b"33 101", output, f"{output!r}\n{self.diagnostics()}")
        self.assertEqual(process.returncode, 6, output)

    def test_kubectl_attach_streams_the_container_output(self):
        namespace, name = self.running_pod()
        offset = self.vkhost.log_size()
        argv = [str(self.cp.bin_dir / "kubectl"), "--kubeconfig", str(self.cp.kubeconfig),
                "attach", name, "-n", namespace]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as attach:
            try:
                lines = [attach.stdout.readline() for _ in range(2)]
            finally:
                attach.kill()
                attach.wait()
        self.assertTrue(all(f"{namespace}/{name}/main line" in line for line in lines),
                        f"{lines}\n{self.diagnostics()}")
        self.assertGreaterEqual(self.websocket_upgrades_since(offset, "attach"), 1,
                                "the API server did not proxy a WebSocket to vkhost\n"
                                + self.diagnostics())

    def test_kubectl_port_forward_tunnels_spdy_over_websocket(self):
        namespace, name = self.running_pod()
        offset = self.vkhost.log_size()
        forward = PortForward(self, namespace, name, 8080)
        try:
            self.assertIsNotNone(forward.local_port, "".join(forward.output) + self.diagnostics())
            payload = bytes(range(256)) * 64
            self.assertEqual(echo_round_trip(forward.local_port, b"hi\n"), b"hi\n")
            self.assertEqual(echo_round_trip(forward.local_port, payload), payload)
        finally:
            stderr = forward.stop()
        self.assertNotIn("error forwarding port", stderr)
        self.assertGreaterEqual(self.websocket_upgrades_since(offset, "portForward"), 1,
                                "the API server did not proxy a WebSocket to vkhost\n"
                                + self.diagnostics())


if __name__ == "__main__":
    unittest.main()
