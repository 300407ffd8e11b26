"""Thousands of kubelet API sessions leave vkhost as they found it.

After a warm-up, about 2000 short sessions run against vkhost and the mock
plugin, four at a time: exec over WebSocket (echo, stdin with the v5 CLOSE
signal, a non-zero exit); exec over SPDY/3.1, with the small client below
(stdin and its FIN) and with kubectl through kube-apiserver (which speaks
SPDY to a node that does not declare ExtendWebSocketsToKubelet), as does
kubectl port-forward; kubelet-native port-forward over WebSocket; container
logs (plain and an abandoned follow); /run; refused upgrades; the
port-forward error path; and sessions the client abandons mid-stream
(WebSocket and SPDY) without a goodbye. Then vkhost's open file descriptors
and threads must return to the warm-up baseline (small tolerance, waited for
generously) and its RSS must not have grown by more than 20 MiB. These are
behaviour assertions: nothing is timed.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_kubelet_sessions.py -v
"""

import http.client
import itertools
import json
import os
import pathlib
import re
import socket
import ssl
import struct
import sys
import threading
import time
import unittest
import zlib
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_exec import PortForward, echo_round_trip  # noqa: E402
from test_kubelet_api import proxied_kubelet_args  # noqa: E402
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402
from test_websocket import (ERROR, OP_BINARY, REJECTED_IMAGE, STDIN,  # noqa: E402
                            STDOUT, ChannelSession, HandshakeRefused, KubeletWebSocket,
                            exec_path, kubelet_post)

SESSIONS = 2000
WARM_UP = 200
CLIENTS = 4
# vkhost may keep a few more descriptors / threads than at the baseline for
# reasons that are not leaks (a gRPC poller, a cached plugin channel).
FD_TOLERANCE = 8
THREAD_TOLERANCE = 4
RSS_GROWTH_LIMIT_KIB = 20 * 1024


def spdy_dictionary() -> bytes:
    """The SPDY/3 header dictionary, read from vkhost's source (and checked by its zlib id)."""
    source = (pathlib.Path(__file__).resolve().parents[2] / "host" / "spdy" /
              "dictionary.cc").read_text()
    body = source[source.index("kHeaderDictionary["):]
    body = body[body.index("{") + 1:body.index("};")]
    data = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", body))
    if len(data) != 1423 or zlib.adler32(data) != 0xE3C6A7C2:
        raise AssertionError("could not read the SPDY dictionary from host/spdy/dictionary.cc")
    return data


class SpdyExec:
    """One exec over SPDY/3.1 (v4.channel.k8s.io) straight to the kubelet port.

    The client side of what client-go does: upgrade, one SYN_STREAM per
    channel (headers zlib-compressed with the SPDY dictionary), DATA frames;
    reads until the server FINs the error stream. Not thread-safe.
    """

    DICTIONARY = None

    def __init__(self, port: int, path: str, cert: Tuple[str, str]):
        if SpdyExec.DICTIONARY is None:
            SpdyExec.DICTIONARY = spdy_dictionary()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        self.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                                 timeout=30))
        self.sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                           "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                           "Content-Length: 0\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.deflate = zlib.compressobj(9, zdict=SpdyExec.DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=SpdyExec.DICTIONARY)
        self.next_id = 1
        self.received: Dict[int, bytes] = {}
        self.finished: set = set()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the SPDY connection")
        self.buffer += chunk

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def open_stream(self, stream_type: str) -> int:
        stream_id, self.next_id = self.next_id, self.next_id + 2
        name, value = b"streamtype", stream_type.encode()
        block = struct.pack("!I", 1) + struct.pack("!I", len(name)) + name + \
            struct.pack("!I", len(value)) + value
        compressed = self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack("!IIBB", stream_id, 0, 0, 0) + compressed
        self.sock.sendall(struct.pack("!HHI", 0x8003, 1, len(payload)) + payload)
        return stream_id

    def send(self, stream_id: int, data: bytes, fin: bool = False) -> None:
        self.sock.sendall(struct.pack("!II", stream_id, (int(fin) << 24) | len(data)) + data)

    def read_until_finished(self, stream_id: int) -> None:
        """Reads frames until the server FINs `stream_id` (DATA collected per stream)."""
        while stream_id not in self.finished:
            first, second = struct.unpack("!II", self._take(8))
            flags, length = second >> 24, second & 0xFFFFFF
            payload = self._take(length)
            if first & 0x80000000:
                frame_type = first & 0xFFFF
                if frame_type in (2, 8):  # SYN_REPLY, HEADERS: keep zlib in step
                    self.inflate.decompress(payload[4:])
                if frame_type in (2, 8) and flags & 1 or frame_type == 3:
                    self.finished.add(struct.unpack("!I", payload[:4])[0] & 0x7FFFFFFF)
            else:
                self.received[first] = self.received.get(first, b"") + payload
                if flags & 1:
                    self.finished.add(first)

    def close(self) -> None:
        self.sock.close()


def proc_status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class KubeletSessionsTest(VkhostTestCase):
    """No file descriptor, thread or memory growth after thousands of sessions."""

    MOCK_ARGS = [f"--reject-image={REJECTED_IMAGE}", "--log-interval=100ms"]

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return proxied_kubelet_args(cls.cp)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cert = (cls.cp.kubelet_client_cert, cls.cp.kubelet_client_key)

    def setUp(self):
        cls = type(self)
        if not hasattr(cls, "pod"):
            namespace = self.make_namespace()
            name = unique_name("soak")
            self.create_pod(self.pod_manifest(namespace, name, RUN_FOREVER))
            self.wait_running(namespace, name)
            rejected = unique_name("rejected")
            manifest = self.pod_manifest(namespace, rejected, RUN_FOREVER)
            manifest["spec"]["containers"][0]["image"] = REJECTED_IMAGE
            self.create_pod(manifest)
            self.wait_pod(namespace, rejected, "Failed",
                          lambda p: p["status"].get("phase") == "Failed")
            cls.pod = (namespace, name)
            cls.rejected = (namespace, rejected)

    # One session each --------------------------------------------------------

    def ws(self, path: str, protocols=("v5.channel.k8s.io",)) -> KubeletWebSocket:
        return KubeletWebSocket(self.vkhost.kubelet_port, path, protocols, self.cert)

    def exec_ws(self, command, **flags) -> KubeletWebSocket:
        namespace, name = self.pod
        return self.ws(exec_path("exec", namespace, name, "main", command, **flags))

    def ws_exec_echo(self):
        session = ChannelSession(self.exec_ws(["echo", "soak"])).read_to_close()
        assert session.channels.get(STDOUT) == b"soak\n", session.messages
        assert session.exit_code() == 0, session.status()

    def ws_exec_exit_code(self):
        session = ChannelSession(self.exec_ws(["sh", "-c", "exit 7"])).read_to_close()
        assert session.exit_code() == 7, session.status()

    def ws_exec_stdin(self):
        ws = self.exec_ws(["cat"], stdin=True)
        ws.send_channel(STDIN, b"x" * 3000)
        ws.send_channel(255, bytes([STDIN]))
        session = ChannelSession(ws).read_to_close()
        assert session.channels.get(STDOUT) == b"x" * 3000, len(session.channels.get(STDOUT, b""))
        assert session.exit_code() == 0, session.status()

    def ws_exec_abandoned_mid_stream(self):
        ws = self.exec_ws(["cat"], stdin=True)
        ws.send_channel(STDIN, b"half a conversation\n")
        received = b""
        while b"conversation" not in received:
            opcode, payload = ws.recv_message()
            assert opcode == OP_BINARY, opcode
            if payload[0] == STDOUT:
                received += payload[1:]
        ws.drop()  # no close frame, no end of stdin

    def ws_exec_abandoned_at_once(self):
        self.exec_ws(["sleep", "30"]).drop()

    def ws_port_forward(self):
        namespace, name = self.pod
        ws = self.ws(f"/portForward/{namespace}/{name}?port=8080", ("v4.channel.k8s.io",))
        for _ in range(2):  # the port on the data and the error channel
            ws.recv_message()
        ws.send_channel(0, b"ping through the pod")
        echoed = b""
        while len(echoed) < 20:
            opcode, payload = ws.recv_message()
            assert payload[0] == 0, payload
            echoed += payload[1:]
        assert echoed == b"ping through the pod", echoed
        ws.close()

    def ws_port_forward_abandoned(self):
        namespace, name = self.pod
        ws = self.ws(f"/portForward/{namespace}/{name}?port=80,81", ("v4.channel.k8s.io",))
        ws.send_channel(2, b"never read back")
        ws.drop()

    def ws_port_forward_error(self):
        namespace, name = self.rejected
        ws = self.ws(f"/portForward/{namespace}/{name}?port=8080", ("v4.channel.k8s.io",))
        session = ChannelSession(ws).read_to_close()
        assert b"error forwarding port 8080" in session.channels.get(1, b""), session.messages

    def refused_upgrade(self):
        namespace, name = self.pod
        try:
            self.ws(exec_path("exec", namespace, name, "nope", ["true"]))
        except HandshakeRefused as refused:
            assert refused.status == 404, refused
            return
        raise AssertionError("an upgrade for an unknown container was accepted")

    def logs(self):
        namespace, name = self.pod
        status, body = self.get(f"/containerLogs/{namespace}/{name}/main?tailLines=3")
        assert status == 200 and body.count("\n") == 3, (status, body)

    def logs_follow_abandoned(self):
        namespace, name = self.pod
        conn = self.https()
        conn.request("GET", f"/containerLogs/{namespace}/{name}/main?follow=true&tailLines=1")
        answer = conn.getresponse()
        assert answer.status == 200, answer.status
        answer.read1(64)
        conn.close()

    def run_command(self):
        namespace, name = self.pod
        status, body = kubelet_post(self.vkhost.kubelet_port,
                                    f"/run/{namespace}/{name}/main?cmd=echo%20ran", self.cert)
        assert (status, body) == (200, "ran\n"), (status, body)

    def spdy_exec(self):
        namespace, name = self.pod
        spdy = SpdyExec(self.vkhost.kubelet_port,
                        exec_path("exec", namespace, name, "main", ["cat"], stdin=True,
                                  stderr=False), self.cert)
        try:
            error = spdy.open_stream("error")
            stdin = spdy.open_stream("stdin")
            stdout = spdy.open_stream("stdout")
            spdy.send(stdin, b"over spdy\n", fin=True)
            spdy.read_until_finished(error)
            spdy.read_until_finished(stdout)
            assert spdy.received.get(stdout) == b"over spdy\n", spdy.received
            assert json.loads(spdy.received[error])["status"] == "Success", spdy.received
        finally:
            spdy.close()

    def spdy_exec_abandoned(self):
        namespace, name = self.pod
        spdy = SpdyExec(self.vkhost.kubelet_port,
                        exec_path("exec", namespace, name, "main", ["sleep", "30"]), self.cert)
        spdy.open_stream("error")
        spdy.open_stream("stdout")
        spdy.open_stream("stderr")
        spdy.close()

    def spdy_exec_via_apiserver(self):
        namespace, name = self.pod
        result = self.cp.kubectl_run("exec", name, "-n", namespace, "--", "echo", "spdy",
                                     timeout=60)
        assert result.returncode == 0 and result.stdout == "spdy\n", result.stderr

    def spdy_port_forward_via_apiserver(self):
        namespace, name = self.pod
        forward = PortForward(self, namespace, name, 8080)
        try:
            assert forward.local_port is not None, "".join(forward.output)
            for n in range(5):
                payload = b"connection %d\n" % n
                assert echo_round_trip(forward.local_port, payload) == payload
        finally:
            stderr = forward.stop()
        assert "error forwarding port" not in stderr, stderr

    def https(self) -> http.client.HTTPSConnection:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        return http.client.HTTPSConnection("127.0.0.1", self.vkhost.kubelet_port,
                                           context=context, timeout=30)

    def get(self, path: str) -> Tuple[int, str]:
        conn = self.https()
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, answer.read().decode(errors="replace")
        finally:
            conn.close()

    # The soak ---------------------------------------------------------------

    def kinds(self) -> List[Callable[[], None]]:
        return [self.ws_exec_echo, self.ws_exec_stdin, self.ws_exec_exit_code,
                self.ws_exec_abandoned_mid_stream, self.ws_exec_abandoned_at_once,
                self.ws_port_forward, self.ws_port_forward_abandoned,
                self.ws_port_forward_error, self.refused_upgrade, self.logs,
                self.logs_follow_abandoned, self.run_command, self.spdy_exec,
                self.spdy_exec_abandoned]

    def run_sessions(self, count: int) -> None:
        """Runs `count` sessions on CLIENTS threads; fails with the first errors seen."""
        kinds = self.kinds()
        counter = itertools.count()
        failures: List[str] = []
        lock = threading.Lock()

        def client():
            while True:
                n = next(counter)
                if n >= count:
                    return
                kind = kinds[n % len(kinds)]
                try:
                    kind()
                except Exception as e:  # noqa: BLE001 - collected and reported below
                    with lock:
                        failures.append(f"session {n} ({kind.__name__}): {e!r}")

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # A few SPDY sessions through the API server (kubectl is slow, so
        # they are not a quarter of the mix).
        for n in range(max(1, count // 100)):
            kind = self.spdy_port_forward_via_apiserver if n % 10 == 9 else \
                self.spdy_exec_via_apiserver
            try:
                kind()
            except Exception as e:  # noqa: BLE001
                failures.append(f"{kind.__name__} {n}: {e!r}")
        self.assertEqual(failures[:10], [], f"{len(failures)} sessions failed\n"
                         + self.diagnostics())

    def settle(self, pid: int, fds: int, threads: int) -> Tuple[int, int]:
        """Waits (up to 60 s) for fds and threads to come back within tolerance."""
        deadline = time.monotonic() + 60
        while True:
            now = (open_fds(pid), proc_status(pid, "Threads"))
            if (now[0] <= fds + FD_TOLERANCE and now[1] <= threads + THREAD_TOLERANCE) or \
                    time.monotonic() > deadline:
                return now
            time.sleep(0.5)

    def quiet_baseline(self, pid: int) -> Tuple[int, int]:
        """fds and threads once they stop changing (abandoned sessions wind down)."""
        last = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = (open_fds(pid), proc_status(pid, "Threads"))
            if now == last:
                return now
            last = now
            time.sleep(2)
        return last

    def test_thousands_of_sessions_leave_no_growth(self):
        pid = self.vkhost.pid
        self.run_sessions(WARM_UP)
        fds, threads = self.quiet_baseline(pid)
        rss = proc_status(pid, "VmRSS")

        self.run_sessions(SESSIONS)

        after_fds, after_threads = self.settle(pid, fds, threads)
        after_rss = proc_status(pid, "VmRSS")
        print(f"\nvkhost after {WARM_UP} warm-up sessions: {fds} fds, {threads} threads, "
              f"{rss} KiB RSS; after {SESSIONS} more: {after_fds} fds, {after_threads} "
              f"threads, {after_rss} KiB RSS", file=sys.stderr)
        self.assertTrue(self.vkhost.running(), self.diagnostics())
        self.assertLessEqual(after_fds, fds + FD_TOLERANCE,
                             f"open fds {fds} -> {after_fds}: {os.listdir(f'/proc/{pid}/fd')}")
        self.assertLessEqual(after_threads, threads + THREAD_TOLERANCE,
                             f"threads {threads} -> {after_threads}")
        self.assertLess(after_rss - rss, RSS_GROWTH_LIMIT_KIB,
                        f"RSS {rss} KiB -> {after_rss} KiB")
        # And vkhost still serves.
        self.ws_exec_echo()

    def test_port_forward_error_is_reported_and_the_session_ends(self):
        # The plugin does not know the pod (it refused it): the error channel
        # carries the kubelet's message and the server closes; the 30 s
        # socket timeout turns a hang into a failure.
        namespace, name = self.rejected
        ws = self.ws(f"/portForward/{namespace}/{name}?port=8080", ("v4.channel.k8s.io",))
        session = ChannelSession(ws).read_to_close()
        self.assertEqual(session.messages[:2], [(0, struct.pack("<H", 8080)),
                                                (1, struct.pack("<H", 8080))])
        error = session.channels.get(1, b"")[2:].decode()
        self.assertRegex(error, r"^error forwarding port 8080 to pod \S+, uid : .*not found")
        self.assertEqual(session.close_code, 1000)

    def test_exec_on_unknown_or_refused_pod_never_hangs(self):
        namespace, name = self.pod
        for path in (exec_path("exec", namespace, "ghost", "main", ["true"]),
                     exec_path("attach", namespace, name, "ghost")):
            with self.assertRaises(HandshakeRefused) as refused:
                self.ws(path)
            self.assertEqual(refused.exception.status, 404)
        # A pod the plugin refused: the plugin's NOT_FOUND ends the session
        # with a Failure status instead of hanging.
        namespace, rejected = self.rejected
        session = ChannelSession(self.ws(exec_path("exec", namespace, rejected, "main",
                                                   ["true"]))).read_to_close()
        self.assertEqual(session.status().get("status"), "Failure", session.messages)
        self.assertEqual(session.close_code, 1000)
        self.assertEqual(session.messages[0], (STDOUT, b""))  # ready, then the failure
        self.assertEqual(session.messages[-1][0], ERROR)


if __name__ == "__main__":
    unittest.main()
