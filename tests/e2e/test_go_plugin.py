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

import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
import unittest
import uuid
from typing import Callable, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cluster  # noqa: E402

TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}
# vkshell runs the command on the host; the image is only reported.
IMAGE = "docker.io/library/busybox:1.36"
# Generous: the machine may be busy with other tests.
TIMEOUT = 90.0


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class GoPluginTest(unittest.TestCase):
    """One control plane and one vkhost running the Go plugin for the class."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.cp = cluster.ControlPlane(controllers=False)
            cls.cp.start()
        except cluster.BinariesMissingError as e:
            if os.environ.get("VKHOST_E2E_ALLOW_SKIP") == "1":
                raise unittest.SkipTest(str(e))
            raise
        cls.addClassCleanup(cls.cp.stop)
        cls.dir = pathlib.Path(tempfile.mkdtemp(prefix="vkhost-e2e-go-"))
        cls.addClassCleanup(cls._remove_dir)
        work = cls.dir / "pods"
        work.mkdir()
        plugin = [cluster.built_binary("VKHOST_GO_PLUGIN", "vkhost-vkshell-plugin"),
                  f"--work-dir={work}"]
        cls.node = unique_name("vk-go")
        # The API server's kubelet-client certificate is signed by the test CA.
        cls.vkhost = cluster.VkhostProcess(cls.cp.kubeconfig, cls.node, cls.dir, plugin=plugin,
                                           extra_args=[f"--client-ca-file={cls.cp.ca_cert}"])
        cls.vkhost.start()
        cls.addClassCleanup(cls.vkhost.stop)
        cls.wait("node %s Ready" % cls.node, cls.node_ready)
        cls.namespace = cls.make_namespace()

    @classmethod
    def _remove_dir(cls):
        if os.environ.get("VKHOST_E2E_KEEP") == "1":
            print(f"test files kept in {cls.dir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def wait(cls, what: str, predicate: Callable, timeout: float = TIMEOUT):
        """Polls predicate() until truthy and returns it; kubectl errors are
        "not yet". Fails with the last observation and vkhost's log tail."""
        deadline = time.monotonic() + timeout
        last = "nothing observed yet"
        while True:
            if not cls.vkhost.running():
                raise AssertionError(f"vkhost exited while waiting for {what}:\n"
                                     f"{cls.vkhost.log_tail()}")
            try:
                value = predicate()
                if value:
                    return value
                last = repr(value)
            except cluster.ControlPlaneError as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"last: {last[:1500]}\n--- vkhost log tail:\n"
                                     f"{cls.vkhost.log_tail()}")
            time.sleep(0.5)

    @classmethod
    def node_ready(cls) -> bool:
        result = cls.cp.kubectl_run("get", "node", cls.node, "-o", "json")
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    @classmethod
    def make_namespace(cls) -> str:
        """A namespace with what kube-controller-manager would put in it."""
        namespace = unique_name("e2e-go")
        ca = pathlib.Path(cls.cp.ca_cert).read_text()
        for items in ([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}],
                      [{"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": namespace}},
                       {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
                        "data": {"ca.crt": ca}}]):
            cls.cp.kubectl("apply", "-f", "-", input=json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": items}))
        return namespace

    def create_pod(self, name: str, command: list, restart_policy: str) -> None:
        manifest = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": self.namespace},
                    "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                             "restartPolicy": restart_policy,
                             "terminationGracePeriodSeconds": 5,
                             "containers": [{"name": "main", "image": IMAGE,
                                             "command": command}]}}
        self.cp.kubectl("create", "-f", "-", input=json.dumps(manifest))

    def pod(self, name: str) -> Optional[dict]:
        result = self.cp.kubectl_run("get", "pod", name, "-n", self.namespace, "-o", "json")
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise cluster.KubectlError(("get", "pod", name), result.returncode,
                                       result.stdout, result.stderr)
        return json.loads(result.stdout)

    def wait_phase(self, name: str, phase: str) -> dict:
        def reached():
            pod = self.pod(name)
            return pod if pod and pod.get("status", {}).get("phase") == phase else None
        return self.wait(f"pod {name} {phase}", reached)

    def test_pod_succeeds_and_logs_show_its_output(self):
        name = unique_name("hello")
        self.create_pod(name, ["sh", "-c", "echo hello from go; exit 0"], "Never")
        pod = self.wait_phase(name, "Succeeded")
        state = pod["status"]["containerStatuses"][0]["state"]
        self.assertEqual(state.get("terminated", {}).get("exitCode"), 0, state)
        logs = self.wait("kubectl logs to show the output", lambda: (
            lambda r: r.stdout if r.returncode == 0 and "hello from go" in r.stdout else None)(
                self.cp.kubectl_run("logs", name, "-n", self.namespace)))
        self.assertIn("hello from go", logs)

    def test_exec_into_running_pod_then_delete(self):
        name = unique_name("sleeper")
        self.create_pod(name, ["sleep", "3600"], "Always")
        self.wait_phase(name, "Running")
        result = self.wait("kubectl exec to answer", lambda: (
            lambda r: r if r.returncode == 0 else None)(
                self.cp.kubectl_run("exec", name, "-n", self.namespace, "--",
                                    "sh", "-c", "echo exec from go; exit 0")))
        self.assertIn("exec from go", result.stdout)
        failing = self.cp.kubectl_run("exec", name, "-n", self.namespace, "--",
                                      "sh", "-c", "exit 3")
        self.assertEqual(failing.returncode, 3, failing.stderr)
        self.cp.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false")
        self.wait(f"pod {name} to be gone", lambda: self.pod(name) is None)


if __name__ == "__main__":
    unittest.main()
