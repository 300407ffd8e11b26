#include "plugins/process/lifecycle.h"

#include "gtest/gtest.h"

namespace vkhost::process {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

TEST(RestartPolicyTest, FollowsThePodPolicyForAppContainers) {
  EXPECT_TRUE(ShouldRestart(v1::RESTART_POLICY_ALWAYS, 0));
  EXPECT_TRUE(ShouldRestart(v1::RESTART_POLICY_ALWAYS, 1));
  EXPECT_FALSE(ShouldRestart(v1::RESTART_POLICY_ON_FAILURE, 0));
  EXPECT_TRUE(ShouldRestart(v1::RESTART_POLICY_ON_FAILURE, 2));
  EXPECT_FALSE(ShouldRestart(v1::RESTART_POLICY_NEVER, 2));
  EXPECT_EQ(EffectiveRestartPolicy(v1::RESTART_POLICY_UNSPECIFIED, false, false),
            v1::RESTART_POLICY_ALWAYS);
}

TEST(RestartPolicyTest, InitContainersOfAlwaysPodsRestartOnlyOnFailure) {
  EXPECT_EQ(EffectiveRestartPolicy(v1::RESTART_POLICY_ALWAYS, true, false),
            v1::RESTART_POLICY_ON_FAILURE);
  EXPECT_EQ(EffectiveRestartPolicy(v1::RESTART_POLICY_NEVER, true, false),
            v1::RESTART_POLICY_NEVER);
  EXPECT_EQ(EffectiveRestartPolicy(v1::RESTART_POLICY_NEVER, true, true),
            v1::RESTART_POLICY_ALWAYS);
}

TEST(BackoffClockTest, DoublesUpToTheMaximum) {
  BackoffClock clock(absl::Seconds(10));
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 8; ++i) delays.push_back(clock.NextDelay(kT0, kT0 + absl::Seconds(1)));
  EXPECT_EQ(delays[0], absl::Seconds(10));
  EXPECT_EQ(delays[1], absl::Seconds(20));
  EXPECT_EQ(delays[2], absl::Seconds(40));
  EXPECT_EQ(delays[4], absl::Seconds(160));
  EXPECT_EQ(delays[5], absl::Minutes(5));
  EXPECT_EQ(delays[7], absl::Minutes(5));
}

TEST(BackoffClockTest, ResetsAfterTenMinutesOfRunning) {
  BackoffClock clock(absl::Seconds(10));
  clock.NextDelay(kT0, kT0);
  clock.NextDelay(kT0, kT0);
  EXPECT_EQ(clock.NextDelay(kT0, kT0 + absl::Minutes(10)), absl::Seconds(10));
  EXPECT_EQ(clock.consecutive(), 1);
}

TEST(BackoffClockTest, RestoredCountContinues) {
  BackoffClock clock(absl::Seconds(1));
  clock.Restore(3);
  EXPECT_EQ(clock.NextDelay(kT0, kT0), absl::Seconds(8));
}

TEST(ProbeTimingTest, AppliesKubernetesDefaults) {
  ProbeTiming timing = TimingOf(v1::ContainerProbe());
  EXPECT_EQ(timing.period, absl::Seconds(10));
  EXPECT_EQ(timing.timeout, absl::Seconds(1));
  EXPECT_EQ(timing.success_threshold, 1);
  EXPECT_EQ(timing.failure_threshold, 3);
  EXPECT_EQ(timing.initial_delay, absl::ZeroDuration());
}

TEST(ProbeTrackerTest, HonoursInitialDelayAndPeriod) {
  v1::ContainerProbe probe;
  probe.set_initial_delay_seconds(5);
  probe.set_period_seconds(2);
  ProbeTracker tracker(TimingOf(probe), false, kT0);
  EXPECT_FALSE(tracker.Due(kT0 + absl::Seconds(4)));
  EXPECT_TRUE(tracker.Due(kT0 + absl::Seconds(5)));
  tracker.Record(true, kT0 + absl::Seconds(5));
  EXPECT_FALSE(tracker.Due(kT0 + absl::Seconds(6)));
  EXPECT_TRUE(tracker.Due(kT0 + absl::Seconds(7)));
}

TEST(ProbeTrackerTest, ReadinessNeedsSuccessThreshold) {
  v1::ContainerProbe probe;
  probe.set_success_threshold(2);
  ProbeTracker tracker(TimingOf(probe), false, kT0);
  EXPECT_FALSE(tracker.Record(true, kT0));
  EXPECT_FALSE(tracker.ok());
  EXPECT_TRUE(tracker.Record(true, kT0));
  EXPECT_TRUE(tracker.ok());
}

TEST(ProbeTrackerTest, FailsOnlyAfterConsecutiveFailures) {
  v1::ContainerProbe probe;
  probe.set_failure_threshold(3);
  ProbeTracker tracker(TimingOf(probe), true, kT0);
  EXPECT_FALSE(tracker.Record(false, kT0));
  EXPECT_FALSE(tracker.Record(false, kT0));
  EXPECT_FALSE(tracker.Record(true, kT0));  // resets the failure count
  EXPECT_FALSE(tracker.Record(false, kT0));
  EXPECT_FALSE(tracker.Record(false, kT0));
  EXPECT_TRUE(tracker.ok());
  EXPECT_TRUE(tracker.Record(false, kT0));
  EXPECT_FALSE(tracker.ok());
  EXPECT_TRUE(tracker.failed());
}

TEST(ProbeTrackerTest, StartupProbeFailsForGoodAtThreshold) {
  v1::ContainerProbe probe;
  probe.set_failure_threshold(2);
  ProbeTracker tracker(TimingOf(probe), false, kT0);
  tracker.Record(false, kT0);
  EXPECT_FALSE(tracker.failed());
  tracker.Record(false, kT0);
  EXPECT_TRUE(tracker.failed());
  EXPECT_FALSE(tracker.ok());
}

}  // namespace
}  // namespace vkhost::process
