// Lifecycle rules of the process plugin, as pure functions and small value
// classes: whether a container that exited restarts, how long it waits first
// (CrashLoopBackOff), and when a probe's result flips a container's
// liveness, readiness or startup state. PodRuntime (pod_runtime.h) feeds
// them times and results; they never touch processes or clocks themselves,
// so the kubelet's rules are unit-tested here without running anything.
#ifndef VKHOST_PLUGINS_PROCESS_LIFECYCLE_H_
#define VKHOST_PLUGINS_PROCESS_LIFECYCLE_H_

#include <string>

#include "absl/time/time.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::process {

namespace v1 = ::vkhost::provider::v1;

// The policy that applies to one container: the pod's for app containers,
// OnFailure for init containers of an Always pod (as the kubelet does),
// Always for sidecars (init containers with restartPolicy Always).
v1::RestartPolicy EffectiveRestartPolicy(v1::RestartPolicy pod_policy,
                                         bool init_container, bool sidecar);

// Whether an instance that exited with `exit_code` is started again.
bool ShouldRestart(v1::RestartPolicy policy, int exit_code);

// Exponential restart back-off of one container: `base` after the first
// exit, doubling per consecutive exit up to `max`; an instance that ran at
// least `reset_after` resets the count. Not thread-safe (one pod thread).
class BackoffClock {
 public:
  explicit BackoffClock(absl::Duration base,
                        absl::Duration max = absl::Minutes(5),
                        absl::Duration reset_after = absl::Minutes(10));

  // The instance that ran from `started` to `finished` exited; returns how
  // long to wait before the next start.
  absl::Duration NextDelay(absl::Time started, absl::Time finished);

  // Consecutive exits so far; persisted so a restarted plugin keeps backing
  // off where it was.
  int consecutive() const { return consecutive_; }
  void Restore(int consecutive) { consecutive_ = consecutive; }

 private:
  absl::Duration base_, max_, reset_after_;
  int consecutive_ = 0;
};

// A probe's timing fields with the Kubernetes defaults applied (period 10 s,
// timeout 1 s, success and failure thresholds 1 and 3).
struct ProbeTiming {
  absl::Duration initial_delay;
  absl::Duration period = absl::Seconds(10);
  absl::Duration timeout = absl::Seconds(1);
  int success_threshold = 1;
  int failure_threshold = 3;
};
ProbeTiming TimingOf(const v1::ContainerProbe& probe);

// The state machine of one probe on one container instance: when the next
// probe is due, and the probe's verdict after consecutive results reach a
// threshold. Not thread-safe (one pod thread).
class ProbeTracker {
 public:
  // `initially_ok`: liveness starts passing, readiness and startup failing.
  ProbeTracker(ProbeTiming timing, bool initially_ok, absl::Time started);

  bool Due(absl::Time now) const { return now >= next_due_; }
  // Records one result obtained at `now` and schedules the next probe.
  // Returns true when ok() changed.
  bool Record(bool success, absl::Time now);
  bool ok() const { return ok_; }
  // Consecutive failures reached the failure threshold (a startup probe
  // that failed for good, a liveness probe asking for a restart).
  bool failed() const { return failures_ >= timing_.failure_threshold; }
  const ProbeTiming& timing() const { return timing_; }

 private:
  ProbeTiming timing_;
  bool ok_;
  int successes_ = 0;
  int failures_ = 0;
  absl::Time next_due_;
};

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_LIFECYCLE_H_
