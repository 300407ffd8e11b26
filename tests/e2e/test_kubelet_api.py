"""The kubelet API of vkhost as the real API server and kubectl reach it.

vkhost serves the kubelet API on its node's port with a self-signed
certificate, checks the API server's kubelet-client certificate against the
test CA (--client-ca-file) and authorizes with SubjectAccessReview. The tests
go through kubectl and kube-apiserver exactly as a user would, plus direct
requests for the authentication and authorization answers.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_kubelet_api.py -v
"""

import json
import re
import socket
import ssl
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request
import pathlib
from typing import List, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_vkhost import RUN_FOREVER, VkhostTestCase, unique_name  # noqa: E402

def non_loopback_ipv4() -> Optional[str]:
    """This machine's primary IPv4 address, or None when it has only loopback."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def proxied_kubelet_args(cp) -> List[str]:
    """vkhost flags for a kubelet API that kube-apiserver calls.

    vkhost trusts the API server's kubelet-client certificate. The node
    advertises this machine's own address when it has one, because the API
    server refuses to proxy /api/v1/nodes/<node>/proxy/... to a loopback
    address (the kubelet port listens on every address).
    """
    args = [f"--client-ca-file={cp.ca_cert}"]
    node_ip = non_loopback_ipv4()
    if node_ip:
        args.append(f"--node-ip={node_ip}")
    return args


RFC3339_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")


class KubeletApiTest(VkhostTestCase):
    """kubectl logs and the node proxy reach the plugin through vkhost."""

    # Log lines come every 100 ms, so tails and follows have material fast.
    MOCK_ARGS = ["--log-interval=100ms"]

    @classmethod
    def vkhost_args(cls) -> List[str]:
        cls.node_ip = non_loopback_ipv4()
        return proxied_kubelet_args(cls.cp)

    def running_pod(self) -> tuple:
        namespace = self.make_namespace()
        name = unique_name("logs")
        self.create_pod(self.pod_manifest(namespace, name, RUN_FOREVER))
        self.wait_running(namespace, name)
        # Let a few lines accumulate.
        self.wait(f"log lines of {namespace}/{name}", lambda: len(
            self.cp.kubectl("logs", name, "-n", namespace).splitlines()) >= 5)
        return namespace, name

    def kubelet_get(self, path: str, token: Optional[str] = None) -> tuple:
        """GET straight to vkhost's kubelet port; returns (status, body)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the serving certificate is self-signed
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.vkhost.kubelet_port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_logs_plain_tail_timestamps(self):
        namespace, name = self.running_pod()
        lines = self.cp.kubectl("logs", name, "-n", namespace).splitlines()
        self.assertTrue(all(f"{namespace}/{name}/main" in line for line in lines), lines[:3])

        tail = self.cp.kubectl("logs", name, "-n", namespace, "--tail=2").splitlines()
        self.assertEqual(len(tail), 2, tail)

        stamped = self.cp.kubectl("logs", name, "-n", namespace, "--timestamps",
                                  "--tail=3").splitlines()
        self.assertEqual(len(stamped), 3, stamped)
        for line in stamped:
            self.assertRegex(line, RFC3339_PREFIX)

        recent = self.cp.kubectl("logs", name, "-n", namespace, "--since=1h").splitlines()
        self.assertGreaterEqual(len(recent), len(lines))

        limited = self.cp.kubectl("logs", name, "-n", namespace, "--limit-bytes=10")
        self.assertEqual(len(limited.encode()), 10, repr(limited))

    def test_logs_follow_streams_new_lines(self):
        namespace, name = self.running_pod()
        with subprocess.Popen(
                [str(self.cp.bin_dir / "kubectl"), f"--kubeconfig={self.cp.kubeconfig}",
                 "logs", "-f", "--tail=1", name, "-n", namespace],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follow:
            self.check_follow(follow)

    def check_follow(self, follow: subprocess.Popen):
        try:
            seen = []
            deadline = time.monotonic() + 30
            while len(seen) < 5 and time.monotonic() < deadline:
                line = follow.stdout.readline()
                if not line:
                    break
                seen.append(line)
            self.assertGreaterEqual(len(seen), 5, f"follow gave {seen}; "
                                    f"stderr: {follow.stderr.read() if follow.poll() else ''}")
            # The numbers keep growing: these lines were written after -f began.
            numbers = [int(re.search(r"line (\d+)", s).group(1)) for s in seen]
            self.assertEqual(numbers, sorted(numbers))
            self.assertGreater(numbers[-1], numbers[0])
        finally:
            follow.kill()
            follow.wait()

    def test_logs_of_unknown_container_is_an_error(self):
        namespace, name = self.running_pod()
        result = self.cp.kubectl_run("logs", name, "-n", namespace, "-c", "nope")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("nope", result.stderr)

    def test_stats_summary_and_resource_metrics_through_the_node_proxy(self):
        if not self.node_ip:
            self.skipTest("this machine has no non-loopback IPv4 address, and the API "
                          "server does not proxy to loopback addresses")
        namespace, name = self.running_pod()
        summary = json.loads(self.cp.kubectl(
            "get", "--raw", f"/api/v1/nodes/{self.node}/proxy/stats/summary"))
        self.assertEqual(summary["node"]["nodeName"], self.node)
        pods = {(p["podRef"]["namespace"], p["podRef"]["name"]) for p in summary["pods"]}
        self.assertIn((namespace, name), pods)

        metrics = self.cp.kubectl(
            "get", "--raw", f"/api/v1/nodes/{self.node}/proxy/metrics/resource")
        self.assertIn("node_cpu_usage_seconds_total", metrics)
        self.assertRegex(metrics, r'container_memory_working_set_bytes\{container="main",'
                                  rf'namespace="{namespace}",pod="{name}"\}} ')

        healthz = self.cp.kubectl("get", "--raw", f"/api/v1/nodes/{self.node}/proxy/healthz")
        self.assertEqual(healthz.strip(), "ok")

    def test_requests_without_credentials_get_401(self):
        status, body = self.kubelet_get("/pods")
        self.assertEqual(status, 401, body)

    def test_token_without_rbac_rights_gets_403(self):
        namespace = self.make_namespace()
        self.cp.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
        token = self.cp.kubectl("create", "token", "nobody", "-n", namespace).strip()
        status, body = self.kubelet_get("/pods", token=token)
        self.assertEqual(status, 403, body)
        self.assertIn("Forbidden", body)
        # The same token with the right to proxy to nodes gets through.
        role = unique_name("node-proxy")
        self.cp.kubectl("create", "clusterrole", role, "--verb=get,create",
                        "--resource=nodes/proxy")
        self.cp.kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}",
                        f"--serviceaccount={namespace}:nobody")
        self.wait("the RBAC grant to apply", lambda: self.kubelet_get(
            "/healthz", token=token)[0] == 200)


if __name__ == "__main__":
    unittest.main()
