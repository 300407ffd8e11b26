// host/pods internals: the reconcile decisions of the pod controller as pure
// functions, so the state machine is tested without a server.
//
// The controller gathers what it knows about one pod (the API object from the
// informer cache, its own small bookkeeping, the plugin's last report) and
// asks Decide what to do; it then performs the plan's steps in order. Event
// derivation (Created/Started/BackOff/Failed/Killing...) lives here too: it is
// a function of two consecutive plugin reports.
//
// No I/O, no clock, no locks; safe from any thread.
#ifndef VKHOST_HOST_PODS_INTERNAL_DECIDE_H_
#define VKHOST_HOST_PODS_INTERNAL_DECIDE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::pods::internal {

namespace v1 = ::vkhost::provider::v1;

// What the controller knows about a pod besides its API object.
struct PodFacts {
  // The plugin has the pod as far as the host knows: CreatePod succeeded, or
  // the latest snapshot or a later status event listed it.
  bool in_plugin = false;
  // DeletePod was accepted since the last resync with the plugin.
  bool delete_sent = false;
  // CreatePod answered INVALID_ARGUMENT: the pod can never run.
  bool rejected = false;
  // The plugin's last report, when it has sent one.
  const v1::PodStatus* report = nullptr;
  // UpdateFingerprint of the pod when it was last sent (CreatePod or
  // UpdatePod); 0 when unknown, i.e. the pod was adopted from a plugin that
  // had it before this host process started.
  uint64_t sent_fingerprint = 0;
  // When resolved contents (tokens, volume files) are due to be sent again.
  absl::Time refresh_at = absl::InfiniteFuture();
};

enum class PluginStep {
  kNone,
  kCreate,  // resolve, then CreatePod
  kUpdate,  // resolve, then UpdatePod if the resolved pod changed
  kDelete,  // DeletePod with Plan::grace_period_seconds
};

// The steps of one reconcile, performed in this order: plugin step, status
// write, API delete, forget. A failed step stops the later ones.
struct Plan {
  PluginStep plugin = PluginStep::kNone;
  std::optional<int64_t> grace_period_seconds;  // kDelete only
  // Remember the pod's fingerprint without sending anything (adoption).
  bool adopt = false;
  // Derive the status from the plugin's report and patch it if it differs.
  bool write_status = false;
  // Write the Failed status of a rejected pod.
  bool write_rejected = false;
  // Delete the API object (grace 0, UID precondition): the plugin is done.
  bool delete_api_object = false;
  // Drop the bookkeeping: neither the API server nor the plugin has the pod.
  bool forget = false;

  bool operator==(const Plan&) const = default;
};

// The next steps for one pod. `pod` is the informer's object, nullptr when
// the pod is gone from the API server. `can_update` says the plugin has the
// UPDATE_POD capability.
//
//   gone from the API      → DeletePod(grace 0) if the plugin still has it
//                            and no delete was sent; forget once it has not.
//   deletionTimestamp set  → DeletePod(deletionGracePeriodSeconds) once;
//                            delete the API object when the plugin no longer
//                            has the pod or reports every container
//                            terminated.
//   rejected               → (re)write the Failed status until it shows.
//   Succeeded / Failed     → never (re)created; status kept in sync while
//                            the plugin still reports it.
//   not in the plugin      → create.
//   in the plugin          → status sync; with `can_update`, an update when
//                            the fingerprint changed or a refresh is due;
//                            adoption (plus an update when the pod has
//                            resolved volumes) when the fingerprint is unknown.
Plan Decide(const nlohmann::json* pod, const PodFacts& facts, bool can_update,
            absl::Time now);

// A hash of what UpdatePod forwards from the pod object (labels,
// annotations, container images, activeDeadlineSeconds). Never 0.
uint64_t UpdateFingerprint(const nlohmann::json& pod);

// True when the pod has volumes whose contents the host resolves
// (configMap, secret, downwardAPI, projected): they need periodic refresh.
bool HasResolvedVolumes(const nlohmann::json& pod);

// True when every container the report lists (init containers included) is
// terminated, and it lists at least one.
bool AllContainersTerminated(const v1::PodStatus& report);

// A hash of a resolved pod as the plugin would receive it, ignoring the
// pod JSON (it changes with every status write). Equal hashes mean an
// UpdatePod would change nothing.
uint64_t ResolvedHash(const v1::Pod& pod);

// ---------------------------------------------------------------------------
// Events

// The part of a container's reported state that events are derived from.
struct ContainerMark {
  enum class Kind { kWaiting, kRunning, kTerminated, kUnknown };
  std::string name;
  bool init = false;
  Kind kind = Kind::kUnknown;
  std::string reason;  // waiting or terminated reason
  std::string message;
  int32_t restart_count = 0;
  std::string container_id;

  bool operator==(const ContainerMark&) const = default;
};

std::vector<ContainerMark> MarksOf(const v1::PodStatus& report);

struct PodEvent {
  bool warning = false;
  std::string reason;
  std::string message;
  // "spec.containers{name}" or "spec.initContainers{name}"; empty for the pod.
  std::string field_path;

  bool operator==(const PodEvent&) const = default;
};

// The events a kubelet would record for the change from `before` to
// `after` (the marks of two consecutive reports of `pod`): Created and
// Started for a new container instance, Pulling/Pulled, BackOff for
// CrashLoopBackOff and ImagePullBackOff, Failed for error states.
std::vector<PodEvent> ContainerEvents(const nlohmann::json& pod,
                                      const std::vector<ContainerMark>& before,
                                      const std::vector<ContainerMark>& after);

// "Killing: Stopping container <c>" for each container that has not
// terminated according to `report` (every container of the spec without a
// report).
std::vector<PodEvent> KillingEvents(const nlohmann::json& pod,
                                    const v1::PodStatus* report);

// "ns/name (uid)" for log lines.
std::string PodLabel(const std::string& ns, const std::string& name,
                     const std::string& uid);

}  // namespace vkhost::pods::internal

#endif  // VKHOST_HOST_PODS_INTERNAL_DECIDE_H_
