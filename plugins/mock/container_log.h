// ContainerLog: the mock's in-memory log of one container instance, and the
// ContainerLogs RPC over it.
//
// The pod store appends what a container's program prints; StreamContainerLog
// serves `kubectl logs` with its filters (since_time, then tail_lines, then
// limit_bytes) and `--follow`, which ends when the instance has terminated
// and its log is drained. After a restart the store keeps the old instance's
// log as "previous".
#ifndef VKHOST_PLUGINS_MOCK_CONTAINER_LOG_H_
#define VKHOST_PLUGINS_MOCK_CONTAINER_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::mock {

namespace v1 = ::vkhost::provider::v1;

struct LogLine {
  uint64_t seq = 0;  // position in the log since the instance started
  absl::Time time;
  v1::LogEntry::Stream stream = v1::LogEntry::STREAM_STDOUT;
  std::string text;  // with its trailing newline, if it had one
};

// A bounded ring of lines: the oldest are dropped beyond `max_lines`.
// Thread-safe: the store appends while RPC threads read.
class ContainerLog {
 public:
  explicit ContainerLog(size_t max_lines);

  // Splits `data` into lines; a trailing piece without newline is a line too.
  void Append(v1::LogEntry::Stream stream, absl::string_view data,
              absl::Time time);
  // The instance has terminated: nothing more will be appended.
  void Close();

  // Lines with seq >= `from_seq` (those still kept). Waits until there is
  // one, the log is closed, or `deadline`. `closed` tells whether the log
  // was closed when the lines were taken.
  std::vector<LogLine> ReadFrom(uint64_t from_seq, absl::Time deadline,
                                bool* closed) const;

 private:
  const size_t max_lines_;
  mutable absl::Mutex mu_;
  std::deque<LogLine> lines_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// Serves one ContainerLogs request from `log`. OK when done or when the host
// cancelled.
absl::Status StreamContainerLog(
    const ContainerLog& log, const v1::ContainerLogsRequest& request,
    sdk::StreamWriter<v1::ContainerLogsResponse>& out);

}  // namespace vkhost::mock

#endif  // VKHOST_PLUGINS_MOCK_CONTAINER_LOG_H_
