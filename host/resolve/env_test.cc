#include "host/resolve/internal/env.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/resolve/test_objects.h"

namespace vkhost::resolve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using testing::EnvOf;
using testing::FakeObjectSource;
using testing::MinimalPod;
using testing::TestOptions;
using nlohmann::json;

std::string ExpandWith(const std::string& input) {
  const std::map<std::string, std::string> vars = {
      {"A", "alpha"}, {"B", "beta"}, {"EMPTY", ""}};
  return internal::Expand(input, [&](const std::string& name)
                                     -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

TEST(ExpandTest, FollowsKubernetesRules) {
  EXPECT_EQ(ExpandWith("$(A)"), "alpha");
  EXPECT_EQ(ExpandWith("x-$(A)-$(B)-y"), "x-alpha-beta-y");
  EXPECT_EQ(ExpandWith("$(A)$(B)"), "alphabeta");
  EXPECT_EQ(ExpandWith("$(EMPTY)"), "");
  EXPECT_EQ(ExpandWith("$(UNDEFINED)"), "$(UNDEFINED)");
  EXPECT_EQ(ExpandWith("$$(A)"), "$(A)");
  EXPECT_EQ(ExpandWith("$$$(A)"), "$alpha");
  EXPECT_EQ(ExpandWith("$$"), "$");
  EXPECT_EQ(ExpandWith("$"), "$");
  EXPECT_EQ(ExpandWith("a$"), "a$");
  EXPECT_EQ(ExpandWith("$A"), "$A");
  EXPECT_EQ(ExpandWith("$(A"), "$(A");
  EXPECT_EQ(ExpandWith("$()"), "$()");
  EXPECT_EQ(ExpandWith("$(A$(B))"), "$(A$(B))");
  EXPECT_EQ(ExpandWith("no refs"), "no refs");
  EXPECT_EQ(ExpandWith(""), "");
}

TEST(IsEnvVarNameTest, OnlyNamesAnEnvironmentCannotCarryAreRejected) {
  for (const char* good : {"FOO", "my.env-name", "_x", "a1", "1abc", "app.yaml",
                           "..a", "with space", "-"}) {
    EXPECT_TRUE(internal::IsEnvVarName(good)) << good;
  }
  for (const char* bad : {"", "a=b", "tab\tkey", "nl\n", "\xc3\xa9"}) {
    EXPECT_FALSE(internal::IsEnvVarName(bad)) << bad;
  }
}

TEST(ServiceLinksTest, NamesFollowDockerLinkConvention) {
  ServiceAddress address{"10.0.0.5",
                         {ServicePort{"http-api", 80, ""},
                          ServicePort{"metrics", 9090, "UDP"}}};
  EXPECT_THAT(
      internal::ServiceLinkVariables({{"my-svc", address}}),
      ElementsAre(Pair("MY_SVC_SERVICE_HOST", "10.0.0.5"),
                  Pair("MY_SVC_SERVICE_PORT", "80"),
                  Pair("MY_SVC_SERVICE_PORT_HTTP_API", "80"),
                  Pair("MY_SVC_SERVICE_PORT_METRICS", "9090"),
                  Pair("MY_SVC_PORT", "tcp://10.0.0.5:80"),
                  Pair("MY_SVC_PORT_80_TCP", "tcp://10.0.0.5:80"),
                  Pair("MY_SVC_PORT_80_TCP_PROTO", "tcp"),
                  Pair("MY_SVC_PORT_80_TCP_PORT", "80"),
                  Pair("MY_SVC_PORT_80_TCP_ADDR", "10.0.0.5"),
                  Pair("MY_SVC_PORT_9090_UDP", "udp://10.0.0.5:9090"),
                  Pair("MY_SVC_PORT_9090_UDP_PROTO", "udp"),
                  Pair("MY_SVC_PORT_9090_UDP_PORT", "9090"),
                  Pair("MY_SVC_PORT_9090_UDP_ADDR", "10.0.0.5")));
}

TEST(ServiceLinksTest, Ipv6IsBracketedAndServicesWithoutIpSkipped) {
  auto vars = internal::ServiceLinkVariables(
      {{"v6", ServiceAddress{"fd00::10", {ServicePort{"", 53, "UDP"}}}},
       {"headless", ServiceAddress{"None", {ServicePort{"", 80, ""}}}},
       {"external", ServiceAddress{"", {ServicePort{"", 80, ""}}}},
       {"portless", ServiceAddress{"10.0.0.9", {}}}});
  std::map<std::string, std::string> env(vars.begin(), vars.end());
  EXPECT_EQ(env["V6_PORT"], "udp://[fd00::10]:53");
  EXPECT_EQ(env["V6_SERVICE_HOST"], "fd00::10");
  EXPECT_EQ(env.size(), 7u);  // host, port, 1 + 4 link variables
}

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pod_ = MinimalPod();
    source_.AddConfigMap("ns", "cfg",
                         {{"LOG_LEVEL", "debug"}, {"a=b", "x"},
                          {"tab\tkey", "y"}, {"MODE", "from-cm"},
                          {"app.yaml", "z"}});
    source_.AddSecret("ns", "creds", {{"PASSWORD", "s3cr3t"}, {"user", "admin"}});
    source_.AddService("ns", "db", "10.0.0.7",
                       json::array({{{"name", "pg"}, {"port", 5432}}}));
  }

  json& container() { return pod_["spec"]["containers"][0]; }

  ResolveResult Resolve() { return ResolvePod(pod_, source_, options_); }

  std::map<std::string, std::string> Env() {
    ResolveResult r = Resolve();
    EXPECT_TRUE(r.status.ok()) << r.status;
    if (!r.status.ok()) return {};
    return EnvOf(r.resolved.pod.containers(0));
  }

  json pod_;
  FakeObjectSource source_;
  ResolveOptions options_ = TestOptions();
};

TEST_F(EnvTest, ServiceLinksAndKubernetesServiceByDefault) {
  auto env = Env();
  EXPECT_EQ(env["DB_SERVICE_HOST"], "10.0.0.7");
  EXPECT_EQ(env["DB_SERVICE_PORT_PG"], "5432");
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  EXPECT_EQ(env["KUBERNETES_SERVICE_PORT"], "443");
  EXPECT_EQ(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
  EXPECT_EQ(env["KUBERNETES_PORT"], "tcp://10.96.0.1:443");
  EXPECT_EQ(env["KUBERNETES_PORT_443_TCP_ADDR"], "10.96.0.1");
}

TEST_F(EnvTest, EnableServiceLinksFalseKeepsOnlyKubernetesService) {
  pod_["spec"]["enableServiceLinks"] = false;
  auto env = Env();
  EXPECT_EQ(env.count("DB_SERVICE_HOST"), 0u);
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
}

TEST_F(EnvTest, OptionsKubernetesServiceWinsInDefaultNamespace) {
  pod_["metadata"]["namespace"] = "default";
  source_.AddService("default", "kubernetes", "10.96.0.99",
                     json::array({{{"name", "https"}, {"port", 6443}}}));
  auto env = Env();
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  options_.kubernetes_service.reset();
  env = Env();
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "10.96.0.99");
  EXPECT_EQ(env["KUBERNETES_SERVICE_PORT"], "6443");
}

TEST_F(EnvTest, NoKubernetesServiceConfiguredMeansNoVariables) {
  options_.kubernetes_service.reset();
  auto env = Env();
  EXPECT_EQ(env.count("KUBERNETES_SERVICE_HOST"), 0u);
}

TEST_F(EnvTest, EnvFromWithPrefixSkipsInvalidKeysWithWarning) {
  container()["envFrom"] = json::parse(R"([
    {"configMapRef": {"name": "cfg"}},
    {"prefix": "S_", "secretRef": {"name": "creds"}}])");
  ResolveResult r = Resolve();
  ASSERT_TRUE(r.status.ok()) << r.status;
  auto env = EnvOf(r.resolved.pod.containers(0));
  EXPECT_EQ(env["LOG_LEVEL"], "debug");
  EXPECT_EQ(env["S_PASSWORD"], "s3cr3t");
  EXPECT_EQ(env["S_user"], "admin");
  EXPECT_EQ(env["app.yaml"], "z");  // valid since relaxed names
  EXPECT_EQ(env.count("a=b"), 0u);
  ASSERT_EQ(r.resolved.warnings.size(), 1u);
  EXPECT_EQ(r.resolved.warnings[0].reason, "InvalidEnvironmentVariableNames");
  EXPECT_EQ(r.resolved.warnings[0].message,
            "Keys [a=b, tab\tkey] from the EnvFrom configMap ns/cfg were "
            "skipped since they are considered invalid environment variable "
            "names.");
  EXPECT_EQ(r.resolved.warnings[0].container_name, "app");
}

TEST_F(EnvTest, EnvOverridesEnvFromAndServiceVarsKeepingFirstPosition) {
  container()["envFrom"] = json::parse(R"([{"configMapRef": {"name": "cfg"}}])");
  container()["env"] = json::parse(R"([
    {"name": "FIRST", "value": "1"},
    {"name": "MODE", "value": "from-env"},
    {"name": "DB_SERVICE_HOST", "value": "overridden"}])");
  ResolveResult r = Resolve();
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& env = r.resolved.pod.containers(0).env();
  std::vector<std::string> names;
  for (const auto& v : env) names.push_back(v.name());
  // envFrom keys (sorted as the ConfigMap lists them), then env, then the
  // remaining service variables; each name once.
  ASSERT_GE(names.size(), 5u);
  EXPECT_EQ(names[0], "LOG_LEVEL");
  EXPECT_EQ(names[1], "MODE");
  EXPECT_EQ(names[2], "app.yaml");
  EXPECT_EQ(names[3], "FIRST");
  EXPECT_EQ(names[4], "DB_SERVICE_HOST");
  EXPECT_EQ(std::count(names.begin(), names.end(), "DB_SERVICE_HOST"), 1);
  auto map = EnvOf(r.resolved.pod.containers(0));
  EXPECT_EQ(map["MODE"], "from-env");
  EXPECT_EQ(map["DB_SERVICE_HOST"], "overridden");
}

TEST_F(EnvTest, ValueExpansionSeesEarlierVariablesAndServiceVariables) {
  container()["env"] = json::parse(R"js([
    {"name": "HOST", "value": "db.local"},
    {"name": "URL", "value": "pg://$(HOST):$(DB_SERVICE_PORT)/$(LATER)"},
    {"name": "LATER", "value": "x"},
    {"name": "ESCAPED", "value": "$$(HOST)"},
    {"name": "EMPTY", "value": ""}])js");
  auto env = Env();
  EXPECT_EQ(env["URL"], "pg://db.local:5432/$(LATER)");
  EXPECT_EQ(env["ESCAPED"], "$(HOST)");
  EXPECT_EQ(env.count("EMPTY"), 1u);
  EXPECT_EQ(env["EMPTY"], "");
}

TEST_F(EnvTest, CommandAndArgsAreExpandedWithTheFinalEnvironment) {
  container()["env"] = json::parse(R"([{"name": "PORT", "value": "8080"}])");
  container()["command"] = {"/bin/server", "--port=$(PORT)"};
  container()["args"] = {"$(KUBERNETES_SERVICE_HOST)", "$$(PORT)", "$(NOPE)"};
  ResolveResult r = Resolve();
  ASSERT_TRUE(r.status.ok());
  const auto& c = r.resolved.pod.containers(0);
  EXPECT_THAT(c.command(), ElementsAre("/bin/server", "--port=8080"));
  EXPECT_THAT(c.args(), ElementsAre("10.96.0.1", "$(PORT)", "$(NOPE)"));
}

TEST_F(EnvTest, KeyRefsResolveAndOptionalMissingRefsAreLeftOut) {
  container()["env"] = json::parse(R"([
    {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "LOG_LEVEL"}}},
    {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
    {"name": "OPT_KEY", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": true}}},
    {"name": "OPT_CM", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": true}}},
    {"name": "OPT_SECRET", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": true}}}])");
  container()["envFrom"] = json::parse(
      R"([{"configMapRef": {"name": "absent", "optional": true}},
          {"secretRef": {"name": "absent", "optional": true}}])");
  auto env = Env();
  EXPECT_EQ(env["LEVEL"], "debug");
  EXPECT_EQ(env["PW"], "s3cr3t");
  EXPECT_EQ(env.count("OPT_KEY"), 0u);
  EXPECT_EQ(env.count("OPT_CM"), 0u);
  EXPECT_EQ(env.count("OPT_SECRET"), 0u);
}

struct MissingRefCase {
  const char* env_json;
  const char* message;
};

TEST_F(EnvTest, MissingRequiredRefsFailWithKubeletWording) {
  const MissingRefCase cases[] = {
      {R"([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nocm", "key": "k"}}}])",
       "configmap \"nocm\" not found"},
      {R"([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "nosecret", "key": "k"}}}])",
       "secret \"nosecret\" not found"},
      {R"([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}])",
       "couldn't find key k in ConfigMap ns/cfg"},
      {R"([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}])",
       "couldn't find key k in Secret ns/creds"},
  };
  for (const auto& c : cases) {
    container()["env"] = json::parse(c.env_json);
    ResolveResult r = Resolve();
    EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition) << c.env_json;
    EXPECT_EQ(r.status.message(), c.message);
    EXPECT_EQ(r.failure.waiting_reason, "CreateContainerConfigError");
    EXPECT_EQ(r.failure.waiting_message, c.message);
    EXPECT_EQ(r.failure.event_reason, "Failed");
    EXPECT_EQ(r.failure.event_message, std::string("Error: ") + c.message);
    EXPECT_EQ(r.failure.container_name, "app");
  }
  container().erase("env");
  container()["envFrom"] = json::parse(R"([{"secretRef": {"name": "gone"}}])");
  ResolveResult r = Resolve();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(), "secret \"gone\" not found");
}

TEST_F(EnvTest, MissingRefInInitContainerNamesIt) {
  pod_["spec"]["initContainers"] = json::parse(R"([{"name": "setup", "image": "busybox",
      "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nocm", "key": "k"}}}]}])");
  ResolveResult r = Resolve();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.failure.container_name, "setup");
}

TEST_F(EnvTest, MissingRefResolvesOnceTheObjectAppears) {
  container()["env"] = json::parse(
      R"([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "k"}}}])");
  EXPECT_EQ(Resolve().status.code(), absl::StatusCode::kFailedPrecondition);
  source_.AddConfigMap("ns", "late", {{"k", "v"}});
  EXPECT_EQ(Env()["A"], "v");
}

TEST_F(EnvTest, TransientSourceErrorsAreUnavailable) {
  container()["env"] = json::parse(
      R"([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}}])");
  source_.FailWith(absl::DeadlineExceededError("informer not synced"));
  ResolveResult r = Resolve();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(), HasSubstr("ns/cfg"));
  EXPECT_THAT(r.status.message(), HasSubstr("informer not synced"));
  EXPECT_EQ(r.failure.waiting_reason, "CreateContainerConfigError");
}

TEST_F(EnvTest, FieldRefsGiveDownwardApiValues) {
  pod_["metadata"]["annotations"] = {{"team", "blue"}};
  pod_["status"]["podIP"] = "10.244.1.5";
  pod_["status"]["podIPs"] = json::parse(R"([{"ip": "10.244.1.5"}, {"ip": "fd01::5"}])");
  pod_["spec"]["serviceAccountName"] = "robot";
  const std::pair<const char*, const char*> fields[] = {
      {"metadata.name", "web-0"},
      {"metadata.namespace", "ns"},
      {"metadata.uid", "uid-1"},
      {"metadata.labels['app']", "web"},
      {"metadata.labels['missing']", ""},
      {"metadata.annotations['team']", "blue"},
      {"metadata.labels", "app=\"web\""},
      {"spec.nodeName", "vnode"},
      {"spec.serviceAccountName", "robot"},
      {"status.hostIP", "10.1.0.1"},
      {"status.hostIPs", "10.1.0.1,fd00::1"},
      {"status.podIP", "10.244.1.5"},
      {"status.podIPs", "10.244.1.5,fd01::5"},
  };
  json env = json::array();
  for (size_t i = 0; i < std::size(fields); ++i) {
    env.push_back({{"name", "V" + std::to_string(i)},
                   {"valueFrom", {{"fieldRef", {{"apiVersion", "v1"},
                                                {"fieldPath", fields[i].first}}}}}});
  }
  container()["env"] = env;
  auto values = Env();
  for (size_t i = 0; i < std::size(fields); ++i) {
    EXPECT_EQ(values["V" + std::to_string(i)], fields[i].second) << fields[i].first;
  }
}

TEST_F(EnvTest, HostNetworkPodIpIsTheHostIp) {
  pod_["spec"]["hostNetwork"] = true;
  container()["env"] = json::parse(
      R"([{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])");
  EXPECT_EQ(Env()["IP"], "10.1.0.1");
}

TEST_F(EnvTest, PodIpIsEmptyBeforeThePodHasOne) {
  container()["env"] = json::parse(
      R"([{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])");
  EXPECT_EQ(Env()["IP"], "");
}

TEST_F(EnvTest, UnsupportedFieldPathIsInvalid) {
  container()["env"] = json::parse(
      R"([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.schedulerName"}}}])");
  ResolveResult r = Resolve();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status.message(), "unsupported fieldPath: spec.schedulerName");
}

TEST_F(EnvTest, ResourceFieldRefsDivideRoundUpAndDefaultToAllocatable) {
  container()["resources"] = json::parse(R"({
    "requests": {"cpu": "250m", "memory": "100Mi"},
    "limits": {"cpu": "1500m", "memory": "1Gi", "ephemeral-storage": "0"}})");
  const std::tuple<const char*, const char*, const char*> cases[] = {
      {"limits.cpu", nullptr, "2"},           // 1.5 cores round up
      {"limits.cpu", "1m", "1500"},
      {"requests.cpu", nullptr, "1"},         // 250m rounds up to 1
      {"requests.cpu", "1m", "250"},
      {"requests.memory", nullptr, "104857600"},
      {"requests.memory", "1Mi", "100"},
      {"limits.memory", "1Gi", "1"},
      {"limits.memory", "1M", "1074"},        // 1073.74 rounds up
      {"limits.ephemeral-storage", "1Gi", "100"},  // zero -> allocatable
      {"requests.ephemeral-storage", nullptr, "0"},
  };
  json env = json::array();
  for (size_t i = 0; i < std::size(cases); ++i) {
    json ref = {{"resource", std::get<0>(cases[i])}};
    if (std::get<1>(cases[i]) != nullptr) ref["divisor"] = std::get<1>(cases[i]);
    env.push_back({{"name", "R" + std::to_string(i)},
                   {"valueFrom", {{"resourceFieldRef", ref}}}});
  }
  container()["env"] = env;
  auto values = Env();
  for (size_t i = 0; i < std::size(cases); ++i) {
    EXPECT_EQ(values["R" + std::to_string(i)], std::get<2>(cases[i]))
        << std::get<0>(cases[i]) << " / " << (std::get<1>(cases[i]) ? std::get<1>(cases[i]) : "1");
  }
}

TEST_F(EnvTest, UnsetLimitsDefaultToNodeAllocatable) {
  container()["env"] = json::parse(R"([
    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
    {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}}])");
  auto env = Env();
  EXPECT_EQ(env["CPU"], "4");
  EXPECT_EQ(env["MEM"], "8192");
  EXPECT_EQ(env["REQ"], "0");
}

TEST_F(EnvTest, ResourceFieldRefMayNameAnotherContainer) {
  pod_["spec"]["containers"].push_back(
      {{"name", "side"}, {"image", "x"},
       {"resources", {{"requests", {{"memory", "64Mi"}}}}}});
  container()["env"] = json::parse(R"([
    {"name": "SIDE_MEM", "valueFrom": {"resourceFieldRef": {"containerName": "side",
        "resource": "requests.memory", "divisor": "1Mi"}}},
    {"name": "SIDE_CPU", "valueFrom": {"resourceFieldRef": {"containerName": "side",
        "resource": "limits.cpu"}}}])");
  auto env = Env();
  EXPECT_EQ(env["SIDE_MEM"], "64");
  EXPECT_EQ(env["SIDE_CPU"], "4");
  container()["env"][0]["valueFrom"]["resourceFieldRef"]["containerName"] = "ghost";
  EXPECT_EQ(Resolve().status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EnvTest, BadResourceFieldRefsAreInvalid) {
  for (const char* ref : {R"({"resource": "limits.gpu"})",
                          R"({"resource": "limits.cpu", "divisor": "lots"})"}) {
    container()["env"] = json::array(
        {{{"name", "X"}, {"valueFrom", {{"resourceFieldRef", json::parse(ref)}}}}});
    ResolveResult r = Resolve();
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << ref;
    EXPECT_EQ(r.failure.waiting_reason, "CreateContainerConfigError");
  }
}

}  // namespace
}  // namespace vkhost::resolve
