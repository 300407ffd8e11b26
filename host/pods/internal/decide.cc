#include "host/pods/internal/decide.h"

#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace vkhost::pods::internal {
namespace {

using json = nlohmann::json;

const json& Member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

bool IsDeleting(const json& pod) {
  const json& ts = Member(Member(pod, "metadata"), "deletionTimestamp");
  return !ts.is_null();
}

std::optional<int64_t> DeletionGrace(const json& pod) {
  const json& grace = Member(Member(pod, "metadata"), "deletionGracePeriodSeconds");
  if (grace.is_number_integer()) return grace.get<int64_t>();
  return std::nullopt;
}

bool IsTerminal(const json& pod) {
  const json& phase = Member(Member(pod, "status"), "phase");
  return phase.is_string() &&
         (phase.get<std::string>() == "Succeeded" || phase.get<std::string>() == "Failed");
}

Plan DecideGone(const PodFacts& facts) {
  Plan plan;
  if (facts.in_plugin && !facts.delete_sent) {
    // Force-deleted, or deleted while the host was away: nobody waits for a
    // graceful stop any more.
    plan.plugin = PluginStep::kDelete;
    plan.grace_period_seconds = 0;
  } else if (!facts.in_plugin) {
    plan.forget = true;
  }
  return plan;
}

Plan DecideDeleting(const json& pod, const PodFacts& facts) {
  Plan plan;
  if (facts.in_plugin && !facts.delete_sent) {
    plan.plugin = PluginStep::kDelete;
    plan.grace_period_seconds = DeletionGrace(pod);
  }
  plan.write_status = facts.in_plugin && facts.report != nullptr;
  plan.delete_api_object =
      !facts.in_plugin ||
      (facts.report != nullptr && AllContainersTerminated(*facts.report));
  return plan;
}

Plan DecideRunning(const json& pod, const PodFacts& facts, bool can_update,
                   absl::Time now) {
  Plan plan;
  plan.write_status = facts.report != nullptr;
  if (!can_update) return plan;
  if (facts.sent_fingerprint == 0) {
    // Adopted after a host restart: what the plugin holds is unknown, so
    // resolved contents (tokens above all) are sent once.
    plan.adopt = true;
    if (HasResolvedVolumes(pod)) plan.plugin = PluginStep::kUpdate;
    return plan;
  }
  if (UpdateFingerprint(pod) != facts.sent_fingerprint || now >= facts.refresh_at) {
    plan.plugin = PluginStep::kUpdate;
  }
  return plan;
}

std::string ContainerImage(const json& pod, const ContainerMark& mark) {
  const json& list =
      Member(Member(pod, "spec"), mark.init ? "initContainers" : "containers");
  if (!list.is_array()) return "";
  for (const json& c : list) {
    if (c.is_object() && c.value("name", "") == mark.name) {
      const json& image = Member(c, "image");
      return image.is_string() ? image.get<std::string>() : "";
    }
  }
  return "";
}

std::string FieldPath(const ContainerMark& mark) {
  return absl::StrCat(mark.init ? "spec.initContainers{" : "spec.containers{",
                      mark.name, "}");
}

// Events for a container entering a state, keyed by state kind and reason.
// Messages substitute {c} container, {i} image, {p} pod "name_ns(uid)",
// {m} the state's message (or its reason when empty).
struct StateEvent {
  ContainerMark::Kind kind;
  const char* state_reason;
  bool warning;
  const char* event_reason;
  const char* message;
};
constexpr StateEvent kStateEvents[] = {
    {ContainerMark::Kind::kWaiting, "Pulling", false, "Pulling", "Pulling image \"{i}\""},
    {ContainerMark::Kind::kWaiting, "CrashLoopBackOff", true, "BackOff",
     "Back-off restarting failed container {c} in pod {p}"},
    {ContainerMark::Kind::kWaiting, "ImagePullBackOff", false, "BackOff",
     "Back-off pulling image \"{i}\""},
    {ContainerMark::Kind::kWaiting, "ErrImagePull", true, "Failed", "Error: {m}"},
    {ContainerMark::Kind::kWaiting, "ErrImageNeverPull", true, "Failed", "Error: {m}"},
    {ContainerMark::Kind::kWaiting, "InvalidImageName", true, "Failed", "Error: {m}"},
    {ContainerMark::Kind::kWaiting, "CreateContainerConfigError", true, "Failed",
     "Error: {m}"},
    {ContainerMark::Kind::kWaiting, "CreateContainerError", true, "Failed", "Error: {m}"},
    {ContainerMark::Kind::kWaiting, "RunContainerError", true, "Failed", "Error: {m}"},
    {ContainerMark::Kind::kWaiting, "PreStartHookError", true, "Failed", "Error: {m}"},
    {ContainerMark::Kind::kTerminated, "StartError", true, "Failed", "Error: {m}"},
    {ContainerMark::Kind::kTerminated, "ContainerCannotRun", true, "Failed", "Error: {m}"},
};

std::string PodName(const json& pod) {
  const json& md = Member(pod, "metadata");
  return absl::StrCat(md.value("name", ""), "_", md.value("namespace", ""), "(",
                      md.value("uid", ""), ")");
}

std::string Expand(const char* pattern, const json& pod, const ContainerMark& mark) {
  return absl::StrReplaceAll(
      pattern, {{"{c}", mark.name},
                {"{i}", ContainerImage(pod, mark)},
                {"{p}", PodName(pod)},
                {"{m}", mark.message.empty() ? mark.reason : mark.message}});
}

const ContainerMark* FindMark(const std::vector<ContainerMark>& marks,
                              const ContainerMark& like) {
  for (const ContainerMark& m : marks) {
    if (m.name == like.name && m.init == like.init) return &m;
  }
  return nullptr;
}

bool Started(ContainerMark::Kind kind) {
  return kind == ContainerMark::Kind::kRunning || kind == ContainerMark::Kind::kTerminated;
}

// A container instance the host has not seen start before.
bool NewInstance(const ContainerMark* before, const ContainerMark& after) {
  if (!Started(after.kind)) return false;
  if (before == nullptr || !Started(before->kind)) return true;
  return before->restart_count != after.restart_count ||
         before->container_id != after.container_id;
}

void AppendContainerEvents(const json& pod, const ContainerMark* before,
                           const ContainerMark& after, std::vector<PodEvent>& out) {
  const std::string path = FieldPath(after);
  bool entered_state = before == nullptr || before->kind != after.kind ||
                       before->reason != after.reason ||
                       before->restart_count != after.restart_count;
  if (NewInstance(before, after)) {
    if (before != nullptr && before->kind == ContainerMark::Kind::kWaiting &&
        before->reason == "Pulling") {
      out.push_back({false, "Pulled",
                     absl::StrCat("Successfully pulled image \"", ContainerImage(pod, after),
                                  "\""),
                     path});
    }
    out.push_back({false, "Created", absl::StrCat("Created container: ", after.name), path});
    out.push_back({false, "Started", absl::StrCat("Started container ", after.name), path});
  }
  if (!entered_state) return;
  for (const StateEvent& e : kStateEvents) {
    if (e.kind == after.kind && after.reason == e.state_reason) {
      out.push_back({e.warning, e.event_reason, Expand(e.message, pod, after), path});
    }
  }
}

}  // namespace

Plan Decide(const json* pod, const PodFacts& facts, bool can_update, absl::Time now) {
  if (pod == nullptr) return DecideGone(facts);
  if (IsDeleting(*pod)) return DecideDeleting(*pod, facts);
  Plan plan;
  const bool terminal = IsTerminal(*pod);
  if (facts.rejected) {
    plan.write_rejected = !terminal;
    return plan;
  }
  if (terminal) {
    plan.write_status = facts.in_plugin && facts.report != nullptr;
    return plan;
  }
  if (!facts.in_plugin) {
    plan.plugin = PluginStep::kCreate;
    return plan;
  }
  return DecideRunning(*pod, facts, can_update, now);
}

uint64_t UpdateFingerprint(const json& pod) {
  json subset = json::object();
  const json& md = Member(pod, "metadata");
  const json& spec = Member(pod, "spec");
  subset["l"] = Member(md, "labels");
  subset["a"] = Member(md, "annotations");
  subset["d"] = Member(spec, "activeDeadlineSeconds");
  json images = json::array();
  for (const char* list : {"initContainers", "containers"}) {
    const json& containers = Member(spec, list);
    if (!containers.is_array()) continue;
    for (const json& c : containers) images.push_back(Member(c, "image"));
  }
  subset["i"] = images;
  uint64_t h = std::hash<std::string>{}(subset.dump());
  return h == 0 ? 1 : h;
}

bool HasResolvedVolumes(const json& pod) {
  const json& volumes = Member(Member(pod, "spec"), "volumes");
  if (!volumes.is_array()) return false;
  for (const json& v : volumes) {
    for (const char* kind : {"configMap", "secret", "downwardAPI", "projected"}) {
      if (!Member(v, kind).is_null()) return true;
    }
  }
  return false;
}

bool AllContainersTerminated(const v1::PodStatus& report) {
  int count = 0;
  for (const auto* list : {&report.init_container_statuses(), &report.container_statuses()}) {
    for (const v1::ContainerStatus& c : *list) {
      if (!c.state().has_terminated()) return false;
      ++count;
    }
  }
  return count > 0;
}

uint64_t ResolvedHash(const v1::Pod& pod) {
  v1::Pod copy = pod;
  copy.clear_pod_json();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);
    copy.SerializeToCodedStream(&out);
  }
  uint64_t h = std::hash<std::string>{}(bytes);
  return h == 0 ? 1 : h;
}

std::vector<ContainerMark> MarksOf(const v1::PodStatus& report) {
  std::vector<ContainerMark> marks;
  auto add = [&marks](const v1::ContainerStatus& c, bool init) {
    ContainerMark m;
    m.name = c.name();
    m.init = init;
    m.restart_count = c.restart_count();
    m.container_id = c.container_id();
    const v1::ContainerState& s = c.state();
    if (s.has_waiting()) {
      m.kind = ContainerMark::Kind::kWaiting;
      m.reason = s.waiting().reason();
      m.message = s.waiting().message();
    } else if (s.has_running()) {
      m.kind = ContainerMark::Kind::kRunning;
    } else if (s.has_terminated()) {
      m.kind = ContainerMark::Kind::kTerminated;
      m.reason = s.terminated().reason();
      m.message = s.terminated().message();
    }
    marks.push_back(std::move(m));
  };
  for (const auto& c : report.init_container_statuses()) add(c, true);
  for (const auto& c : report.container_statuses()) add(c, false);
  return marks;
}

std::vector<PodEvent> ContainerEvents(const json& pod,
                                      const std::vector<ContainerMark>& before,
                                      const std::vector<ContainerMark>& after) {
  std::vector<PodEvent> out;
  for (const ContainerMark& mark : after) {
    AppendContainerEvents(pod, FindMark(before, mark), mark, out);
  }
  return out;
}

std::vector<PodEvent> KillingEvents(const json& pod, const v1::PodStatus* report) {
  std::vector<PodEvent> out;
  const json& spec = Member(pod, "spec");
  const std::vector<ContainerMark> marks =
      report != nullptr ? MarksOf(*report) : std::vector<ContainerMark>();
  for (const char* list : {"initContainers", "containers"}) {
    const json& containers = Member(spec, list);
    if (!containers.is_array()) continue;
    const bool init = std::string(list) == "initContainers";
    for (const json& c : containers) {
      ContainerMark like;
      like.name = c.is_object() ? c.value("name", "") : "";
      like.init = init;
      if (report != nullptr) {
        const ContainerMark* m = FindMark(marks, like);
        // Only what runs gets stopped; an init container that never
        // started (or finished) needs no stop.
        if (m == nullptr || m->kind != ContainerMark::Kind::kRunning) continue;
      } else if (init) {
        continue;
      }
      out.push_back({false, "Killing", absl::StrCat("Stopping container ", like.name),
                     FieldPath(like)});
    }
  }
  return out;
}

std::string PodLabel(const std::string& ns, const std::string& name,
                     const std::string& uid) {
  return absl::StrCat(ns, "/", name, " (", uid, ")");
}

}  // namespace vkhost::pods::internal
