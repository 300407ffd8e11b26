"""Smoke tests of the test control plane (cluster.py) that vkhost's e2e tests build on.

Run from the repository root:  python3 -m unittest discover -s tests/e2e -v
Needs the binaries from tests/controlplane/build.sh (scripts/setup). Without them
the tests fail and say so; they skip instead only when VKHOST_E2E_ALLOW_SKIP=1.
"""

import json
import os
import pathlib
import sys
import unittest
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cluster  # noqa: E402


def start_or_skip(test_case, **kwargs) -> cluster.ControlPlane:
    """Starts a control plane for `test_case` (a TestCase class) and schedules its stop."""
    try:
        cp = cluster.ControlPlane(**kwargs)
        cp.start()
    except cluster.BinariesMissingError as e:
        if os.environ.get("VKHOST_E2E_ALLOW_SKIP") == "1":
            raise unittest.SkipTest(str(e))
        raise
    test_case.addClassCleanup(cp.stop)
    return cp


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ApiServerOnlyTest(unittest.TestCase):
    """etcd + kube-apiserver: the minimum every vkhost integration test needs."""

    @classmethod
    def setUpClass(cls):
        cls.cp = start_or_skip(cls, controllers=False)

    def test_readyz_reports_ok(self):
        self.assertEqual(self.cp.kubectl("get", "--raw", "/readyz").strip(), "ok")

    def test_server_runs_the_pinned_release(self):
        version = json.loads(self.cp.kubectl("get", "--raw", "/version"))
        self.assertEqual(version["gitVersion"], cluster.pinned_release())

    def test_configmap_round_trip(self):
        namespace = unique_name("smoke")
        self.cp.kubectl("create", "namespace", namespace)
        self.cp.kubectl("create", "configmap", "greeting", "-n", namespace,
                        "--from-literal=message=hello from vkhost")
        configmap = self.cp.kubectl_json("get", "configmap", "greeting", "-n", namespace)
        self.assertEqual(configmap["data"], {"message": "hello from vkhost"})

    def test_missing_object_is_reported_as_kubectl_error(self):
        with self.assertRaises(cluster.KubectlError) as raised:
            self.cp.kubectl("get", "configmap", "does-not-exist", "-n", "default")
        self.assertIn("NotFound", raised.exception.stderr)

    def test_node_identity_is_limited_by_node_authorizer(self):
        # A kubelet identity may read but not create arbitrary namespaces.
        kubeconfig = self.cp.issue_kubeconfig("node-a", "system:node:a", ["system:nodes"])
        denied = self.cp.kubectl_run("--kubeconfig", str(kubeconfig),
                                     "create", "namespace", unique_name("denied"))
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn("forbidden", denied.stderr)


class WithControllersTest(unittest.TestCase):
    """With kube-controller-manager and kube-scheduler, workloads are reconciled."""

    @classmethod
    def setUpClass(cls):
        cls.cp = start_or_skip(cls, controllers=True)

    def test_deployment_gets_a_replicaset(self):
        namespace = unique_name("deploy")
        self.cp.kubectl("create", "namespace", namespace)
        self.cp.kubectl("create", "deployment", "web", "-n", namespace,
                        "--image=registry.k8s.io/pause:3.10", "--replicas=2")

        def replicaset_of_web():
            items = self.cp.kubectl_json("get", "replicasets", "-n", namespace,
                                         "-l", "app=web")["items"]
            return [rs for rs in items
                    if rs["metadata"].get("ownerReferences", [{}])[0].get("name") == "web"]

        replicasets = self.cp.wait_for("the ReplicaSet of deployment web", replicaset_of_web)
        self.assertEqual(len(replicasets), 1)
        self.assertEqual(replicasets[0]["spec"]["replicas"], 2)
        # The ReplicaSet controller then creates the pods; with no nodes they stay Pending.
        pods = self.cp.wait_for(
            "2 pods of deployment web",
            lambda: len(self.cp.kubectl_json("get", "pods", "-n", namespace,
                                             "-l", "app=web")["items"]) == 2)
        self.assertTrue(pods)


if __name__ == "__main__":
    unittest.main()
