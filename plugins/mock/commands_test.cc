#include "plugins/mock/commands.h"

#include "gtest/gtest.h"
#include "plugins/mock/fake_session.h"

namespace vkhost::mock {
namespace {

using Input = sdk::ProcessSession::Input;

ProcessContext Exec(std::vector<std::string> argv, bool tty = false) {
  ProcessContext context;
  context.mode = ProcessMode::kExec;
  context.argv = std::move(argv);
  context.tty = tty;
  context.env = {{"A", "1"}, {"B", "two"}};
  context.identity = "ns/pod/c";
  return context;
}

ProcessContext Container(std::vector<std::string> argv) {
  ProcessContext context = Exec(std::move(argv));
  context.mode = ProcessMode::kContainer;
  context.log_interval = absl::Milliseconds(5);
  return context;
}

TEST(CommandsTest, EchoPrintsArgsAndExitsZero) {
  ProcessOutput out = MakeProcess(Exec({"/bin/echo", "hello", "world"}))->Start();
  EXPECT_EQ(out.stdout_data, "hello world\n");
  EXPECT_EQ(out.exit_code, 0);
}

TEST(CommandsTest, TrueAndFalse) {
  EXPECT_EQ(MakeProcess(Exec({"true"}))->Start().exit_code, 0);
  EXPECT_EQ(MakeProcess(Exec({"false"}))->Start().exit_code, 1);
}

TEST(CommandsTest, ShellDashCExitAndCommands) {
  EXPECT_EQ(MakeProcess(Exec({"sh", "-c", "exit 3"}))->Start().exit_code, 3);
  EXPECT_EQ(MakeProcess(Exec({"bash", "-c", "exit"}))->Start().exit_code, 0);
  ProcessOutput out = MakeProcess(Exec({"sh", "-c", "echo 'hi there'"}))->Start();
  EXPECT_EQ(out.stdout_data, "hi there\n");
  EXPECT_EQ(out.exit_code, 0);
}

TEST(CommandsTest, SleepWakesThenExits) {
  auto process = MakeProcess(Exec({"sleep", "0.5"}));
  ProcessOutput start = process->Start();
  EXPECT_FALSE(start.exit_code);
  EXPECT_EQ(start.wake_after, absl::Milliseconds(500));
  EXPECT_EQ(process->OnTimer().exit_code, 0);
  ProcessOutput bad = MakeProcess(Exec({"sleep", "soon"}))->Start();
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.stderr_data.find("invalid"), std::string::npos);
}

TEST(CommandsTest, CatEchoesUntilEndOfInput) {
  auto process = MakeProcess(Exec({"cat"}));
  EXPECT_FALSE(process->Start().exit_code);
  EXPECT_EQ(process->OnStdin("abc").stdout_data, "abc");
  EXPECT_EQ(process->OnStdinClosed().exit_code, 0);
}

TEST(CommandsTest, EnvPrintsTheEnvironment) {
  ProcessOutput out = MakeProcess(Exec({"env"}))->Start();
  EXPECT_EQ(out.stdout_data, "A=1\nB=two\n");
  EXPECT_EQ(out.exit_code, 0);
}

TEST(CommandsTest, UnknownCommandInExecIs127) {
  ProcessOutput out = MakeProcess(Exec({"frobnicate", "-x"}))->Start();
  EXPECT_EQ(out.exit_code, 127);
  EXPECT_NE(out.exit_message.find("frobnicate: command not found"),
            std::string::npos);
  EXPECT_EQ(MakeProcess(Exec({}))->Start().exit_code, 126);
}

TEST(CommandsTest, UnknownOrNoCommandInContainerLogsForever) {
  for (auto argv : {std::vector<std::string>{"nginx"},
                    std::vector<std::string>{}}) {
    auto process = MakeProcess(Container(argv));
    ProcessOutput start = process->Start();
    EXPECT_FALSE(start.exit_code);
    EXPECT_EQ(start.wake_after, absl::Milliseconds(5));
    EXPECT_EQ(process->OnTimer().stdout_data, "mock: ns/pod/c line 1\n");
    ProcessOutput second = process->OnTimer();
    EXPECT_EQ(second.stdout_data, "mock: ns/pod/c line 2\n");
    EXPECT_FALSE(second.exit_code);
  }
}

TEST(CommandsTest, TtyShellPromptsEchoesAndExits) {
  auto process = MakeProcess(Exec({"sh"}, /*tty=*/true));
  EXPECT_EQ(process->Start().stdout_data, "$ ");
  ProcessOutput out = process->OnStdin("echo hi\n");
  EXPECT_EQ(out.stdout_data, "echo hi\r\nhi\n$ ");
  EXPECT_FALSE(out.exit_code);
  // Input may arrive in pieces.
  EXPECT_EQ(process->OnStdin("exi").stdout_data, "");
  EXPECT_EQ(process->OnStdin("t 4\n").exit_code, 4);
}

TEST(CommandsTest, TtyShellReportsTheLastTerminalSize) {
  auto process = MakeProcess(Exec({"sh"}, /*tty=*/true));
  process->Start();
  EXPECT_EQ(process->OnStdin("stty size\n").stdout_data,
            "stty size\r\n0 0\r\n$ ");
  v1::TerminalSize size;
  size.set_width(120);
  size.set_height(40);
  process->OnResize(size);
  EXPECT_EQ(process->OnStdin("stty size\n").stdout_data,
            "stty size\r\n40 120\r\n$ ");
}

TEST(CommandsTest, PlainShellReadsCommandsWithoutPrompt) {
  auto process = MakeProcess(Exec({"sh"}));
  EXPECT_EQ(process->Start().stdout_data, "");
  EXPECT_EQ(process->OnStdin("echo a\nnope\n").stdout_data, "a\n");
  EXPECT_EQ(process->OnStdinClosed().exit_code, 0);
}

TEST(RunInSessionTest, CatCopiesStdinThenExits) {
  FakeProcessSession session(
      {FakeProcessSession::Stdin("one\n"), FakeProcessSession::Stdin("two\n"),
       FakeProcessSession::CloseStdin()});
  auto process = MakeProcess(Exec({"cat"}));
  v1::ExitStatus exit = RunInSession(*process, session, /*stdin_open=*/true);
  EXPECT_EQ(exit.exit_code(), 0);
  EXPECT_EQ(session.out(), "one\ntwo\n");
}

TEST(RunInSessionTest, NoStdinMeansEndOfFileAtOnce) {
  FakeProcessSession session({}, /*hold_open=*/true);
  auto process = MakeProcess(Exec({"cat"}));
  EXPECT_EQ(RunInSession(*process, session, /*stdin_open=*/false).exit_code(),
            0);
}

TEST(RunInSessionTest, SleepEndsWithItsTimer) {
  FakeProcessSession session({}, /*hold_open=*/true);
  auto process = MakeProcess(Exec({"sleep", "0.05"}));
  EXPECT_EQ(RunInSession(*process, session, true).exit_code(), 0);
}

TEST(RunInSessionTest, UnknownCommandReportsInBand) {
  FakeProcessSession session({});
  auto process = MakeProcess(Exec({"nope"}));
  v1::ExitStatus exit = RunInSession(*process, session, true);
  EXPECT_EQ(exit.exit_code(), 127);
  EXPECT_NE(session.err().find("command not found"), std::string::npos);
}

TEST(RunInSessionTest, CancelKillsTheProcess) {
  FakeProcessSession session({}, /*hold_open=*/true);
  session.Cancel();
  auto process = MakeProcess(Exec({"sleep", "3600"}));
  EXPECT_EQ(RunInSession(*process, session, true).exit_code(), 137);
}

}  // namespace
}  // namespace vkhost::mock
