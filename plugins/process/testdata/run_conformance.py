"""Runs vkhost-conformance against vkhost-process-plugin (ctest conformance.process).

The suite's pods run tcp_echo.py on a port picked here (free right now), so the
port-forward check has a real echo server; the plugin gets a fresh state dir.
Usage: run_conformance.py CONFORMANCE_BIN PLUGIN_BIN
"""
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    conformance, plugin = sys.argv[1], sys.argv[2]
    echo = pathlib.Path(__file__).resolve().parent / "tcp_echo.py"
    port = free_port()
    state = tempfile.mkdtemp(prefix="vkhost-process-conformance-")
    try:
        return subprocess.call([
            conformance,
            "--plugin", f"{plugin} --state-dir {state} --restart-backoff 1s",
            "--image", "python:3",
            "--container-command", f"{sys.executable} {echo} {port}",
            "--port-forward-port", str(port),
        ])
    finally:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
