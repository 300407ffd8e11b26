// Internal to host/kube: the bearer token sent with every request, re-read
// from its file so rotated service-account tokens keep working.
#ifndef VKHOST_HOST_KUBE_INTERNAL_TOKEN_SOURCE_H_
#define VKHOST_HOST_KUBE_INTERNAL_TOKEN_SOURCE_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vkhost::kube::internal {

// Yields a static token, or the content of `token_file` (whitespace trimmed)
// read at most once per `refresh`. A failed re-read keeps the last good token
// and logs a warning, as a rotation writes the file non-atomically at times.
// Thread-safe.
class TokenSource {
 public:
  using Clock = std::function<absl::Time()>;

  TokenSource(std::string static_token, std::string token_file,
              absl::Duration refresh = absl::Minutes(1), Clock now = absl::Now);

  // Reads the file once; NOT_FOUND/INVALID_ARGUMENT naming the file if it is
  // unreadable or empty. OK without a file.
  absl::Status Init();

  // The token to send now; "" for none.
  std::string Token();

 private:
  const std::string token_file_;
  const absl::Duration refresh_;
  const Clock now_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Time read_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// Reads a token file: trimmed content, error naming the file if unreadable or
// empty.
absl::Status ReadTokenFile(const std::string& path, std::string* token);

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_TOKEN_SOURCE_H_
