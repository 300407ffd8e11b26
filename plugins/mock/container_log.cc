// ContainerLog and StreamContainerLog; see container_log.h.
#include "plugins/mock/container_log.h"

#include <algorithm>
#include <optional>

#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"

namespace vkhost::mock {
namespace {

// Batches stay under the 32 KiB frame size spec.md §6.6 recommends.
constexpr size_t kMaxBatchBytes = 32 * 1024;
constexpr absl::Duration kFollowPoll = absl::Milliseconds(200);

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(t));
}

// Sends lines in batches, stopping at the byte limit.
class LogSender {
 public:
  LogSender(sdk::StreamWriter<v1::ContainerLogsResponse>& out,
            std::optional<int64_t> limit_bytes)
      : out_(out), budget_(limit_bytes) {}

  // False when the stream should end (limit reached or host gone).
  bool Send(const std::vector<LogLine>& lines) {
    v1::ContainerLogsResponse batch;
    size_t batch_bytes = 0;
    for (const LogLine& line : lines) {
      std::string text = line.text;
      if (budget_) {
        if (*budget_ <= 0) break;
        if (static_cast<int64_t>(text.size()) > *budget_) text.resize(*budget_);
        *budget_ -= static_cast<int64_t>(text.size());
      }
      if (batch_bytes + text.size() > kMaxBatchBytes && batch.entries_size()) {
        if (!out_.Write(batch)) return false;
        batch.Clear();
        batch_bytes = 0;
      }
      batch_bytes += text.size();
      v1::LogEntry* entry = batch.add_entries();
      *entry->mutable_time() = ToProto(line.time);
      entry->set_stream(line.stream);
      entry->set_line(std::move(text));
    }
    if (batch.entries_size() > 0 && !out_.Write(batch)) return false;
    return !budget_ || *budget_ > 0;
  }

 private:
  sdk::StreamWriter<v1::ContainerLogsResponse>& out_;
  std::optional<int64_t> budget_;
};

}  // namespace

ContainerLog::ContainerLog(size_t max_lines)
    : max_lines_(std::max<size_t>(max_lines, 1)) {}

void ContainerLog::Append(v1::LogEntry::Stream stream, absl::string_view data,
                          absl::Time time) {
  absl::MutexLock lock(&mu_);
  while (!data.empty()) {
    size_t newline = data.find('\n');
    size_t length = newline == absl::string_view::npos ? data.size()
                                                       : newline + 1;
    lines_.push_back(
        LogLine{next_seq_++, time, stream, std::string(data.substr(0, length))});
    data.remove_prefix(length);
    if (lines_.size() > max_lines_) lines_.pop_front();
  }
}

void ContainerLog::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

std::vector<LogLine> ContainerLog::ReadFrom(uint64_t from_seq,
                                            absl::Time deadline,
                                            bool* closed) const {
  absl::MutexLock lock(&mu_);
  auto ready = [this, from_seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || next_seq_ > from_seq;
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  *closed = closed_;
  std::vector<LogLine> result;
  for (const LogLine& line : lines_) {
    if (line.seq >= from_seq) result.push_back(line);
  }
  return result;
}

absl::Status StreamContainerLog(
    const ContainerLog& log, const v1::ContainerLogsRequest& request,
    sdk::StreamWriter<v1::ContainerLogsResponse>& out) {
  std::optional<int64_t> limit;
  if (request.has_limit_bytes() && request.limit_bytes() > 0) {
    limit = request.limit_bytes();
  }
  LogSender sender(out, limit);

  bool closed = false;
  std::vector<LogLine> lines = log.ReadFrom(0, absl::InfinitePast(), &closed);
  uint64_t next_seq = lines.empty() ? 0 : lines.back().seq + 1;
  if (request.has_since_time()) {
    absl::Time since = FromProto(request.since_time());
    lines.erase(std::remove_if(lines.begin(), lines.end(),
                               [since](const LogLine& line) {
                                 return line.time < since;
                               }),
                lines.end());
  }
  if (request.has_tail_lines() && request.tail_lines() >= 0 &&
      lines.size() > static_cast<size_t>(request.tail_lines())) {
    lines.erase(lines.begin(), lines.end() - request.tail_lines());
  }
  if (!sender.Send(lines) || !request.follow()) return absl::OkStatus();

  while (!out.IsCancelled()) {
    if (closed) {
      // Drained what was there when the instance ended.
      return absl::OkStatus();
    }
    lines = log.ReadFrom(next_seq, absl::Now() + kFollowPoll, &closed);
    if (lines.empty()) continue;
    next_seq = lines.back().seq + 1;
    if (!sender.Send(lines)) return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace vkhost::mock
