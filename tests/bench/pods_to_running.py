#!/usr/bin/env python3
"""Benchmark: how fast vkhost brings pods to Running, and what it costs.

Starts the test control plane (tests/e2e/cluster.py), vkhost with the mock
plugin, creates N pods bound to the virtual node, waits until every one is
Running and Ready, and prints figures: creation and end-to-end throughput,
time-to-Ready percentiles (creationTimestamp to the Ready condition, whole
seconds as the API stores them), vkhost's peak and final RSS, then deletes
them all and prints the deletion rate. Figures only: nothing here asserts.

    python3 tests/bench/pods_to_running.py --pods 5000 [--workers 10]

Binaries come from VKHOST_BIN / VKHOST_MOCK_PLUGIN (default build/bin/...).
The same script pointed at upstream virtual-kubelet gives the comparison.
"""
import argparse
import datetime
import json
import pathlib
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))
import cluster  # noqa: E402


def rss_kib(pid: int) -> int:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def pod_manifest(namespace: str, node: str, count: int) -> str:
    items = []
    for i in range(count):
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"bench-{i:05d}", "namespace": namespace},
            "spec": {
                "nodeName": node,
                "automountServiceAccountToken": False,
                "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                "containers": [{"name": "app", "image": "bench:1"}],
            },
        })
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def count_ready(cp, namespace):
    pods = cp.kubectl_json("get", "pods", "-n", namespace, "-o", "json")["items"]
    ready = [p for p in pods
             if p.get("status", {}).get("phase") == "Running"
             and any(c["type"] == "Ready" and c["status"] == "True"
                     for c in p["status"].get("conditions", []))]
    return pods, ready


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    with cluster.ControlPlane(controllers=False) as cp, \
            tempfile.TemporaryDirectory(prefix="vkhost-bench-") as tmp:
        ns, node = "bench", "vk-bench"
        cp.kubectl("create", "namespace", ns)
        cp.kubectl("create", "serviceaccount", "default", "-n", ns)
        vk = cluster.VkhostProcess(
            cp.kubeconfig, node, pathlib.Path(tmp),
            plugin=[cluster.built_binary("VKHOST_MOCK_PLUGIN", "vkhost-mock-plugin"),
                    "--running-delay=0s", "--log-interval=1h"],
            extra_args=[f"--pod-workers={args.workers}", "--log-level=info"])
        vk.start()
        cp.wait_for(f"node {node} to register",
                    lambda: cp.kubectl_run("get", "node", node).returncode == 0, 60)
        cp.kubectl("wait", "--for=condition=Ready", f"node/{node}", "--timeout=60s")

        peak = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(vk.pid))
                time.sleep(0.5)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        idle_rss = rss_kib(vk.pid)

        start = time.monotonic()
        cp.kubectl("create", "-f", "-", input=pod_manifest(ns, node, args.pods))
        created = time.monotonic() - start
        while True:
            pods, ready = count_ready(cp, ns)
            if len(ready) >= args.pods:
                break
            if time.monotonic() - start > args.timeout:
                print(f"timeout: {len(ready)}/{args.pods} ready", file=sys.stderr)
                return 1
            time.sleep(1)
        running = time.monotonic() - start
        latencies = []
        for p in ready:
            born = parse_time(p["metadata"]["creationTimestamp"])
            cond = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
            latencies.append((parse_time(cond["lastTransitionTime"]) - born).total_seconds())
        loaded_rss = rss_kib(vk.pid)

        start_delete = time.monotonic()
        cp.kubectl("delete", "pods", "--all", "-n", ns, "--wait=false")
        while cp.kubectl_json("get", "pods", "-n", ns, "-o", "json")["items"]:
            if time.monotonic() - start_delete > args.timeout:
                print("timeout waiting for deletions", file=sys.stderr)
                return 1
            time.sleep(1)
        deleted = time.monotonic() - start_delete
        stop.set()
        sampler.join()

        print(f"pods                      {args.pods} (workers {args.workers})")
        print(f"created by kubectl in     {created:.1f} s ({args.pods / created:.0f} pods/s)")
        print(f"all Running+Ready after   {running:.1f} s ({args.pods / running:.0f} pods/s)")
        print("time to Ready (s)         p50 {:.0f}  p90 {:.0f}  p99 {:.0f}  max {:.0f}".format(
            percentile(latencies, 50), percentile(latencies, 90),
            percentile(latencies, 99), max(latencies)))
        print(f"all deleted after         {deleted:.1f} s ({args.pods / deleted:.0f} pods/s)")
        print(f"vkhost RSS (MiB)          idle {idle_rss / 1024:.0f}  with pods "
              f"{loaded_rss / 1024:.0f}  peak {peak[0] / 1024:.0f}")
        vk.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
