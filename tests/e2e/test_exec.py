"""kubectl exec through the real API server to vkhost's kubelet API.

The API server upgrades to SPDY/3.1 toward the node (vkhost does not declare
ExtendWebSocketsToKubelet), and vkhost bridges the session to the mock
plugin's Streams.Exec. The mock runs a few commands itself: echo, cat,
sh -c 'exit N', env, sleep.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_exec.py -v
"""

import pathlib
import re
import sys
import unittest
from typing import List

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_kubelet_api import non_loopback_ipv4  # noqa: E402
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402


class ExecTest(VkhostTestCase):
    """kubectl exec reaches the plugin and reports its exit code."""

    @classmethod
    def vkhost_args(cls) -> List[str]:
        cls.node_ip = non_loopback_ipv4()
        args = [f"--client-ca-file={cls.cp.ca_cert}"]
        if cls.node_ip:
            args.append(f"--node-ip={cls.node_ip}")
        return args

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


if __name__ == "__main__":
    unittest.main()
