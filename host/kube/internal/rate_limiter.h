// Internal to host/kube: the client-side request rate limit (client-go's
// flowcontrol token bucket). Not for other components.
#ifndef VKHOST_HOST_KUBE_INTERNAL_RATE_LIMITER_H_
#define VKHOST_HOST_KUBE_INTERNAL_RATE_LIMITER_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vkhost::kube::internal {

// A token bucket holding up to `burst` tokens, refilled at `qps` per second.
// Callers reserve tokens in arrival order: a caller that finds the bucket
// empty takes a token from the future and waits until it exists, so later
// callers queue behind it (fair, no starvation). qps <= 0 disables limiting.
// Thread-safe; the clock is injectable so tests count without sleeping.
class RateLimiter {
 public:
  using Clock = std::function<absl::Time()>;

  RateLimiter(double qps, int burst, Clock now = absl::Now);

  // Takes one token and returns how long the caller must wait before using
  // it: zero while the bucket has tokens.
  absl::Duration Reserve();

  // Reserve() and sleep for the wait.
  void Wait();

 private:
  const double qps_;
  const double burst_;
  const Clock now_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);  // negative: owed to waiting callers
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_RATE_LIMITER_H_
