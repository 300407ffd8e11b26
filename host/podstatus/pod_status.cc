#include "host/podstatus/pod_status.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "common/json/kube_time.h"
#include "common/json/omit_empty.h"

namespace vkhost::podstatus {
namespace {

using json = nlohmann::json;

// Condition types the kubelet owns; others on the pod belong to someone
// else (controllers, readiness-gate writers) and are carried over untouched.
constexpr const char* kKubeletConditions[] = {
    "PodScheduled", "PodReadyToStartContainers", "Initialized",
    "ContainersReady", "Ready"};

bool IsKubeletCondition(const std::string& type) {
  for (const char* owned : kKubeletConditions) {
    if (type == owned) return true;
  }
  return false;
}

// Status fields the host writes; Differs compares only these.
constexpr const char* kWrittenFields[] = {
    "phase",     "reason",     "message",    "hostIP",
    "hostIPs",   "podIP",      "podIPs",     "startTime",
    "conditions", "containerStatuses", "initContainerStatuses"};

constexpr const char* kPhaseNames[] = {"", "Pending", "Running", "Succeeded",
                                       "Failed", "Unknown"};

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Unset proto timestamps become null, as metav1.Time zero values do.
json TimeOrNull(const google::protobuf::Timestamp& ts, bool has) {
  if (!has || (ts.seconds() == 0 && ts.nanos() == 0)) return nullptr;
  return apijson::KubeTime(ToTime(ts));
}

void SetIfNotEmpty(json& object, const char* key, const std::string& value) {
  if (!value.empty()) object[key] = value;
}

json StateToJson(const v1::ContainerState& state) {
  json out = json::object();
  if (state.has_waiting()) {
    json w = json::object();
    SetIfNotEmpty(w, "reason", state.waiting().reason());
    SetIfNotEmpty(w, "message", state.waiting().message());
    out["waiting"] = w;
  } else if (state.has_running()) {
    out["running"] = {{"startedAt", TimeOrNull(state.running().started_at(),
                                               state.running().has_started_at())}};
  } else if (state.has_terminated()) {
    const auto& t = state.terminated();
    json term = {{"exitCode", t.exit_code()},
                 {"startedAt", TimeOrNull(t.started_at(), t.has_started_at())},
                 {"finishedAt", TimeOrNull(t.finished_at(), t.has_finished_at())}};
    if (t.signal() != 0) term["signal"] = t.signal();
    SetIfNotEmpty(term, "reason", t.reason());
    SetIfNotEmpty(term, "message", t.message());
    SetIfNotEmpty(term, "containerID", t.container_id());
    out["terminated"] = term;
  }
  return out;
}

json WaitingState(absl::string_view reason, absl::string_view message) {
  json w = {{"reason", std::string(reason)}};
  if (!message.empty()) w["message"] = std::string(message);
  return {{"waiting", w}};
}

// The API shape of one container's status, from the report when it has one
// for this container, else the kubelet's default waiting state.
json ContainerStatusJson(const json& container, const v1::ContainerStatus* report,
                         const json& default_state) {
  std::string name = container.value("name", "");
  std::string spec_image = container.value("image", "");
  json out = {{"name", name},
              {"state", default_state},
              {"lastState", json::object()},
              {"ready", false},
              {"restartCount", 0},
              {"image", spec_image},
              {"imageID", ""},
              {"started", false}};
  if (report == nullptr) return out;
  if (report->state().state_case() != v1::ContainerState::STATE_NOT_SET) {
    out["state"] = StateToJson(report->state());
  }
  out["lastState"] = StateToJson(report->last_state());
  out["ready"] = report->ready();
  out["started"] = report->started();
  out["restartCount"] = report->restart_count();
  if (!report->image().empty()) out["image"] = report->image();
  out["imageID"] = report->image_id();
  SetIfNotEmpty(out, "containerID", report->container_id());
  return out;
}

const v1::ContainerStatus* FindReport(
    const google::protobuf::RepeatedPtrField<v1::ContainerStatus>& reports,
    const std::string& name) {
  for (const auto& r : reports) {
    if (r.name() == name) return &r;
  }
  return nullptr;
}

json FindByName(const json& list, const std::string& key,
                const std::string& value) {
  if (!list.is_array()) return nullptr;
  for (const auto& item : list) {
    if (item.is_object() && item.value(key, "") == value) return item;
  }
  return nullptr;
}

bool IsSidecar(const json& init_container) {
  return init_container.value("restartPolicy", "") == "Always";
}

bool HasState(const json& status, const char* state) {
  return status.contains("state") && status["state"].contains(state);
}

bool HasLastTerminated(const json& status) {
  return status.contains("lastState") && status["lastState"].is_object() &&
         status["lastState"].contains("terminated");
}

int ExitCode(const json& status, const char* which) {
  return status[which]["terminated"].value("exitCode", 0);
}

struct ConditionValue {
  std::string status;  // "True" / "False"
  std::string reason;
  std::string message;
};

std::string NameList(const std::vector<std::string>& names) {
  return "[" + absl::StrJoin(names, " ") + "]";
}

ConditionValue InitializedCondition(const json& spec, const json& init_statuses,
                                    const std::string& phase) {
  std::vector<std::string> unknown, incomplete;
  for (const auto& c : spec.value("initContainers", json::array())) {
    std::string name = c.value("name", "");
    json s = FindByName(init_statuses, "name", name);
    if (s.is_null()) {
      unknown.push_back(name);
      continue;
    }
    bool done = IsSidecar(c)
                    ? HasState(s, "running") && s.value("started", false)
                    : HasState(s, "terminated") && ExitCode(s, "state") == 0;
    if (!done) incomplete.push_back(name);
  }
  if (phase == "Succeeded" && unknown.empty()) return {"True", "PodCompleted", ""};
  std::vector<std::string> parts;
  if (!unknown.empty()) parts.push_back("containers with unknown status: " + NameList(unknown));
  if (!incomplete.empty()) {
    parts.push_back("containers with incomplete status: " + NameList(incomplete));
  }
  if (parts.empty()) return {"True", "", ""};
  return {"False", "ContainersNotInitialized", absl::StrJoin(parts, ", ")};
}

ConditionValue ContainersReadyCondition(const json& spec, const json& statuses,
                                        const json& init_statuses,
                                        const std::string& phase) {
  std::vector<std::string> unknown, unready;
  auto check = [&](const json& c, const json& list) {
    std::string name = c.value("name", "");
    json s = FindByName(list, "name", name);
    if (s.is_null()) {
      unknown.push_back(name);
    } else if (!s.value("ready", false)) {
      unready.push_back(name);
    }
  };
  for (const auto& c : spec.value("initContainers", json::array())) {
    if (IsSidecar(c)) check(c, init_statuses);
  }
  for (const auto& c : spec.value("containers", json::array())) check(c, statuses);
  if ((phase == "Succeeded" || phase == "Failed") && unknown.empty()) {
    return {"False", "PodCompleted", ""};
  }
  std::vector<std::string> parts;
  if (!unknown.empty()) parts.push_back("containers with unknown status: " + NameList(unknown));
  if (!unready.empty()) parts.push_back("containers with unready status: " + NameList(unready));
  if (parts.empty()) return {"True", "", ""};
  return {"False", "ContainersNotReady", absl::StrJoin(parts, ", ")};
}

ConditionValue ReadyCondition(const json& spec, const json& conditions,
                              const ConditionValue& containers_ready) {
  if (containers_ready.status != "True") return containers_ready;
  std::vector<std::string> unready;
  for (const auto& gate : spec.value("readinessGates", json::array())) {
    std::string type = gate.value("conditionType", "");
    json c = FindByName(conditions, "type", type);
    if (c.is_null()) {
      unready.push_back("corresponding condition of pod readiness gate \"" + type +
                        "\" does not exist.");
    } else if (c.value("status", "") != "True") {
      unready.push_back("the status of pod readiness gate \"" + type +
                        "\" is not \"True\", but " + c.value("status", ""));
    }
  }
  if (unready.empty()) return {"True", "", ""};
  return {"False", "ReadinessGatesNotReady", absl::StrJoin(unready, ", ")};
}

// A kubelet-owned condition, keeping the old transition time when its status
// did not change so `kubectl describe` shows when things really happened.
json Condition(const std::string& type, const ConditionValue& value,
               const json& old_conditions, const StatusContext& context) {
  json old = FindByName(old_conditions, "type", type);
  json time = apijson::KubeTime(context.now);
  if (!old.is_null() && old.value("status", "") == value.status &&
      old.contains("lastTransitionTime")) {
    time = old["lastTransitionTime"];
  }
  json c = {{"type", type},
            {"status", value.status},
            {"lastProbeTime", nullptr},
            {"lastTransitionTime", time}};
  SetIfNotEmpty(c, "reason", value.reason);
  SetIfNotEmpty(c, "message", value.message);
  return c;
}

// Conditions other components own, then the plugin's own extra types.
json ForeignConditions(const json& old_conditions, const v1::PodStatus* report,
                       const StatusContext& context) {
  json out = json::array();
  static constexpr const char* kStatusNames[] = {"Unknown", "True", "False",
                                                 "Unknown"};
  std::vector<std::string> reported_types;
  if (report != nullptr) {
    for (const auto& c : report->conditions()) {
      if (IsKubeletCondition(c.type())) continue;
      reported_types.push_back(c.type());
    }
  }
  auto is_reported = [&](const std::string& type) {
    for (const auto& t : reported_types) {
      if (t == type) return true;
    }
    return false;
  };
  if (old_conditions.is_array()) {
    for (const auto& c : old_conditions) {
      std::string type = c.value("type", "");
      if (!IsKubeletCondition(type) && !is_reported(type)) out.push_back(c);
    }
  }
  if (report == nullptr) return out;
  for (const auto& c : report->conditions()) {
    if (IsKubeletCondition(c.type())) continue;
    int status_index = static_cast<int>(c.status());
    if (status_index < 0 || status_index > 3) status_index = 0;
    ConditionValue value{kStatusNames[status_index], c.reason(), c.message()};
    json cond = Condition(c.type(), value, old_conditions, context);
    if (c.has_last_transition_time()) {
      cond["lastTransitionTime"] = apijson::KubeTime(ToTime(c.last_transition_time()));
    }
    out.push_back(cond);
  }
  return out;
}

json BuildConditions(const json& pod, const json& status, const v1::PodStatus* report,
                     bool ready_to_start, const StatusContext& context) {
  const json& spec = pod.value("spec", json::object());
  json old_conditions = pod.value("status", json::object()).value("conditions", json::array());
  const std::string phase = status.value("phase", "");
  json conditions = ForeignConditions(old_conditions, report, context);
  const json& statuses = status["containerStatuses"];
  const json& init_statuses = status["initContainerStatuses"];

  ConditionValue containers_ready =
      ContainersReadyCondition(spec, statuses, init_statuses, phase);
  ConditionValue ready = ReadyCondition(spec, conditions, containers_ready);
  conditions.push_back(Condition("PodReadyToStartContainers",
                                 {ready_to_start ? "True" : "False", "", ""},
                                 old_conditions, context));
  conditions.push_back(Condition(
      "Initialized", InitializedCondition(spec, init_statuses, phase), old_conditions,
      context));
  conditions.push_back(Condition("Ready", ready, old_conditions, context));
  conditions.push_back(Condition("ContainersReady", containers_ready, old_conditions, context));
  conditions.push_back(Condition("PodScheduled", {"True", "", ""}, old_conditions, context));
  return conditions;
}

bool IsTerminalPhase(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed";
}

// Container statuses for every container of the spec, in spec order.
void FillContainerStatuses(const json& pod, const v1::PodStatus* report,
                           const json& default_state, json& status) {
  const json& spec = pod.value("spec", json::object());
  static const google::protobuf::RepeatedPtrField<v1::ContainerStatus> kNone;
  const auto& init_reports = report ? report->init_container_statuses() : kNone;
  const auto& reports = report ? report->container_statuses() : kNone;
  json init = json::array();
  for (const auto& c : spec.value("initContainers", json::array())) {
    init.push_back(ContainerStatusJson(c, FindReport(init_reports, c.value("name", "")),
                                       default_state));
  }
  json regular = json::array();
  for (const auto& c : spec.value("containers", json::array())) {
    regular.push_back(
        ContainerStatusJson(c, FindReport(reports, c.value("name", "")), default_state));
  }
  status["initContainerStatuses"] = init;
  status["containerStatuses"] = regular;
}

json DefaultWaiting(const json& pod) {
  bool has_init = !pod.value("spec", json::object())
                       .value("initContainers", json::array())
                       .empty();
  return WaitingState(has_init ? "PodInitializing" : "ContainerCreating", "");
}

// hostIP(s), podIP(s) and startTime: set once and then stable, as the
// kubelet keeps them.
void FillAddressesAndStart(const json& pod, const v1::PodStatus* report,
                           const StatusContext& context, json& status) {
  const json& old = pod.value("status", json::object());
  if (!context.host_ip.empty()) {
    status["hostIP"] = context.host_ip;
    status["hostIPs"] = json::array({{{"ip", context.host_ip}}});
  }
  json ips = json::array();
  if (report != nullptr) {
    for (const auto& ip : report->pod_ips()) {
      if (!ip.empty()) ips.push_back({{"ip", ip}});
    }
  }
  bool host_network = pod.value("spec", json::object()).value("hostNetwork", false);
  if (ips.empty() && host_network && !context.host_ip.empty()) {
    ips.push_back({{"ip", context.host_ip}});
  }
  if (ips.empty() && old.contains("podIPs")) ips = old["podIPs"];
  if (!ips.empty()) {
    status["podIPs"] = ips;
    status["podIP"] = ips[0].value("ip", "");
  }
  if (old.contains("startTime") && !old["startTime"].is_null()) {
    status["startTime"] = old["startTime"];
  } else if (report != nullptr && report->has_start_time()) {
    status["startTime"] = apijson::KubeTime(ToTime(report->start_time()));
  } else {
    status["startTime"] = apijson::KubeTime(context.now);
  }
}

// Pods never leave Succeeded or Failed (the API server refuses it, and
// controllers rely on it).
void KeepTerminalPhase(const json& pod, json& status) {
  std::string old_phase = pod.value("status", json::object()).value("phase", "");
  if (IsTerminalPhase(old_phase) && status.value("phase", "") != old_phase) {
    status["phase"] = old_phase;
  }
}

}  // namespace


std::string Phase(const json& spec, const json& all, bool terminal) {
  int pending_init = 0, failed_init = 0;
  int unknown = 0, running = 0, waiting = 0, stopped = 0, succeeded = 0;
  bool regular_started = false;
  for (const auto& c : spec.value("initContainers", json::array())) {
    json s = FindByName(all, "name", c.value("name", ""));
    if (IsSidecar(c)) {
      if (s.is_null()) {
        ++unknown;
      } else if (HasState(s, "running")) {
        if (!s.value("started", false)) ++pending_init;
        ++running;
      } else if (HasState(s, "terminated")) {
        // A stopped sidecar does not decide the phase.
      } else if (HasState(s, "waiting") && !HasLastTerminated(s)) {
        ++pending_init;
        ++waiting;
      } else if (!HasState(s, "waiting")) {
        ++pending_init;
        ++unknown;
      }
      continue;
    }
    if (s.is_null() || HasState(s, "running")) {
      ++pending_init;
    } else if (HasState(s, "terminated")) {
      if (ExitCode(s, "state") != 0) ++failed_init;
    } else if (HasState(s, "waiting") && HasLastTerminated(s)) {
      if (ExitCode(s, "lastState") != 0) ++failed_init;
    } else {
      ++pending_init;
    }
  }
  for (const auto& c : spec.value("containers", json::array())) {
    json s = FindByName(all, "name", c.value("name", ""));
    if (s.is_null()) {
      ++unknown;
    } else if (HasState(s, "running")) {
      ++running;
      regular_started = true;
    } else if (HasState(s, "terminated")) {
      ++stopped;
      regular_started = true;
      if (ExitCode(s, "state") == 0) ++succeeded;
    } else if (HasState(s, "waiting")) {
      if (HasLastTerminated(s)) {
        ++stopped;
        regular_started = true;
      } else {
        ++waiting;
      }
    } else {
      ++unknown;
    }
  }
  const std::string policy = spec.value("restartPolicy", "Always");
  if (failed_init > 0 && policy == "Never") return "Failed";
  if ((pending_init > 0 && !regular_started) || waiting > 0) return "Pending";
  if (running > 0 && unknown == 0) return "Running";
  if (running == 0 && stopped > 0 && unknown == 0) {
    if (terminal) return stopped == succeeded ? "Succeeded" : "Failed";
    if (policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (policy == "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

json FromReport(const json& pod, const v1::PodStatus& report,
                const StatusContext& context) {
  json status = json::object();
  FillContainerStatuses(pod, &report, DefaultWaiting(pod), status);
  const json& spec = pod.value("spec", json::object());
  json all = status["initContainerStatuses"];
  for (const auto& s : status["containerStatuses"]) all.push_back(s);

  bool deleting = pod.value("metadata", json::object()).contains("deletionTimestamp");
  int phase_index = static_cast<int>(report.phase());
  bool phase_known = phase_index > 0 && phase_index < 6;
  status["phase"] = phase_known ? kPhaseNames[phase_index] : Phase(spec, all, deleting);
  KeepTerminalPhase(pod, status);

  const json& old = pod.value("status", json::object());
  if (!report.reason().empty() || !report.message().empty()) {
    SetIfNotEmpty(status, "reason", report.reason());
    SetIfNotEmpty(status, "message", report.message());
  } else if (old.value("phase", "") == status["phase"]) {
    SetIfNotEmpty(status, "reason", old.value("reason", ""));
    SetIfNotEmpty(status, "message", old.value("message", ""));
  }
  FillAddressesAndStart(pod, &report, context, status);
  bool ready_to_start = !IsTerminalPhase(status["phase"].get<std::string>());
  status["conditions"] = BuildConditions(pod, status, &report, ready_to_start, context);
  return status;
}

json Rejected(const json& pod, absl::string_view reason, absl::string_view message,
              const StatusContext& context) {
  json status = json::object();
  json never_started = WaitingState(reason, message);
  FillContainerStatuses(pod, nullptr, never_started, status);
  status["phase"] = "Failed";
  status["reason"] = std::string(reason);
  status["message"] = std::string(message);
  FillAddressesAndStart(pod, nullptr, context, status);
  status["conditions"] = BuildConditions(pod, status, nullptr, false, context);
  return status;
}

json Waiting(const json& pod, absl::string_view reason, absl::string_view message,
             const StatusContext& context) {
  json status = json::object();
  FillContainerStatuses(pod, nullptr, WaitingState(reason, message), status);
  status["phase"] = "Pending";
  KeepTerminalPhase(pod, status);
  FillAddressesAndStart(pod, nullptr, context, status);
  status["conditions"] = BuildConditions(pod, status, nullptr, false, context);
  return status;
}

bool Differs(const json& current, const json& next) {
  for (const char* field : kWrittenFields) {
    json a = current.is_object() && current.contains(field) ? current[field] : json();
    json b = next.is_object() && next.contains(field) ? next[field] : json();
    if (!vkhost::apijson::EqualOmittingEmpty(a, b)) return true;
  }
  return false;
}

}  // namespace vkhost::podstatus
