// ProcessTree; see process_tree.h.
#include "plugins/process/process_tree.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "plugins/process/whole_file.h"

namespace vkhost::process {
namespace {

struct StatFields {
  char state = '?';
  pid_t ppid = 0;
  uint64_t utime = 0, stime = 0, start_ticks = 0;
  uint64_t rss_pages = 0;
};

std::optional<StatFields> ReadStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // The command name may hold spaces and parentheses: fields start after
  // the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return std::nullopt;
  std::vector<std::string> f =
      absl::StrSplit(text.substr(close + 2), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state).
  if (f.size() < 22) return std::nullopt;
  StatFields s;
  s.state = f[0].empty() ? '?' : f[0][0];
  int ppid = 0;
  (void)absl::SimpleAtoi(f[1], &ppid);
  s.ppid = ppid;
  (void)absl::SimpleAtoi(f[11], &s.utime);
  (void)absl::SimpleAtoi(f[12], &s.stime);
  (void)absl::SimpleAtoi(f[19], &s.start_ticks);
  (void)absl::SimpleAtoi(f[21], &s.rss_pages);
  return s;
}

std::map<pid_t, StatFields> AllProcesses() {
  std::map<pid_t, StatFields> all;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return all;
  while (dirent* entry = readdir(dir)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    if (auto s = ReadStat(pid)) all[pid] = *s;
  }
  closedir(dir);
  return all;
}

std::vector<pid_t> DescendantsIn(const std::map<pid_t, StatFields>& all,
                                 pid_t root) {
  // Zombies are dead already (and cannot be killed again): skip them, but
  // still walk through them to their (reparented) children.
  std::multimap<pid_t, pid_t> children;
  for (const auto& [pid, s] : all) children.emplace(s.ppid, pid);
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  while (!todo.empty()) {
    pid_t parent = todo.back();
    todo.pop_back();
    auto [begin, end] = children.equal_range(parent);
    for (auto it = begin; it != end; ++it) {
      if (it->second == root) continue;
      auto stat = all.find(it->second);
      if (stat->second.state != 'Z' && stat->second.state != 'X') out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

uint64_t ReadMeminfoField(const std::string& text, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, key + ":")) continue;
    std::vector<absl::string_view> words =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t kib = 0;
    if (words.size() >= 2 && absl::SimpleAtoi(words[1], &kib)) return kib * 1024;
  }
  return 0;
}

}  // namespace

std::optional<uint64_t> ProcessStartTicks(pid_t pid) {
  auto s = ReadStat(pid);
  if (!s) return std::nullopt;
  return s->start_ticks;
}

bool ProcessAlive(pid_t pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  auto s = ReadStat(pid);
  if (!s || s->state == 'Z' || s->state == 'X') return false;
  return start_ticks == 0 || s->start_ticks == start_ticks;
}

std::vector<pid_t> Descendants(pid_t root) {
  return DescendantsIn(AllProcesses(), root);
}

TreeUsage UsageOfTree(pid_t root) {
  TreeUsage usage;
  std::map<pid_t, StatFields> all = AllProcesses();
  std::vector<pid_t> pids = DescendantsIn(all, root);
  pids.push_back(root);
  const uint64_t tick_ns = 1'000'000'000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  for (pid_t pid : pids) {
    auto it = all.find(pid);
    if (it == all.end() || it->second.state == 'Z') continue;
    usage.cpu_nanos += (it->second.utime + it->second.stime) * tick_ns;
    usage.rss_bytes += it->second.rss_pages * page;
    ++usage.processes;
  }
  return usage;
}

void KillTree(pid_t root) {
  for (int round = 0; round < 5; ++round) {
    std::vector<pid_t> pids = Descendants(root);
    if (ProcessAlive(root, 0)) pids.push_back(root);
    if (pids.empty()) return;
    for (pid_t pid : pids) kill(pid, SIGKILL);
    usleep(20 * 1000);
  }
}

MemoryInfo ReadMemoryInfo() {
  std::string text = ReadWholeFile("/proc/meminfo");
  return MemoryInfo{ReadMeminfoField(text, "MemTotal"),
                    ReadMeminfoField(text, "MemAvailable")};
}

uint64_t MachineCpuNanos() {
  std::string text = ReadWholeFile("/proc/stat");
  std::vector<absl::string_view> words =
      absl::StrSplit(text.substr(0, text.find('\n')), ' ', absl::SkipEmpty());
  uint64_t ticks = 0;
  // cpu user nice system idle iowait irq softirq steal: busy = all but idle
  // and iowait.
  for (size_t i = 1; i < words.size() && i <= 8; ++i) {
    if (i == 4 || i == 5) continue;
    uint64_t value = 0;
    if (absl::SimpleAtoi(words[i], &value)) ticks += value;
  }
  return ticks * (1'000'000'000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK)));
}

void ReadPidCounts(uint64_t* used, uint64_t* max) {
  *used = 0;
  DIR* dir = opendir("/proc");
  if (dir != nullptr) {
    while (dirent* entry = readdir(dir)) {
      int pid = 0;
      if (absl::SimpleAtoi(entry->d_name, &pid)) ++*used;
    }
    closedir(dir);
  }
  *max = 32768;
  uint64_t value = 0;
  if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadWholeFile("/proc/sys/kernel/pid_max")),
                       &value)) {
    *max = value;
  }
}

}  // namespace vkhost::process
