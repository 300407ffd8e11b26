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
import sys
import unittest
from typing import Callable, List

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cluster  # noqa: E402
from test_vkhost import VkhostTestCase  # noqa: E402


def batch_plugin() -> pathlib.Path:
    """The vkhost-batch-plugin of the build under test ($VKHOST_BATCH_PLUGIN)."""
    path = pathlib.Path(os.environ.get("VKHOST_BATCH_PLUGIN")
                        or cluster.REPO_ROOT / "build" / "python" / "bin" / "vkhost-batch-plugin")
    if not os.access(path, os.X_OK):
        raise cluster.ControlPlaneError(
            f"{path} is not an executable; build the vkhost_python target or set "
            "VKHOST_BATCH_PLUGIN")
    return path


class BatchPluginTest(VkhostTestCase):
    """vkhost + vkhost-batch-plugin --slots=1."""

    @classmethod
    def plugin_command(cls) -> List[str]:
        cls.accounting = cls.dir / "accounting.jsonl"
        return [batch_plugin(), "--slots=1", f"--accounting-file={cls.accounting}",
                f"--work-dir={cls.dir / 'work'}", "--log-level=debug"]

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return [f"--client-ca-file={cls.cp.ca_cert}"]

    def setUp(self):
        # Pod names are fixed per test; each test has a namespace of its own.
        self.namespace = self.make_namespace()

    # --- helpers ---

    def create_job(self, name: str, script: str, restart_policy: str = "Never") -> None:
        self.create_pod(self.pod_manifest(self.namespace, name, ["sh", "-c", script],
                                          restart_policy))

    def wait_job(self, name: str, what: str, predicate: Callable[[dict], bool]) -> dict:
        return self.wait_pod(self.namespace, name, what, predicate, timeout=90)

    def accounting_records(self) -> List[dict]:
        try:
            return [json.loads(line) for line in self.accounting.read_text().splitlines()]
        except FileNotFoundError:
            return []

    # --- tests ---

    def test_job_runs_to_succeeded_and_kubectl_logs_shows_its_output(self):
        self.create_job("hello", "echo hello from batch; exit 0")
        pod = self.wait_job("hello", "Succeeded",
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
        self.create_job("retry", 'if [ -e "$VKHOST_POD_DIR/tried" ]; then echo second try; '
                                 'exit 0; fi; touch "$VKHOST_POD_DIR/tried"; echo first try; '
                                 'exit 1',
                        restart_policy="OnFailure")
        pod = self.wait_job("retry", "Succeeded",
                            lambda p: p.get("status", {}).get("phase") == "Succeeded")
        container = pod["status"]["containerStatuses"][0]
        self.assertEqual(container["restartCount"], 1)
        self.assertEqual(container["lastState"]["terminated"]["exitCode"], 1)
        self.assertEqual(self.cp.kubectl("logs", "retry", "-n", self.namespace), "second try\n")
        self.assertEqual(self.cp.kubectl("logs", "retry", "-n", self.namespace, "--previous"),
                         "first try\n")

    def test_second_job_is_queued_behind_a_full_slot_then_runs(self):
        self.create_job("blocker", "echo holding the slot; exec sleep 600")
        self.wait_job("blocker", "Running",
                      lambda p: p.get("status", {}).get("phase") == "Running")
        self.create_job("queued", "echo ran after the blocker")
        pod = self.wait_job("queued", "Pending with reason Queued", lambda p: (
            p.get("status", {}).get("phase") == "Pending"
            and p["status"].get("reason") == "Queued"))
        self.assertIn("position 1", pod["status"].get("message", ""))
        # Freeing the slot lets the queued job run.
        self.cp.kubectl("delete", "pod", "blocker", "-n", self.namespace, "--wait=false")
        self.wait_job("queued", "Succeeded",
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
