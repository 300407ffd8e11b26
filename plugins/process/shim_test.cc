// Runs the real shim (`vkhost-process-plugin shim DIR`) on small workloads.
#include "plugins/process/shim.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "plugins/process/container_exec.h"
#include "plugins/process/log_file.h"
#include "plugins/process/process_tree.h"

namespace vkhost::process {
namespace {

class ShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/vkhost-shim-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    if (shim_ > 0) {
      kill(shim_, SIGKILL);
      waitpid(shim_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  void Start(const std::vector<std::string>& argv, bool tty = false, bool stdin = false) {
    LaunchSpec spec;
    spec.tty = tty;
    spec.stdin = stdin;
    spec.argv = argv;
    spec.env = {"PATH=/usr/bin:/bin", "GREETING=hi"};
    spec.working_dir = dir_;
    std::ofstream(dir_ + "/launch.json") << EncodeLaunchSpec(spec);
    shim_ = fork();
    if (shim_ == 0) {
      execl(VKHOST_PROCESS_PLUGIN, "vkhost-process-shim", "shim", dir_.c_str(), nullptr);
      _exit(127);
    }
  }

  // Waits for the shim to end; returns its exit record.
  std::optional<ExitRecord> WaitExit() {
    int status = 0;
    waitpid(shim_, &status, 0);
    shim_ = -1;
    return ReadExitRecord(dir_);
  }

  bool WaitForFile(const std::string& name) {
    for (int i = 0; i < 500; ++i) {
      if (std::filesystem::exists(dir_ + "/" + name)) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  std::string dir_;
  pid_t shim_ = -1;
};

TEST_F(ShimTest, RecordsExitCodeAndBothStreams) {
  Start({"sh", "-c", "echo out $GREETING; pwd; echo err >&2; exit 7"});
  auto exit = WaitExit();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 7);
  EXPECT_EQ(exit->reason, "Error");
  std::vector<LogLine> lines = ReadLogLines(dir_ + "/log");
  std::string out, err;
  for (const LogLine& line : lines) {
    (line.stream == v1::LogEntry::STREAM_STDERR ? err : out) += line.text;
  }
  EXPECT_EQ(out, "out hi\n" + dir_ + "\n");
  EXPECT_EQ(err, "err\n");
}

TEST_F(ShimTest, UnknownCommandIsAStartErrorWith127) {
  Start({"no-such-command-vkhost"});
  auto exit = WaitExit();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 127);
  EXPECT_EQ(exit->reason, "StartError");
  EXPECT_NE(exit->message.find("no-such-command-vkhost"), std::string::npos);
}

TEST_F(ShimTest, SigtermReachesTheWorkload) {
  Start({"sleep", "300"});
  ASSERT_TRUE(WaitForFile("pid.json"));
  kill(shim_, SIGTERM);
  auto exit = WaitExit();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + SIGTERM);
  EXPECT_EQ(exit->signal, SIGTERM);
}

TEST_F(ShimTest, KillLeavesNoProcessOfTheTreeBehind) {
  // A background child in another process group, detached from the shell.
  Start({"sh", "-c", "setsid sleep 300 & echo $! > bg.pid; exec sleep 300"});
  ASSERT_TRUE(WaitForFile("pid.json"));
  ASSERT_TRUE(WaitForFile("bg.pid"));
  absl::SleepFor(absl::Milliseconds(100));
  std::ifstream in(dir_ + "/bg.pid");
  int background = 0;
  in >> background;
  ASSERT_GT(background, 0);
  auto workload = ReadWorkloadPid(dir_);
  ASSERT_TRUE(workload.has_value());
  kill(shim_, SIGUSR1);
  auto exit = WaitExit();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + SIGKILL);
  EXPECT_FALSE(ProcessAlive(workload->pid, workload->start_ticks));
  EXPECT_FALSE(ProcessAlive(background, 0));
}

TEST_F(ShimTest, TtyContainerGetsATerminal) {
  Start({"sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty"}, /*tty=*/true);
  auto exit = WaitExit();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
  std::string out;
  for (const LogLine& line : ReadLogLines(dir_ + "/log")) out += line.text;
  EXPECT_NE(out.find("is-a-tty"), std::string::npos) << out;
}

TEST_F(ShimTest, StdinFifoFeedsTheWorkloadUntilCloseStdin) {
  Start({"cat"}, /*tty=*/false, /*stdin=*/true);
  ASSERT_TRUE(WaitForFile("pid.json"));
  ASSERT_TRUE(WaitForFile("control"));
  for (const auto& [name, text] : {std::pair{"stdin", "attached input\n"},
                                   std::pair{"control", "close-stdin\n"}}) {
    int fd = open((dir_ + "/" + name).c_str(), O_WRONLY | O_NONBLOCK);
    ASSERT_GE(fd, 0) << name;
    ASSERT_EQ(write(fd, text, strlen(text)), static_cast<ssize_t>(strlen(text)));
    close(fd);
    absl::SleepFor(absl::Milliseconds(100));
  }
  auto exit = WaitExit();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);  // cat saw end-of-file
  std::string out;
  for (const LogLine& line : ReadLogLines(dir_ + "/log")) out += line.text;
  EXPECT_EQ(out, "attached input\n");
}

TEST(ContainerExecTest, TtySessionReadsInputAndResizes) {
  ExecTarget target;
  target.env = {"PATH=/usr/bin:/bin"};
  auto child = SpawnInContainer(target, {"sh", "-c", "read x; stty size; echo got $x"},
                                /*tty=*/true, /*with_stdin=*/true);
  ASSERT_TRUE(child.ok()) << child.status();
  (*child)->Resize(100, 30);
  ASSERT_EQ(write((*child)->stdin_fd(), "hello\n", 6), 6);
  std::string out;
  char buffer[256];
  for (;;) {
    ssize_t n = read((*child)->stdout_fd(), buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the terminal's last user is gone
    out.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_NE(out.find("30 100"), std::string::npos) << out;
  EXPECT_NE(out.find("got hello"), std::string::npos) << out;
}

TEST(ContainerExecTest, RunsInTheTargetEnvironment) {
  ExecTarget target;
  target.env = {"PATH=/usr/bin:/bin", "ANSWER=42"};
  target.working_dir = "/tmp";
  RunResult result = RunToCompletion(target, {"sh", "-c", "echo $ANSWER $(pwd); exit 4"},
                                     absl::Seconds(10));
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_EQ(result.output, "42 /tmp\n");
  EXPECT_FALSE(result.timed_out);
}

TEST(ContainerExecTest, RunsAsTheRequestedUserWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "changing user needs root";
  ExecTarget target;
  target.env = {"PATH=/usr/bin:/bin"};
  target.run_as_user = 65534;
  target.run_as_group = 65533;
  RunResult result = RunToCompletion(target, {"sh", "-c", "echo $(id -u) $(id -g) $(id -G)"},
                                     absl::Seconds(10));
  EXPECT_EQ(result.output, "65534 65533 65533\n");
}

TEST(ContainerExecTest, NotFoundIs127AndTimeoutKills) {
  ExecTarget target;
  target.env = {"PATH=/usr/bin:/bin"};
  EXPECT_EQ(RunToCompletion(target, {"no-such-command-vkhost"}, absl::Seconds(5)).exit_code,
            127);
  RunResult slow = RunToCompletion(target, {"sleep", "30"}, absl::Milliseconds(200));
  EXPECT_TRUE(slow.timed_out);
}

}  // namespace
}  // namespace vkhost::process
