#include "host/resolve/resolve.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/resolve/test_objects.h"

namespace vkhost::resolve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using testing::EnvOf;
using testing::FakeObjectSource;
using testing::FilesOf;
using testing::MinimalPod;
using testing::TestOptions;
using nlohmann::json;
namespace v1 = ::vkhost::provider::v1;

// A pod as the API server returns it for a Deployment replica with a
// sidecar, probes, hooks, config and the injected kube-api-access volume.
constexpr char kRealisticPod[] = R"json({
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "shop-api-7d9f8b6c5-x2k4q",
    "generateName": "shop-api-7d9f8b6c5-",
    "namespace": "shop",
    "uid": "0b8e3f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    "resourceVersion": "48213",
    "creationTimestamp": "2024-05-06T07:08:09Z",
    "labels": {"app": "shop-api", "pod-template-hash": "7d9f8b6c5"},
    "annotations": {"prometheus.io/scrape": "true"},
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
      "name": "shop-api-7d9f8b6c5", "uid": "aa", "controller": true}]
  },
  "spec": {
    "nodeName": "vnode",
    "serviceAccountName": "shop",
    "serviceAccount": "shop",
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 45,
    "activeDeadlineSeconds": 86400,
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "enableServiceLinks": true,
    "subdomain": "shop",
    "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 3000,
                        "fsGroup": 2000, "supplementalGroups": [4000, 5000]},
    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
    "initContainers": [
      {"name": "migrate", "image": "shop/migrate:2.1", "imagePullPolicy": "IfNotPresent",
       "command": ["/migrate"], "args": ["--dsn=$(DSN)"],
       "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
               {"name": "DSN", "value": "postgres://shop:$(DB_PASSWORD)@$(POSTGRES_SERVICE_HOST):$(POSTGRES_SERVICE_PORT)/shop"}],
       "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
       "resources": {}},
      {"name": "log-shipper", "image": "fluent/fluent-bit:3.0", "restartPolicy": "Always",
       "volumeMounts": [{"name": "logs", "mountPath": "/logs", "readOnly": true}],
       "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    ],
    "containers": [
      {"name": "api", "image": "shop/api:2.1", "imagePullPolicy": "Always",
       "command": ["/api"], "args": ["--listen=:$(PORT)", "--pod=$(POD_NAME)", "$$(LITERAL)"],
       "workingDir": "/srv",
       "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                 {"name": "metrics", "containerPort": 9090},
                 {"name": "dns", "containerPort": 5353, "protocol": "UDP", "hostPort": 5353, "hostIP": "0.0.0.0"}],
       "envFrom": [{"configMapRef": {"name": "shop-config"}},
                   {"prefix": "FLAG_", "configMapRef": {"name": "flags", "optional": true}}],
       "env": [{"name": "PORT", "value": "8080"},
               {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
               {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
               {"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
               {"name": "MEM_LIMIT_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
               {"name": "CPU_REQ_M", "valueFrom": {"resourceFieldRef": {"containerName": "api", "resource": "requests.cpu", "divisor": "1m"}}},
               {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "api-keys", "key": "stripe"}}}],
       "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                     "limits": {"cpu": "1", "memory": "512Mi"}},
       "volumeMounts": [{"name": "config", "mountPath": "/etc/shop", "readOnly": true},
                        {"name": "logs", "mountPath": "/var/log/shop", "subPathExpr": "$(POD_NAME)"},
                        {"name": "kube-api-access-4xk2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
       "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                                     "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                         "initialDelaySeconds": 5, "timeoutSeconds": 2, "periodSeconds": 15,
                         "successThreshold": 1, "failureThreshold": 4},
       "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
       "startupProbe": {"grpc": {"port": 9090, "service": "health"}, "failureThreshold": 30,
                        "terminationGracePeriodSeconds": 10},
       "lifecycle": {"postStart": {"exec": {"command": ["/bin/sh", "-c", "echo started"]}},
                     "preStop": {"sleep": {"seconds": 5}}},
       "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                           "privileged": false, "runAsUser": 1000},
       "terminationMessagePath": "/dev/termination-log",
       "terminationMessagePolicy": "FallbackToLogsOnError",
       "stdin": true, "stdinOnce": true, "tty": true}
    ],
    "volumes": [
      {"name": "config", "configMap": {"name": "shop-config", "defaultMode": 420,
        "items": [{"key": "app.yaml", "path": "app.yaml"}]}},
      {"name": "logs", "emptyDir": {"sizeLimit": "1Gi"}},
      {"name": "kube-api-access-4xk2p", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}
    ]
  },
  "status": {"phase": "Pending", "qosClass": "Burstable"}
})json";

class ResolvePodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_.AddConfigMap("shop", "shop-config",
                         {{"app.yaml", "listen: 8080\n"}, {"LOG_FORMAT", "json"}});
    source_.AddConfigMap("shop", "kube-root-ca.crt", {{"ca.crt", "CA PEM"}});
    source_.AddSecret("shop", "db", {{"password", "pg-pass"}});
    source_.AddSecret("shop", "api-keys", {{"stripe", "sk_test_1"}});
    source_.AddService("shop", "postgres", "10.96.5.5",
                       json::array({{{"name", "pg"}, {"port", 5432}}}));
    source_.AddServiceAccount("shop", "shop");
  }

  FakeObjectSource source_;
  ResolveOptions options_ = TestOptions();
};

TEST_F(ResolvePodTest, RealisticPodEndToEnd) {
  const json pod = json::parse(kRealisticPod);
  ResolveResult r = ResolvePod(pod, source_, options_);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const v1::Pod& p = r.resolved.pod;

  EXPECT_EQ(p.uid(), "0b8e3f4a-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(p.namespace_(), "shop");
  EXPECT_EQ(p.name(), "shop-api-7d9f8b6c5-x2k4q");
  EXPECT_THAT(p.labels(), UnorderedElementsAre(Pair("app", "shop-api"),
                                               Pair("pod-template-hash", "7d9f8b6c5")));
  EXPECT_THAT(p.annotations(), ElementsAre(Pair("prometheus.io/scrape", "true")));
  EXPECT_EQ(p.node_name(), "vnode");
  EXPECT_EQ(p.restart_policy(), v1::RESTART_POLICY_ALWAYS);
  EXPECT_EQ(p.termination_grace_period_seconds(), 45);
  EXPECT_EQ(p.active_deadline_seconds(), 86400);
  EXPECT_EQ(p.hostname(), "shop-api-7d9f8b6c5-x2k4q");
  EXPECT_EQ(p.subdomain(), "shop");
  EXPECT_FALSE(p.host_network());
  EXPECT_EQ(p.service_account_name(), "shop");
  EXPECT_EQ(p.security_context().run_as_user(), 1000);
  EXPECT_EQ(p.security_context().run_as_group(), 3000);
  EXPECT_TRUE(p.security_context().run_as_non_root());
  EXPECT_EQ(p.security_context().fs_group(), 2000);
  EXPECT_THAT(p.security_context().supplemental_groups(), ElementsAre(4000, 5000));
  EXPECT_EQ(p.creation_time().seconds(), 1714979289);
  EXPECT_EQ(p.host_ip(), "10.1.0.1");
  EXPECT_EQ(json::parse(p.pod_json()), pod);

  // Volumes.
  ASSERT_EQ(p.volumes_size(), 3);
  EXPECT_THAT(FilesOf(p.volumes(0)),
              ElementsAre(Pair("app.yaml", Pair("listen: 8080\n", 0644))));
  EXPECT_EQ(p.volumes(1).empty_dir().size_limit(), "1Gi");
  EXPECT_THAT(FilesOf(p.volumes(2)),
              ElementsAre(Pair("ca.crt", Pair("CA PEM", 0644)),
                          Pair("namespace", Pair("shop", 0644)),
                          Pair("token", Pair("token:shop::3607", 0640))));
  EXPECT_EQ(r.resolved.refresh_at, source_.now + absl::Seconds(3607 - 721));

  // Init containers: a migration job and a sidecar.
  ASSERT_EQ(p.init_containers_size(), 2);
  const v1::Container& migrate = p.init_containers(0);
  EXPECT_THAT(migrate.args(),
              ElementsAre("--dsn=postgres://shop:pg-pass@10.96.5.5:5432/shop"));
  EXPECT_EQ(migrate.restart_policy(), v1::RESTART_POLICY_UNSPECIFIED);
  EXPECT_EQ(p.init_containers(1).restart_policy(), v1::RESTART_POLICY_ALWAYS);

  // The main container.
  ASSERT_EQ(p.containers_size(), 1);
  const v1::Container& api = p.containers(0);
  EXPECT_EQ(api.image(), "shop/api:2.1");
  EXPECT_EQ(api.image_pull_policy(), "Always");
  EXPECT_THAT(api.command(), ElementsAre("/api"));
  EXPECT_THAT(api.args(), ElementsAre("--listen=:8080",
                                      "--pod=shop-api-7d9f8b6c5-x2k4q",
                                      "$(LITERAL)"));
  EXPECT_EQ(api.working_dir(), "/srv");
  auto env = EnvOf(api);
  EXPECT_EQ(env["LOG_FORMAT"], "json");
  EXPECT_EQ(env["PORT"], "8080");
  EXPECT_EQ(env["POD_IP"], "");
  EXPECT_EQ(env["NODE"], "vnode");
  EXPECT_EQ(env["MEM_LIMIT_MI"], "512");
  EXPECT_EQ(env["CPU_REQ_M"], "250");
  EXPECT_EQ(env["API_KEY"], "sk_test_1");
  EXPECT_EQ(env["POSTGRES_SERVICE_HOST"], "10.96.5.5");
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  EXPECT_EQ(env["app.yaml"], "listen: 8080\n");  // every key, as kubelets now do
  EXPECT_EQ(api.env(0).name(), "LOG_FORMAT");  // envFrom first, key order
  EXPECT_EQ(api.env(1).name(), "app.yaml");
  EXPECT_EQ(api.env(2).name(), "PORT");        // then env
  EXPECT_TRUE(r.resolved.warnings.empty());

  ASSERT_EQ(api.ports_size(), 3);
  EXPECT_EQ(api.ports(0).name(), "http");
  EXPECT_EQ(api.ports(0).container_port(), 8080);
  EXPECT_EQ(api.ports(1).protocol(), "TCP");
  EXPECT_EQ(api.ports(2).protocol(), "UDP");
  EXPECT_EQ(api.ports(2).host_port(), 5353);
  EXPECT_EQ(api.ports(2).host_ip(), "0.0.0.0");
  EXPECT_THAT(api.resources().requests(),
              UnorderedElementsAre(Pair("cpu", "250m"), Pair("memory", "256Mi")));
  EXPECT_THAT(api.resources().limits(),
              UnorderedElementsAre(Pair("cpu", "1"), Pair("memory", "512Mi")));

  ASSERT_EQ(api.volume_mounts_size(), 3);
  EXPECT_EQ(api.volume_mounts(0).mount_path(), "/etc/shop");
  EXPECT_TRUE(api.volume_mounts(0).read_only());
  EXPECT_EQ(api.volume_mounts(1).sub_path(), "shop-api-7d9f8b6c5-x2k4q");
  EXPECT_EQ(api.volume_mounts(2).name(), "kube-api-access-4xk2p");

  const auto& live = api.liveness_probe();
  EXPECT_EQ(live.http_get().path(), "/healthz");
  EXPECT_EQ(live.http_get().port(), 8080);  // named port "http"
  EXPECT_EQ(live.http_get().scheme(), "HTTP");
  EXPECT_THAT(live.http_get().headers(), ElementsAre(Pair("X-Probe", "1")));
  EXPECT_EQ(live.initial_delay_seconds(), 5);
  EXPECT_EQ(live.timeout_seconds(), 2);
  EXPECT_EQ(live.period_seconds(), 15);
  EXPECT_EQ(live.failure_threshold(), 4);
  EXPECT_EQ(api.readiness_probe().tcp_socket().port(), 8080);
  EXPECT_EQ(api.readiness_probe().period_seconds(), 5);
  EXPECT_EQ(api.readiness_probe().timeout_seconds(), 1);  // API default
  EXPECT_EQ(api.readiness_probe().failure_threshold(), 3);
  EXPECT_EQ(api.startup_probe().grpc().port(), 9090);
  EXPECT_EQ(api.startup_probe().grpc().service(), "health");
  EXPECT_EQ(api.startup_probe().termination_grace_period_seconds(), 10);
  EXPECT_THAT(api.post_start().exec().command(),
              ElementsAre("/bin/sh", "-c", "echo started"));
  EXPECT_EQ(api.pre_stop().sleep().seconds(), 5);
  EXPECT_TRUE(api.stdin());
  EXPECT_TRUE(api.stdin_once());
  EXPECT_TRUE(api.tty());
  EXPECT_EQ(api.termination_message_path(), "/dev/termination-log");
  EXPECT_EQ(api.termination_message_policy(), "FallbackToLogsOnError");
  EXPECT_FALSE(api.security_context().allow_privilege_escalation());
  EXPECT_TRUE(api.security_context().has_allow_privilege_escalation());
  EXPECT_TRUE(api.security_context().read_only_root_filesystem());
  EXPECT_TRUE(api.security_context().has_privileged());
  EXPECT_EQ(api.security_context().run_as_user(), 1000);
  EXPECT_FALSE(api.security_context().has_run_as_group());
  EXPECT_EQ(api.restart_policy(), v1::RESTART_POLICY_UNSPECIFIED);
}

TEST_F(ResolvePodTest, VolumeFailureComesBeforeContainerFailure) {
  json pod = json::parse(kRealisticPod);
  pod["spec"]["volumes"][0]["configMap"]["name"] = "missing";
  pod["spec"]["containers"][0]["env"][6]["valueFrom"]["secretKeyRef"]["name"] = "gone";
  ResolveResult r = ResolvePod(pod, source_, options_);
  EXPECT_EQ(r.failure.event_reason, "FailedMount");
  EXPECT_EQ(r.failure.volume_name, "config");
}

TEST_F(ResolvePodTest, HostnameDefaultsToTruncatedPodName) {
  json pod = MinimalPod();
  pod["metadata"]["name"] = std::string(62, 'a') + "-b";
  ResolveResult r = ResolvePod(pod, source_, options_);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.resolved.pod.hostname(), std::string(62, 'a'));
  pod["spec"]["hostname"] = "custom";
  r = ResolvePod(pod, source_, options_);
  EXPECT_EQ(r.resolved.pod.hostname(), "custom");
}

TEST_F(ResolvePodTest, RestartPoliciesMap) {
  json pod = MinimalPod();
  for (const auto& [name, policy] :
       {std::pair{"OnFailure", v1::RESTART_POLICY_ON_FAILURE},
        std::pair{"Never", v1::RESTART_POLICY_NEVER},
        std::pair{"Bogus", v1::RESTART_POLICY_UNSPECIFIED}}) {
    pod["spec"]["restartPolicy"] = name;
    ResolveResult r = ResolvePod(pod, source_, options_);
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.resolved.pod.restart_policy(), policy) << name;
  }
}

TEST_F(ResolvePodTest, UnknownNamedProbePortBecomesZeroWithWarning) {
  json pod = MinimalPod();
  pod["spec"]["containers"][0]["ports"] = json::parse(R"([{"name": "web", "containerPort": 80}])");
  pod["spec"]["containers"][0]["livenessProbe"] =
      json::parse(R"({"httpGet": {"path": "/", "port": "nope"}})");
  pod["spec"]["containers"][0]["readinessProbe"] =
      json::parse(R"({"tcpSocket": {"port": "8081"}})");
  pod["spec"]["containers"][0]["lifecycle"] =
      json::parse(R"({"preStop": {"httpGet": {"path": "/stop", "port": "web"}}})");
  ResolveResult r = ResolvePod(pod, source_, options_);
  ASSERT_TRUE(r.status.ok());
  const auto& c = r.resolved.pod.containers(0);
  EXPECT_EQ(c.liveness_probe().http_get().port(), 0);
  EXPECT_EQ(c.readiness_probe().tcp_socket().port(), 8081);  // number as text
  EXPECT_EQ(c.pre_stop().http_get().port(), 80);
  ASSERT_EQ(r.resolved.warnings.size(), 1u);
  EXPECT_EQ(r.resolved.warnings[0].reason, "ProbeWarning");
  EXPECT_THAT(r.resolved.warnings[0].message, HasSubstr("Liveness probe"));
}

TEST_F(ResolvePodTest, BadSubPathsAreContainerConfigErrors) {
  json pod = MinimalPod();
  pod["spec"]["volumes"] = json::parse(R"([{"name": "v", "emptyDir": {}}])");
  for (const char* expr : {"$(UNSET)", "/abs/$(HOME)", "../$(HOME)"}) {
    pod["spec"]["containers"][0]["env"] = json::parse(R"([{"name": "HOME", "value": "h"}])");
    pod["spec"]["containers"][0]["volumeMounts"] =
        json::array({{{"name", "v"}, {"mountPath", "/m"}, {"subPathExpr", expr}}});
    ResolveResult r = ResolvePod(pod, source_, options_);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << expr;
    EXPECT_EQ(r.failure.waiting_reason, "CreateContainerConfigError") << expr;
  }
  for (const char* sub_path : {"/abs", "a/../../b"}) {
    pod["spec"]["containers"][0]["volumeMounts"] =
        json::array({{{"name", "v"}, {"mountPath", "/m"}, {"subPath", sub_path}}});
    ResolveResult r = ResolvePod(pod, source_, options_);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << sub_path;
    EXPECT_EQ(r.failure.waiting_reason, "CreateContainerConfigError") << sub_path;
  }
}

TEST_F(ResolvePodTest, MalformedPodsAreInvalidNotCrashes) {
  for (const char* text :
       {R"([])", R"("pod")", R"({})", R"({"metadata": {"name": "x"}})",
        R"({"metadata": "oops", "spec": []})"}) {
    ResolveResult r = ResolvePod(json::parse(text), source_, options_);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << text;
  }
  // Wrong types inside an otherwise valid pod are ignored, not fatal.
  json pod = MinimalPod();
  pod["spec"]["containers"][0]["env"] = json::parse(
      R"([{"name": "A", "value": 5}, 7, {"name": "B", "valueFrom": {"fieldRef": "x"}}])");
  pod["spec"]["containers"][0]["ports"] = "many";
  pod["spec"]["volumes"] = json::parse(R"([{"name": "v", "configMap": "cfg"}, 3])");
  pod["metadata"]["labels"] = {{"n", 1}};
  ResolveResult r = ResolvePod(pod, source_, options_);
  EXPECT_NE(r.status.code(), absl::StatusCode::kOk);  // fieldRef "x" has no path
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ResolvePodTest, SameObjectIsFetchedOncePerResolution) {
  // A counting source shows one ConfigMap lookup serves every reference.
  class CountingSource : public FakeObjectSource {
   public:
    absl::StatusOr<std::shared_ptr<const json>> ConfigMap(
        const std::string& ns, const std::string& name) override {
      ++calls;
      return FakeObjectSource::ConfigMap(ns, name);
    }
    int calls = 0;
  } counting;
  counting.AddConfigMap("ns", "cfg", {{"A", "1"}});
  json pod = MinimalPod();
  pod["spec"]["containers"][0]["envFrom"] = json::parse(R"([{"configMapRef": {"name": "cfg"}}])");
  pod["spec"]["containers"][0]["env"] = json::parse(
      R"([{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "A"}}}])");
  pod["spec"]["volumes"] = json::parse(R"([{"name": "v", "configMap": {"name": "cfg"}}])");
  ResolveResult r = ResolvePod(pod, counting, options_);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(counting.calls, 1);
}

}  // namespace
}  // namespace vkhost::resolve
