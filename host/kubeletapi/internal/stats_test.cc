#include "host/kubeletapi/internal/stats.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::kubeletapi::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// 2024-05-01T12:00:00Z
constexpr int64_t kSampleTime = 1714564800;

v1::GetStatsSummaryResponse SampleSummary() {
  v1::GetStatsSummaryResponse s;
  v1::NodeStats* node = s.mutable_node();
  node->mutable_start_time()->set_seconds(kSampleTime - 3600);
  node->mutable_cpu()->mutable_time()->set_seconds(kSampleTime);
  node->mutable_cpu()->set_usage_core_nano_seconds(12'500'000'000);
  node->mutable_cpu()->set_usage_nano_cores(250'000'000);
  node->mutable_memory()->mutable_time()->set_seconds(kSampleTime);
  node->mutable_memory()->set_working_set_bytes(1 << 30);
  v1::InterfaceStats* lo = node->mutable_network()->add_interfaces();
  lo->set_name("lo");
  v1::InterfaceStats* eth = node->mutable_network()->add_interfaces();
  eth->set_name("eth0");
  eth->set_rx_bytes(100);
  node->mutable_fs()->set_capacity_bytes(1000);

  v1::PodStats* pod = s.add_pods();
  pod->mutable_pod()->set_namespace_("default");
  pod->mutable_pod()->set_name("web-0");  // no UID: looked up
  pod->mutable_cpu()->mutable_time()->set_seconds(kSampleTime);
  pod->mutable_cpu()->set_usage_core_nano_seconds(3'000'000'000);
  pod->mutable_memory()->mutable_time()->set_seconds(kSampleTime);
  pod->mutable_memory()->set_working_set_bytes(2048);
  v1::ContainerStats* c = pod->add_containers();
  c->set_name("app");
  c->mutable_start_time()->set_seconds(kSampleTime - 60);
  c->mutable_cpu()->mutable_time()->set_seconds(kSampleTime);
  c->mutable_cpu()->set_usage_core_nano_seconds(0);  // just started
  c->mutable_memory()->mutable_time()->set_seconds(kSampleTime);
  c->mutable_memory()->set_working_set_bytes(1024);
  v1::VolumeStats* v = pod->add_volumes();
  v->set_name("data");
  v->mutable_fs()->set_used_bytes(7);
  pod->mutable_ephemeral_storage()->set_used_bytes(9);
  return s;
}

TEST(SummaryToJson, HasTheKubeletShape) {
  nlohmann::json j = SummaryToJson(
      SampleSummary(), "vnode",
      [](const std::string& ns, const std::string& name) {
        return ns + "/" + name + "-uid";
      });
  const nlohmann::json& node = j["node"];
  EXPECT_EQ(node["nodeName"], "vnode");
  EXPECT_EQ(node["startTime"], "2024-05-01T11:00:00Z");
  EXPECT_EQ(node["cpu"]["usageCoreNanoSeconds"], 12'500'000'000ULL);
  EXPECT_EQ(node["cpu"]["usageNanoCores"], 250'000'000ULL);
  EXPECT_EQ(node["cpu"]["time"], "2024-05-01T12:00:00Z");
  EXPECT_EQ(node["memory"]["workingSetBytes"], 1 << 30);
  EXPECT_FALSE(node["memory"].contains("usageBytes"));  // unknown, not 0
  EXPECT_EQ(node["network"]["name"], "eth0");  // default interface inlined
  EXPECT_EQ(node["network"]["rxBytes"], 100);
  EXPECT_EQ(node["network"]["interfaces"].size(), 2u);
  EXPECT_EQ(node["fs"]["capacityBytes"], 1000);

  ASSERT_EQ(j["pods"].size(), 1u);
  const nlohmann::json& pod = j["pods"][0];
  EXPECT_EQ(pod["podRef"]["name"], "web-0");
  EXPECT_EQ(pod["podRef"]["namespace"], "default");
  EXPECT_EQ(pod["podRef"]["uid"], "default/web-0-uid");
  EXPECT_EQ(pod["containers"][0]["name"], "app");
  EXPECT_EQ(pod["containers"][0]["startTime"], "2024-05-01T11:59:00Z");
  EXPECT_EQ(pod["containers"][0]["memory"]["workingSetBytes"], 1024);
  EXPECT_EQ(pod["volume"][0]["name"], "data");
  EXPECT_EQ(pod["volume"][0]["usedBytes"], 7);
  EXPECT_EQ(pod["ephemeral-storage"]["usedBytes"], 9);
}

TEST(ResourceMetricsText, HasKubeletMetricNamesAndTimestamps) {
  std::string text = ResourceMetricsText(SampleSummary());
  EXPECT_THAT(text, HasSubstr("# TYPE node_cpu_usage_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("\nnode_cpu_usage_seconds_total 12.5 1714564800000\n"));
  EXPECT_THAT(text, HasSubstr("\nnode_memory_working_set_bytes 1073741824 1714564800000\n"));
  EXPECT_THAT(text, HasSubstr(
      "\ncontainer_memory_working_set_bytes{container=\"app\",namespace=\"default\","
      "pod=\"web-0\"} 1024 1714564800000\n"));
  // A zero would make metrics-server drop the pod: at least 1 ns.
  EXPECT_THAT(text, HasSubstr(
      "\ncontainer_cpu_usage_seconds_total{container=\"app\",namespace=\"default\","
      "pod=\"web-0\"} 1e-09 1714564800000\n"));
  EXPECT_THAT(text, HasSubstr(
      "\ncontainer_start_time_seconds{container=\"app\",namespace=\"default\","
      "pod=\"web-0\"} 1714564740\n"));
  EXPECT_THAT(text, HasSubstr(
      "\npod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web-0\"} 3 "
      "1714564800000\n"));
  EXPECT_THAT(text, HasSubstr(
      "\npod_memory_working_set_bytes{namespace=\"default\",pod=\"web-0\"} 2048 "
      "1714564800000\n"));
  EXPECT_THAT(text, HasSubstr("\nresource_scrape_error 0\n"));
  EXPECT_THAT(text, HasSubstr("\nscrape_error 0\n"));
}

TEST(ResourceMetricsText, ErrorGivesOnlyScrapeErrors) {
  std::string text = ResourceMetricsText(absl::UnavailableError("down"));
  EXPECT_THAT(text, HasSubstr("\nresource_scrape_error 1\n"));
  EXPECT_THAT(text, HasSubstr("\nscrape_error 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("node_cpu")));
}

TEST(ResourceMetricsText, EscapesLabelValues) {
  v1::GetStatsSummaryResponse s;
  v1::PodStats* pod = s.add_pods();
  pod->mutable_pod()->set_namespace_("ns");
  pod->mutable_pod()->set_name("a\"b\\c");
  pod->mutable_memory()->set_working_set_bytes(5);
  EXPECT_THAT(ResourceMetricsText(s),
              HasSubstr("pod_memory_working_set_bytes{namespace=\"ns\",pod=\"a\\\"b\\\\c\"} 5"));
}

}  // namespace
}  // namespace vkhost::kubeletapi::internal
