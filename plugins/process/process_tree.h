// ProcessTree: what the process plugin learns about processes from /proc.
//
// Process identity across a plugin restart is (pid, start time in clock
// ticks since boot), so a recycled pid is never mistaken for a container's
// process. Usage figures sum a process and all its descendants (found by
// parent pid), which is how a container is measured when no cgroup is
// available. All functions are thread-safe and never fail loudly: a process
// that vanished mid-read simply counts as gone.
#ifndef VKHOST_PLUGINS_PROCESS_PROCESS_TREE_H_
#define VKHOST_PLUGINS_PROCESS_PROCESS_TREE_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vkhost::process {

// Field 22 of /proc/<pid>/stat; nullopt when the process does not exist.
std::optional<uint64_t> ProcessStartTicks(pid_t pid);
// True when `pid` exists, is not a zombie, and (if `start_ticks` is not 0)
// started at `start_ticks`.
bool ProcessAlive(pid_t pid, uint64_t start_ticks);
// Every live descendant of `root` (not `root` itself).
std::vector<pid_t> Descendants(pid_t root);

struct TreeUsage {
  uint64_t cpu_nanos = 0;  // user + system time of the live processes
  uint64_t rss_bytes = 0;
  int processes = 0;
};
// `root` and its descendants.
TreeUsage UsageOfTree(pid_t root);

// SIGKILLs `root`'s descendants and then `root`, repeatedly until none is
// left (a fork bomb gets a few rounds).
void KillTree(pid_t root);

// Machine facts.
struct MemoryInfo {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
};
MemoryInfo ReadMemoryInfo();
// Cumulative CPU time of the whole machine (all cores), ns.
uint64_t MachineCpuNanos();
// Number of processes and the pid limit.
void ReadPidCounts(uint64_t* used, uint64_t* max);

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_PROCESS_TREE_H_
