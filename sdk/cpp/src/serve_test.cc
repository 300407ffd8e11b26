// End-to-end tests of Serve(): a real plugin process (testdata/test_plugin.cc)
// started the way vkhost starts it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "vkhost/provider/v1/identity.grpc.pb.h"

extern char** environ;

namespace vkhost::sdk {
namespace {

using ::testing::HasSubstr;

constexpr char kCookie[] =
    "VKHOST_PLUGIN_MAGIC_COOKIE=vkhost-provider-plugin-7c1e4a0f9d2b";

std::string MakeTempDir() {
  std::string path = "/tmp/vkhost-sdk-test-XXXXXX";  // short: sun_path limit
  EXPECT_NE(mkdtemp(path.data()), nullptr);
  return path;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// The plugin under test, with pipes on stdin, stdout and stderr. Killed and
// reaped on destruction if the test did not.
class PluginProcess {
 public:
  PluginProcess(const std::vector<std::string>& args,
                const std::vector<std::string>& env) {
    int in[2], out[2], err[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<std::string> argv_storage = {VKHOST_SDK_TEST_PLUGIN};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_storage = env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("VKHOST_PLUGIN_", 0) != 0) {
        env_storage.push_back(*e);
      }
    }
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(),
                          envp.data()),
              0);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
  }
  ~PluginProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    CloseStdin();
    close(stdout_);
    close(stderr_);
  }

  // The first stdout line, or "" if none came within the timeout.
  std::string ReadLine(absl::Duration timeout = absl::Seconds(20)) {
    std::string line;
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      pollfd fd = {stdout_, POLLIN, 0};
      if (poll(&fd, 1, 100) <= 0) continue;
      char c;
      if (read(stdout_, &c, 1) != 1) break;
      line.push_back(c);
      if (c == '\n') break;
    }
    return line;
  }
  std::string ReadAllStderr() {
    std::string text;
    char buffer[4096];
    ssize_t n;
    while ((n = read(stderr_, buffer, sizeof(buffer))) > 0) text.append(buffer, n);
    return text;
  }
  void CloseStdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  void Signal(int signal_number) { kill(pid_, signal_number); }
  // Exit status, or -1 if it did not exit normally within the timeout.
  int Wait(absl::Duration timeout = absl::Seconds(20)) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      int status = 0;
      pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
};

struct Handshake {
  std::string socket_path;
};

Handshake ParseHandshake(const std::string& line) {
  std::vector<std::string> parts = absl::StrSplit(line, '|');
  EXPECT_EQ(parts.size(), 6u) << line;
  if (parts.size() != 6) return {};
  EXPECT_EQ(parts[0], "VKHOST");
  EXPECT_EQ(parts[1], "1");
  EXPECT_EQ(parts[2], "1");
  EXPECT_EQ(parts[3], "unix");
  EXPECT_EQ(parts[5], "grpc\n");
  return {parts[4]};
}

void ExpectServing(const std::string& grpc_address) {
  auto channel =
      grpc::CreateChannel(grpc_address, grpc::InsecureChannelCredentials());
  auto identity = provider::v1::Identity::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  context.set_wait_for_ready(true);
  provider::v1::GetPluginInfoResponse info;
  grpc::Status status = identity->GetPluginInfo(&context, {}, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.name(), "sdk-test");

  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext health_context;
  health_context.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::seconds(10));
  grpc::health::v1::HealthCheckResponse health_response;
  ASSERT_TRUE(health->Check(&health_context, {}, &health_response).ok());
  EXPECT_EQ(health_response.status(),
            grpc::health::v1::HealthCheckResponse::SERVING);
}

class LaunchModeTest : public ::testing::Test {
 protected:
  LaunchModeTest() : parent_(MakeTempDir()) {}
  ~LaunchModeTest() override { rmdir(parent_.c_str()); }
  std::vector<std::string> Env() {
    return {kCookie, "VKHOST_PLUGIN_PROTOCOL_VERSIONS=1",
            "VKHOST_PLUGIN_SOCKET_DIR=" + parent_};
  }
  std::string parent_;
};

TEST_F(LaunchModeTest, HandshakeServeAndExitOnSigterm) {
  PluginProcess plugin({}, Env());
  Handshake handshake = ParseHandshake(plugin.ReadLine());
  ASSERT_FALSE(handshake.socket_path.empty());
  EXPECT_EQ(handshake.socket_path.rfind(parent_ + "/", 0), 0u);
  ExpectServing("unix:" + handshake.socket_path);

  plugin.Signal(SIGTERM);
  EXPECT_EQ(plugin.Wait(), 0);
  EXPECT_FALSE(Exists(handshake.socket_path));
  std::string dir =
      handshake.socket_path.substr(0, handshake.socket_path.rfind('/'));
  EXPECT_FALSE(Exists(dir));
}

TEST_F(LaunchModeTest, ExitsWhenStdinCloses) {
  PluginProcess plugin({}, Env());
  Handshake handshake = ParseHandshake(plugin.ReadLine());
  ASSERT_FALSE(handshake.socket_path.empty());
  plugin.CloseStdin();
  EXPECT_EQ(plugin.Wait(), 0);
  EXPECT_FALSE(Exists(handshake.socket_path));
}

TEST_F(LaunchModeTest, WrongCookieExitsOneWithoutHandshake) {
  PluginProcess plugin({}, {"VKHOST_PLUGIN_MAGIC_COOKIE=wrong",
                            "VKHOST_PLUGIN_PROTOCOL_VERSIONS=1"});
  EXPECT_EQ(plugin.ReadLine(), "");
  EXPECT_EQ(plugin.Wait(), 1);
  EXPECT_THAT(plugin.ReadAllStderr(),
              HasSubstr("vkhost provider plugin. It is meant to be started "
                        "by vkhost"));
}

TEST_F(LaunchModeTest, NoSharedProtocolExitsOne) {
  PluginProcess plugin(
      {}, {kCookie, "VKHOST_PLUGIN_PROTOCOL_VERSIONS=7,8",
           "VKHOST_PLUGIN_SOCKET_DIR=" + parent_});
  EXPECT_EQ(plugin.ReadLine(), "");
  EXPECT_EQ(plugin.Wait(), 1);
  EXPECT_THAT(plugin.ReadAllStderr(), HasSubstr("\"7,8\""));
}

TEST(ConnectModeTest, ServesOnUnixSocketReplacingAStaleOne) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/plugin.sock";
  {  // leave a stale socket file behind, as a crashed plugin would
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  PluginProcess plugin({"--listen", "unix://" + path}, {});
  ExpectServing("unix:" + path);
  plugin.Signal(SIGINT);
  EXPECT_EQ(plugin.Wait(), 0);
  EXPECT_FALSE(Exists(path));
  rmdir(dir.c_str());
}

TEST(ConnectModeTest, BadListenAddressExitsOne) {
  PluginProcess plugin({"--listen=unix://relative.sock"}, {});
  EXPECT_EQ(plugin.Wait(), 1);
  EXPECT_THAT(plugin.ReadAllStderr(), HasSubstr("must be absolute"));
}

}  // namespace
}  // namespace vkhost::sdk
