#include <utility>

#include "host/kube/client.h"

namespace vkhost::kube {

void WatchCancel::Cancel() {
  cancelled_.store(true);
  absl::MutexLock lock(&mu_);
  // From the watch's own handler: the watch notices on return; waiting here
  // would wait for ourselves.
  if (watch_thread_ == std::this_thread::get_id()) return;
  // The interrupt can land between the watch registering and its request
  // starting, where it has nothing to shut down; repeat until it returns.
  while (interrupt_) {
    interrupt_();
    mu_.AwaitWithTimeout(absl::Condition(this, &WatchCancel::NoWatchRegistered),
                         absl::Milliseconds(50));
  }
}

bool WatchCancel::cancelled() const { return cancelled_.load(); }

bool WatchCancel::Register(std::function<void()> interrupt) {
  absl::MutexLock lock(&mu_);
  if (cancelled_.load()) return false;
  interrupt_ = std::move(interrupt);
  watch_thread_ = std::this_thread::get_id();
  return true;
}

void WatchCancel::Unregister() {
  absl::MutexLock lock(&mu_);
  interrupt_ = nullptr;
  watch_thread_.reset();
}

}  // namespace vkhost::kube
