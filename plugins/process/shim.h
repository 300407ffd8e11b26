// The container shim: `vkhost-process-plugin shim <instance-dir>`.
//
// The plugin starts one shim per container instance, in a session of its
// own, so the shim and the workload outlive a plugin that exits or is
// killed. The shim reads launch.json from the instance directory, sets up
// the container (mount namespace with bind mounts when asked, rlimits or a
// cgroup, chroot, user, working directory), forks the workload into its own
// process group and then only relays: workload output to the instance log
// (log_file.h), the stdin FIFO to the workload (attach), and requests from
// the control FIFO ("resize W H", "close-stdin"). It records the
// workload's pid in pid.json and, when the
// workload ends, kills what is left of the container's process tree (it is
// the tree's child subreaper) and writes exit.json. Signals from the plugin:
// SIGTERM is forwarded to the workload's process group, SIGUSR1 kills the
// whole tree.
//
// Instance directory files: launch.json (in), pid.json, exit.json, log,
// stdin (FIFO, when the container has stdin), control (FIFO, with stdin or
// tty).
#ifndef VKHOST_PLUGINS_PROCESS_SHIM_H_
#define VKHOST_PLUGINS_PROCESS_SHIM_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vkhost::process {

struct BindMount {
  std::string source;  // host path
  std::string target;  // path inside the container's root
  bool read_only = false;
};

// What the shim runs; written by the plugin as launch.json.
struct LaunchSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // NAME=value
  std::string working_dir;       // empty: "/"
  std::string root = "/";
  bool tty = false;
  bool stdin = false;
  bool mount_namespace = false;
  std::vector<BindMount> mounts;
  int64_t log_max_bytes = 10 << 20;
  int64_t memory_limit_bytes = 0;  // 0: none (RLIMIT_DATA when no cgroup)
  std::string cgroup_dir;          // cgroup v2 directory to join; empty: none
  std::optional<uint32_t> run_as_user, run_as_group;
};

std::string EncodeLaunchSpec(const LaunchSpec& spec);
absl::StatusOr<LaunchSpec> DecodeLaunchSpec(const std::string& json);

// pid.json: the workload's identity.
struct WorkloadPid {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
};
std::optional<WorkloadPid> ReadWorkloadPid(const std::string& instance_dir);

// exit.json: how the workload ended.
struct ExitRecord {
  int exit_code = 0;
  int signal = 0;
  std::string reason;  // "Completed", "Error", "StartError"
  std::string message;
  absl::Time finished_at;
};
std::optional<ExitRecord> ReadExitRecord(const std::string& instance_dir);
// Writes atomically (temp file + rename).
bool WriteExitRecord(const std::string& instance_dir, const ExitRecord& record);

// Looks `file` up in `path_env` (a PATH value) under `root` the way execvp
// would; returns the path to exec (relative to the root) and sets
// `error` to the errno of the best failure (ENOENT, EACCES) otherwise.
std::string LookPath(const std::string& file, const std::string& path_env,
                     const std::string& root, int* error);

// The shim's main(); returns its exit status.
int RunShim(const std::string& instance_dir);

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_SHIM_H_
