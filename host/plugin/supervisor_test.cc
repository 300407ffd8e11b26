#include <signal.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/plugin/plugin.h"
#include "host/plugin/plugin_test_support.h"

namespace vkhost::plugin {
namespace {

using ::testing::HasSubstr;
using testing::FakePluginServer;
using testing::ProcessExists;
using testing::TempDir;

constexpr absl::Duration kPatience = absl::Seconds(60);

// Records what the supervisor's listener saw.
class ConnectLog {
 public:
  PluginSupervisor::ConnectListener Listener(const PluginSupervisor* supervisor) {
    return [this, supervisor](const PluginIdentity& identity, uint64_t generation) {
      absl::StatusOr<std::shared_ptr<PluginConnection>> current =
          supervisor->Current();
      absl::MutexLock lock(&mu_);
      names_.push_back(identity.name);
      generations_.push_back(generation);
      pids_.push_back(current.ok() ? (*current)->pid() : -1);
    };
  }

  // Waits until a listener call reported `generation`; false on timeout.
  bool WaitForGeneration(uint64_t generation) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !generations_.empty() && generations_.back() >= generation;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kPatience);
  }

  std::vector<uint64_t> generations() {
    absl::MutexLock lock(&mu_);
    return generations_;
  }
  std::vector<int> pids() {
    absl::MutexLock lock(&mu_);
    return pids_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> generations_ ABSL_GUARDED_BY(mu_);
  std::vector<int> pids_ ABSL_GUARDED_BY(mu_);
};

PluginSupervisor::Options FastOptions(PluginSource source) {
  PluginSupervisor::Options options;
  options.source = std::move(source);
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  return options;
}

PluginSource LaunchSource(const std::string& path) {
  PluginSource source;
  source.command = {path};
  return source;
}

TEST(PluginSupervisorTest, StartReturnsTheFirstErrorAndRunsNothing) {
  TempDir dir;
  PluginSupervisor supervisor(
      FastOptions(LaunchSource(dir.WriteScript("plugin", "echo nope >&2; exit 4"))));
  ConnectLog log;
  supervisor.AddConnectListener(log.Listener(&supervisor));
  absl::Status started = supervisor.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(started.message(), HasSubstr("nope"));
  EXPECT_EQ(supervisor.generation(), 0u);
  EXPECT_EQ(supervisor.Current().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(log.generations().empty());
  supervisor.Stop();
}

TEST(PluginSupervisorTest, RestartsAKilledPluginAndTellsListeners) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {});
  // A long probe interval: the exit must be noticed without a probe.
  PluginSupervisor::Options options = FastOptions(
      LaunchSource(testing::WriteHandshakingPlugin(dir, "plugin", server)));
  options.probe_interval = absl::Hours(1);
  PluginSupervisor supervisor(options);
  ConnectLog log;
  supervisor.AddConnectListener(log.Listener(&supervisor));
  ASSERT_TRUE(supervisor.Start().ok());
  ASSERT_EQ(log.generations(), std::vector<uint64_t>{1});
  int first_pid = log.pids()[0];
  ASSERT_GT(first_pid, 0);

  ASSERT_EQ(::kill(first_pid, SIGKILL), 0);
  ASSERT_TRUE(log.WaitForGeneration(2));
  EXPECT_EQ(log.generations(), (std::vector<uint64_t>{1, 2}));
  int second_pid = log.pids()[1];
  EXPECT_GT(second_pid, 0);
  EXPECT_NE(second_pid, first_pid);
  EXPECT_FALSE(ProcessExists(first_pid));
  EXPECT_EQ(supervisor.generation(), 2u);

  supervisor.Stop();
  EXPECT_FALSE(ProcessExists(second_pid));
  EXPECT_EQ(supervisor.Current().status().code(), absl::StatusCode::kUnavailable);
  supervisor.Stop();  // Idempotent.
}

TEST(PluginSupervisorTest, RestartsAPluginThatFailsItsProbes) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {});
  PluginSupervisor::Options options = FastOptions(
      LaunchSource(testing::WriteHandshakingPlugin(dir, "plugin", server)));
  options.probe_interval = absl::Milliseconds(20);
  options.probe_failure_threshold = 2;
  PluginSupervisor supervisor(options);
  ConnectLog log;
  supervisor.AddConnectListener(log.Listener(&supervisor));
  ASSERT_TRUE(supervisor.Start().ok());
  int first_pid = log.pids()[0];
  server.SetServing(false);
  ASSERT_TRUE(log.WaitForGeneration(2));
  server.SetServing(true);
  EXPECT_FALSE(ProcessExists(first_pid));
  supervisor.Stop();
}

TEST(PluginSupervisorTest, LastProbeIsTheCurrentConnectionsLatestAnswer) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {});
  PluginSupervisor::Options options = FastOptions(
      LaunchSource(testing::WriteHandshakingPlugin(dir, "plugin", server)));
  options.probe_interval = absl::Milliseconds(20);
  options.probe_failure_threshold = 1000;  // not-ready answers must not restart it
  PluginSupervisor supervisor(options);
  EXPECT_FALSE(supervisor.LastProbe().has_value());  // nothing connected yet
  ASSERT_TRUE(supervisor.Start().ok());

  auto wait_for_ready = [&](bool want) {
    absl::Time deadline = absl::Now() + kPatience;
    while (absl::Now() < deadline) {
      auto last = supervisor.LastProbe();
      if (last && last->ok() && (*last)->ready() == want) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  };
  EXPECT_TRUE(wait_for_ready(true));
  server.SetServing(false);  // the fake's Probe now answers ready=false
  EXPECT_TRUE(wait_for_ready(false));
  server.SetServing(true);
  EXPECT_TRUE(wait_for_ready(true));
  supervisor.Stop();
}

TEST(PluginSupervisorTest, ReconnectsToAnEndpointThatCameBack) {
  TempDir dir;
  const std::string socket = dir.path() + "/server.sock";
  auto server = std::make_unique<FakePluginServer>(
      socket, FakePluginServer::Options{.name = "remote", .capabilities = {}, .serve_identity = true});
  PluginSource source;
  source.endpoint = server->address();
  source.handshake_timeout = absl::Milliseconds(200);
  PluginSupervisor::Options options = FastOptions(source);
  options.probe_interval = absl::Milliseconds(20);
  options.probe_failure_threshold = 2;
  PluginSupervisor supervisor(options);
  ConnectLog log;
  supervisor.AddConnectListener(log.Listener(&supervisor));
  ASSERT_TRUE(supervisor.Start().ok());
  // gRPC would reconnect the old channel by itself to a server that comes
  // back quickly; keep it away until the supervisor has given up on it.
  server.reset();
  absl::Time give_up = absl::Now() + kPatience;
  while (supervisor.Current().ok() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_FALSE(supervisor.Current().ok());
  server = std::make_unique<FakePluginServer>(
      socket, FakePluginServer::Options{.name = "remote", .capabilities = {}, .serve_identity = true});
  ASSERT_TRUE(log.WaitForGeneration(2));
  absl::StatusOr<std::shared_ptr<PluginConnection>> current = supervisor.Current();
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ((*current)->identity().name, "remote");
  supervisor.Stop();
}

TEST(PluginClientTest, GatesCallsByCapability) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock",
                          {.name = "fake", .capabilities = {v1::CAPABILITY_NODE_INFO}, .serve_identity = true});
  PluginSupervisor supervisor(FastOptions(
      LaunchSource(testing::WriteHandshakingPlugin(dir, "plugin", server))));
  PluginClient client(supervisor);
  EXPECT_EQ(client.Probe().status().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE(supervisor.Start().ok());
  absl::StatusOr<v1::ProbeResponse> probe = client.Probe();
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_TRUE(probe->ready());

  absl::StatusOr<v1::NodeStatus> node = client.GetNode("virtual-1");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->capacity().at("cpu"), "4");
  EXPECT_EQ(server.node_calls(), 1);

  absl::StatusOr<v1::GetStatsSummaryResponse> stats = client.GetStatsSummary();
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(stats.status().message(), HasSubstr("STATS"));
  EXPECT_EQ(server.stats_calls(), 0);

  EXPECT_EQ(client.UpdatePod(v1::Pod()).code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(client.ConnectionFor(v1::CAPABILITY_EXEC).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(client.ConnectionFor(v1::CAPABILITY_NODE_INFO).ok());
  // The fake has no Pods service: the plugin's error comes back as is.
  EXPECT_EQ(client.ListPods().status().code(), absl::StatusCode::kUnimplemented);
  supervisor.Stop();
}

}  // namespace
}  // namespace vkhost::plugin
