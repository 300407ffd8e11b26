#include "host/kube/internal/rate_limiter.h"

#include <gtest/gtest.h>

namespace vkhost::kube::internal {
namespace {

class FakeClock {
 public:
  absl::Time Now() const { return now_; }
  void Advance(absl::Duration d) { now_ += d; }
  RateLimiter::Clock AsClock() {
    return [this] { return Now(); };
  }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1000);
};

TEST(RateLimiterTest, BurstIsFreeThenCallersQueueAtQps) {
  FakeClock clock;
  RateLimiter limiter(/*qps=*/2, /*burst=*/3, clock.AsClock());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Reserve(), absl::ZeroDuration());
  // Each further caller waits half a second longer than the one before.
  EXPECT_EQ(limiter.Reserve(), absl::Milliseconds(500));
  EXPECT_EQ(limiter.Reserve(), absl::Seconds(1));
  EXPECT_EQ(limiter.Reserve(), absl::Milliseconds(1500));
}

TEST(RateLimiterTest, RefillsAtQpsUpToBurst) {
  FakeClock clock;
  RateLimiter limiter(/*qps=*/10, /*burst=*/5, clock.AsClock());
  for (int i = 0; i < 5; ++i) limiter.Reserve();
  clock.Advance(absl::Milliseconds(200));  // two tokens
  EXPECT_EQ(limiter.Reserve(), absl::ZeroDuration());
  EXPECT_EQ(limiter.Reserve(), absl::ZeroDuration());
  EXPECT_GT(limiter.Reserve(), absl::ZeroDuration());

  clock.Advance(absl::Hours(1));  // refills to burst, not beyond
  int free = 0;
  while (limiter.Reserve() == absl::ZeroDuration()) ++free;
  EXPECT_EQ(free, 5);
}

TEST(RateLimiterTest, OwedTokensArePaidBackBeforeNewCallersPass) {
  FakeClock clock;
  RateLimiter limiter(/*qps=*/1, /*burst=*/1, clock.AsClock());
  EXPECT_EQ(limiter.Reserve(), absl::ZeroDuration());
  EXPECT_EQ(limiter.Reserve(), absl::Seconds(1));
  EXPECT_EQ(limiter.Reserve(), absl::Seconds(2));
  clock.Advance(absl::Seconds(1));
  // Two callers are still ahead; a newcomer waits behind them.
  EXPECT_EQ(limiter.Reserve(), absl::Seconds(2));
}

TEST(RateLimiterTest, NonPositiveQpsMeansUnlimited) {
  FakeClock clock;
  RateLimiter limiter(/*qps=*/0, /*burst=*/1, clock.AsClock());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(limiter.Reserve(), absl::ZeroDuration());
}

}  // namespace
}  // namespace vkhost::kube::internal
