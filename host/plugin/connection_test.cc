#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/plugin/plugin.h"
#include "host/plugin/plugin_test_support.h"

namespace vkhost::plugin {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::FakePluginServer;
using testing::ProcessExists;
using testing::TempDir;

PluginSource LaunchSource(const std::string& path) {
  PluginSource source;
  source.command = {path};
  source.handshake_timeout = absl::Seconds(10);
  return source;
}

struct HandshakeFailure {
  const char* name;
  const char* script;
  absl::StatusCode code;
  std::vector<std::string> message_parts;
};

void PrintTo(const HandshakeFailure& failure, std::ostream* os) {
  *os << failure.name;
}

class HandshakeFailureTest : public ::testing::TestWithParam<HandshakeFailure> {};

TEST_P(HandshakeFailureTest, IsRefusedWithAClearMessage) {
  TempDir dir;
  std::string plugin = dir.WriteScript("plugin", GetParam().script);
  PluginSource source = LaunchSource(plugin);
  source.handshake_timeout = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(source);
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), GetParam().code) << connection.status();
  for (const std::string& part : GetParam().message_parts) {
    EXPECT_THAT(connection.status().message(), HasSubstr(part));
  }
  EXPECT_THAT(connection.status().message(), HasSubstr(plugin));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HandshakeFailureTest,
    ::testing::Values(
        HandshakeFailure{"Garbage", "echo hello\nexec sleep 30",
                         absl::StatusCode::kFailedPrecondition,
                         {"printed \"hello\" instead of a handshake line",
                          "VKHOST|1|<protocol>|unix|<socket>|grpc"}},
        HandshakeFailure{"ExitsEarly",
                         "echo 'starting' >&2\n"
                         "echo 'cannot open backend: disk full' >&2\nexit 3",
                         absl::StatusCode::kUnavailable,
                         {"exited with status 3 before its handshake",
                          "stderr ends with", "starting",
                          "cannot open backend: disk full"}},
        HandshakeFailure{"RefusesWithStatus1", "echo 'no cookie' >&2\nexit 1",
                         absl::StatusCode::kFailedPrecondition,
                         {"exited with status 1", "no cookie"}},
        HandshakeFailure{"KilledBySignal", "kill -9 $$",
                         absl::StatusCode::kUnavailable,
                         {"killed by signal 9", "wrote nothing to stderr"}},
        HandshakeFailure{"NeverPrints",
                         "echo 'still thinking' >&2\nexec sleep 30",
                         absl::StatusCode::kDeadlineExceeded,
                         {"no handshake within 500ms", "still thinking"}},
        HandshakeFailure{"UnofferedProtocol",
                         "echo 'VKHOST|1|2|unix|/tmp/x.sock|grpc'\nexec sleep 30",
                         absl::StatusCode::kFailedPrecondition,
                         {"chose protocol 2, but vkhost offered 1"}},
        HandshakeFailure{"CoreVersion2",
                         "echo 'VKHOST|2|1|unix|/tmp/x.sock|grpc'\nexec sleep 30",
                         absl::StatusCode::kFailedPrecondition,
                         {"handshake core version \"2\"", "understands only 1"}},
        HandshakeFailure{"NetworkTcp",
                         "echo 'VKHOST|1|1|tcp|127.0.0.1:1234|grpc'\nexec sleep 30",
                         absl::StatusCode::kFailedPrecondition,
                         {"network \"tcp\"", "only unix"}},
        HandshakeFailure{"ProtocolNetrpc",
                         "echo 'VKHOST|1|1|unix|/tmp/x.sock|netrpc'\nexec sleep 30",
                         absl::StatusCode::kFailedPrecondition,
                         {"protocol \"netrpc\"", "only grpc"}},
        HandshakeFailure{"RelativeSocket",
                         "echo 'VKHOST|1|1|unix|x.sock|grpc'\nexec sleep 30",
                         absl::StatusCode::kFailedPrecondition,
                         {"not absolute"}},
        HandshakeFailure{"ClosesStdout", "exec >&-\necho 'bye' >&2\nexec sleep 30",
                         absl::StatusCode::kFailedPrecondition,
                         {"closed its stdout", "bye"}},
        HandshakeFailure{"NothingListens",
                         "echo \"VKHOST|1|1|unix|$(dirname $0)/none.sock|grpc\"\n"
                         "exec sleep 30",
                         absl::StatusCode::kUnavailable,
                         {"cannot connect to plugin", "none.sock"}}),
    [](const ::testing::TestParamInfo<HandshakeFailure>& info) {
      return std::string(info.param.name);
    });

TEST(LaunchTest, MissingExecutableIsAFailedPrecondition) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(LaunchSource(dir.path() + "/does-not-exist"));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(connection.status().message(),
              AllOf(HasSubstr("cannot start plugin"), HasSubstr("does-not-exist")));
}

TEST(LaunchTest, PassesTheHandshakeEnvironment) {
  TempDir dir;
  std::string plugin = dir.WriteScript(
      "plugin",
      "echo \"$VKHOST_PLUGIN_MAGIC_COOKIE;$VKHOST_PLUGIN_PROTOCOL_VERSIONS;"
      "$VKHOST_PLUGIN_SOCKET_DIR;$EXTRA_ONE;$PATH\" > $(dirname $0)/env\n"
      "exit 3");
  PluginSource source = LaunchSource(plugin);
  source.socket_dir = dir.path();
  source.offered_protocols = {3, 1};
  source.extra_env = {"EXTRA_ONE=first", "EXTRA_ONE=second"};
  ASSERT_FALSE(PluginConnection::Launch(source).ok());
  EXPECT_EQ(dir.ReadFile("env"),
            absl::StrCat(kMagicCookieValue, ";3,1;", dir.path(), ";second;",
                         std::getenv("PATH"), "\n"));
}

TEST(LaunchTest, ExtraEnvOverridesTheCookie) {
  TempDir dir;
  std::string plugin = dir.WriteScript(
      "plugin", "echo \"$VKHOST_PLUGIN_MAGIC_COOKIE\" > $(dirname $0)/env\nexit 1");
  PluginSource source = LaunchSource(plugin);
  source.extra_env = {std::string(kMagicCookieEnv) + "=wrong"};
  ASSERT_FALSE(PluginConnection::Launch(source).ok());
  EXPECT_EQ(dir.ReadFile("env"), "wrong\n");
}

TEST(LaunchTest, ConnectsNegotiatesAndStopsThePlugin) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock",
                          {.name = "fake",
                           .capabilities = {v1::CAPABILITY_STATS,
                                            v1::CAPABILITY_UNSPECIFIED, 99,
                                            v1::CAPABILITY_EXEC},
                           .serve_identity = true});
  std::string plugin = testing::WriteHandshakingPlugin(dir, "plugin", server);
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(LaunchSource(plugin));
  ASSERT_TRUE(connection.ok()) << connection.status();
  const PluginIdentity& id = (*connection)->identity();
  EXPECT_EQ(id.name, "fake");
  EXPECT_EQ(id.version, "9.9.9");
  EXPECT_EQ(id.protocol_major, 1);
  EXPECT_EQ(id.address, server.address());
  EXPECT_EQ(id.manifest.at("backend"), "in-process");
  EXPECT_THAT(id.capabilities,
              UnorderedElementsAre(v1::CAPABILITY_STATS, v1::CAPABILITY_EXEC));
  int pid = (*connection)->pid();
  ASSERT_GT(pid, 0);
  EXPECT_FALSE((*connection)->Exited());
  EXPECT_FALSE((*connection)->WaitForExit(absl::Milliseconds(10)));
  connection->reset();
  EXPECT_FALSE(ProcessExists(pid));
}

TEST(LaunchTest, ReportsTheExitAndTheStderrTail) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {});
  std::string plugin = testing::WriteHandshakingPlugin(dir, "plugin", server);
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(LaunchSource(plugin));
  ASSERT_TRUE(connection.ok()) << connection.status();
  absl::Notification exited;
  (*connection)->SetExitCallback([&] { exited.Notify(); });
  ASSERT_EQ(::kill((*connection)->pid(), SIGKILL), 0);
  ASSERT_TRUE((*connection)->WaitForExit(absl::Seconds(30)));
  EXPECT_TRUE(exited.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE((*connection)->Exited());
  EXPECT_THAT((*connection)->exit_description(), HasSubstr("killed by signal 9"));
  EXPECT_THAT((*connection)->StderrTail(), HasSubstr("fake plugin ready"));
  // A callback set after the exit runs at once.
  bool late = false;
  (*connection)->SetExitCallback([&] { late = true; });
  EXPECT_TRUE(late);
}

TEST(LaunchTest, KeepsOnlyTheTailOfStderr) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {});
  std::string plugin = dir.WriteScript(
      "plugin", "echo '" + server.HandshakeLine() +
                    "'\nfor i in $(seq 600); do echo \"stderr line $i\" >&2; done\n"
                    "echo 'last line' >&2\nexec cat >/dev/null");
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(LaunchSource(plugin));
  ASSERT_TRUE(connection.ok()) << connection.status();
  absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (!absl::StrContains((*connection)->StderrTail(), "last line") &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::string tail = (*connection)->StderrTail();
  EXPECT_THAT(tail, HasSubstr("stderr line 600\nlast line\n"));
  EXPECT_LE(tail.size(), 4096u);
  EXPECT_THAT(tail, ::testing::Not(HasSubstr("stderr line 1\n")));
  EXPECT_THAT(tail, ::testing::StartsWith("stderr line "));
}

TEST(LaunchTest, ClosingStdinTellsThePluginTheHostIsGone) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {});
  // Ignores SIGTERM, so only end-of-file on stdin makes it leave in time.
  std::string plugin = dir.WriteScript(
      "plugin", "trap '' TERM\necho '" + server.HandshakeLine() +
                    "'\ncat >/dev/null\necho eof > $(dirname $0)/eof\nexit 0");
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(LaunchSource(plugin));
  ASSERT_TRUE(connection.ok()) << connection.status();
  connection->reset();
  EXPECT_EQ(dir.ReadFile("eof"), "eof\n");
}

TEST(LaunchTest, KillsAPluginThatIgnoresSigtermAndStdin) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {});
  std::string plugin = dir.WriteScript(
      "plugin", "trap '' TERM\necho '" + server.HandshakeLine() +
                    "'\nwhile :; do sleep 1; done");
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(LaunchSource(plugin));
  ASSERT_TRUE(connection.ok()) << connection.status();
  int pid = (*connection)->pid();
  connection->reset();  // Waits out the grace period, then SIGKILL.
  EXPECT_FALSE(ProcessExists(pid));
}

TEST(LaunchTest, PluginWithoutIdentityDoesNotSpeakV1) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {.name = "fake", .capabilities = {}, .serve_identity = false});
  std::string plugin = testing::WriteHandshakingPlugin(dir, "plugin", server);
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Launch(LaunchSource(plugin));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(connection.status().message(),
              HasSubstr("does not speak vkhost.provider.v1"));
}

TEST(DialTest, UnixEndpoint) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock",
                          {.name = "remote", .capabilities = {v1::CAPABILITY_NODE_INFO},
                           .serve_identity = true});
  PluginSource source;
  source.endpoint = server.address();
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Open(source);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->identity().name, "remote");
  EXPECT_EQ((*connection)->identity().address, server.address());
  EXPECT_TRUE((*connection)->identity().Has(v1::CAPABILITY_NODE_INFO));
  EXPECT_EQ((*connection)->pid(), 0);
  EXPECT_FALSE((*connection)->Exited());
}

TEST(DialTest, PeerWithoutIdentityDoesNotSpeakV1) {
  TempDir dir;
  FakePluginServer server(dir.path() + "/server.sock", {.name = "fake", .capabilities = {}, .serve_identity = false});
  PluginSource source;
  source.endpoint = server.address();
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Dial(source);
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(connection.status().message(),
              HasSubstr("does not speak vkhost.provider.v1"));
}

TEST(DialTest, PlaintextTcpToLoopback) {
  FakePluginServer server({.name = "tcp", .capabilities = {}, .serve_identity = true},
                          grpc::InsecureServerCredentials());
  PluginSource source;
  source.endpoint = server.address();
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Dial(source);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->identity().name, "tcp");
}

TEST(DialTest, MutualTls) {
  TempDir dir;
  testing::TestPki pki;
  ASSERT_TRUE(testing::MakeTestPki(dir, &pki)) << dir.ReadFile("pki.log");
  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = dir.ReadFile("ca.pem");
  ssl.pem_key_cert_pairs.push_back(
      {dir.ReadFile("server.key"), dir.ReadFile("server.pem")});
  FakePluginServer server({.name = "tls", .capabilities = {}, .serve_identity = true},
                          grpc::SslServerCredentials(ssl));

  PluginSource source;
  source.endpoint = server.address();
  source.tls_ca_file = pki.ca;
  source.tls_cert_file = pki.client_cert;
  source.tls_key_file = pki.client_key;
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Dial(source);
  ASSERT_TRUE(connection.ok()) << connection.status();
  EXPECT_EQ((*connection)->identity().name, "tls");

  // Without a client certificate the server refuses the connection.
  source.tls_cert_file.clear();
  source.tls_key_file.clear();
  source.handshake_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<PluginConnection>> refused =
      PluginConnection::Dial(source);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
}

TEST(DialTest, NothingListening) {
  TempDir dir;
  PluginSource source;
  source.endpoint = "unix://" + dir.path() + "/nobody.sock";
  source.handshake_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Dial(source);
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(connection.status().message(), HasSubstr("cannot connect"));
}

TEST(DialTest, RefusesBadEndpointsAndPlaintextToRemoteHosts) {
  struct Bad {
    std::string endpoint;
    std::string says;
  };
  for (const Bad& bad : {Bad{"http://x:1", "unknown scheme"},
                         Bad{"unix://relative.sock", "not absolute"},
                         Bad{"tcp://host", "no port"},
                         Bad{"tcp://host:99999", "port"},
                         Bad{"tcp://10.1.2.3:7443", "refusing plaintext"}}) {
    PluginSource source;
    source.endpoint = bad.endpoint;
    absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
        PluginConnection::Dial(source);
    ASSERT_FALSE(connection.ok()) << bad.endpoint;
    EXPECT_EQ(connection.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(connection.status().message(), HasSubstr(bad.says));
  }
}

TEST(DialTest, UnreadableTlsFilesAreReported) {
  PluginSource source;
  source.endpoint = "tcp://10.1.2.3:7443";
  source.tls_ca_file = "/nonexistent/ca.pem";
  absl::StatusOr<std::unique_ptr<PluginConnection>> connection =
      PluginConnection::Dial(source);
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(connection.status().message(), HasSubstr("/nonexistent/ca.pem"));
}

TEST(OpenTest, WantsExactlyOneSource) {
  PluginSource neither;
  EXPECT_EQ(PluginConnection::Open(neither).status().code(),
            absl::StatusCode::kInvalidArgument);
  PluginSource both;
  both.command = {"x"};
  both.endpoint = "unix:///x";
  EXPECT_EQ(PluginConnection::Open(both).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vkhost::plugin
