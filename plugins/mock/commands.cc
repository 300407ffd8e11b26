// The built-in command set; see commands.h.
#include "plugins/mock/commands.h"

#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace vkhost::mock {

ProcessOutput MockProcess::OnStdin(absl::string_view) { return {}; }
ProcessOutput MockProcess::OnStdinClosed() { return {}; }
ProcessOutput MockProcess::OnTimer() { return {}; }
void MockProcess::OnResize(const v1::TerminalSize&) {}

namespace {

ProcessOutput Exit(int code, std::string out = "", std::string err = "") {
  ProcessOutput output;
  output.exit_code = code;
  output.stdout_data = std::move(out);
  output.stderr_data = std::move(err);
  return output;
}

// A program whose whole life is its start: echo, env, true, errors.
class Immediate final : public MockProcess {
 public:
  explicit Immediate(ProcessOutput output) : output_(std::move(output)) {}
  ProcessOutput Start() override { return output_; }

 private:
  ProcessOutput output_;
};

class Sleep final : public MockProcess {
 public:
  explicit Sleep(absl::Duration duration) : duration_(duration) {}
  ProcessOutput Start() override {
    ProcessOutput output;
    output.wake_after = duration_;
    return output;
  }
  ProcessOutput OnTimer() override { return Exit(0); }

 private:
  absl::Duration duration_;
};

class Cat final : public MockProcess {
 public:
  ProcessOutput Start() override { return {}; }
  ProcessOutput OnStdin(absl::string_view data) override {
    ProcessOutput output;
    output.stdout_data = std::string(data);
    return output;
  }
  ProcessOutput OnStdinClosed() override { return Exit(0); }
};

class Logger final : public MockProcess {
 public:
  Logger(std::string identity, absl::Duration interval)
      : identity_(std::move(identity)), interval_(interval) {}
  ProcessOutput Start() override {
    ProcessOutput output;
    output.wake_after = interval_;
    return output;
  }
  ProcessOutput OnTimer() override {
    ProcessOutput output;
    output.stdout_data = absl::StrCat("mock: ", identity_, " line ", ++lines_,
                                      "\n");
    output.wake_after = interval_;
    return output;
  }

 private:
  std::string identity_;
  absl::Duration interval_;
  int64_t lines_ = 0;
};

// Parses `exit [N]`; nullopt when `words` is not an exit command.
std::optional<int> ParseExit(const std::vector<std::string>& words) {
  if (words.empty() || words[0] != "exit") return std::nullopt;
  int code = 0;
  if (words.size() > 1 && !absl::SimpleAtoi(words[1], &code)) code = 2;
  return code & 0xff;
}

std::vector<std::string> SplitScript(absl::string_view script) {
  std::vector<std::string> words;
  for (absl::string_view word :
       absl::StrSplit(script, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    absl::ConsumePrefix(&word, "'");
    absl::ConsumeSuffix(&word, "'");
    absl::ConsumePrefix(&word, "\"");
    absl::ConsumeSuffix(&word, "\"");
    words.emplace_back(word);
  }
  return words;
}

// `sh` reading commands from stdin.
class Shell final : public MockProcess {
 public:
  explicit Shell(ProcessContext context) : context_(std::move(context)) {
    context_.mode = ProcessMode::kExec;  // lines are commands, never daemons
  }
  ProcessOutput Start() override {
    ProcessOutput output;
    if (context_.tty) output.stdout_data = "$ ";
    return output;
  }
  ProcessOutput OnStdin(absl::string_view data) override {
    ProcessOutput output;
    pending_.append(data.data(), data.size());
    size_t newline;
    while (!output.exit_code &&
           (newline = pending_.find_first_of("\r\n")) != std::string::npos) {
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      RunLine(line, output);
    }
    return output;
  }
  ProcessOutput OnStdinClosed() override { return Exit(0); }
  void OnResize(const v1::TerminalSize& size) override { size_ = size; }

 private:
  void RunLine(const std::string& line, ProcessOutput& output) {
    const char* newline = context_.tty ? "\r\n" : "\n";
    if (context_.tty) absl::StrAppend(&output.stdout_data, line, newline);
    std::vector<std::string> words = SplitScript(line);
    if (auto code = ParseExit(words)) {
      output.exit_code = *code;
      return;
    }
    if (words == std::vector<std::string>{"stty", "size"}) {
      absl::StrAppend(&output.stdout_data, size_.height(), " ", size_.width(),
                      newline);
    } else if (!words.empty()) {
      ProcessContext inner = context_;
      inner.argv = words;
      ProcessOutput result = MakeProcess(inner)->Start();
      absl::StrAppend(&output.stdout_data, result.stdout_data);
      absl::StrAppend(&output.stderr_data, result.stderr_data);
      if (!result.exit_code) {
        absl::StrAppend(&output.stderr_data, "sh: ", words[0],
                        ": the mock shell runs only commands that finish "
                        "at once", newline);
      }
    }
    if (context_.tty) absl::StrAppend(&output.stdout_data, "$ ");
  }

  ProcessContext context_;
  std::string pending_;
  v1::TerminalSize size_;
};

std::unique_ptr<MockProcess> NotFound(const ProcessContext& context) {
  if (context.mode == ProcessMode::kContainer) {
    return std::make_unique<Logger>(context.identity, context.log_interval);
  }
  std::string message =
      absl::StrCat("mock: ", context.argv[0], ": command not found");
  ProcessOutput output = Exit(127, "", message + "\n");
  output.exit_message = message;
  return std::make_unique<Immediate>(std::move(output));
}

using Args = std::vector<std::string>;  // argv without argv[0]
using Factory = std::function<std::unique_ptr<MockProcess>(
    const ProcessContext&, const Args&)>;

std::unique_ptr<MockProcess> MakeEcho(const ProcessContext&, const Args& args) {
  return std::make_unique<Immediate>(Exit(0, absl::StrJoin(args, " ") + "\n"));
}

std::unique_ptr<MockProcess> MakeSleep(const ProcessContext&,
                                       const Args& args) {
  double seconds = 0;
  if (args.size() != 1 || !absl::SimpleAtod(args[0], &seconds) ||
      seconds < 0) {
    return std::make_unique<Immediate>(
        Exit(1, "", "sleep: invalid time interval\n"));
  }
  return std::make_unique<Sleep>(absl::Seconds(seconds));
}

std::unique_ptr<MockProcess> MakeEnv(const ProcessContext& context,
                                     const Args&) {
  std::string text;
  for (const auto& [name, value] : context.env) {
    absl::StrAppend(&text, name, "=", value, "\n");
  }
  return std::make_unique<Immediate>(Exit(0, std::move(text)));
}

std::unique_ptr<MockProcess> MakeShell(const ProcessContext& context,
                                       const Args& args) {
  if (args.empty()) return std::make_unique<Shell>(context);
  if (args[0] != "-c" || args.size() < 2) {
    return std::make_unique<Immediate>(
        Exit(2, "", "sh: the mock shell supports only -c SCRIPT\n"));
  }
  std::vector<std::string> words = SplitScript(args[1]);
  if (words.empty()) return std::make_unique<Immediate>(Exit(0));
  if (auto code = ParseExit(words)) {
    return std::make_unique<Immediate>(Exit(*code));
  }
  ProcessContext inner = context;
  inner.argv = std::move(words);
  return MakeProcess(inner);
}

const std::map<std::string, Factory, std::less<>>& Commands() {
  static const std::map<std::string, Factory, std::less<>> commands{
      {"echo", MakeEcho},
      {"true", [](const ProcessContext&, const Args&) {
         return std::make_unique<Immediate>(Exit(0));
       }},
      {"false", [](const ProcessContext&, const Args&) {
         return std::make_unique<Immediate>(Exit(1));
       }},
      {"sleep", MakeSleep},
      {"cat", [](const ProcessContext&, const Args&) {
         return std::make_unique<Cat>();
       }},
      {"env", MakeEnv},
      {"sh", MakeShell},
      {"bash", MakeShell},
  };
  return commands;
}

}  // namespace

std::unique_ptr<MockProcess> MakeProcess(const ProcessContext& context) {
  if (context.argv.empty()) {
    if (context.mode == ProcessMode::kContainer) {
      return std::make_unique<Logger>(context.identity, context.log_interval);
    }
    ProcessOutput output = Exit(126, "", "mock: no command given\n");
    output.exit_message = "no command given";
    return std::make_unique<Immediate>(std::move(output));
  }
  absl::string_view name = context.argv[0];
  size_t slash = name.rfind('/');
  if (slash != absl::string_view::npos) name.remove_prefix(slash + 1);
  auto it = Commands().find(name);
  if (it == Commands().end()) return NotFound(context);
  Args args(context.argv.begin() + 1, context.argv.end());
  return it->second(context, args);
}

v1::ExitStatus RunInSession(MockProcess& process, sdk::ProcessSession& session,
                            bool stdin_open) {
  using Kind = sdk::ProcessSession::Input::Kind;
  std::optional<absl::Time> wake;
  ProcessOutput output = process.Start();
  bool close_pending = !stdin_open;
  for (;;) {
    if (!output.stdout_data.empty()) session.WriteStdout(output.stdout_data);
    if (!output.stderr_data.empty()) session.WriteStderr(output.stderr_data);
    if (output.exit_code) {
      v1::ExitStatus exit;
      exit.set_exit_code(*output.exit_code);
      exit.set_message(output.exit_message);
      return exit;
    }
    if (output.wake_after) wake = absl::Now() + *output.wake_after;
    output = ProcessOutput();
    if (session.IsCancelled()) {
      v1::ExitStatus killed;
      killed.set_exit_code(137);
      killed.set_message("killed: the exec session was cancelled");
      return killed;
    }
    if (close_pending) {
      close_pending = false;
      output = process.OnStdinClosed();
      continue;
    }
    absl::Time deadline = wake.value_or(absl::InfiniteFuture());
    std::optional<sdk::ProcessSession::Input> input;
    if (stdin_open) {
      input = session.ReadUntil(deadline);
    } else {
      // No stdin to wait for: sleep in short steps to notice cancellation.
      absl::SleepFor(std::min(deadline - absl::Now(), absl::Milliseconds(50)));
    }
    if (!input) {
      if (wake && absl::Now() >= *wake) {
        wake.reset();
        output = process.OnTimer();
      }
      continue;
    }
    switch (input->kind) {
      case Kind::kStdin:
        output = process.OnStdin(input->data);
        break;
      case Kind::kResize:
        process.OnResize(input->size);
        break;
      case Kind::kStdinClosed:
      case Kind::kEnded:
        stdin_open = false;
        close_pending = true;
        break;
    }
  }
}

}  // namespace vkhost::mock
