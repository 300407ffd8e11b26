"""The process plugin end to end: real pods as local processes, driven by kubectl.

One control plane with the scheduler and kube-controller-manager, one vkhost
launching vkhost-process-plugin with a state dir of its own. The tests run in
order (they share the Deployment): a Deployment of 3 replicas running
`python3 -m http.server` with a readiness probe becomes Ready; port-forward,
logs, exec (env from a ConfigMap and a Secret, a ConfigMap volume's file) and
cp reach the replicas; a `kill -9` of the plugin leaves the workloads running
and the restarted plugin adopts them; a crashing container backs off; an
unknown image fails its pod; deleting the Deployment leaves no process.

Every workload carries the environment variable VKHOST_E2E_MARKER=<random>,
so the tests find its processes in /proc.

Pods share the host network, so each replica listens on the host port the
plugin allocated for its containerPort 8000 (VKHOST_PORT_8000); the readiness
probe and port-forward name port 8000 and the plugin translates.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_PROCESS_PLUGIN=build/bin/vkhost-process-plugin \\
        python3 -m unittest tests/e2e/test_process_plugin.py -v
"""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid
from typing import Callable, List, Optional, Set

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cluster  # noqa: E402

TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists",
              "effect": "NoSchedule"}
TIMEOUT = 90.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def processes_with(marker: str) -> Set[int]:
    """Live (non-zombie) pids whose environment carries VKHOST_E2E_MARKER=<marker>."""
    needle = f"VKHOST_E2E_MARKER={marker}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            found.add(int(entry))
    return found


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (reaped or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:  # no such file, or the process vanished mid-read
        return True


def processes_with_cmdline(text: str) -> Set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.add(int(entry))
    return found


def condition(obj: dict, kind: str) -> Optional[dict]:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == kind:
            return c
    return None


class ProcessPluginTest(unittest.TestCase):
    """Ordered steps on one cluster; each test_NN builds on the earlier ones."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.cp = cluster.ControlPlane(controllers=True)
            cls.cp.start()
        except cluster.BinariesMissingError as e:
            if os.environ.get("VKHOST_E2E_ALLOW_SKIP") == "1":
                raise unittest.SkipTest(str(e))
            raise
        cls.addClassCleanup(cls.cp.stop)
        cls.dir = pathlib.Path(tempfile.mkdtemp(prefix="vkhost-e2e-process-"))
        cls.addClassCleanup(cls._remove_dir)
        cls.state_dir = cls.dir / "state"
        cls.www = cls.dir / "www"
        cls.www.mkdir()
        (cls.www / "index.html").write_text("hello from the process plugin\n")
        cls.marker = uuid.uuid4().hex
        cls.node = unique("vkp")
        plugin = [cluster.built_binary("VKHOST_PROCESS_PLUGIN", "vkhost-process-plugin"),
                  f"--state-dir={cls.state_dir}", "--restart-backoff=1s",
                  "--log-level=debug"]
        cls.vkhost = cluster.VkhostProcess(
            cls.cp.kubeconfig, cls.node, cls.dir, plugin=plugin,
            extra_args=[f"--client-ca-file={cls.cp.ca_cert}"])
        cls.vkhost.start()
        # Last cleanup to run first: nothing of ours may outlive the test.
        cls.addClassCleanup(cls._kill_leftovers)
        cls.addClassCleanup(cls._stop_vkhost)
        cls.addClassCleanup(cls._delete_everything)
        cls.wait_class(f"Node {cls.node} Ready", cls.node_ready)
        cls.namespace = unique("e2e")
        cls.cp.kubectl("create", "namespace", cls.namespace)
        cls.wait_class("the default ServiceAccount", lambda: cls.cp.kubectl_run(
            "get", "serviceaccount", "default", "-n", cls.namespace).returncode == 0)

    # --- class plumbing ---------------------------------------------------

    @classmethod
    def _remove_dir(cls):
        if os.environ.get("VKHOST_E2E_KEEP") == "1":
            print(f"test files kept in {cls.dir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def _delete_everything(cls):
        if not hasattr(cls, "namespace"):
            return
        cls.cp.kubectl_run("delete", "deployment,pod", "--all", "-n", cls.namespace,
                           "--wait=false")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and cls.vkhost.running():
            pods = cls.cp.kubectl_run("get", "pods", "-n", cls.namespace, "-o", "name")
            if pods.returncode == 0 and not pods.stdout.strip():
                break
            time.sleep(0.5)

    @classmethod
    def _stop_vkhost(cls):
        cls.vkhost.stop()

    @classmethod
    def _kill_leftovers(cls):
        # The plugin leaves workloads running when it exits (by design); a
        # failed test must not leave them on the machine.
        for pid in processes_with(cls.marker) | processes_with_cmdline(str(cls.state_dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    @classmethod
    def diagnostics(cls) -> str:
        return f"--- last lines of {cls.vkhost.log_path}:\n{cls.vkhost.log_tail(60)}"

    @classmethod
    def wait_class(cls, what: str, predicate: Callable, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        last = "nothing yet"
        while True:
            if not cls.vkhost.running():
                raise AssertionError(f"vkhost exited while waiting for {what}\n"
                                     f"{cls.diagnostics()}")
            try:
                value = predicate()
                if value:
                    return value
                last = repr(value)
            except cluster.ControlPlaneError as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"last: {last[:1500]}\n{cls.diagnostics()}")
            time.sleep(0.5)

    def wait(self, what: str, predicate: Callable, timeout: float = TIMEOUT):
        return self.wait_class(what, predicate, timeout)

    @classmethod
    def node_ready(cls) -> bool:
        result = cls.cp.kubectl_run("get", "node", cls.node, "-o", "json")
        if result.returncode != 0:
            return False
        ready = condition(json.loads(result.stdout), "Ready")
        return bool(ready and ready.get("status") == "True")

    def apply(self, *objects: dict) -> None:
        self.cp.kubectl("apply", "-n", self.namespace, "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def pods(self, selector: str = "app=web") -> List[dict]:
        return self.cp.kubectl_json("get", "pods", "-n", self.namespace, "-l",
                                    selector)["items"]

    def pod(self, name: str) -> dict:
        return self.cp.kubectl_json("get", "pod", name, "-n", self.namespace)

    def ready_web_pods(self) -> List[dict]:
        pods = [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in pods if (condition(p, "Ready") or {}).get("status") == "True"]
        return ready if len(ready) == 3 else []

    def kubectl(self, *args: str, input: Optional[str] = None) -> subprocess.CompletedProcess:
        return self.cp.kubectl_run(*args, input=input, timeout=60)

    def first_pod(self) -> str:
        return sorted(p["metadata"]["name"] for p in self.ready_web_pods())[0]

    def spec_container(self, name: str, command: List[str], **extra) -> dict:
        container = {"name": name, "image": "python:3.12", "command": command,
                     "env": [{"name": "VKHOST_E2E_MARKER", "value": self.marker}]}
        container.update(extra)
        return container

    # --- the steps ----------------------------------------------------------

    def test_01_deployment_becomes_ready(self):
        self.apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"},
             "data": {"greeting": "hello-from-configmap", "settings.ini": "mode=e2e\n"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret"},
             "stringData": {"password": "s3cret-from-secret"}})
        type(self).config_mount = f"{self.dir}/mnt/config"
        web = self.spec_container(
            "web",
            ["sh", "-c", f'exec {sys.executable} -m http.server "$VKHOST_PORT_8000" '
                         f'--bind 127.0.0.1'],
            workingDir=str(self.www),
            ports=[{"containerPort": 8000}],
            readinessProbe={"httpGet": {"path": "/", "port": 8000},
                            "periodSeconds": 1, "failureThreshold": 3},
        )
        web["env"] += [
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {
                "name": "web-config", "key": "greeting"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {
                "name": "web-secret", "key": "password"}}},
        ]
        web["volumeMounts"] = [{"name": "config", "mountPath": self.config_mount}]
        self.apply({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"tolerations": [TOLERATION],
                             "nodeSelector": {"kubernetes.io/hostname": self.node},
                             "terminationGracePeriodSeconds": 5,
                             "containers": [web],
                             "volumes": [{"name": "config",
                                          "configMap": {"name": "web-config"}}]}}}})
        pods = self.wait("3 Ready replicas of Deployment web", self.ready_web_pods)
        self.wait("Deployment web available", lambda: self.cp.kubectl_json(
            "get", "deployment", "web", "-n", self.namespace)["status"].get(
                "readyReplicas") == 3)
        self.assertEqual(len(processes_with(self.marker)), 3,
                         "want exactly one process per replica")
        for pod in pods:
            self.assertEqual(pod["status"]["containerStatuses"][0]["restartCount"], 0)

    def test_02_port_forward_fetches_a_page_and_logs_show_it(self):
        name = self.first_pod()
        argv = [str(self.cp.bin_dir / "kubectl"), "--kubeconfig", str(self.cp.kubeconfig),
                "port-forward", "-n", self.namespace, f"pod/{name}", ":8000"]
        forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        local_port = []
        ready = threading.Event()

        def read():
            for line in forward.stdout:
                found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> ", line)
                if found and not local_port:
                    local_port.append(int(found.group(1)))
                    ready.set()
            ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            ready.wait(60)
            self.assertTrue(local_port, "kubectl port-forward printed no Forwarding line")
            with urllib.request.urlopen(f"http://127.0.0.1:{local_port[0]}/index.html",
                                        timeout=30) as response:
                body = response.read().decode()
            self.assertEqual(body, "hello from the process plugin\n")
        finally:
            forward.terminate()
            forward.communicate(timeout=30)
            reader.join(10)
        self.wait("the request in kubectl logs", lambda: '"GET /index.html HTTP/1.1" 200'
                  in self.kubectl("logs", "-n", self.namespace, name).stdout)

    def test_03_exec_env_shows_configmap_and_secret_values(self):
        result = self.kubectl("exec", "-n", self.namespace, self.first_pod(), "--", "env")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("GREETING=hello-from-configmap\n", result.stdout)
        self.assertIn("PASSWORD=s3cret-from-secret\n", result.stdout)
        self.assertIn(f"VKHOST_E2E_MARKER={self.marker}\n", result.stdout)

    def test_04_configmap_volume_file_is_readable(self):
        name = self.first_pod()
        # Always available: the volume's directory, exported by the plugin.
        result = self.kubectl("exec", "-n", self.namespace, name, "--", "sh", "-c",
                              'cat "$VKHOST_VOLUME_CONFIG/settings.ini"')
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "mode=e2e\n")
        if "mount namespaces: yes" in self.vkhost.log_text():
            result = self.kubectl("exec", "-n", self.namespace, name, "--", "cat",
                                  f"{self.config_mount}/settings.ini")
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, "mode=e2e\n")

    def test_05_kubectl_cp_in_and_out(self):
        name = self.first_pod()
        inside = self.dir / "cp-target"
        inside.mkdir(exist_ok=True)
        source = self.dir / "to-pod.txt"
        source.write_text("copied through kubectl cp\n" * 100)
        result = self.kubectl("cp", str(source), f"{self.namespace}/{name}:{inside}/in.txt")
        self.assertEqual(result.returncode, 0, result.stderr)
        check = self.kubectl("exec", "-n", self.namespace, name, "--", "cat",
                             f"{inside}/in.txt")
        self.assertEqual(check.stdout, source.read_text())
        back = self.dir / "from-pod.txt"
        result = self.kubectl("cp", f"{self.namespace}/{name}:{inside}/in.txt", str(back))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(back.read_text(), source.read_text())

    def restart_plugin_with(self, signum: int) -> None:
        """Sends `signum` to the plugin; checks that the workloads keep running,
        that vkhost starts the plugin again and that it adopts them."""
        before = processes_with(self.marker)
        self.assertEqual(len(before), 3)
        connections = self.vkhost.plugin_connections()
        self.assertTrue(connections and connections[-1][1], "no plugin pid in vkhost's log")
        generation, plugin_pid = connections[-1]
        mark = self.vkhost.log_size()
        os.kill(plugin_pid, signum)
        self.wait("the plugin to exit", lambda: process_gone(plugin_pid))
        self.assertEqual(processes_with(self.marker), before,
                         "the workloads must survive the plugin")
        self.wait("vkhost to restart the plugin", lambda: any(
            g > generation for g, _ in self.vkhost.plugin_connections(mark)))
        # Give the restarted plugin and the host time to (wrongly) start
        # anything twice, then check that nothing did.
        self.wait("3 Ready replicas after the plugin restart", self.ready_web_pods)
        time.sleep(5)
        self.assertEqual(processes_with(self.marker), before, "nothing may run twice")
        pods = self.ready_web_pods()
        self.assertEqual(len(pods), 3)
        for pod in pods:
            status = pod["status"]["containerStatuses"][0]
            self.assertEqual(status["restartCount"], 0)
            self.assertIn("running", status["state"])
        result = self.kubectl("exec", "-n", self.namespace, self.first_pod(), "--",
                              "echo", "still-here")
        self.assertEqual(result.stdout, "still-here\n", result.stderr)

    def test_06_plugin_kill_leaves_workloads_running_and_adopts_them(self):
        self.restart_plugin_with(signal.SIGKILL)

    def test_06b_plugin_sigterm_leaves_workloads_running_too(self):
        self.restart_plugin_with(signal.SIGTERM)

    def test_07_crashing_container_backs_off(self):
        name = unique("crash")
        self.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                     "terminationGracePeriodSeconds": 1,
                     "containers": [self.spec_container(
                         "crash", ["sh", "-c", "echo about to crash; exit 3"])]}})

        def backing_off():
            statuses = self.pod(name)["status"].get("containerStatuses") or [{}]
            status = statuses[0]
            waiting = status.get("state", {}).get("waiting", {})
            if waiting.get("reason") == "CrashLoopBackOff" and status.get("restartCount", 0) >= 2:
                return status
            return None

        first = self.wait("CrashLoopBackOff with restartCount >= 2", backing_off)
        self.assertEqual(first["lastState"]["terminated"]["exitCode"], 3)
        self.wait("restartCount to grow", lambda: (backing_off() or {}).get(
            "restartCount", 0) > first["restartCount"])
        logs = self.kubectl("logs", "-n", self.namespace, name, "--previous")
        self.assertIn("about to crash", logs.stdout, logs.stderr)
        self.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false")

    def test_08_unknown_image_fails_with_a_clear_reason(self):
        name = unique("noimage")
        image = "example.com/vkhost-e2e/no-such-image:1"
        self.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                     "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": image,
                                     "command": ["true"]}]}})
        pod = self.wait("the pod with an unknown image to fail", lambda: (
            lambda p: p if p["status"].get("phase") == "Failed" else None)(self.pod(name)))
        text = json.dumps(pod["status"])
        self.assertIn(image, text)
        self.assertIn("--image", text)
        self.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false")

    def test_09_attach_reaches_the_main_process(self):
        name = unique("attach")
        self.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                     "terminationGracePeriodSeconds": 1,
                     "containers": [self.spec_container(
                         "main", ["sh", "-c",
                                  'while read line; do echo "got $line"; done'],
                         stdin=True)]}})
        self.wait("the attach pod to run", lambda: self.pod(name)["status"].get(
            "phase") == "Running")
        argv = [str(self.cp.bin_dir / "kubectl"), "--kubeconfig", str(self.cp.kubeconfig),
                "attach", "-i", "-n", self.namespace, name]
        attach = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        output: List[str] = []
        reader = threading.Thread(
            target=lambda: output.extend(iter(attach.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            # kubectl connects asynchronously: repeat the line until it echoes.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any("got ping" in l for l in output):
                attach.stdin.write("ping\n")
                attach.stdin.flush()
                time.sleep(1)
            self.assertTrue(any("got ping" in l for l in output),
                            f"attach output: {output}")
        finally:
            attach.kill()
            attach.communicate(timeout=30)
        # Detaching leaves the process running.
        status = self.pod(name)["status"]["containerStatuses"][0]
        self.assertIn("running", status["state"])
        self.assertEqual(status["restartCount"], 0)
        self.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false")

    def test_09b_port_forward_ends_when_the_pod_closes_first(self):
        # A server that greets and hangs up: the client must see the greeting
        # and then end-of-stream, not a connection left open.
        name = unique("greeter")
        server = ("import os, socket\n"
                  "s = socket.create_server(('127.0.0.1', int(os.environ['VKHOST_PORT_9000'])))\n"
                  "while True:\n"
                  "    c, _ = s.accept()\n"
                  "    c.sendall(b'bye\\n')\n"
                  "    c.close()\n")
        self.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                     "terminationGracePeriodSeconds": 1,
                     "containers": [self.spec_container(
                         "main", [sys.executable, "-c", server],
                         ports=[{"containerPort": 9000}],
                         readinessProbe={"tcpSocket": {"port": 9000}, "periodSeconds": 1})]}})
        self.wait("the greeter to be Ready", lambda: (condition(self.pod(name), "Ready")
                                                      or {}).get("status") == "True")
        argv = [str(self.cp.bin_dir / "kubectl"), "--kubeconfig", str(self.cp.kubeconfig),
                "port-forward", "-n", self.namespace, f"pod/{name}", ":9000"]
        forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        try:
            line = forward.stdout.readline()
            found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> ", line)
            self.assertTrue(found, f"kubectl port-forward printed {line!r}")
            for _ in range(2):  # the session survives a connection the pod ended
                with socket.create_connection(("127.0.0.1", int(found.group(1))),
                                              timeout=20) as conn:
                    received = b""
                    while True:
                        chunk = conn.recv(4096)  # socket.timeout if the end never comes
                        if not chunk:
                            break
                        received += chunk
                self.assertEqual(received, b"bye\n")
        finally:
            forward.terminate()
            forward.communicate(timeout=30)
        self.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false")

    def test_09c_logs_follow_streams_new_lines(self):
        name = unique("ticker")
        self.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                     "terminationGracePeriodSeconds": 1,
                     "containers": [self.spec_container(
                         "main", ["sh", "-c",
                                  "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.5; done"])]}})
        self.wait("the ticker to run", lambda: self.pod(name)["status"].get("phase") == "Running")
        argv = [str(self.cp.bin_dir / "kubectl"), "--kubeconfig", str(self.cp.kubeconfig),
                "logs", "-f", "--tail=1", "-n", self.namespace, name]
        follow = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watchdog = threading.Timer(60, follow.kill)  # a stalled stream fails, not hangs
        watchdog.start()
        try:
            first = int(follow.stdout.readline().split()[1])
            # Lines written after kubectl attached keep arriving, in order.
            later = [int(follow.stdout.readline().split()[1]) for _ in range(4)]
            self.assertEqual(later, list(range(first + 1, first + 5)))
        finally:
            watchdog.cancel()
            follow.kill()
            follow.communicate(timeout=30)
        self.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false")

    def test_10_failing_liveness_probe_restarts_the_container(self):
        name = unique("liveness")
        self.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": self.node, "tolerations": [TOLERATION],
                     "terminationGracePeriodSeconds": 1,
                     "containers": [self.spec_container(
                         "main", ["sleep", "300"],
                         livenessProbe={"exec": {"command": ["false"]},
                                        "periodSeconds": 1, "failureThreshold": 2})]}})
        status = self.wait("a restart after the liveness probe failed", lambda: (
            lambda s: s if s.get("restartCount", 0) >= 1 else None)(
                (self.pod(name)["status"].get("containerStatuses") or [{}])[0]))
        self.assertIn("terminated", status.get("lastState", {}))
        self.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false")

    def test_11_stats_summary_reports_the_replicas(self):
        names = {p["metadata"]["name"] for p in self.ready_web_pods()}

        # Straight to vkhost's kubelet port with the admin's client certificate:
        # the API server does not proxy to the loopback node IP.
        user = json.loads(pathlib.Path(self.cp.kubeconfig).read_text())["users"][0]["user"]
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # vkhost's serving certificate is self-signed
        context.load_cert_chain(user["client-certificate"], user["client-key"])

        def stats():
            url = f"https://127.0.0.1:{self.vkhost.kubelet_port}/stats/summary"
            with urllib.request.urlopen(url, context=context, timeout=30) as answer:
                summary = json.loads(answer.read())
            pods = [p for p in summary.get("pods", [])
                    if p.get("podRef", {}).get("name") in names]
            containers = [c for p in pods for c in p.get("containers", [])]
            ok = len(containers) == 3 and all(
                c.get("memory", {}).get("rssBytes", 0) > 0
                and "usageCoreNanoSeconds" in c.get("cpu", {}) for c in containers)
            return summary if ok else None

        summary = self.wait("stats of the 3 replicas", stats)
        self.assertGreater(summary["node"]["memory"].get("availableBytes", 0), 0)

    def test_12_deleting_the_deployment_leaves_no_process(self):
        result = self.kubectl("delete", "deployment", "web", "-n", self.namespace)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.wait("the web pods to be gone", lambda: not self.pods())
        self.wait("every other pod to be gone", lambda: not self.cp.kubectl_json(
            "get", "pods", "-n", self.namespace)["items"])
        self.wait("no process carrying the marker", lambda: not processes_with(self.marker),
                  timeout=30)
        self.assertFalse(processes_with_cmdline(f"{self.state_dir}/pods/"),
                         "a container shim is left behind")


if __name__ == "__main__":
    unittest.main()
