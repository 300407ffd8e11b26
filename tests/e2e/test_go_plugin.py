"""vkhost with the Go plugin built from a virtual-kubelet provider, end to end.

vkhost-vkshell-plugin (plugins/vkshell) is an ordinary virtual-kubelet
provider that runs each container's command as a local process, served
through sdk/go/vkadapter. Against a real control plane (etcd +
kube-apiserver; pods are bound with spec.nodeName), a pod must run to
Succeeded, `kubectl logs` must show its output, `kubectl exec` must reach a
running container, and a deleted pod must go away.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_GO_PLUGIN=build/bin/vkhost-vkshell-plugin \\
        python3 -m unittest tests/e2e/test_go_plugin.py -v
VKHOST_E2E_ALLOW_SKIP=1 skips instead of failing when the control-plane
binaries are missing; VKHOST_E2E_KEEP=1 keeps the temp dir with the logs.
"""

import pathlib
import sys
import unittest
from typing import List

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cluster  # noqa: E402
from test_vkhost import VkhostTestCase, unique_name  # noqa: E402


class GoPluginTest(VkhostTestCase):
    """One control plane and one vkhost running the Go plugin for the class."""

    @classmethod
    def plugin_command(cls) -> List[str]:
        work = cls.dir / "pods"
        work.mkdir()
        return [cluster.built_binary("VKHOST_GO_PLUGIN", "vkhost-vkshell-plugin"),
                f"--work-dir={work}"]

    @classmethod
    def vkhost_args(cls) -> List[str]:
        # The API server's kubelet-client certificate is signed by the test CA.
        return [f"--client-ca-file={cls.cp.ca_cert}"]

    def phase_is(self, phase: str):
        return lambda pod: pod.get("status", {}).get("phase") == phase

    def test_pod_succeeds_and_logs_show_its_output(self):
        namespace, name = self.make_namespace(), unique_name("hello")
        self.create_pod(self.pod_manifest(namespace, name,
                                          ["sh", "-c", "echo hello from go; exit 0"], "Never"))
        pod = self.wait_pod(namespace, name, "Succeeded", self.phase_is("Succeeded"))
        state = pod["status"]["containerStatuses"][0]["state"]
        self.assertEqual(state.get("terminated", {}).get("exitCode"), 0, state)
        logs = self.wait("kubectl logs to show the output", lambda: (
            lambda r: r.stdout if r.returncode == 0 and "hello from go" in r.stdout else None)(
                self.cp.kubectl_run("logs", name, "-n", namespace)))
        self.assertIn("hello from go", logs)

    def test_exec_into_running_pod_then_delete(self):
        namespace, name = self.make_namespace(), unique_name("sleeper")
        self.create_pod(self.pod_manifest(namespace, name, ["sleep", "3600"]))
        self.wait_pod(namespace, name, "Running", self.phase_is("Running"))
        result = self.wait("kubectl exec to answer", lambda: (
            lambda r: r if r.returncode == 0 else None)(
                self.cp.kubectl_run("exec", name, "-n", namespace, "--",
                                    "sh", "-c", "echo exec from go; exit 0")))
        self.assertIn("exec from go", result.stdout)
        failing = self.cp.kubectl_run("exec", name, "-n", namespace, "--", "sh", "-c", "exit 3")
        self.assertEqual(failing.returncode, 3, failing.stderr)
        self.cp.kubectl("delete", "pod", name, "-n", namespace, "--wait=false")
        self.wait(f"pod {name} to be gone", lambda: self.get_pod(namespace, name) is None)


if __name__ == "__main__":
    unittest.main()
