// FaultInjector: the mock's configurable misbehaviour, for testing how the
// host copes with a slow, failing or crashing plugin.
//
//   --latency=DURATION        added to every unary RPC the provider serves
//   --fail=RPC:CODE[:P]       fail RPC with CODE (name like UNAVAILABLE or a
//                             number) with probability P (default 1)
//   --crash-on=RPC            abort() when RPC is called
//   --crash-after=DURATION    abort() that long after start
//
// RPC names are the provider's: Probe, GetNode, WatchNode, CreatePod,
// UpdatePod, DeletePod, GetPodStatus, ListPods, ContainerLogs, Exec, Attach,
// PortForward, GetStatsSummary. (WatchPodStatus is served by the SDK from
// ListPods, so failing ListPods fails new WatchPodStatus streams too.)
#ifndef VKHOST_PLUGINS_MOCK_FAULTS_H_
#define VKHOST_PLUGINS_MOCK_FAULTS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "plugins/mock/scheduler.h"

namespace vkhost::mock {

struct FaultRule {
  std::string rpc;
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  double probability = 1.0;
};

// Parses "RPC:CODE[:PROBABILITY]". INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<FaultRule> ParseFaultRule(absl::string_view spec);

struct FaultConfig {
  absl::Duration latency = absl::ZeroDuration();
  std::vector<std::string> fail;  // FaultRule specs
  std::string crash_on;
  absl::Duration crash_after = absl::ZeroDuration();  // zero: never
};

// Thread-safe.
class FaultInjector {
 public:
  // INVALID_ARGUMENT for a bad rule or an unknown RPC name. Starts the
  // crash-after timer.
  static absl::StatusOr<std::unique_ptr<FaultInjector>> Create(
      const FaultConfig& config);

  // Call first in every provider RPC. Aborts for --crash-on; sleeps the
  // latency for unary RPCs; returns the injected error or OK.
  absl::Status Before(absl::string_view rpc, bool unary);

 private:
  explicit FaultInjector(FaultConfig config, std::vector<FaultRule> rules);

  const FaultConfig config_;
  const std::vector<FaultRule> rules_;
  absl::Mutex mu_;
  absl::BitGen random_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<TimerScheduler> crash_timer_;  // only with crash_after
};

}  // namespace vkhost::mock

#endif  // VKHOST_PLUGINS_MOCK_FAULTS_H_
