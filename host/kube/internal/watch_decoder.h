// Internal to host/kube: splits a watch response body into events. The API
// server writes one JSON object {"type": ..., "object": ...} per line; HTTP
// chunks cut those lines anywhere.
#ifndef VKHOST_HOST_KUBE_INTERNAL_WATCH_DECODER_H_
#define VKHOST_HOST_KUBE_INTERNAL_WATCH_DECODER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "host/kube/client.h"

namespace vkhost::kube::internal {

// Parses one line. INVALID_ARGUMENT for non-JSON, a missing object, or an
// unknown type.
absl::StatusOr<WatchEvent> ParseWatchEvent(std::string_view line);

// Accumulates bytes and hands out complete events. Not thread-safe: one per
// watch stream.
class WatchDecoder {
 public:
  explicit WatchDecoder(size_t max_line_bytes = size_t{256} << 20)
      : max_line_bytes_(max_line_bytes) {}

  // Appends `chunk` and calls `on_event` for every line it completes. Returns
  // CANCELLED when `on_event` returned false (no further events are
  // delivered), INVALID_ARGUMENT for a malformed line or one longer than the
  // limit (the stream is then unusable).
  absl::Status Feed(std::string_view chunk, const WatchEventHandler& on_event);

  // Bytes of an unfinished line held back.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const size_t max_line_bytes_;
  std::string pending_;
};

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_WATCH_DECODER_H_
