// Whole-file reads and atomic whole-file writes: how the process plugin and
// its shims keep state files (pod specs, records, exit codes, launch specs)
// and read /proc. Thread-safe; no state.
#ifndef VKHOST_PLUGINS_PROCESS_WHOLE_FILE_H_
#define VKHOST_PLUGINS_PROCESS_WHOLE_FILE_H_

#include <string>

#include "absl/status/status.h"

namespace vkhost::process {

// The bytes of `path`; empty when it is missing or unreadable (callers treat
// an absent file and an empty one alike).
std::string ReadWholeFile(const std::string& path);

// Writes `content` to `path` atomically (a temporary file renamed over it),
// so a reader never sees half a file. UNAVAILABLE with the reason on failure.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content);

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_WHOLE_FILE_H_
