// The mock's tiny command set: what a container or an exec'd command "does".
//
// The mock runs no real processes. A container's command+args (or an exec
// argv) picks one of a few built-in programs, each a small state machine that
// reacts to start, stdin, end of stdin and timers and answers with output and
// maybe an exit code. The pod store drives container programs from its timer
// thread; RunInSession drives an exec'd program on the session's thread.
//
// The command set (argv[0] is matched by its last path component):
//   echo ARGS...      prints ARGS joined by spaces and a newline, exits 0
//   true / false      exit 0 / 1
//   sleep N           exits 0 after N seconds (decimal allowed)
//   cat               copies stdin to stdout, exits 0 at end of stdin
//   env               prints the container's environment, NAME=value lines
//   sh|bash -c SCRIPT SCRIPT is split on whitespace (quotes stripped):
//                     `exit [N]` exits N, anything else runs as a command
//   sh|bash           reads command lines from stdin; with a tty prints a
//                     "$ " prompt and echoes each line; `exit [N]` exits N;
//                     `stty size` prints the last terminal size the host
//                     sent as "ROWS COLUMNS" (0 0 before any); exits 0 at
//                     end of stdin
//   anything else     container: a long-running process that writes
//                     "mock: <ns>/<pod>/<container> line N" every log
//                     interval; exec: exit 127, "command not found"
//   (no command)      container: the same long-running process;
//                     exec: exit 126
#ifndef VKHOST_PLUGINS_MOCK_COMMANDS_H_
#define VKHOST_PLUGINS_MOCK_COMMANDS_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::mock {

namespace v1 = ::vkhost::provider::v1;

// Where a program runs; decides what unknown commands mean.
enum class ProcessMode { kContainer, kExec };

struct ProcessContext {
  ProcessMode mode = ProcessMode::kContainer;
  std::vector<std::string> argv;  // command followed by args
  std::vector<std::pair<std::string, std::string>> env;
  bool tty = false;
  std::string identity;  // "<namespace>/<pod>/<container>", for log lines
  absl::Duration log_interval = absl::Seconds(1);
};

// What a program did in one step.
struct ProcessOutput {
  std::string stdout_data;
  std::string stderr_data;
  std::optional<int> exit_code;  // set once: the program has ended
  std::string exit_message;      // why it could not run, for ExitStatus
  // Call OnTimer after this long; replaces any earlier request.
  std::optional<absl::Duration> wake_after;
};

// One running program. Not thread-safe: its driver serialises the calls.
class MockProcess {
 public:
  virtual ~MockProcess() = default;
  virtual ProcessOutput Start() = 0;
  virtual ProcessOutput OnStdin(absl::string_view data);
  virtual ProcessOutput OnStdinClosed();
  virtual ProcessOutput OnTimer();
  virtual void OnResize(const v1::TerminalSize& size);
};

std::unique_ptr<MockProcess> MakeProcess(const ProcessContext& context);

// Runs `process` to its end on the calling thread with the session's stdin
// and output: stdin frames go to OnStdin, close_stdin (or no stdin at all
// when `stdin_open` is false) to OnStdinClosed. Returns the exit status;
// 137 with a message when the session is cancelled first.
v1::ExitStatus RunInSession(MockProcess& process, sdk::ProcessSession& session,
                            bool stdin_open);

}  // namespace vkhost::mock

#endif  // VKHOST_PLUGINS_MOCK_COMMANDS_H_
