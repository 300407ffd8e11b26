// ContainerLogFile: the on-disk log of one container instance.
//
// The shim (shim.h) writes what the container prints; the plugin reads it
// for `kubectl logs` and attach. Each line is stored as
//   <RFC 3339 time, ns> <stdout|stderr> <F|P> <bytes>\n
// (F: the bytes ended with a newline; P: a partial line, its bytes went out
// without one), which keeps times and streams exact and survives a plugin
// restart. When the file reaches its size limit it is renamed to
// "<path>.1" (replacing the older one) and a new file starts, so a
// container's log uses at most twice the limit. Each instance has its own
// file, so the previous instance's log is what `logs --previous` reads.
#ifndef VKHOST_PLUGINS_PROCESS_LOG_FILE_H_
#define VKHOST_PLUGINS_PROCESS_LOG_FILE_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::process {

namespace v1 = ::vkhost::provider::v1;

struct LogLine {
  absl::Time time;
  v1::LogEntry::Stream stream = v1::LogEntry::STREAM_STDOUT;
  std::string text;  // with its trailing newline unless partial
};

std::string FormatLogLine(const LogLine& line);
// nullopt for a malformed line.
std::optional<LogLine> ParseLogLine(absl::string_view stored);

// Appends output of one instance. Single-threaded (the shim).
class ContainerLogWriter {
 public:
  ContainerLogWriter(std::string path, int64_t max_bytes);
  ~ContainerLogWriter();
  ContainerLogWriter(const ContainerLogWriter&) = delete;
  ContainerLogWriter& operator=(const ContainerLogWriter&) = delete;

  // Splits `data` into lines (a trailing piece without newline is a partial
  // line) and stores them; rotates when the file is full.
  absl::Status Write(v1::LogEntry::Stream stream, absl::string_view data,
                     absl::Time now);

 private:
  absl::Status Open();
  std::string path_;
  int64_t max_bytes_;
  FILE* file_ = nullptr;
  int64_t size_ = 0;
};

// Every stored line of an instance, oldest first (the rotated file, then the
// current one). An absent file is an empty log.
std::vector<LogLine> ReadLogLines(const std::string& path);

// Applies the ContainerLogs filters in the spec's order: since_time, then
// tail_lines, then limit_bytes (whole lines, at least one).
std::vector<LogLine> FilterLogLines(std::vector<LogLine> lines,
                                    const v1::ContainerLogsRequest& request);

// Reads the lines appended to an instance's log from a point on, across
// rotations: it keeps the current file open, and when the path names a new
// file it drains the old one first. Single-threaded.
class LogFollower {
 public:
  // Starts at the end of what is there now when `from_end`, else at the
  // start of the oldest file.
  LogFollower(std::string path, bool from_end);
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Whole lines appended since the last call (possibly none).
  std::vector<LogLine> Poll();

 private:
  void OpenCurrent(bool at_end);
  std::string ReadAvailable();
  std::string path_;
  int fd_ = -1;
  uint64_t inode_ = 0;
  std::string pending_;  // bytes of an incomplete stored line
  int rotated_fd_ = -1;  // the ".1" file read first when starting from 0
};

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_LOG_FILE_H_
