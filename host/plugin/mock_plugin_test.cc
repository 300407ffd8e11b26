// host/plugin against the real in-tree mock plugin (plugins/mock). The build
// defines VKHOST_MOCK_PLUGIN_PATH once that target exists.
#ifdef VKHOST_MOCK_PLUGIN_PATH

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/plugin/child_process.h"
#include "host/plugin/plugin.h"
#include "host/plugin/plugin_test_support.h"

namespace vkhost::plugin {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::ProcessExists;
using testing::TempDir;

constexpr char kMock[] = VKHOST_MOCK_PLUGIN_PATH;
constexpr absl::Duration kPatience = absl::Seconds(60);

PluginSource MockSource(const TempDir& dir) {
  PluginSource source;
  source.command = {kMock};
  source.socket_dir = dir.path();
  return source;
}

TEST(MockPluginTest, LaunchesAndNegotiates) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(MockSource(dir));
  ASSERT_TRUE(connection.ok()) << connection.status();
  const PluginIdentity& id = (*connection)->identity();
  EXPECT_FALSE(id.name.empty());
  EXPECT_FALSE(id.version.empty());
  EXPECT_EQ(id.protocol_major, 1);
  // The plugin honoured VKHOST_PLUGIN_SOCKET_DIR.
  EXPECT_THAT(id.address, StartsWith("unix://" + dir.path() + "/"));
  EXPECT_FALSE(id.capabilities.empty());
  int pid = (*connection)->pid();
  connection->reset();
  EXPECT_FALSE(ProcessExists(pid));
}

TEST(MockPluginTest, WrongCookieIsRefusedWithThePluginsMessage) {
  TempDir dir;
  PluginSource source = MockSource(dir);
  source.extra_env = {std::string(kMagicCookieEnv) + "=not-the-cookie"};
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(source);
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kFailedPrecondition)
      << connection.status();
  EXPECT_THAT(connection.status().message(), HasSubstr("exited with status 1"));
  EXPECT_THAT(connection.status().message(), HasSubstr("stderr ends with"));
  EXPECT_THAT(connection.status().message(), HasSubstr("--listen"));
}

TEST(MockPluginTest, UnsupportedProtocolIsRefused) {
  TempDir dir;
  PluginSource source = MockSource(dir);
  source.offered_protocols = {2};
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(source);
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kFailedPrecondition)
      << connection.status();
  EXPECT_THAT(connection.status().message(), HasSubstr("stderr ends with"));
  EXPECT_THAT(connection.status().message(), HasSubstr("2"));
}

TEST(MockPluginTest, ConnectModeOverUnixSocket) {
  TempDir dir;
  const std::string endpoint = "unix://" + dir.path() + "/p.sock";
  absl::StatusOr<std::unique_ptr<internal::ChildProcess>> server =
      internal::ChildProcess::Spawn({kMock, "--listen", endpoint},
                                    {"PATH=/usr/bin:/bin"}, {});
  ASSERT_TRUE(server.ok()) << server.status();
  PluginSource source;
  source.endpoint = endpoint;
  source.handshake_timeout = kPatience;
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Dial(source);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_FALSE((*connection)->identity().name.empty());
  EXPECT_EQ((*connection)->identity().address, endpoint);
  EXPECT_EQ((*connection)->pid(), 0);
}

TEST(MockPluginTest, SupervisorRestartsAKilledMock) {
  TempDir dir;
  PluginSupervisor::Options options;
  options.source = MockSource(dir);
  options.initial_backoff = absl::Milliseconds(50);
  PluginSupervisor supervisor(options);
  absl::Mutex mu;
  std::vector<std::pair<uint64_t, int>> seen;  // generation, pid
  supervisor.AddConnectListener(
      [&](const PluginIdentity&, uint64_t generation) {
        auto current = supervisor.Current();
        absl::MutexLock lock(&mu);
        seen.emplace_back(generation, current.ok() ? (*current)->pid() : -1);
      });
  ASSERT_TRUE(supervisor.Start().ok());
  int first_pid;
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(seen.size(), 1u);
    first_pid = seen[0].second;
  }
  ASSERT_EQ(::kill(first_pid, SIGKILL), 0);
  int second_pid = 0;
  {
    absl::MutexLock lock(&mu);
    auto restarted = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return seen.size() >= 2;
    };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&restarted), kPatience));
    EXPECT_EQ(seen[1].first, 2u);
    second_pid = seen[1].second;
  }
  EXPECT_NE(second_pid, first_pid);
  EXPECT_TRUE(ProcessExists(second_pid));
  supervisor.Stop();
  EXPECT_FALSE(ProcessExists(second_pid));
}

TEST(MockPluginTest, ClientCallsTheMock) {
  TempDir dir;
  PluginSupervisor::Options options;
  options.source = MockSource(dir);
  PluginSupervisor supervisor(options);
  ASSERT_TRUE(supervisor.Start().ok());
  PluginClient client(supervisor);
  absl::StatusOr<v1::ProbeResponse> probe = client.Probe();
  EXPECT_TRUE(probe.ok()) << probe.status();
  absl::StatusOr<std::vector<v1::PodStatus>> pods = client.ListPods();
  ASSERT_TRUE(pods.ok()) << pods.status();
  EXPECT_TRUE(pods->empty());
  v1::PodRef unknown;
  unknown.set_uid("no-such-pod");
  EXPECT_EQ(client.GetPodStatus(unknown).status().code(),
            absl::StatusCode::kNotFound);
  // Every capability the mock lacks is refused without a call.
  auto connection = supervisor.Current();
  ASSERT_TRUE(connection.ok());
  for (int c = v1::Capability_MIN + 1; c <= v1::Capability_MAX; ++c) {
    auto capability = static_cast<v1::Capability>(c);
    absl::StatusOr<std::shared_ptr<PluginConnection>> gated =
        client.ConnectionFor(capability);
    EXPECT_EQ(gated.ok(), (*connection)->identity().Has(capability))
        << CapabilityName(capability);
  }
  supervisor.Stop();
}

}  // namespace
}  // namespace vkhost::plugin

#endif  // VKHOST_MOCK_PLUGIN_PATH
