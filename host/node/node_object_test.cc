#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/node/node.h"

namespace vkhost::node {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);  // 2027-01-15T08:00:00Z

NodeConfig Config() {
  NodeConfig c;
  c.name = "vk-1";
  c.internal_ip = "192.0.2.10";
  c.kubelet_port = 10250;
  c.labels = {{"team", "batch"}, {"kubernetes.io/role", "virtual"}};
  return c;
}

PluginView Plugin() {
  PluginView p;
  p.name = "mock";
  p.version = "1.2.3";
  p.connected = true;
  p.ready = true;
  v1::NodeStatus reported;
  (*reported.mutable_capacity())["cpu"] = "8";
  (*reported.mutable_capacity())["memory"] = "32Gi";
  (*reported.mutable_labels())["example.com/zone"] = "z1";
  (*reported.mutable_labels())["kubernetes.io/hostname"] = "spoofed";
  (*reported.mutable_labels())["topology.kubernetes.io/region"] = "r1";
  auto* pressure = reported.add_conditions();
  pressure->set_type("MemoryPressure");
  pressure->set_status(v1::CONDITION_STATUS_TRUE);
  pressure->set_reason("BackendFull");
  p.reported = reported;
  return p;
}

json ConditionOf(const json& status, const std::string& type) {
  for (const auto& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  return nullptr;
}

TEST(BuildNodeTest, LabelsAndDefaultTaint) {
  json node = BuildNode(Config(), Plugin());
  const json& labels = node["metadata"]["labels"];
  EXPECT_EQ(labels["type"], "virtual-kubelet");
  EXPECT_EQ(labels["kubernetes.io/role"], "virtual");  // operator wins
  EXPECT_EQ(labels["kubernetes.io/hostname"], "vk-1");  // plugin may not spoof
  EXPECT_EQ(labels["example.com/zone"], "z1");
  EXPECT_EQ(labels["topology.kubernetes.io/region"], "r1");
  EXPECT_EQ(labels["team"], "batch");
  EXPECT_EQ(labels["kubernetes.io/os"], "linux");
  EXPECT_EQ(node["spec"]["taints"],
            json::parse(R"([{"key":"virtual-kubelet.io/provider","value":"mock",
                             "effect":"NoSchedule"}])"));
}

TEST(BuildNodeTest, ConfiguredTaintsReplaceDefault) {
  NodeConfig c = Config();
  c.taints = std::vector<Taint>{};
  EXPECT_TRUE(BuildNode(c, Plugin())["spec"]["taints"].empty());
}

TEST(BuildNodeStatusTest, CapacityAddressesEndpointAndConditions) {
  json status = BuildNodeStatus(Config(), Plugin(), nullptr, kNow);
  EXPECT_EQ(status["capacity"]["cpu"], "8");
  EXPECT_EQ(status["capacity"]["pods"], "110");  // default fills the gap
  EXPECT_EQ(status["allocatable"], status["capacity"]);
  EXPECT_EQ(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
  EXPECT_EQ(status["addresses"][0], json::parse(R"({"type":"InternalIP","address":"192.0.2.10"})"));
  EXPECT_EQ(ConditionOf(status, "Ready")["status"], "True");
  EXPECT_EQ(ConditionOf(status, "Ready")["reason"], "KubeletReady");
  EXPECT_EQ(ConditionOf(status, "MemoryPressure")["status"], "True");
  EXPECT_EQ(ConditionOf(status, "DiskPressure")["status"], "False");
  EXPECT_EQ(ConditionOf(status, "Ready")["lastHeartbeatTime"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(status["nodeInfo"]["containerRuntimeVersion"], "mock://1.2.3");
  EXPECT_EQ(status["declaredFeatures"], json::parse(R"(["ExtendWebSocketsToKubelet"])"));
}

TEST(BuildNodeStatusTest, DisconnectedPluginMakesNodeNotReady) {
  PluginView p = Plugin();
  p.connected = false;
  json ready = ConditionOf(BuildNodeStatus(Config(), p, nullptr, kNow), "Ready");
  EXPECT_EQ(ready["status"], "False");
  EXPECT_EQ(ready["reason"], "PluginUnavailable");
  EXPECT_THAT(ready["message"].get<std::string>(), HasSubstr("mock"));

  p.connected = true;
  p.ready = false;
  p.not_ready_message = "backend warming up";
  ready = ConditionOf(BuildNodeStatus(Config(), p, nullptr, kNow), "Ready");
  EXPECT_EQ(ready["reason"], "PluginNotReady");
  EXPECT_THAT(ready["message"].get<std::string>(), HasSubstr("backend warming up"));
}

TEST(StatusChangedTest, ServerWithoutDeclaredFeaturesIsNoChange) {
  json status = BuildNodeStatus(Config(), Plugin(), nullptr, kNow);
  json stored = status;
  stored.erase("declaredFeatures");  // what an older API server keeps
  EXPECT_FALSE(StatusChanged(json{{"status", stored}}, status));
  stored["declaredFeatures"] = json::array();
  EXPECT_TRUE(StatusChanged(json{{"status", stored}}, status));
}

TEST(StatusChangedTest, HeartbeatsAloneAreNoChange) {
  json first = BuildNodeStatus(Config(), Plugin(), nullptr, kNow);
  json node = {{"status", first}};
  json later = BuildNodeStatus(Config(), Plugin(), node, kNow + absl::Seconds(10));
  EXPECT_FALSE(StatusChanged(node, later));
  // The transition time survives; only the heartbeat moved.
  EXPECT_EQ(ConditionOf(later, "Ready")["lastTransitionTime"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(ConditionOf(later, "Ready")["lastHeartbeatTime"], "2027-01-15T08:00:10Z");

  PluginView down = Plugin();
  down.connected = false;
  json changed = BuildNodeStatus(Config(), down, node, kNow + absl::Seconds(20));
  EXPECT_TRUE(StatusChanged(node, changed));
  EXPECT_EQ(ConditionOf(changed, "Ready")["lastTransitionTime"], "2027-01-15T08:00:20Z");
}

TEST(BuildLeaseTest, OwnedByNodeWithMicroTime) {
  json lease = BuildLease(Config(), "uid-1", kNow + absl::Microseconds(5));
  EXPECT_EQ(lease["metadata"]["namespace"], "kube-node-lease");
  EXPECT_EQ(lease["spec"]["holderIdentity"], "vk-1");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 40);
  EXPECT_EQ(lease["spec"]["renewTime"], "2027-01-15T08:00:00.000005Z");
  EXPECT_EQ(lease["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_EQ(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
}

}  // namespace
}  // namespace vkhost::node
