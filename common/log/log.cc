#include "common/log/log.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vkhost::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

// Guards the test sink; the default path takes no lock.
absl::Mutex g_sink_mu;
std::function<void(const std::string&)> g_sink ABSL_GUARDED_BY(g_sink_mu);
std::atomic<bool> g_has_sink{false};

constexpr char kLevelLetters[] = {'D', 'I', 'W', 'E'};

struct NamedLevel {
  const char* name;
  Level level;
};
constexpr NamedLevel kLevelNames[] = {
    {"debug", Level::kDebug},     {"info", Level::kInfo},
    {"warning", Level::kWarning}, {"warn", Level::kWarning},
    {"error", Level::kError},
};

void WriteAll(const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr gone: nothing sensible to do.
    p += n;
    left -= static_cast<size_t>(n);
  }
}

const char* BaseName(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

absl::Status ParseLevel(std::string_view text, Level* level) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  for (const NamedLevel& n : kLevelNames) {
    if (lower == n.name) {
      *level = n.level;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("unknown log level \"" + std::string(text) +
                                    "\" (want debug, info, warning or error)");
}

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void SetSinkForTest(std::function<void(const std::string& line)> sink) {
  absl::MutexLock lock(&g_sink_mu);
  g_sink = std::move(sink);
  g_has_sink.store(static_cast<bool>(g_sink));
}

LineBuilder::LineBuilder(Level level, const char* file, int line) {
  stream_ << kLevelLetters[static_cast<int>(level)]
          << absl::FormatTime("%m%d %H:%M:%E6S", absl::Now(),
                              absl::UTCTimeZone())
          << ' ' << static_cast<long>(::syscall(SYS_gettid)) << ' '
          << BaseName(file) << ':' << line << "] ";
}

LineBuilder::~LineBuilder() {
  stream_ << '\n';
  std::string text = stream_.str();
  if (g_has_sink.load()) {
    absl::MutexLock lock(&g_sink_mu);
    if (g_sink) {
      g_sink(text);
      return;
    }
  }
  WriteAll(text);
}

}  // namespace vkhost::log
