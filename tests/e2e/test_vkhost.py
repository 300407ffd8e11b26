"""vkhost against a real API server: the node, its Lease and the pod lifecycle.

Each test class starts its own control plane (etcd + kube-apiserver, no
controllers: tests bind pods with spec.nodeName and create what the
controllers would, the `default` ServiceAccount and the `kube-root-ca.crt`
ConfigMap) and one vkhost running the mock plugin, which records every
CreatePod/UpdatePod/DeletePod request it receives (--record-file). Tests
assert on what kubectl shows and on what the plugin received.

Run from the repository root:
    VKHOST_BIN=build/bin/vkhost VKHOST_MOCK_PLUGIN=build/bin/vkhost-mock-plugin \\
        python3 -m unittest tests/e2e/test_vkhost.py -v
Needs the control-plane binaries (scripts/setup); VKHOST_E2E_ALLOW_SKIP=1 skips
instead of failing when they are missing. VKHOST_E2E_KEEP=1 keeps the temp
dirs (vkhost and control-plane logs, record files).
"""

import base64
import json
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import time
import unittest
import uuid
from typing import Callable, List, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cluster  # noqa: E402

PROVIDER_TAINT_KEY = "virtual-kubelet.io/provider"
TOLERATION = {"key": PROVIDER_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
IMAGE = "registry.k8s.io/pause:3.10"
# A long-running container for the mock (any unknown command runs forever).
RUN_FOREVER = ["serve"]

# Generous: the machine may be busy with other tests.
POD_TIMEOUT = 60.0
# The node renews its Lease every 10 s and re-reads its Node as often.
RENEW_TIMEOUT = 30.0


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def decode_bytes(value: str) -> str:
    """A protobuf `bytes` field as JSON (base64) → text."""
    return base64.b64decode(value).decode()


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def condition(obj: dict, kind: str) -> Optional[dict]:
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == kind:
            return c
    return None


class VkhostTestCase(unittest.TestCase):
    """One control plane and one vkhost with the mock plugin per class.

    Subclasses may set PLUGIN_MODE = "connect" to start the mock themselves
    on a unix socket and have vkhost dial it, and MOCK_ARGS for more mock
    flags, or override plugin_command() to run another plugin.
    """

    PLUGIN_MODE = "launch"
    MOCK_ARGS: List[str] = []

    @classmethod
    def vkhost_args(cls) -> List[str]:
        """More vkhost flags; called once the control plane runs."""
        return []

    @classmethod
    def plugin_command(cls) -> List[str]:
        """The plugin's argv: the mock, unless a subclass runs another plugin
        (called once the control plane runs and cls.dir exists)."""
        return [cluster.built_binary("VKHOST_MOCK_PLUGIN", "vkhost-mock-plugin"),
                f"--record-file={cls.record_file}", *cls.MOCK_ARGS]

    @classmethod
    def vkhost_kubeconfig(cls) -> pathlib.Path:
        """vkhost's credentials; admin unless a subclass narrows them."""
        return cls.cp.kubeconfig

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
        cls.dir = pathlib.Path(tempfile.mkdtemp(prefix="vkhost-e2e-"))
        cls.addClassCleanup(cls._remove_dir)
        cls.record_file = cls.dir / "mock-requests.jsonl"
        cls.node = unique_name("vk")
        mock = cls.plugin_command()
        cls.plugin = None
        if cls.PLUGIN_MODE == "connect":
            cls.socket = cls.dir / "p.sock"
            cls.plugin = cluster.LoggedProcess(
                "vkhost-mock-plugin", [*mock, f"--listen=unix://{cls.socket}"],
                cls.dir / "mock-plugin.log")
            cls.plugin.start()
            cls.addClassCleanup(cls.plugin.stop)
            cls.vkhost = cluster.VkhostProcess(cls.vkhost_kubeconfig(), cls.node, cls.dir,
                                               plugin_endpoint=f"unix://{cls.socket}",
                                               extra_args=cls.vkhost_args())
        else:
            cls.vkhost = cluster.VkhostProcess(cls.vkhost_kubeconfig(), cls.node, cls.dir,
                                               plugin=mock, extra_args=cls.vkhost_args())
        cls.vkhost.start()
        cls.addClassCleanup(cls._stop_vkhost)
        cls.wait_class("Node %s Ready" % cls.node, lambda: cls.node_ready(cls.node))

    @classmethod
    def _stop_vkhost(cls):
        code = cls.vkhost.stop()
        if code not in (0, None):
            print(f"\nvkhost exited with code {code} on SIGTERM; log tail:\n"
                  f"{cls.vkhost.log_tail()}", file=sys.stderr)

    @classmethod
    def _remove_dir(cls):
        if os.environ.get("VKHOST_E2E_KEEP") == "1":
            print(f"vkhost test files kept in {cls.dir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.dir, ignore_errors=True)

    # Waiting ---------------------------------------------------------------

    @classmethod
    def diagnostics(cls) -> str:
        parts = [f"--- last lines of {cls.vkhost.log_path}:\n{cls.vkhost.log_tail()}"]
        if cls.plugin is not None:
            parts.append(f"--- last lines of {cls.plugin.log_path}:\n"
                         f"{cls.plugin.log_tail(15)}")
        if not cls.vkhost.running():
            parts.insert(0, f"vkhost is not running (exit code {cls.vkhost.exit_code()})")
        return "\n".join(parts)

    @classmethod
    def wait_class(cls, what: str, predicate: Callable, timeout: float = POD_TIMEOUT):
        """Polls predicate() until truthy and returns that value.

        kubectl errors count as "not yet" (the API server may be restarting).
        On timeout, or at once if vkhost has exited, raises AssertionError
        naming `what`, the last thing observed and the tail of vkhost's log.
        """
        deadline = time.monotonic() + timeout
        last = "nothing observed yet"
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
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; last: {last[:2000]}\n"
                    f"{cls.diagnostics()}")
            time.sleep(0.5)

    def wait(self, what: str, predicate: Callable, timeout: float = POD_TIMEOUT):
        return self.wait_class(what, predicate, timeout)

    # Cluster helpers -----------------------------------------------------------

    @classmethod
    def node_ready(cls, node: str) -> Optional[dict]:
        """The Node if it exists and its Ready condition is True."""
        result = cls.cp.kubectl_run("get", "node", node, "-o", "json")
        if result.returncode != 0:
            return None
        obj = json.loads(result.stdout)
        ready = condition(obj, "Ready")
        return obj if ready and ready.get("status") == "True" else None

    def lease(self) -> dict:
        return self.cp.kubectl_json("get", "lease", self.node, "-n", "kube-node-lease")

    def make_namespace(self) -> str:
        """A fresh namespace with what kube-controller-manager would put in it."""
        namespace = unique_name("e2e")
        ca = pathlib.Path(self.cp.ca_cert).read_text()
        self.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
        self.apply([
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": "default", "namespace": namespace}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
             "data": {"ca.crt": ca}}])
        return namespace

    def apply(self, objects: List[dict]) -> None:
        self.cp.kubectl("apply", "-f", "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    def pod_manifest(self, namespace: str, name: str, command: List[str],
                     restart_policy: str = "Always", **extra) -> dict:
        container = {"name": "main", "image": IMAGE, "command": command}
        container.update(extra.pop("container", {}))
        spec = {"nodeName": self.node, "tolerations": [TOLERATION],
                "restartPolicy": restart_policy, "containers": [container],
                "terminationGracePeriodSeconds": 5}
        spec.update(extra)
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}

    def create_pod(self, manifest: dict) -> str:
        """Creates the pod; returns its UID."""
        created = json.loads(self.cp.kubectl("create", "-o", "json", "-f", "-",
                                             input=json.dumps(manifest)))
        return created["metadata"]["uid"]

    def get_pod(self, namespace: str, name: str) -> Optional[dict]:
        result = self.cp.kubectl_run("get", "pod", name, "-n", namespace, "-o", "json")
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise cluster.KubectlError(("get", "pod", name), result.returncode,
                                       result.stdout, result.stderr)
        return json.loads(result.stdout)

    def wait_pod(self, namespace: str, name: str, what: str, predicate: Callable[[dict], bool],
                 timeout: float = POD_TIMEOUT) -> dict:
        """Waits until pod `name` satisfies predicate(pod); returns the pod."""
        observed = {}

        def check():
            pod = self.get_pod(namespace, name)
            observed["status"] = pod and pod.get("status")
            return pod if pod and predicate(pod) else None

        try:
            return self.wait(f"pod {namespace}/{name} {what}", check, timeout)
        except AssertionError as e:
            raise AssertionError(
                f"{e}\n--- pod status: {json.dumps(observed.get('status'))}\n"
                f"--- events: {self.event_summary(namespace, name)}") from None

    def wait_running(self, namespace: str, name: str, timeout: float = POD_TIMEOUT) -> dict:
        return self.wait_pod(namespace, name, "Running and Ready", lambda pod: (
            pod["status"].get("phase") == "Running"
            and (condition(pod, "Ready") or {}).get("status") == "True"), timeout)

    def events(self, namespace: str, name: str) -> List[dict]:
        return self.cp.kubectl_json(
            "get", "events", "-n", namespace,
            "--field-selector", f"involvedObject.kind=Pod,involvedObject.name={name}")["items"]

    def event_summary(self, namespace: str, name: str) -> str:
        try:
            return "; ".join(f"{e.get('type')} {e.get('reason')}: {e.get('message')}"
                             for e in self.events(namespace, name)) or "(none)"
        except cluster.ControlPlaneError as e:
            return f"(cannot list: {e})"

    # What the plugin received ------------------------------------------------

    @classmethod
    def records(cls, rpc: Optional[str] = None, uid: Optional[str] = None,
                since: int = 0) -> List[dict]:
        """Requests the mock recorded from byte offset `since` on, optionally
        only `rpc` for pod `uid`; each is the request message as JSON."""
        try:
            with open(cls.record_file, "rb") as f:
                f.seek(since)
                lines = f.read().decode().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if rpc and record["rpc"] != rpc:
                continue
            request = record["request"]
            pod_uid = request.get("pod", {}).get("uid")
            if uid and pod_uid != uid:
                continue
            out.append(request)
        return out

    @classmethod
    def record_size(cls) -> int:
        try:
            return cls.record_file.stat().st_size
        except FileNotFoundError:
            return 0


class NodeAndPodLifecycleTest(VkhostTestCase):
    """The node and the ordinary life of pods, with nothing going wrong."""

    REJECTED_IMAGE = "example.com/vkhost-e2e/rejected:1"
    MOCK_ARGS = [f"--reject-image={REJECTED_IMAGE}"]

    def test_node_is_ready_with_labels_taint_endpoint_and_address(self):
        node = self.wait(f"Node {self.node} Ready", lambda: self.node_ready(self.node))
        labels = node["metadata"]["labels"]
        self.assertEqual(labels.get("type"), "virtual-kubelet")
        self.assertEqual(labels.get("kubernetes.io/role"), "agent")
        self.assertEqual(labels.get("kubernetes.io/hostname"), self.node)
        self.assertEqual(labels.get("kubernetes.io/os"), "linux")
        self.assertIn({"key": PROVIDER_TAINT_KEY, "value": "mock", "effect": "NoSchedule"},
                      node["spec"].get("taints", []))
        self.assertEqual(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
                         self.vkhost.kubelet_port)
        self.assertIn({"type": "InternalIP", "address": "127.0.0.1"},
                      node["status"].get("addresses", []))
        self.assertTrue(node["status"].get("capacity", {}).get("pods"))
        self.assertTrue(node["status"].get("nodeInfo", {}).get("kubeletVersion"))

    def test_lease_is_renewed(self):
        lease = self.wait("the node's Lease", lambda: self.cp.kubectl_json(
            "get", "lease", "-n", "kube-node-lease", "--field-selector",
            f"metadata.name={self.node}")["items"])[0]
        self.assertEqual(lease["spec"].get("holderIdentity"), self.node)
        self.assertGreater(lease["spec"].get("leaseDurationSeconds", 0), 0)
        owners = lease["metadata"].get("ownerReferences", [])
        self.assertEqual([(o.get("kind"), o.get("name")) for o in owners],
                         [("Node", self.node)])
        first = lease["spec"]["renewTime"]
        renewed = self.wait("the Lease's renewTime to advance",
                            lambda: self.lease()["spec"]["renewTime"] != first and self.lease(),
                            timeout=RENEW_TIMEOUT)
        self.assertGreater(renewed["spec"]["renewTime"], first)

    def test_pod_reaches_running_with_conditions_ip_and_container_status(self):
        namespace = self.make_namespace()
        uid = self.create_pod(self.pod_manifest(namespace, "web", RUN_FOREVER))
        pod = self.wait_running(namespace, "web")
        status = pod["status"]
        for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
            with self.subTest(condition=kind):
                self.assertEqual((condition(pod, kind) or {}).get("status"), "True", status)
        self.assertTrue(status.get("podIP"), status)
        self.assertEqual([ip.get("ip") for ip in status.get("podIPs", [])][:1],
                         [status.get("podIP")])
        self.assertEqual(status.get("hostIP"), "127.0.0.1")
        self.assertTrue(status.get("startTime"), status)
        [container] = status["containerStatuses"]
        self.assertEqual(container["name"], "main")
        self.assertIs(container["ready"], True)
        self.assertIs(container["started"], True)
        self.assertIn("startedAt", container["state"].get("running", {}), container)
        self.assertEqual(container["restartCount"], 0)
        self.assertTrue(container.get("containerID"), container)
        self.assertEqual(container["image"], IMAGE)
        reasons = self.wait("Created and Started events", lambda: (
            {"Created", "Started"} <= {e["reason"] for e in self.events(namespace, "web")}
            and {e["reason"] for e in self.events(namespace, "web")}))
        self.assertTrue({"Created", "Started"} <= reasons)
        self.assertEqual(len(self.records("CreatePod", uid)), 1)

    def test_env_and_volumes_from_configmap_secret_and_token_reach_the_plugin(self):
        namespace = self.make_namespace()
        self.apply([
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "app-config", "namespace": namespace},
             "data": {"greeting": "hello", "color": "blue"}},
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "app-secret", "namespace": namespace},
             "stringData": {"password": "s3cr3t p@ss"}}])
        env = [
            {"name": "GREETING",
             "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "greeting"}}},
            {"name": "PASSWORD",
             "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
            {"name": "PLAIN", "value": "literal"},
        ]
        env_from = [{"prefix": "CFG_", "configMapRef": {"name": "app-config"}},
                    {"secretRef": {"name": "app-secret"}}]
        mounts = [{"name": "config", "mountPath": "/etc/config"},
                  {"name": "secret", "mountPath": "/etc/secret"},
                  {"name": "token", "mountPath": "/var/run/token"}]
        volumes = [
            {"name": "config", "configMap": {"name": "app-config"}},
            {"name": "secret", "secret": {"secretName": "app-secret"}},
            {"name": "token", "projected": {"sources": [{"serviceAccountToken": {
                "path": "token", "audience": "vkhost-e2e", "expirationSeconds": 3600}}]}},
        ]
        uid = self.create_pod(self.pod_manifest(
            namespace, "configured", RUN_FOREVER, volumes=volumes,
            container={"env": env, "envFrom": env_from, "volumeMounts": mounts}))
        self.wait_running(namespace, "configured")

        [request] = self.records("CreatePod", uid)
        pod = request["pod"]
        [container] = pod["containers"]
        got_env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        with self.subTest("env"):
            self.assertEqual(got_env.get("GREETING"), "hello", got_env)
            self.assertEqual(got_env.get("PASSWORD"), "s3cr3t p@ss", got_env)
            self.assertEqual(got_env.get("PLAIN"), "literal", got_env)
            self.assertEqual(got_env.get("CFG_greeting"), "hello", got_env)
            self.assertEqual(got_env.get("CFG_color"), "blue", got_env)
            self.assertEqual(got_env.get("password"), "s3cr3t p@ss", got_env)
            self.assertEqual(got_env.get("KUBERNETES_SERVICE_HOST"), cluster.SERVICE_CLUSTER_API_IP,
                             got_env)

        files = {v["name"]: {f["path"]: decode_bytes(f.get("content", ""))
                             for f in v.get("files", {}).get("files", [])}
                 for v in pod.get("volumes", [])}
        kinds = {v["name"]: v.get("files", {}).get("kind") for v in pod.get("volumes", [])}
        with self.subTest("configMap volume"):
            self.assertEqual(kinds.get("config"), "configMap")
            self.assertEqual(files.get("config"), {"greeting": "hello", "color": "blue"})
        with self.subTest("secret volume"):
            self.assertEqual(kinds.get("secret"), "secret")
            self.assertEqual(files.get("secret"), {"password": "s3cr3t p@ss"})
        with self.subTest("projected service-account token"):
            self.assertEqual(kinds.get("token"), "projected")
            token = files.get("token", {}).get("token", "")
            self.assertTrue(token, files.get("token"))
            claims = jwt_claims(token)
            self.assertEqual(claims.get("sub"), f"system:serviceaccount:{namespace}:default")
            self.assertIn("vkhost-e2e", claims.get("aud", []))
        with self.subTest("automatic kube-api-access volume"):
            # The ServiceAccount admission plugin adds it: token, ca.crt, namespace.
            [access] = [name for name in files if name.startswith("kube-api-access-")]
            self.assertTrue(files[access].get("token"), files[access].keys())
            self.assertEqual(files[access].get("namespace"), namespace)
            self.assertEqual(files[access].get("ca.crt"),
                             pathlib.Path(self.cp.ca_cert).read_text())
        with self.subTest("volume mounts"):
            self.assertTrue({("config", "/etc/config"), ("secret", "/etc/secret"),
                             ("token", "/var/run/token")} <= {
                (m["name"], m["mountPath"]) for m in container.get("volumeMounts", [])},
                container.get("volumeMounts"))

    def test_pod_waiting_on_missing_configmap_env_starts_once_it_exists(self):
        namespace = self.make_namespace()
        env = [{"name": "LATE",
                "valueFrom": {"configMapKeyRef": {"name": "late-config", "key": "value"}}}]
        uid = self.create_pod(self.pod_manifest(namespace, "patient", RUN_FOREVER,
                                                container={"env": env}))

        def waiting_reason(pod):
            statuses = pod["status"].get("containerStatuses", [])
            return statuses and statuses[0].get("state", {}).get("waiting", {}).get("reason")

        pod = self.wait_pod(namespace, "patient", "waiting with CreateContainerConfigError",
                            lambda pod: waiting_reason(pod) == "CreateContainerConfigError")
        self.assertEqual(pod["status"].get("phase"), "Pending")
        warnings = self.wait("a Warning event about the missing ConfigMap", lambda: [
            e for e in self.events(namespace, "patient")
            if e.get("type") == "Warning" and "late-config" in e.get("message", "")])
        self.assertTrue(warnings)
        self.assertEqual(self.records("CreatePod", uid), [],
                         "the plugin got the pod before its ConfigMap existed")

        self.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "late-config", "namespace": namespace},
                     "data": {"value": "finally"}}])
        self.wait_running(namespace, "patient")
        [request] = self.records("CreatePod", uid)
        env = {e["name"]: e.get("value") for e in request["pod"]["containers"][0]["env"]}
        self.assertEqual(env.get("LATE"), "finally")

    def test_pod_waiting_on_missing_configmap_volume_starts_once_it_exists(self):
        namespace = self.make_namespace()
        uid = self.create_pod(self.pod_manifest(
            namespace, "mounting", RUN_FOREVER,
            volumes=[{"name": "late", "configMap": {"name": "late-volume"}}],
            container={"volumeMounts": [{"name": "late", "mountPath": "/late"}]}))

        def waiting_reason(pod):
            statuses = pod["status"].get("containerStatuses", [])
            return statuses and statuses[0].get("state", {}).get("waiting", {}).get("reason")

        pod = self.wait_pod(namespace, "mounting", "waiting in ContainerCreating",
                            lambda pod: waiting_reason(pod) == "ContainerCreating")
        self.assertEqual(pod["status"].get("phase"), "Pending")
        self.wait("a FailedMount Warning event", lambda: [
            e for e in self.events(namespace, "mounting")
            if e.get("type") == "Warning" and e.get("reason") == "FailedMount"])
        self.assertEqual(self.records("CreatePod", uid), [])

        self.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "late-volume", "namespace": namespace},
                     "data": {"file": "content"}}])
        self.wait_running(namespace, "mounting")
        [request] = self.records("CreatePod", uid)
        [volume] = [v for v in request["pod"]["volumes"] if v["name"] == "late"]
        self.assertEqual({f["path"]: decode_bytes(f["content"]) for f in volume["files"]["files"]},
                         {"file": "content"})

    def test_kubectl_delete_pod_completes_and_plugin_saw_delete(self):
        namespace = self.make_namespace()
        uid = self.create_pod(self.pod_manifest(namespace, "doomed", RUN_FOREVER))
        self.wait_running(namespace, "doomed")
        result = self.cp.kubectl_run("delete", "pod", "doomed", "-n", namespace,
                                     "--wait=true", "--timeout=90s", timeout=120)
        self.assertEqual(result.returncode, 0,
                         f"kubectl delete failed: {result.stderr}\n{self.diagnostics()}")
        self.assertIsNone(self.get_pod(namespace, "doomed"))
        deletes = self.wait("DeletePod recorded by the plugin",
                            lambda: self.records("DeletePod", uid), timeout=30)
        self.assertEqual(deletes[0]["pod"]["name"], "doomed")
        self.assertEqual(deletes[0]["pod"]["namespace"], namespace)
        reasons = {e["reason"] for e in self.events(namespace, "doomed")}
        self.assertIn("Killing", reasons)

    def test_container_exiting_1_under_restart_never_fails_the_pod(self):
        namespace = self.make_namespace()
        self.create_pod(self.pod_manifest(namespace, "broken", ["sh", "-c", "exit 1"],
                                          restart_policy="Never"))
        pod = self.wait_pod(namespace, "broken", "Failed",
                            lambda pod: pod["status"].get("phase") == "Failed")
        [container] = pod["status"]["containerStatuses"]
        terminated = container["state"].get("terminated", {})
        self.assertEqual(terminated.get("exitCode"), 1, container)
        self.assertEqual(terminated.get("reason"), "Error", container)
        self.assertIs(container["ready"], False)
        self.assertEqual(container["restartCount"], 0)
        self.assertEqual((condition(pod, "Ready") or {}).get("status"), "False")

    def test_optional_missing_references_do_not_block_the_pod(self):
        namespace = self.make_namespace()
        env = [{"name": "MAYBE", "valueFrom": {"configMapKeyRef": {
            "name": "absent", "key": "value", "optional": True}}}]
        env_from = [{"secretRef": {"name": "absent-secret", "optional": True}}]
        uid = self.create_pod(self.pod_manifest(
            namespace, "relaxed", RUN_FOREVER,
            volumes=[{"name": "maybe", "configMap": {"name": "absent", "optional": True}}],
            container={"env": env, "envFrom": env_from,
                       "volumeMounts": [{"name": "maybe", "mountPath": "/maybe"}]}))
        self.wait_running(namespace, "relaxed")
        [request] = self.records("CreatePod", uid)
        names = {e["name"] for e in request["pod"]["containers"][0].get("env", [])}
        self.assertNotIn("MAYBE", names)
        [volume] = [v for v in request["pod"]["volumes"] if v["name"] == "maybe"]
        self.assertEqual(volume.get("files", {}).get("files", []), [])

    def test_pod_the_plugin_rejects_fails_with_a_reason(self):
        namespace = self.make_namespace()
        manifest = self.pod_manifest(namespace, "rejected", RUN_FOREVER)
        manifest["spec"]["containers"][0]["image"] = self.REJECTED_IMAGE
        self.create_pod(manifest)
        pod = self.wait_pod(namespace, "rejected", "Failed",
                            lambda pod: pod["status"].get("phase") == "Failed")
        self.assertTrue(pod["status"].get("reason"), pod["status"])
        self.assertTrue(pod["status"].get("message"), pod["status"])
        self.wait("a Warning event about the rejection", lambda: [
            e for e in self.events(namespace, "rejected") if e.get("type") == "Warning"])
        self.assertTrue(self.vkhost.running(), self.diagnostics())
        # The node keeps working.
        self.create_pod(self.pod_manifest(namespace, "accepted", RUN_FOREVER))
        self.wait_running(namespace, "accepted")

    def test_container_exiting_0_under_restart_never_succeeds(self):
        namespace = self.make_namespace()
        self.create_pod(self.pod_manifest(namespace, "oneshot", ["echo", "done"],
                                          restart_policy="Never"))
        pod = self.wait_pod(namespace, "oneshot", "Succeeded",
                            lambda pod: pod["status"].get("phase") == "Succeeded")
        terminated = pod["status"]["containerStatuses"][0]["state"].get("terminated", {})
        self.assertEqual(terminated.get("exitCode"), 0)
        self.assertEqual(terminated.get("reason"), "Completed")


class PluginKilledTest(VkhostTestCase):
    """The launched plugin dies (kill -9): vkhost restarts it and resynchronises."""

    def test_statuses_resume_after_plugin_restart_without_duplicate_create(self):
        namespace = self.make_namespace()
        uid = self.create_pod(self.pod_manifest(namespace, "survivor", RUN_FOREVER))
        self.wait_running(namespace, "survivor")
        connections = self.vkhost.plugin_connections()
        self.assertEqual(len(connections), 1, connections)
        generation, pid = connections[-1]
        self.assertIsNotNone(pid, "vkhost's log names no plugin pid")
        self.assertEqual(len(self.records("CreatePod", uid)), 1)
        before_kill_log, before_kill_records = self.vkhost.log_size(), self.record_size()

        os.kill(pid, signal.SIGKILL)
        restarted = self.wait("vkhost to start the plugin again", lambda: [
            c for c in self.vkhost.plugin_connections(before_kill_log) if c[0] > generation])
        self.assertNotEqual(restarted[0][1], pid)

        # The in-memory mock lost the pod; the host must create it again, once.
        self.wait("CreatePod of the surviving pod in the new plugin",
                  lambda: self.records("CreatePod", uid, since=before_kill_records))
        pod = self.wait_running(namespace, "survivor")
        self.assertIn("running", pod["status"]["containerStatuses"][0]["state"])
        # Statuses flow from the new plugin: a new pod runs to completion.
        self.create_pod(self.pod_manifest(namespace, "after", ["sleep", "2"],
                                          restart_policy="Never"))
        self.wait_pod(namespace, "after", "Succeeded",
                      lambda pod: pod["status"].get("phase") == "Succeeded")
        self.wait_running(namespace, "survivor")
        self.assertEqual(len(self.records("CreatePod", uid, since=before_kill_records)), 1,
                         "the restarted plugin got CreatePod more than once for one UID\n"
                         + self.diagnostics())
        self.assertEqual(len(self.records("CreatePod", uid)), 2, self.diagnostics())
        self.assertTrue(self.vkhost.running(), self.diagnostics())


class VkhostRestartTest(VkhostTestCase):
    """vkhost restarts while its plugin (connect mode) keeps running."""

    PLUGIN_MODE = "connect"

    def test_pods_keep_running_and_nothing_is_created_twice(self):
        namespace = self.make_namespace()
        uid = self.create_pod(self.pod_manifest(namespace, "steady", RUN_FOREVER))
        before = self.wait_running(namespace, "steady")
        self.assertEqual(len(self.records("CreatePod", uid)), 1)
        records_before_restart = self.record_size()
        log_before_restart = self.vkhost.log_size()

        self.assertEqual(self.vkhost.stop(), 0, self.diagnostics())
        self.vkhost.start()
        self.wait("the restarted vkhost to connect to the plugin",
                  lambda: self.vkhost.plugin_connections(log_before_restart))
        # Work done by the new process proves it is serving the node.
        self.create_pod(self.pod_manifest(namespace, "newcomer", RUN_FOREVER))
        self.wait_running(namespace, "newcomer")
        self.wait(f"Node {self.node} Ready", lambda: self.node_ready(self.node))

        after = self.wait_running(namespace, "steady")
        self.assertEqual(after["status"]["containerStatuses"][0].get("containerID"),
                         before["status"]["containerStatuses"][0].get("containerID"))
        self.assertEqual(after["status"]["containerStatuses"][0]["restartCount"], 0)
        self.assertEqual(self.records("CreatePod", uid, since=records_before_restart), [],
                         "the plugin got a second CreatePod for a pod it was running\n"
                         + self.diagnostics())
        self.assertEqual(self.records("DeletePod", uid), [], self.diagnostics())
        self.assertTrue(self.plugin.running(), "the plugin exited")


class NodeDeletedTest(VkhostTestCase):
    """Someone deletes the Node object: vkhost registers it again."""

    def test_deleted_node_is_recreated(self):
        namespace = self.make_namespace()
        uid = self.create_pod(self.pod_manifest(namespace, "resident", RUN_FOREVER))
        self.wait_running(namespace, "resident")
        old_uid = self.cp.kubectl_json("get", "node", self.node)["metadata"]["uid"]
        self.cp.kubectl("delete", "node", self.node, "--wait=true")

        node = self.wait(f"Node {self.node} recreated and Ready", lambda: (
            (n := self.node_ready(self.node)) and n["metadata"]["uid"] != old_uid and n),
            timeout=RENEW_TIMEOUT + 30)
        self.assertIn({"key": PROVIDER_TAINT_KEY, "value": "mock", "effect": "NoSchedule"},
                      node["spec"].get("taints", []))
        self.assertEqual(node["metadata"]["labels"].get("type"), "virtual-kubelet")
        self.wait_running(namespace, "resident")
        self.assertEqual(len(self.records("CreatePod", uid)), 1)
        self.assertEqual(self.records("DeletePod", uid), [])


class ApiServerRestartTest(VkhostTestCase):
    """kube-apiserver restarts under vkhost: it reconnects by itself."""

    def test_host_recovers_after_apiserver_restart(self):
        namespace = self.make_namespace()
        uid = self.create_pod(self.pod_manifest(namespace, "before", RUN_FOREVER))
        self.wait_running(namespace, "before")

        self.cp.restart_apiserver(down_seconds=3)
        renew_before = self.lease()["spec"]["renewTime"]
        self.wait("the Lease renewed after the restart",
                  lambda: self.lease()["spec"]["renewTime"] != renew_before,
                  timeout=RENEW_TIMEOUT + 30)
        self.wait(f"Node {self.node} Ready", lambda: self.node_ready(self.node))

        # Watches were re-established: a pod created now is seen and run.
        self.create_pod(self.pod_manifest(namespace, "after", RUN_FOREVER))
        self.wait_running(namespace, "after", timeout=POD_TIMEOUT + 30)
        self.wait_running(namespace, "before")
        self.assertEqual(len(self.records("CreatePod", uid)), 1)
        self.assertTrue(self.vkhost.running(), self.diagnostics())


if __name__ == "__main__":
    unittest.main()
