// host/plugin/child_process.h: private to host/plugin (use plugin.h).
//
// ChildProcess is the launch-mode plugin as an operating-system process: it
// spawns the executable with piped stdio in its own process group, reads
// stdout and stderr line by line on two threads, reaps the child on a third
// and stops it (close stdin, SIGTERM, grace period, SIGKILL). PluginConnection
// adds the handshake and gRPC on top.
#ifndef VKHOST_HOST_PLUGIN_CHILD_PROCESS_H_
#define VKHOST_HOST_PLUGIN_CHILD_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vkhost::plugin::internal {

// How a child ended.
struct ExitInfo {
  pid_t pid = 0;
  // Set when the child exited by itself (not by a signal).
  std::optional<int> exit_code;
  // "exited with status 1", "killed by signal 9 (Killed)".
  std::string description;
};

// One spawned child. Thread-safe. The callbacks run on the child's own
// threads (one per stream, one for the exit); they must not block for long
// and must not destroy the ChildProcess. Destruction stops the child with
// Stop(kDefaultStopGrace) and joins every thread; a grandchild that keeps the
// pipes open delays it by at most a couple of seconds.
class ChildProcess {
 public:
  static constexpr absl::Duration kDefaultStopGrace = absl::Seconds(5);

  struct Callbacks {
    std::function<void(const std::string& line)> on_stdout_line;
    std::function<void()> on_stdout_closed;
    std::function<void(const std::string& line)> on_stderr_line;
    std::function<void()> on_stderr_closed;
    std::function<void(const ExitInfo& exit)> on_exit;
  };

  // Starts argv (argv[0] looked up in PATH when it has no '/') with exactly
  // `env` as environment. FAILED_PRECONDITION when it cannot be executed
  // (missing, not executable), INTERNAL when a pipe or thread cannot be made.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const std::vector<std::string>& env,
      Callbacks callbacks);

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Exited() const;
  // Empty until Exited().
  std::string exit_description() const;
  // True once the child has exited; false when `timeout` passed first.
  bool WaitForExit(absl::Duration timeout) const;

  // Closes the child's stdin, sends SIGTERM, waits up to `grace`, then sends
  // SIGKILL and waits for the exit. Returns once the child is reaped.
  // Idempotent; safe to call from several threads.
  void Stop(absl::Duration grace);

 private:
  ChildProcess(pid_t pid, int stdin_fd, Callbacks callbacks);
  void StartThreads(int stdout_fd, int stderr_fd);
  void Reap();
  void ReadLines(int fd, const std::function<void(const std::string&)>& on_line,
                 const std::function<void()>& on_closed);
  // Sends `sig` unless the child is already reaped, so a recycled pid is
  // never signalled.
  void Signal(int sig);

  const pid_t pid_;
  const Callbacks callbacks_;
  // Wakes the readers when a grandchild holds the pipes open past the exit.
  int wake_fd_ = -1;

  mutable absl::Mutex mu_;
  int stdin_fd_ ABSL_GUARDED_BY(mu_);
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  std::string exit_description_ ABSL_GUARDED_BY(mu_);
  int readers_running_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread reaper_;
  std::vector<std::thread> readers_;
};

// "exited with status 3", "killed by signal 9 (Killed)", from a wait status.
std::string DescribeWaitStatus(int status);

}  // namespace vkhost::plugin::internal

#endif  // VKHOST_HOST_PLUGIN_CHILD_PROCESS_H_
