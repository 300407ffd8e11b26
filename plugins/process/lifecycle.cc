// Lifecycle rules; see lifecycle.h.
#include "plugins/process/lifecycle.h"

#include <algorithm>

namespace vkhost::process {

v1::RestartPolicy EffectiveRestartPolicy(v1::RestartPolicy pod_policy,
                                         bool init_container, bool sidecar) {
  if (sidecar) return v1::RESTART_POLICY_ALWAYS;
  if (pod_policy == v1::RESTART_POLICY_UNSPECIFIED) {
    pod_policy = v1::RESTART_POLICY_ALWAYS;
  }
  if (init_container && pod_policy == v1::RESTART_POLICY_ALWAYS) {
    return v1::RESTART_POLICY_ON_FAILURE;
  }
  return pod_policy;
}

bool ShouldRestart(v1::RestartPolicy policy, int exit_code) {
  switch (policy) {
    case v1::RESTART_POLICY_NEVER:
      return false;
    case v1::RESTART_POLICY_ON_FAILURE:
      return exit_code != 0;
    default:
      return true;
  }
}

BackoffClock::BackoffClock(absl::Duration base, absl::Duration max,
                           absl::Duration reset_after)
    : base_(base), max_(max), reset_after_(reset_after) {}

absl::Duration BackoffClock::NextDelay(absl::Time started,
                                       absl::Time finished) {
  if (finished - started >= reset_after_) consecutive_ = 0;
  absl::Duration delay = base_;
  for (int i = 0; i < consecutive_ && delay < max_; ++i) delay *= 2;
  ++consecutive_;
  return std::min(delay, max_);
}

ProbeTiming TimingOf(const v1::ContainerProbe& probe) {
  ProbeTiming timing;
  timing.initial_delay = absl::Seconds(std::max(0, probe.initial_delay_seconds()));
  if (probe.period_seconds() > 0) timing.period = absl::Seconds(probe.period_seconds());
  if (probe.timeout_seconds() > 0) {
    timing.timeout = absl::Seconds(probe.timeout_seconds());
  }
  if (probe.success_threshold() > 0) {
    timing.success_threshold = probe.success_threshold();
  }
  if (probe.failure_threshold() > 0) {
    timing.failure_threshold = probe.failure_threshold();
  }
  return timing;
}

ProbeTracker::ProbeTracker(ProbeTiming timing, bool initially_ok,
                           absl::Time started)
    : timing_(timing),
      ok_(initially_ok),
      next_due_(started + timing.initial_delay) {}

bool ProbeTracker::Record(bool success, absl::Time now) {
  next_due_ = now + timing_.period;
  if (success) {
    failures_ = 0;
    ++successes_;
  } else {
    successes_ = 0;
    ++failures_;
  }
  const bool before = ok_;
  if (!ok_ && successes_ >= timing_.success_threshold) ok_ = true;
  if (ok_ && failures_ >= timing_.failure_threshold) ok_ = false;
  return ok_ != before;
}

}  // namespace vkhost::process
