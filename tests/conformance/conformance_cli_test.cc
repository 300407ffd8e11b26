// Runs the vkhost-conformance binary as a user would: its command line, its
// verdict on a deliberately broken plugin, and connect mode against the mock.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <regex>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/conformance/conformance.h"

namespace vkhost::conformance {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct SuiteRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

SuiteRun RunSuite(std::vector<std::string> args) {
  args.insert(args.begin(), VKHOST_CONFORMANCE_BIN);
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(args, {});
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return {};
  SuiteRun run;
  if (!(*process)->WaitForOutput(absl::Minutes(5))) {
    ADD_FAILURE() << "vkhost-conformance did not finish in 5 minutes";
    return run;
  }
  const int status = *(*process)->WaitForExit(absl::ZeroDuration());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = (*process)->Stdout();
  run.err = (*process)->Stderr();
  return run;
}

TEST(ConformanceCli, UnknownFlagIsAUsageError) {
  SuiteRun run = RunSuite({"--plugin", "x", "--no-such-flag"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("unknown flag --no-such-flag"));
  EXPECT_THAT(run.err, HasSubstr("usage:"));
}

TEST(ConformanceCli, NeedsExactlyOnePluginOrEndpoint) {
  EXPECT_EQ(RunSuite({}).exit_code, 2);
  EXPECT_EQ(RunSuite({"--plugin", "x", "--endpoint", "unix:///x"}).exit_code, 2);
}

TEST(ConformanceCli, BadRunRegexIsAUsageError) {
  SuiteRun run = RunSuite({"--plugin", "x", "--run", "("});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--run"));
}

TEST(ConformanceCli, ListsChecksSelectedByRun) {
  SuiteRun all = RunSuite({"--list"});
  EXPECT_EQ(all.exit_code, 0);
  EXPECT_THAT(all.out, HasSubstr("pods.create-twice-idempotent\n"));
  EXPECT_THAT(all.out, HasSubstr("exec.echo-output (needs CAPABILITY_EXEC)"));
  EXPECT_THAT(all.out, HasSubstr("handshake.line-format (launch mode)"));

  SuiteRun exec_only = RunSuite({"--list", "--run=^exec\\."});
  EXPECT_EQ(exec_only.exit_code, 0);
  EXPECT_THAT(exec_only.out, HasSubstr("exec.exit-code"));
  EXPECT_THAT(exec_only.out, Not(HasSubstr("pods.")));
}

TEST(ConformanceCli, UnreachableEndpointFails) {
  SuiteRun run = RunSuite({"--endpoint", "unix:///nonexistent/vkhost-conformance.sock",
                      "--timeout", "5s"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.out, HasSubstr("FAIL connect: "));
  EXPECT_THAT(run.out, HasSubstr("0 passed, 1 failed, 0 skipped"));
}

TEST(ConformanceCli, BrokenPluginFails) {
  SuiteRun run = RunSuite({"--plugin", VKHOST_BROKEN_PLUGIN, "--timeout", "10s"});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  // Each deliberate violation is caught by the check made for it ...
  for (const char* check : {"pods.create-twice-idempotent",
                            "pods.delete-unknown-ok",
                            "pods.get-status-unknown-not-found",
                            "pods.deleted-pod-is-forgotten",
                            "pods.delete-twice-ok", "exec.echo-output",
                            "exec.exit-code", "exec.stdin-until-close"}) {
    EXPECT_THAT(run.out, HasSubstr(absl::StrCat("FAIL ", check, ": ")))
        << run.out;
  }
  EXPECT_THAT(run.out, HasSubstr("FAIL pods.create-twice-idempotent: second "
                                 "CreatePod of the same UID answered "
                                 "ALREADY_EXISTS"));
  EXPECT_THAT(run.out, HasSubstr("FAIL pods.get-status-unknown-not-found: "
                                 "GetPodStatus of an unknown UID answered OK"));
  // ... while what it does right passes, and unlisted features are skipped.
  for (const char* check : {"identity.plugin-info", "identity.probe",
                            "pods.create-empty-uid-invalid",
                            "pods.status-right-after-create",
                            "handshake.line-format",
                            "handshake.refuses-wrong-cookie",
                            "handshake.sigterm-clean-exit"}) {
    EXPECT_THAT(run.out, HasSubstr(absl::StrCat("PASS ", check, "\n")))
        << run.out;
  }
  EXPECT_THAT(run.out,
              HasSubstr("SKIP logs.unknown-pod-not-found: the plugin does not "
                        "list CAPABILITY_CONTAINER_LOGS"));
  EXPECT_THAT(run.out, HasSubstr("PASS cleanup\n"));
  EXPECT_TRUE(std::regex_search(
      run.out, std::regex("\n[0-9]+ passed, [1-9][0-9]* failed, [0-9]+ skipped\n$")))
      << run.out;
}

TEST(ConformanceCli, ConnectModeAgainstMock) {
  namespace fs = std::filesystem;
  std::string dir =
      (fs::temp_directory_path() / "vkhost-conformance-test-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string socket = dir + "/mock.sock";
  absl::StatusOr<std::unique_ptr<Subprocess>> mock = Subprocess::Start(
      {VKHOST_MOCK_PLUGIN, "--listen", "unix://" + socket}, {});
  ASSERT_TRUE(mock.ok()) << mock.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!fs::exists(socket) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(socket)) << (*mock)->Stderr();

  SuiteRun run = RunSuite({"--endpoint", "unix://" + socket,
                      "--port-forward-port", "8080"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("SKIP handshake.line-format: needs launch mode"));
  EXPECT_THAT(run.out, HasSubstr("PASS pods.create-twice-idempotent\n"));
  EXPECT_THAT(run.out, HasSubstr("PASS cleanup\n"));

  (*mock)->Signal(SIGTERM);
  EXPECT_TRUE((*mock)->WaitForExit(absl::Seconds(10)).has_value());
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}
}  // namespace
}  // namespace vkhost::conformance
