#include "host/workqueue/work_queue.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace vkhost::workqueue {
namespace {

TEST(WorkQueueTest, DeduplicatesWaitingKeys) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
}

TEST(WorkQueueTest, KeyAddedWhileProcessingComesBackAfterDone) {
  WorkQueue q;
  q.Add("a");
  auto key = q.Get();
  ASSERT_EQ(key, "a");
  q.Add("a");                // while processing: must not be handed out twice
  EXPECT_EQ(q.Len(), 0u);
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(q.Get(), "a");
}

TEST(WorkQueueTest, BackoffDoublesUpToCapAndForgetResets) {
  WorkQueue q({absl::Milliseconds(10), absl::Milliseconds(50)});
  EXPECT_EQ(q.AddRateLimited("a"), absl::Milliseconds(10));
  EXPECT_EQ(q.AddRateLimited("a"), absl::Milliseconds(20));
  EXPECT_EQ(q.AddRateLimited("a"), absl::Milliseconds(40));
  EXPECT_EQ(q.AddRateLimited("a"), absl::Milliseconds(50));
  EXPECT_EQ(q.NumRequeues("a"), 4);
  q.Forget("a");
  EXPECT_EQ(q.NumRequeues("a"), 0);
  EXPECT_EQ(q.AddRateLimited("a"), absl::Milliseconds(10));
}

TEST(WorkQueueTest, DelayedKeyArrivesOnce) {
  WorkQueue q;
  q.AddAfter("a", absl::Milliseconds(30));
  q.AddAfter("a", absl::Milliseconds(10));  // earlier deadline wins
  q.AddAfter("a", absl::Seconds(60));       // later one ignored
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.Get(), "a");  // blocks until due
  q.Done("a");
  q.ShutDown();
  EXPECT_EQ(q.Get(), std::nullopt);  // the superseded heap entries are gone
}

TEST(WorkQueueTest, ShutDownWakesBlockedGet) {
  WorkQueue q;
  absl::Notification got;
  std::optional<std::string> result = "unset";
  std::thread t([&] {
    result = q.Get();
    got.Notify();
  });
  q.ShutDown();
  got.WaitForNotification();
  t.join();
  EXPECT_EQ(result, std::nullopt);
  q.Add("a");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkerPoolTest, SerialisesEachKeyAndRetriesFailures) {
  WorkQueue q({absl::Milliseconds(1), absl::Milliseconds(5)});
  absl::Mutex mu;
  std::set<std::string> in_flight;
  bool overlapped = false;
  std::atomic<int> attempts_b{0};
  std::atomic<int> done{0};
  {
    WorkerPool pool(q, 4, [&](const std::string& key) {
      {
        absl::MutexLock lock(&mu);
        overlapped |= !in_flight.insert(key).second;
      }
      absl::SleepFor(absl::Milliseconds(1));
      {
        absl::MutexLock lock(&mu);
        in_flight.erase(key);
      }
      if (key == "b" && ++attempts_b < 3) return false;  // fail twice
      ++done;
      return true;
    });
    for (int round = 0; round < 50; ++round) {
      for (const char* k : {"a", "b", "c"}) q.Add(k);
    }
    for (int i = 0; i < 2000 && (attempts_b < 3 || q.Len() > 0); ++i) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    absl::SleepFor(absl::Milliseconds(20));
    q.ShutDown();
  }
  EXPECT_FALSE(overlapped);
  EXPECT_GE(attempts_b.load(), 3);
  EXPECT_EQ(q.NumRequeues("b"), 0);  // forgotten after the success
}

}  // namespace
}  // namespace vkhost::workqueue
