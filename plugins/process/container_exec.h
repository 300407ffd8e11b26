// ContainerExec: running a process inside a running container, for
// `kubectl exec`, exec probes and exec hooks.
//
// The process gets the container's environment, working directory, root
// (chroot) and user, and joins the container's mount namespace (through the
// shim's /proc/<pid>/ns/mnt) when the container has one, so it sees the
// same files as the container's main process. It runs in its own process
// group (with a tty: its own session, the pty as controlling terminal);
// ChildProcess kills that group and reaps the process when destroyed.
#ifndef VKHOST_PLUGINS_PROCESS_CONTAINER_EXEC_H_
#define VKHOST_PLUGINS_PROCESS_CONTAINER_EXEC_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vkhost::process {

// Where and as whom a process runs in a container.
struct ExecTarget {
  std::vector<std::string> env;  // NAME=value
  std::string working_dir;       // empty: "/"
  std::string root = "/";
  pid_t mount_ns_pid = 0;        // join this process's mount namespace; 0: no
  std::optional<uint32_t> run_as_user, run_as_group;
};

// One process started by Spawn. Thread-compatible: one owner; the fds may
// be used from two threads (one reading, one writing).
class ChildProcess {
 public:
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // With a tty all three are the pty master. -1 when not requested.
  int stdin_fd() const { return stdin_fd_; }
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }
  bool tty() const { return tty_; }
  // Closes stdin (a tty gets an end-of-file character instead).
  void CloseStdin();
  void Resize(uint32_t width, uint32_t height);

  // The exit code (128+N when killed by signal N) once the process ended;
  // nullopt while it runs.
  std::optional<int> TryWait();
  // SIGKILLs the process group.
  void Kill();

 private:
  friend absl::StatusOr<std::unique_ptr<ChildProcess>> SpawnInContainer(
      const ExecTarget&, const std::vector<std::string>&, bool, bool);
  ChildProcess() = default;
  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1, stderr_fd_ = -1;
  bool tty_ = false;
  std::optional<int> exit_code_;
};

// Starts `argv` in `target`. Errors before the process runs carry the
// shell's convention in their code: NOT_FOUND (exit 127) when argv[0] is
// not found, PERMISSION_DENIED (126) when it cannot be executed, others
// (126) when the container's set-up failed; the message says why.
absl::StatusOr<std::unique_ptr<ChildProcess>> SpawnInContainer(
    const ExecTarget& target, const std::vector<std::string>& argv, bool tty,
    bool with_stdin);

// Runs `argv` to its end with no stdin, killing it after `timeout`.
struct RunResult {
  int exit_code = 0;       // 126/127 when it could not start
  std::string output;      // stdout and stderr, at most 64 KiB
  bool timed_out = false;
};
// `stop`, when given, is polled: true kills the process early (the plugin is
// shutting down), reported like a timeout.
RunResult RunToCompletion(const ExecTarget& target,
                          const std::vector<std::string>& argv,
                          absl::Duration timeout,
                          const std::function<bool()>& stop = nullptr);

// Exit code for a status from SpawnInContainer (127 not found, else 126).
int ExitCodeForSpawnError(const absl::Status& status);

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_CONTAINER_EXEC_H_
