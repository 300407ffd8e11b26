// host/podstatus: turns what a plugin reports about a pod into the
// Kubernetes `status` the kubelet would write for it.
//
// Plugins report container states (and, rarely, a phase); everything else a
// user reads in `kubectl get pod -o yaml` is derived here exactly as the
// kubelet's generateAPIPodStatus does: the phase from container states and the
// restart policy, the kubelet-owned conditions (PodReadyToStartContainers,
// Initialized, ContainersReady, Ready, PodScheduled) with their reasons and
// transition times, default waiting states for containers the plugin has not
// reported yet, hostIP/hostIPs, podIP/podIPs and startTime. The pod controller
// compares the result with the API server's copy and patches only on change.
//
// Everything here is a pure function of its arguments: no I/O, no clock, no
// locks; safe to call from any thread.
#ifndef VKHOST_HOST_PODSTATUS_POD_STATUS_H_
#define VKHOST_HOST_PODSTATUS_POD_STATUS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::podstatus {

namespace v1 = ::vkhost::provider::v1;

// Facts about the node and the moment that the status depends on.
struct StatusContext {
  // The node's InternalIP, reported as the pod's hostIP.
  std::string host_ip;
  // Observation time, used for new transition times and a first startTime.
  absl::Time now;
};

// The new `status` of `pod` (a v1.Pod as JSON, whose current `status` supplies
// transition times, the start time and conditions owned by others) given the
// plugin's report. Never fails: a report that names unknown containers or
// lacks some is reconciled against the pod spec.
nlohmann::json FromReport(const nlohmann::json& pod, const v1::PodStatus& report,
                          const StatusContext& context);

// The `status` of a pod the plugin can never run (CreatePod answered
// INVALID_ARGUMENT): phase Failed with `reason` and `message`, every container
// terminated-never-started as the kubelet reports a rejected pod.
nlohmann::json Rejected(const nlohmann::json& pod, absl::string_view reason,
                        absl::string_view message, const StatusContext& context);

// The `status` of a pod the host cannot hand to the plugin yet (a missing
// ConfigMap, a plugin that is down): phase Pending, every container waiting
// with `reason` (e.g. "CreateContainerConfigError") and `message`.
nlohmann::json Waiting(const nlohmann::json& pod, absl::string_view reason,
                       absl::string_view message, const StatusContext& context);

// The kubelet's phase rule (pkg/kubelet getPhase) over a pod `spec` and the
// API-shaped statuses of all its containers, init ones included. `terminal`
// says the pod will not run again (it is being deleted and its containers
// have stopped). Returns "Pending", "Running", "Succeeded" or "Failed".
std::string Phase(const nlohmann::json& spec,
                  const nlohmann::json& all_container_statuses, bool terminal);

// True when two statuses differ in anything the host writes (ignores fields
// the host never sets, such as qosClass and nominatedNodeName), so an
// unchanged report costs no API request.
bool Differs(const nlohmann::json& current, const nlohmann::json& next);

}  // namespace vkhost::podstatus

#endif  // VKHOST_HOST_PODSTATUS_POD_STATUS_H_
