"""vkhost running the Python batch plugin (plugins/batch) against a real API server.

One control plane (etcd + kube-apiserver, no controllers: pods are bound with
spec.nodeName) and one vkhost whose plugin is vkhost-batch-plugin with a
single slot. The tests check what a workload owner sees: a pod with
restartPolicy Never runs to Succeeded and `kubectl logs` shows its output; one
with OnFailure is restarted until it succeeds and `kubectl logs --previous`
shows the failed run; a second pod waits as Pending with reason Queued while
the slot is taken and runs once it frees; the plugin writes a job accounting
record per job.

Run from the repository root after building (the venv is build/python):
    VKHOST_BIN=build/bin/vkhost VKHOST_BATCH_PLUGIN=build/python/bin/vkhost-batch-plugin \\
        python3 -m unittest tests/e2e/test_python_plugin.py -v
VKHOST_E2E_ALLOW_SKIP=1 skips when the control-plane binaries are missing;
VKHOST_E2E_KEEP=1 keeps the temp dir (vkhost log, plugin work dir, accounting).
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
from typing import Callable, List, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cluster  # noqa: E402

TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}
# The batch backend ignores images; any name will do.
IMAGE = "docker.io/library/busybox:1.36"
# Generous: the machine may be busy with other tests.
TIMEOUT = 90.0


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def batch_plugin() -> pathlib.Path:
    """The vkhost-batch-plugin of the build under test ($VKHOST_BATCH_PLUGIN)."""
    path = pathlib.Path(os.environ.get("VKHOST_BATCH_PLUGIN")
                        or cluster.REPO_ROOT / "build" / "python" / "bin" / "vkhost-batch-plugin")
    if not os.access(path, os.X_OK):
        raise cluster.ControlPlaneError(
            f"{path} is not an executable; build the vkhost_python target or set "
            "VKHOST_BATCH_PLUGIN")
    return path


class BatchPluginTest(unittest.TestCase):
    """vkhost + vkhost-batch-plugin --slots=1."""

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
        cls.dir = pathlib.Path(tempfile.mkdtemp(prefix="vkhost-e2e-batch-"))
        cls.addClassCleanup(cls._remove_dir)
        cls.node = unique_name("vk-batch")
        cls.accounting = cls.dir / "accounting.jsonl"
        plugin = [batch_plugin(), "--slots=1", f"--accounting-file={cls.accounting}",
                  f"--work-dir={cls.dir / 'work'}", "--log-level=debug"]
        args = [f"--client-ca-file={cls.cp.ca_cert}"]
        cls.vkhost = cluster.VkhostProcess(cls.cp.kubeconfig, cls.node, cls.dir, plugin=plugin,
                                           extra_args=args)
        cls.vkhost.start()
        cls.addClassCleanup(cls.vkhost.stop)
        cls.wait(f"Node {cls.node} Ready", cls.node_ready)
        cls.namespace = cls.make_namespace()

    @classmethod
    def _remove_dir(cls):
        if os.environ.get("VKHOST_E2E_KEEP") == "1":
            print(f"test files kept in {cls.dir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    # --- helpers ---

    @classmethod
    def wait(cls, what: str, predicate: Callable, timeout: float = TIMEOUT):
        """Polls predicate() until truthy and returns it; kubectl errors mean "not yet".

        Fails at once if vkhost exited, with the tail of its log (which holds
        the plugin's stderr).
        """
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
                                     f"last: {last[:1500]}\n--- vkhost log:\n"
                                     f"{cls.vkhost.log_tail()}")
            time.sleep(0.5)

    @classmethod
    def node_ready(cls) -> Optional[dict]:
        result = cls.cp.kubectl_run("get", "node", cls.node, "-o", "json")
        if result.returncode != 0:
            return None
        node = json.loads(result.stdout)
        ready = [c for c in node.get("status", {}).get("conditions", [])
                 if c.get("type") == "Ready" and c.get("status") == "True"]
        return node if ready else None

    @classmethod
    def make_namespace(cls) -> str:
        """A namespace with what kube-controller-manager would put in it."""
        namespace = unique_name("batch")
        cls.cp.kubectl("create", "namespace", namespace)
        cls.cp.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "default", "namespace": namespace}},
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
                 "data": {"ca.crt": pathlib.Path(cls.cp.ca_cert).read_text()}}]}))
        return namespace

    def create_pod(self, name: str, script: str, restart_policy: str = "Never") -> None:
        self.cp.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                     "restartPolicy": restart_policy, "terminationGracePeriodSeconds": 5,
                     "containers": [{"name": "main", "image": IMAGE,
                                     "command": ["sh", "-c", script]}]}}))

    def pod(self, name: str) -> dict:
        return self.cp.kubectl_json("get", "pod", name, "-n", self.namespace)

    def wait_pod(self, name: str, what: str, predicate: Callable[[dict], bool]) -> dict:
        def check():
            pod = self.pod(name)
            return pod if predicate(pod) else None
        try:
            return self.wait(f"pod {name} {what}", check)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- pod status: "
                                 f"{json.dumps(self.pod(name).get('status'))}") from None

    def phase(self, name: str) -> str:
        return self.pod(name).get("status", {}).get("phase", "")

    def accounting_records(self) -> List[dict]:
        try:
            return [json.loads(line) for line in self.accounting.read_text().splitlines()]
        except FileNotFoundError:
            return []

    # --- tests ---

    def test_job_runs_to_succeeded_and_kubectl_logs_shows_its_output(self):
        self.create_pod("hello", "echo hello from batch; exit 0")
        pod = self.wait_pod("hello", "Succeeded",
                            lambda p: p.get("status", {}).get("phase") == "Succeeded")
        state = pod["status"]["containerStatuses"][0]["state"]
        self.assertEqual(state["terminated"]["exitCode"], 0)
        self.assertEqual(self.cp.kubectl("logs", "hello", "-n", self.namespace),
                         "hello from batch\n")
        record = self.wait("the job's accounting record", lambda: [
            r for r in self.accounting_records() if r["name"] == "hello"])[0]
        self.assertEqual((record["state"], record["exit_code"], record["namespace"]),
                         ("COMPLETED", 0, self.namespace))

    def test_on_failure_restarts_until_success_and_keeps_the_previous_log(self):
        self.create_pod("retry", 'if [ -e "$VKHOST_POD_DIR/tried" ]; then echo second try; '
                                 'exit 0; fi; touch "$VKHOST_POD_DIR/tried"; echo first try; '
                                 'exit 1',
                        restart_policy="OnFailure")
        pod = self.wait_pod("retry", "Succeeded",
                            lambda p: p.get("status", {}).get("phase") == "Succeeded")
        container = pod["status"]["containerStatuses"][0]
        self.assertEqual(container["restartCount"], 1)
        self.assertEqual(container["lastState"]["terminated"]["exitCode"], 1)
        self.assertEqual(self.cp.kubectl("logs", "retry", "-n", self.namespace), "second try\n")
        self.assertEqual(self.cp.kubectl("logs", "retry", "-n", self.namespace, "--previous"),
                         "first try\n")

    def test_second_job_is_queued_behind_a_full_slot_then_runs(self):
        self.create_pod("blocker", "echo holding the slot; exec sleep 600")
        self.wait_pod("blocker", "Running",
                      lambda p: p.get("status", {}).get("phase") == "Running")
        self.create_pod("queued", "echo ran after the blocker")
        pod = self.wait_pod("queued", "Pending with reason Queued", lambda p: (
            p.get("status", {}).get("phase") == "Pending"
            and p["status"].get("reason") == "Queued"))
        self.assertIn("position 1", pod["status"].get("message", ""))
        # Freeing the slot lets the queued job run.
        self.cp.kubectl("delete", "pod", "blocker", "-n", self.namespace, "--wait=false")
        self.wait_pod("queued", "Succeeded",
                      lambda p: p.get("status", {}).get("phase") == "Succeeded")
        self.assertEqual(self.cp.kubectl("logs", "queued", "-n", self.namespace),
                         "ran after the blocker\n")
        records = {r["name"]: r for r in self.wait("two accounting records", lambda: (
            len({r["name"] for r in self.accounting_records()} & {"blocker", "queued"}) == 2
            and self.accounting_records()))}
        self.assertEqual(records["blocker"]["state"], "CANCELLED")
        self.assertGreaterEqual(records["queued"]["start_time"], records["blocker"]["end_time"])


if __name__ == "__main__":
    unittest.main()
