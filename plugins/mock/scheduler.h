// TimerScheduler: the mock plugin's one timer thread.
//
// Every delayed thing the mock does for its pods (a container becoming
// Running, a log line, a sleep ending, a restart after back-off, a graceful
// stop) is a callback here, so 5000 pods cost one thread, not 5000.
#ifndef VKHOST_PLUGINS_MOCK_SCHEDULER_H_
#define VKHOST_PLUGINS_MOCK_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <queue>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vkhost::mock {

// Runs callbacks at (or soon after) their due time, one at a time, in due
// order, on its own thread. Thread-safe. Callbacks must not call Stop().
// Pending callbacks are dropped by Stop() and the destructor, which join the
// thread; callbacks that outlive their purpose should check for that
// themselves (the pod store uses generation numbers).
class TimerScheduler {
 public:
  TimerScheduler();
  ~TimerScheduler();
  TimerScheduler(const TimerScheduler&) = delete;
  TimerScheduler& operator=(const TimerScheduler&) = delete;

  void After(absl::Duration delay, std::function<void()> callback);
  void Stop();

 private:
  struct Item {
    absl::Time due;
    uint64_t seq;  // keeps equal due times in submission order
    std::function<void()> callback;
    bool operator>(const Item& other) const {
      return due != other.due ? due > other.due : seq > other.seq;
    }
  };
  void Loop();

  absl::Mutex mu_;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> items_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace vkhost::mock

#endif  // VKHOST_PLUGINS_MOCK_SCHEDULER_H_
