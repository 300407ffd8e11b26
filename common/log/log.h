// common/log: the one logger every vkhost binary and the C++ SDK write with.
//
// Lines go to stderr, one write(2) per line so lines from many threads never
// interleave, in the form
//   I1204 15:58:10.123456 12345 supervisor.cc:88] plugin "mock" connected
// (level letter, UTC date and time, thread id, source location), which is the
// glog/klog shape operators already grep. Absl 20220623 has no logging library,
// hence this one; it has no global state beyond the level threshold and a sink
// tests may redirect.
#ifndef VKHOST_COMMON_LOG_LOG_H_
#define VKHOST_COMMON_LOG_LOG_H_

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vkhost::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug", "info", "warning"/"warn", "error" (any case).
// INVALID_ARGUMENT for anything else.
absl::Status ParseLevel(std::string_view text, Level* level);

// Lines below `level` are dropped. Default kInfo. Thread-safe.
void SetLevel(Level level);
bool Enabled(Level level);

// Replaces where finished lines go (default: stderr). An empty function
// restores the default. For tests; thread-safe.
void SetSinkForTest(std::function<void(const std::string& line)> sink);

// Builds one line and emits it when destroyed. Use through VKLOG.
class LineBuilder {
 public:
  LineBuilder(Level level, const char* file, int line);
  ~LineBuilder();
  LineBuilder(const LineBuilder&) = delete;
  LineBuilder& operator=(const LineBuilder&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace vkhost::log

// VKLOG(INFO) << "plugin " << name << " connected";
#define VKLOG(severity) VKLOG_##severity
#define VKLOG_AT_(level)                                  \
  if (!::vkhost::log::Enabled(level)) {                   \
  } else                                                  \
    ::vkhost::log::LineBuilder(level, __FILE__, __LINE__).stream()
#define VKLOG_DEBUG VKLOG_AT_(::vkhost::log::Level::kDebug)
#define VKLOG_INFO VKLOG_AT_(::vkhost::log::Level::kInfo)
#define VKLOG_WARNING VKLOG_AT_(::vkhost::log::Level::kWarning)
#define VKLOG_ERROR VKLOG_AT_(::vkhost::log::Level::kError)

#endif  // VKHOST_COMMON_LOG_LOG_H_
