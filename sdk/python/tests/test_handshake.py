"""serve() as a process: the examples/minimal_plugin.py launched like vkhost launches it."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vkhost_sdk import launch, v1
from vkhost.provider.v1 import identity_pb2_grpc

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "minimal_plugin.py"
HANDSHAKE = re.compile(r"^VKHOST\|1\|1\|unix\|(/[^|]+)\|grpc$")
# spec.md §2.1 gives 5 s to exit; the rest is slack for a busy machine.
EXIT_SECONDS = 8


def start(env_extra: dict, args=()) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VKHOST_PLUGIN_")}
    env.update(env_extra)
    return subprocess.Popen([sys.executable, str(EXAMPLE), *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def launch_env(socket_dir: pathlib.Path, versions: str = "1") -> dict:
    return {launch.MAGIC_COOKIE_ENV: launch.MAGIC_COOKIE_VALUE,
            launch.PROTOCOL_VERSIONS_ENV: versions,
            launch.SOCKET_DIR_ENV: str(socket_dir)}


@pytest.fixture
def launched(tmp_path):
    process = start(launch_env(tmp_path, "99,1,98"))
    line = process.stdout.readline().rstrip("\n")
    yield process, line
    if process.poll() is None:
        process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        pipe.close()


def test_handshake_line_and_private_socket(launched, tmp_path):
    process, line = launched
    match = HANDSHAKE.match(line)
    assert match, f"first stdout line {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
    socket = pathlib.Path(match.group(1))
    assert socket.parent.parent == tmp_path
    assert (socket.parent.stat().st_mode & 0o777) == 0o700
    with grpc.insecure_channel(f"unix:{socket}") as channel:
        info = identity_pb2_grpc.IdentityStub(channel).GetPluginInfo(v1.GetPluginInfoRequest(),
                                                                     timeout=10)
        assert info.name == "minimal-python"
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_removes_socket(launched, signum):
    process, line = launched
    socket = pathlib.Path(HANDSHAKE.match(line).group(1))
    process.send_signal(signum)
    assert process.wait(EXIT_SECONDS) == 0
    assert not socket.exists() and not socket.parent.exists()


def test_stdin_eof_stops(launched):
    process, line = launched
    assert HANDSHAKE.match(line)
    process.stdin.close()
    assert process.wait(EXIT_SECONDS) == 0


@pytest.mark.parametrize("env,mention", [
    ({}, "vkhost"),
    ({launch.MAGIC_COOKIE_ENV: "not-the-cookie", launch.PROTOCOL_VERSIONS_ENV: "1"}, "vkhost"),
    ({launch.MAGIC_COOKIE_ENV: launch.MAGIC_COOKIE_VALUE, launch.PROTOCOL_VERSIONS_ENV: "99"}, "99"),
])
def test_refusals_exit_1_without_handshake(env, mention):
    process = start(env)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "VKHOST|" not in out
    assert mention in err


def test_connect_mode_on_unix_socket(tmp_path):
    socket = tmp_path / "plugin.sock"
    process = start({}, ["--listen", f"unix://{socket}"])
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no socket"
            time.sleep(0.05)
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            caps = identity_pb2_grpc.IdentityStub(channel).GetCapabilities(
                v1.GetCapabilitiesRequest(), timeout=10)
            assert list(caps.capabilities) == [v1.CAPABILITY_WATCH_POD_STATUS]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=EXIT_SECONDS)
    assert process.returncode == 0
    assert "VKHOST|" not in out  # connect mode prints no handshake
    assert not socket.exists()
