"""vkhost with only the rights deploy/rbac.yaml grants, as an operator runs it.

The manifest is applied to a fresh control plane, vkhost authenticates with a
token of the `vkhost-system/vkhost` ServiceAccount, and a pod that uses every
kind of object the host reads (ConfigMap and Secret env and volumes, a
projected service-account token, service links) goes through its whole life
while the kubelet API answers `kubectl logs` and `kubectl exec`. Any right
missing from the manifest shows up as a pod that never runs, a missing
Event, or a "forbidden" in vkhost's log.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_rbac.py -v
"""

import json
import pathlib
import sys
import unittest
from typing import List

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_kubelet_api import proxied_kubelet_args  # noqa: E402
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402

RBAC_MANIFEST = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"


class LeastPrivilegeTest(VkhostTestCase):
    """Every duty of the host works with deploy/rbac.yaml's rights and no more."""

    MOCK_ARGS = ["--log-interval=100ms"]

    @classmethod
    def vkhost_kubeconfig(cls) -> pathlib.Path:
        if getattr(cls, "_kubeconfig", None) is None:
            cls._kubeconfig = cls._service_account_kubeconfig()
        return cls._kubeconfig

    @classmethod
    def _service_account_kubeconfig(cls) -> pathlib.Path:
        cls.cp.kubectl("apply", "-f", str(RBAC_MANIFEST))
        token = cls.cp.kubectl("-n", "vkhost-system", "create", "token", "vkhost",
                               "--duration=1h").strip()
        admin = json.loads(pathlib.Path(cls.cp.kubeconfig).read_text())
        admin["users"] = [{"name": "vkhost", "user": {"token": token}}]
        admin["contexts"][0]["context"]["user"] = "vkhost"
        path = pathlib.Path(cls.cp.directory) / "vkhost-sa.kubeconfig"
        path.write_text(json.dumps(admin, indent=2) + "\n")
        return path

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return proxied_kubelet_args(cls.cp)

    def test_identity_is_the_service_account(self):
        # Guards the test itself: it must not run vkhost as admin.
        kubeconfig = self.vkhost_kubeconfig()
        result = self.cp.kubectl_run("--kubeconfig", str(kubeconfig), "auth", "can-i",
                                     "create", "namespaces")
        self.assertEqual(result.stdout.strip(), "no", result.stderr)

    def test_pod_lifecycle_logs_and_exec_with_least_privilege(self):
        namespace = self.make_namespace()
        name = unique_name("rbac")
        self.apply([
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "settings", "namespace": namespace},
             "data": {"mode": "strict"}},
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "credentials", "namespace": namespace},
             "stringData": {"password": "hunter2"}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "backend", "namespace": namespace},
             "spec": {"ports": [{"port": 80}]}}])
        manifest = self.pod_manifest(namespace, name, RUN_FOREVER, container={
            "env": [
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {
                    "name": "settings", "key": "mode"}}},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {
                    "name": "credentials", "key": "password"}}}],
            "volumeMounts": [{"name": "token", "mountPath": "/var/run/token"}]},
            volumes=[{"name": "token", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}])
        self.create_pod(manifest)
        self.wait_running(namespace, name)

        env = self.cp.kubectl("exec", name, "-n", namespace, "--", "env", timeout=60)
        for line in ("MODE=strict", "PASSWORD=hunter2", "BACKEND_SERVICE_PORT=80"):
            self.assertIn(line, env.splitlines(), env + self.diagnostics())
        logs = self.cp.kubectl("logs", name, "-n", namespace, "--tail=1", timeout=60)
        self.assertIn(f"{namespace}/{name}/main", logs)
        self.assertTrue(self.events(namespace, name), "no Events for the pod")

        self.cp.kubectl("delete", "pod", name, "-n", namespace, "--wait=true", timeout=120)
        self.assertIsNone(self.get_pod(namespace, name))
        self.assertTrue(self.lease()["spec"].get("renewTime"))
        self.assertNotIn("forbidden", self.vkhost.log_text().lower(),
                         "vkhost lacked a right: " + self.diagnostics())


if __name__ == "__main__":
    unittest.main()
