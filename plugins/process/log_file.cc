// ContainerLogFile; see log_file.h.
#include "plugins/process/log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "plugins/process/whole_file.h"

namespace vkhost::process {
namespace {

constexpr char kTimeFormat[] = "%Y-%m-%dT%H:%M:%E9SZ";

absl::string_view StreamName(v1::LogEntry::Stream stream) {
  return stream == v1::LogEntry::STREAM_STDERR ? "stderr" : "stdout";
}

void AppendParsed(absl::string_view data, std::vector<LogLine>* out) {
  for (absl::string_view stored : absl::StrSplit(data, '\n', absl::SkipEmpty())) {
    if (auto line = ParseLogLine(stored)) out->push_back(std::move(*line));
  }
}

uint64_t InodeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace

std::string FormatLogLine(const LogLine& line) {
  bool full = !line.text.empty() && line.text.back() == '\n';
  absl::string_view bytes = line.text;
  if (full) bytes.remove_suffix(1);
  return absl::StrCat(absl::FormatTime(kTimeFormat, line.time, absl::UTCTimeZone()),
                      " ", StreamName(line.stream), " ", full ? "F" : "P", " ",
                      bytes, "\n");
}

std::optional<LogLine> ParseLogLine(absl::string_view stored) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(stored, absl::MaxSplits(' ', 3));
  if (parts.size() < 3) return std::nullopt;
  LogLine line;
  std::string error;
  if (!absl::ParseTime(kTimeFormat, std::string(parts[0]), &line.time, &error)) {
    return std::nullopt;
  }
  if (parts[1] == "stdout") {
    line.stream = v1::LogEntry::STREAM_STDOUT;
  } else if (parts[1] == "stderr") {
    line.stream = v1::LogEntry::STREAM_STDERR;
  } else {
    return std::nullopt;
  }
  if (parts[2] != "F" && parts[2] != "P") return std::nullopt;
  line.text = parts.size() > 3 ? std::string(parts[3]) : "";
  if (parts[2] == "F") line.text += '\n';
  return line;
}

ContainerLogWriter::ContainerLogWriter(std::string path, int64_t max_bytes)
    : path_(std::move(path)), max_bytes_(std::max<int64_t>(max_bytes, 4096)) {}

ContainerLogWriter::~ContainerLogWriter() {
  if (file_ != nullptr) fclose(file_);
}

absl::Status ContainerLogWriter::Open() {
  file_ = fopen(path_.c_str(), "ae");
  if (file_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot open log ", path_, ": ", strerror(errno)));
  }
  struct stat st;
  size_ = fstat(fileno(file_), &st) == 0 ? st.st_size : 0;
  return absl::OkStatus();
}

absl::Status ContainerLogWriter::Write(v1::LogEntry::Stream stream,
                                       absl::string_view data, absl::Time now) {
  if (file_ == nullptr) {
    if (absl::Status s = Open(); !s.ok()) return s;
  }
  while (!data.empty()) {
    size_t end = data.find('\n');
    size_t take = end == absl::string_view::npos ? data.size() : end + 1;
    LogLine line{now, stream, std::string(data.substr(0, take))};
    data.remove_prefix(take);
    std::string stored = FormatLogLine(line);
    fwrite(stored.data(), 1, stored.size(), file_);
    size_ += static_cast<int64_t>(stored.size());
  }
  fflush(file_);
  if (size_ >= max_bytes_) {
    fclose(file_);
    file_ = nullptr;
    std::rename(path_.c_str(), (path_ + ".1").c_str());
    return Open();
  }
  return absl::OkStatus();
}

std::vector<LogLine> ReadLogLines(const std::string& path) {
  std::vector<LogLine> lines;
  AppendParsed(ReadWholeFile(path + ".1"), &lines);
  AppendParsed(ReadWholeFile(path), &lines);
  return lines;
}

std::vector<LogLine> FilterLogLines(std::vector<LogLine> lines,
                                    const v1::ContainerLogsRequest& request) {
  if (request.has_since_time()) {
    absl::Time since = absl::FromUnixSeconds(request.since_time().seconds()) +
                       absl::Nanoseconds(request.since_time().nanos());
    lines.erase(std::remove_if(lines.begin(), lines.end(),
                               [&](const LogLine& l) { return l.time < since; }),
                lines.end());
  }
  if (request.has_tail_lines()) {
    size_t keep = static_cast<size_t>(std::max<int64_t>(0, request.tail_lines()));
    if (lines.size() > keep) lines.erase(lines.begin(), lines.end() - keep);
  }
  if (request.has_limit_bytes()) {
    int64_t budget = request.limit_bytes();
    size_t n = 0;
    for (; n < lines.size(); ++n) {
      if (n > 0 && budget < static_cast<int64_t>(lines[n].text.size())) break;
      budget -= static_cast<int64_t>(lines[n].text.size());
    }
    lines.resize(n);
  }
  return lines;
}

LogFollower::LogFollower(std::string path, bool from_end)
    : path_(std::move(path)) {
  if (!from_end) rotated_fd_ = open((path_ + ".1").c_str(), O_RDONLY | O_CLOEXEC);
  OpenCurrent(from_end);
}

LogFollower::~LogFollower() {
  if (fd_ >= 0) close(fd_);
  if (rotated_fd_ >= 0) close(rotated_fd_);
}

void LogFollower::OpenCurrent(bool at_end) {
  fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return;
  struct stat st;
  inode_ = fstat(fd_, &st) == 0 ? st.st_ino : 0;
  if (at_end) lseek(fd_, 0, SEEK_END);
}

namespace {
std::string DrainFd(int fd) {
  std::string out;
  char buffer[65536];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}
}  // namespace

std::string LogFollower::ReadAvailable() {
  std::string data;
  if (rotated_fd_ >= 0) {
    data += DrainFd(rotated_fd_);
    close(rotated_fd_);
    rotated_fd_ = -1;
  }
  if (fd_ < 0) {
    OpenCurrent(false);
    if (fd_ < 0) return data;
  }
  data += DrainFd(fd_);
  // Rotated under us: what we hold is now "<path>.1"; the rest is new.
  uint64_t now_inode = InodeOf(path_);
  if (now_inode != 0 && now_inode != inode_) {
    data += DrainFd(fd_);
    close(fd_);
    OpenCurrent(false);
    if (fd_ >= 0) data += DrainFd(fd_);
  }
  return data;
}

std::vector<LogLine> LogFollower::Poll() {
  pending_ += ReadAvailable();
  std::vector<LogLine> lines;
  size_t end = pending_.rfind('\n');
  if (end == std::string::npos) return lines;
  AppendParsed(absl::string_view(pending_).substr(0, end + 1), &lines);
  pending_.erase(0, end + 1);
  return lines;
}

}  // namespace vkhost::process
