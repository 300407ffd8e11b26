#!/usr/bin/env python3
"""Benchmark: how fast vkhost brings pods to Running, and what it costs.

Starts the test control plane (tests/e2e/cluster.py), vkhost with the mock
plugin, creates N pods bound to the virtual node, waits until every one is
Running and Ready, and prints figures: creation and end-to-end throughput,
time-to-Ready percentiles (creationTimestamp to the Ready condition, whole
seconds as the API stores them), vkhost's peak and final RSS, then deletes
them all and prints the deletion rate. Figures only: nothing here asserts.

    python3 tests/bench/pods_to_running.py --pods 5000 [--workers 10] [--qps 50 --burst 100]
    python3 tests/bench/pods_to_running.py --pods 5000 --upstream "$(tests/bench/build-upstream.sh)"

Binaries come from VKHOST_BIN / VKHOST_MOCK_PLUGIN (default build/bin/...).
`--upstream BINARY` runs the same scenario against upstream virtual-kubelet
with its built-in mock provider instead (the "node" lines then describe it).
Upstream has no client rate-limit flags and uses client-go's defaults
(5 QPS, burst 10); `--qps 5 --burst 10` gives vkhost the same budget.
"""
import argparse
import collections
import datetime
import json
import pathlib
import re
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


def ready_time(pod: dict):
    """When the pod became Ready; upstream's mock leaves lastTransitionTime
    unset, so its containers' startedAt stands in. None if neither is there."""
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    if cond.get("lastTransitionTime"):
        return parse_time(cond["lastTransitionTime"])
    started = [s["state"]["running"]["startedAt"]
               for s in pod["status"].get("containerStatuses", [])
               if s.get("state", {}).get("running", {}).get("startedAt")]
    return max(map(parse_time, started)) if started else None


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
REQUEST_TOTAL = re.compile(r'^apiserver_request_total\{([^}]*)\} (\d+(?:\.\d+)?)$')


def api_writes(cp) -> collections.Counter:
    """Write requests the API server has served, by "VERB resource[/subresource]".

    The benchmark's only writers are kubectl (creating and deleting the pods)
    and the node under test, so differences between two readings are mostly
    the node's work.
    """
    counts = collections.Counter()
    for line in cp.kubectl("get", "--raw", "/metrics").splitlines():
        match = REQUEST_TOTAL.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if labels.get("verb") not in WRITE_VERBS:
            continue
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[f"{labels['verb']} {resource}"] += int(float(match.group(2)))
    return counts


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


def start_node(cp, node: str, tmp: pathlib.Path, args) -> cluster.LoggedProcess:
    """Starts vkhost with the mock plugin, or upstream virtual-kubelet with its mock."""
    if args.upstream:
        return start_upstream(cp, node, tmp, args)
    extra = [f"--pod-workers={args.workers}", "--log-level=info"]
    if args.qps is not None:
        extra.append(f"--kube-api-qps={args.qps}")
    if args.burst is not None:
        extra.append(f"--kube-api-burst={args.burst}")
    vk = cluster.VkhostProcess(
        cp.kubeconfig, node, tmp,
        plugin=[cluster.built_binary("VKHOST_MOCK_PLUGIN", "vkhost-mock-plugin"),
                "--running-delay=0s", "--log-interval=1h"],
        extra_args=extra)
    vk.start()
    return vk


def start_upstream(cp, node: str, tmp: pathlib.Path, args) -> cluster.LoggedProcess:
    # Upstream takes its serving certificate, node IP and port from the
    # environment and the mock's capacity from a JSON file keyed by node.
    (tmp / "pki").mkdir()
    cert, key = cluster.CertificateAuthority(tmp / "pki").issue(
        "upstream", node, server_names=["127.0.0.1"])
    config = tmp / "mock-provider.json"
    config.write_text(json.dumps({node: {"cpu": "1000", "memory": "4Ti",
                                         "pods": str(max(110, args.pods))}}))
    env = [f"KUBECONFIG={cp.kubeconfig}", "VKUBELET_POD_IP=127.0.0.1",
           f"KUBELET_PORT={cluster.free_port()}",
           f"APISERVER_CERT_LOCATION={cert}", f"APISERVER_KEY_LOCATION={key}"]
    vk = cluster.LoggedProcess("virtual-kubelet", [
        "env", *env, args.upstream, "--provider=mock", f"--provider-config={config}",
        f"--nodename={node}", f"--pod-sync-workers={args.workers}",
        f"--metrics-addr=127.0.0.1:{cluster.free_port()}"], tmp / "virtual-kubelet.log")
    vk.start()
    return vk


def describe(args) -> str:
    if args.upstream:
        return "upstream virtual-kubelet, mock provider (client-go default 5 QPS, burst 10)"
    return "vkhost + vkhost-mock-plugin (--kube-api-qps {}, --kube-api-burst {})".format(
        args.qps if args.qps is not None else "50 default",
        args.burst if args.burst is not None else "100 default")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--qps", type=float, default=None, help="vkhost --kube-api-qps")
    parser.add_argument("--burst", type=int, default=None, help="vkhost --kube-api-burst")
    parser.add_argument("--upstream", metavar="BINARY", default=None,
                        help="benchmark upstream virtual-kubelet (mock provider) instead")
    args = parser.parse_args()

    with cluster.ControlPlane(controllers=False) as cp, \
            tempfile.TemporaryDirectory(prefix="vkhost-bench-") as tmp:
        ns, node = "bench", "vk-bench"
        cp.kubectl("create", "namespace", ns)
        cp.kubectl("create", "serviceaccount", "default", "-n", ns)
        vk = start_node(cp, node, pathlib.Path(tmp), args)
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
        writes_before = api_writes(cp)

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
            ready_at = ready_time(p)
            if ready_at:
                born = parse_time(p["metadata"]["creationTimestamp"])
                latencies.append((ready_at - born).total_seconds())
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
        writes = api_writes(cp)
        writes.subtract(writes_before)
        # kubectl's own: the POST creating each pod and the DELETE starting
        # its graceful deletion; the node's DELETE ends it.
        writes["POST pods"] -= args.pods
        writes["DELETE pods"] -= args.pods
        node_writes = {k: v for k, v in writes.items() if v > 0}

        print(f"node                      {describe(args)}")
        print(f"pods                      {args.pods} (workers {args.workers})")
        print(f"created by kubectl in     {created:.1f} s ({args.pods / created:.0f} pods/s)")
        print(f"all Running+Ready after   {running:.1f} s ({args.pods / running:.0f} pods/s)")
        if latencies:
            print("time to Ready (s)         p50 {:.0f}  p90 {:.0f}  p99 {:.0f}  max {:.0f}".format(
                percentile(latencies, 50), percentile(latencies, 90),
                percentile(latencies, 99), max(latencies)))
        print(f"all deleted after         {deleted:.1f} s ({args.pods / deleted:.0f} pods/s)")
        print(f"node RSS (MiB)            idle {idle_rss / 1024:.0f}  with pods "
              f"{loaded_rss / 1024:.0f}  peak {peak[0] / 1024:.0f}")
        print("API writes per pod        " + "  ".join(
            f"{k} {v / args.pods:.2f}" for k, v in sorted(node_writes.items())))
        vk.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
