#include "plugins/process/pod_state.h"

#include <cstdlib>
#include <filesystem>

#include "gtest/gtest.h"

namespace vkhost::process {
namespace {

TEST(PodRecordTest, RoundTripsThroughJson) {
  PodRecord record;
  record.uid = "uid-1";
  record.start_time = absl::FromUnixNanos(1'700'000'000'000'000'001);
  record.next_init = 1;
  record.terminating = true;
  record.kill_at = absl::FromUnixSeconds(1'700'000'030);
  record.ports = {{8000, 41234}, {9090, 9090}};
  ContainerRecord c;
  c.name = "web";
  c.instance = 3;
  c.active = true;
  c.shim_pid = 4242;
  c.shim_start_ticks = 987654321;
  c.backoff_consecutive = 2;
  c.status.set_name("web");
  c.status.set_restart_count(2);
  c.status.mutable_last_state()->mutable_terminated()->set_exit_code(3);
  c.status.mutable_state()->mutable_running()->mutable_started_at()->set_seconds(5);
  record.app.push_back(c);
  ContainerRecord init;
  init.name = "setup";
  record.init.push_back(init);

  auto decoded = DecodePodRecord(EncodePodRecord(record));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->uid, "uid-1");
  EXPECT_EQ(decoded->start_time, record.start_time);
  EXPECT_EQ(decoded->next_init, 1u);
  EXPECT_TRUE(decoded->terminating);
  EXPECT_EQ(decoded->kill_at, record.kill_at);
  EXPECT_EQ(decoded->ports, record.ports);
  ASSERT_EQ(decoded->app.size(), 1u);
  const ContainerRecord& got = decoded->app[0];
  EXPECT_EQ(got.instance, 3);
  EXPECT_TRUE(got.active);
  EXPECT_EQ(got.shim_pid, 4242);
  EXPECT_EQ(got.shim_start_ticks, 987654321u);
  EXPECT_EQ(got.backoff_consecutive, 2);
  EXPECT_EQ(got.next_start, absl::InfinitePast());
  EXPECT_EQ(got.status.restart_count(), 2);
  EXPECT_EQ(got.status.last_state().terminated().exit_code(), 3);
  EXPECT_EQ(got.status.state().running().started_at().seconds(), 5);
  ASSERT_EQ(decoded->init.size(), 1u);
  EXPECT_EQ(decoded->init[0].name, "setup");
}

TEST(PodRecordTest, RejectsGarbage) {
  EXPECT_FALSE(DecodePodRecord("not json").ok());
  EXPECT_FALSE(DecodePodRecord("{}").ok());
  EXPECT_FALSE(DecodePodRecord(R"({"uid":"x","app":[{"status":{}}]})").ok());
}

TEST(PodStateStoreTest, SavesAndLoadsPods) {
  char pattern[] = "/tmp/vkhost-process-state-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  PodStateStore store(dir);
  ASSERT_TRUE(store.Init().ok());
  v1::Pod pod;
  pod.set_uid("abc");
  pod.set_name("web");
  pod.add_containers()->set_name("main");
  ASSERT_TRUE(store.SaveSpec(pod).ok());
  PodRecord record;
  record.uid = "abc";
  ASSERT_TRUE(store.SaveRecord(record).ok());
  // A pod directory without state is skipped, not fatal.
  std::filesystem::create_directories(dir + "/pods/broken");

  std::vector<PodStateStore::Loaded> loaded = store.LoadAll();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].spec.name(), "web");
  EXPECT_EQ(loaded[0].record.uid, "abc");
  store.Remove("abc");
  EXPECT_TRUE(store.LoadAll().empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vkhost::process
