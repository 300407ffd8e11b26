"""kubectl top through a real metrics-server scraping vkhost's /metrics/resource.

metrics-server runs as an aggregated API (v1beta1.metrics.k8s.io) beside the
test API server, reaches the virtual node at its InternalIP and kubelet port
like any kubelet, and turns the cumulative CPU counters and working-set
gauges into the figures `kubectl top` prints. The mock plugin's usage is
synthetic but exact (a constant rate per container), so the test compares
kubectl's numbers with the plugin's own stats summary.

Needs a non-loopback IPv4 address (metrics-server's EndpointSlice may not
hold loopback); skipped without one.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_top.py -v
"""

import json
import pathlib
import sys
import unittest
from typing import List

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_kubelet_api import non_loopback_ipv4, proxied_kubelet_args  # noqa: E402
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402

MIB = 1 << 20


@unittest.skipUnless(non_loopback_ipv4(), "needs a non-loopback IPv4 address")
class KubectlTopTest(VkhostTestCase):
    """kubectl top node and kubectl top pod show what the plugin reports."""

    @classmethod
    def vkhost_args(cls) -> List[str]:
        return proxied_kubelet_args(cls.cp)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cp.start_metrics_server(non_loopback_ipv4())

    def top(self, *args: str) -> List[List[str]]:
        """Rows of `kubectl top ... --no-headers`, or [] while metrics are not there yet."""
        result = self.cp.kubectl_run("top", *args, "--no-headers", timeout=60)
        if result.returncode != 0:
            return []
        return [line.split() for line in result.stdout.splitlines() if line.strip()]

    def summary(self) -> dict:
        return json.loads(self.cp.kubectl(
            "get", "--raw", f"/api/v1/nodes/{self.node}/proxy/stats/summary"))

    def test_top_node_shows_the_virtual_node(self):
        namespace = self.make_namespace()
        name = unique_name("top")
        self.create_pod(self.pod_manifest(namespace, name, RUN_FOREVER))
        self.wait_running(namespace, name)
        rows = self.wait("kubectl top node " + self.node, lambda: self.top("node", self.node),
                         timeout=180)
        self.assertEqual(rows[0][0], self.node)
        cpu, memory = rows[0][1], rows[0][3]
        self.assertRegex(cpu, r"^\d+m$")
        self.assertRegex(memory, r"^\d+Mi$")
        node_memory = self.summary()["node"]["memory"]["workingSetBytes"]
        self.assertEqual(int(memory[:-2]), node_memory // MIB)

    def test_top_pod_matches_the_plugins_stats(self):
        namespace = self.make_namespace()
        name = unique_name("top")
        self.create_pod(self.pod_manifest(namespace, name, RUN_FOREVER))
        self.wait_running(namespace, name)
        rows = self.wait(f"kubectl top pod {namespace}/{name}",
                         lambda: self.top("pod", name, "-n", namespace, "--containers"),
                         timeout=180)
        pod_name, container, cpu, memory = rows[0][:4]
        self.assertEqual((pod_name, container), (name, "main"))
        stats = next(p for p in self.summary()["pods"]
                     if p["podRef"]["name"] == name and p["podRef"]["namespace"] == namespace)
        main = next(c for c in stats["containers"] if c["name"] == "main")
        # The mock burns CPU at a constant rate, so metrics-server's rate over
        # two scrapes is that rate; kubectl rounds millicores up.
        expected_millicores = main["cpu"]["usageNanoCores"] / 1e6
        self.assertRegex(cpu, r"^\d+m$")
        self.assertAlmostEqual(int(cpu[:-1]), expected_millicores, delta=1.01)
        self.assertEqual(memory, f"{main['memory']['workingSetBytes'] // MIB}Mi")


if __name__ == "__main__":
    unittest.main()
