// TimerScheduler; see scheduler.h.
#include "plugins/mock/scheduler.h"

#include <utility>

#include "absl/time/clock.h"

namespace vkhost::mock {

TimerScheduler::TimerScheduler() : thread_([this] { Loop(); }) {}

TimerScheduler::~TimerScheduler() { Stop(); }

void TimerScheduler::After(absl::Duration delay,
                           std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  items_.push(Item{absl::Now() + delay, next_seq_++, std::move(callback)});
}

void TimerScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void TimerScheduler::Loop() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    if (stopping_) return;
    if (items_.empty()) {
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !items_.empty();
      };
      mu_.Await(absl::Condition(&wake));
      continue;
    }
    absl::Time due = items_.top().due;
    if (absl::Now() < due) {
      // Wakes early when stopping or when an earlier item arrives.
      uint64_t seen = next_seq_;
      auto wake = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || next_seq_ != seen;
      };
      mu_.AwaitWithDeadline(absl::Condition(&wake), due);
      continue;
    }
    std::function<void()> callback =
        std::move(const_cast<Item&>(items_.top()).callback);
    items_.pop();
    mu_.Unlock();
    callback();
    mu_.Lock();
  }
}

}  // namespace vkhost::mock
