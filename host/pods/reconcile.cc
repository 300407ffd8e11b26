// PodController, worker side: one reconcile pass per pod UID.
#include <algorithm>
#include <functional>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "host/podstatus/pod_status.h"
#include "host/pods/internal/controller.h"

namespace vkhost::pods {
namespace {

using json = nlohmann::json;
using internal::Plan;
using internal::PluginStep;

std::string MetadataString(const json& pod, const char* key) {
  auto md = pod.find("metadata");
  if (md == pod.end() || !md->is_object()) return "";
  auto it = md->find(key);
  return it != md->end() && it->is_string() ? it->get<std::string>() : "";
}

// Status fields podstatus may leave out although an earlier status had them;
// a merge patch must null them explicitly or they would stay.
constexpr const char* kRemovableStatusFields[] = {"reason", "message", "podIP", "podIPs",
                                                  "hostIP", "hostIPs", "startTime"};

json StatusPatch(const std::string& uid, const std::string& resource_version,
                 const json& current, const json& next) {
  json status = next;
  for (const char* field : kRemovableStatusFields) {
    if (current.is_object() && current.contains(field) && !next.contains(field)) {
      status[field] = nullptr;
    }
  }
  json metadata = {{"uid", uid}};
  // Optimistic concurrency: conditions are written whole, so a condition
  // someone else added since the cached copy must not be lost. A conflict
  // re-queues the pod; the informer brings the newer object.
  if (!resource_version.empty()) metadata["resourceVersion"] = resource_version;
  return {{"metadata", metadata}, {"status", status}};
}

bool IsTransientPluginError(const absl::Status& s) {
  return s.code() != absl::StatusCode::kInvalidArgument &&
         s.code() != absl::StatusCode::kUnimplemented;
}

}  // namespace

bool PodController::Impl::Process(const std::string& uid) {
  // The API server validates pods, but a malformed object must cost one pod
  // its reconcile, never the host: JSON type errors end the pass here.
  try {
    return Reconcile(uid);
  } catch (const nlohmann::json::exception& e) {
    VKLOG(ERROR) << "pod " << uid << ": cannot reconcile a malformed object: " << e.what();
    return true;
  }
}

bool PodController::Impl::Reconcile(const std::string& uid) {
  Pass pass;
  if (!Gather(uid, pass)) return true;
  const Plan plan = internal::Decide(pass.pod.get(), pass.facts, pass.can_update, pass.now);
  bool retry = false;
  if (plan.write_status) retry |= SyncStatus(pass) == Outcome::kRetry;
  if (plan.write_rejected && pass.rejection) {
    retry |= WriteStatus(pass, podstatus::Rejected(*pass.pod, pass.rejection->first,
                                                   pass.rejection->second,
                                                   StatusContextNow())) == Outcome::kRetry;
  }
  if (plan.adopt) Adopt(pass);
  const Outcome plugin_step = RunPluginStep(pass, plan);
  retry |= plugin_step == Outcome::kRetry;
  if (plugin_step == Outcome::kOk && plan.delete_api_object) {
    retry |= DeleteApiObject(pass) == Outcome::kRetry;
  }
  if (plan.forget) Forget(uid);
  return !retry;
}

bool PodController::Impl::Gather(const std::string& uid, Pass& pass) {
  pass.uid = uid;
  pass.pod = pods_.GetByUid(uid);
  if (pass.pod != nullptr && !pass.pod->is_object()) {
    VKLOG(ERROR) << "pod " << uid << ": the cached object is not a JSON object; skipped";
    return false;
  }
  pass.now = absl::Now();
  auto connection = supervisor_.Current();
  pass.can_update =
      connection.ok() && (*connection)->identity().Has(v1::CAPABILITY_UPDATE_POD);
  absl::MutexLock lock(&mu_);
  auto it = records_.find(uid);
  if (it == records_.end()) {
    if (pass.pod == nullptr) return false;
    it = records_.emplace(uid, PodRecord()).first;
  }
  PodRecord& record = it->second;
  if (pass.pod != nullptr) {
    record.ns = MetadataString(*pass.pod, "namespace");
    record.name = MetadataString(*pass.pod, "name");
  }
  pass.ns = record.ns;
  pass.name = record.name;
  pass.report = record.report;
  pass.rejection = record.rejection;
  pass.created_here = record.created_here;
  pass.facts.in_plugin = record.in_plugin;
  pass.facts.delete_sent = record.delete_sent;
  pass.facts.rejected = record.rejection.has_value();
  pass.facts.report = pass.report ? &*pass.report : nullptr;
  pass.facts.sent_fingerprint = record.sent_fingerprint;
  pass.facts.refresh_at = record.refresh_at;
  return true;
}

PodController::Impl::Outcome PodController::Impl::RunPluginStep(const Pass& pass,
                                                                 const Plan& plan) {
  switch (plan.plugin) {
    case PluginStep::kNone:
      return Outcome::kOk;
    case PluginStep::kCreate:
      return Create(pass);
    case PluginStep::kUpdate:
      return Update(pass);
    case PluginStep::kDelete:
      return DeleteInPlugin(pass, plan.grace_period_seconds);
  }
  return Outcome::kOk;
}

PodController::Impl::Outcome PodController::Impl::Create(const Pass& pass) {
  const std::string label = internal::PodLabel(pass.ns, pass.name, pass.uid);
  resolve::ResolveResult result = resolve::ResolvePod(*pass.pod, objects_, options_.resolve);
  if (!result.status.ok()) return ResolveFailed(pass, result, /*creating=*/true);
  for (const resolve::Warning& w : result.resolved.warnings) {
    events::ObjectRef ref = events::ObjectRef::ForPod(*pass.pod);
    if (!w.container_name.empty()) {
      ref.field_path = absl::StrCat("spec.containers{", w.container_name, "}");
    }
    events_.Record(ref, events::EventType::kWarning, w.reason, w.message);
  }
  absl::Status s = plugin_.CreatePod(result.resolved.pod);
  if (s.ok() || s.code() == absl::StatusCode::kAlreadyExists) {
    RecordSent(pass, result.resolved, /*created=*/true);
    VKLOG(INFO) << "pod " << label << ": created in the plugin";
    return Outcome::kOk;
  }
  if (!IsTransientPluginError(s)) return Reject(pass, std::string(s.message()));
  if (Warn(pass, "ProviderCreateFailed", std::string(s.message()))) {
    VKLOG(WARNING) << "pod " << label << ": CreatePod failed, will retry: " << s;
  } else {
    VKLOG(DEBUG) << "pod " << label << ": CreatePod failed again: " << s;
  }
  // A pod the kubelet has just picked up shows ContainerCreating; a pod that
  // ran before keeps its last status rather than flapping while the plugin
  // is away.
  const json& status = pass.pod->value("status", json::object());
  if (!status.contains("containerStatuses")) {
    WriteStatus(pass, podstatus::Waiting(*pass.pod, "ContainerCreating", "",
                                         StatusContextNow()));
  }
  return Outcome::kRetry;
}

PodController::Impl::Outcome PodController::Impl::Reject(const Pass& pass,
                                                          const std::string& message) {
  VKLOG(WARNING) << "pod " << internal::PodLabel(pass.ns, pass.name, pass.uid)
                 << ": the plugin can never run it (" << message << "); marking it Failed";
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(pass.uid);
    if (it != records_.end()) it->second.rejection = {{"ProviderFailed", message}};
  }
  Warn(pass, "ProviderCreateFailed", message);
  Outcome written = WriteStatus(
      pass, podstatus::Rejected(*pass.pod, "ProviderFailed", message, StatusContextNow()));
  return written == Outcome::kRetry ? Outcome::kRetry : Outcome::kGiveUp;
}

PodController::Impl::Outcome PodController::Impl::Update(const Pass& pass) {
  const std::string label = internal::PodLabel(pass.ns, pass.name, pass.uid);
  resolve::ResolveResult result = resolve::ResolvePod(*pass.pod, objects_, options_.resolve);
  if (!result.status.ok()) return ResolveFailed(pass, result, /*creating=*/false);
  uint64_t sent_hash = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(pass.uid);
    if (it != records_.end()) sent_hash = it->second.sent_hash;
  }
  if (internal::ResolvedHash(result.resolved.pod) != sent_hash) {
    absl::Status s = plugin_.UpdatePod(result.resolved.pod);
    if (s.code() == absl::StatusCode::kNotFound) {
      VKLOG(INFO) << "pod " << label << ": the plugin no longer has it; creating it again";
      absl::MutexLock lock(&mu_);
      auto it = records_.find(pass.uid);
      if (it != records_.end()) {
        it->second.in_plugin = false;
        it->second.report.reset();
      }
      queue_->Add(pass.uid);  // runs again once this pass is done
      return Outcome::kGiveUp;
    }
    if (!s.ok() && IsTransientPluginError(s)) {
      if (Warn(pass, "ProviderUpdateFailed", std::string(s.message()))) {
        VKLOG(WARNING) << "pod " << label << ": UpdatePod failed, will retry: " << s;
      }
      return Outcome::kRetry;
    }
    if (!s.ok()) {
      // Never accepted (or not implemented after all): do not loop on it.
      Warn(pass, "ProviderUpdateFailed", std::string(s.message()));
      VKLOG(WARNING) << "pod " << label << ": UpdatePod refused: " << s;
    } else {
      VKLOG(DEBUG) << "pod " << label << ": sent update to the plugin";
    }
  }
  RecordSent(pass, result.resolved, /*created=*/false);
  return Outcome::kOk;
}

PodController::Impl::Outcome PodController::Impl::ResolveFailed(
    const Pass& pass, const resolve::ResolveResult& result, bool creating) {
  const std::string label = internal::PodLabel(pass.ns, pass.name, pass.uid);
  const absl::Status& s = result.status;
  const resolve::ResolveFailure& f = result.failure;
  if (s.code() != absl::StatusCode::kFailedPrecondition &&
      s.code() != absl::StatusCode::kInvalidArgument) {
    VKLOG(WARNING) << "pod " << label << ": cannot resolve it yet, will retry: " << s;
    return Outcome::kRetry;
  }
  const bool missing_object = s.code() == absl::StatusCode::kFailedPrecondition;
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(pass.uid);
    if (it != records_.end()) it->second.waiting_on_objects = missing_object;
  }
  std::string event_reason = f.event_reason.empty() ? "Failed" : f.event_reason;
  std::string event_message =
      f.event_message.empty() ? absl::StrCat("Error: ", s.message()) : f.event_message;
  if (Warn(pass, event_reason, event_message)) {
    VKLOG(WARNING) << "pod " << label << ": waiting: " << s;
  }
  Outcome written = Outcome::kOk;
  if (creating) {
    std::string reason =
        f.waiting_reason.empty() ? "CreateContainerConfigError" : f.waiting_reason;
    std::string message = f.waiting_message;
    if (message.empty() && reason != "ContainerCreating") message = std::string(s.message());
    written = WriteStatus(pass, podstatus::Waiting(*pass.pod, reason, message,
                                                   StatusContextNow()));
  }
  // A missing object may appear (the pod then starts); a malformed pod
  // cannot change, so it waits for an update of its own.
  if (missing_object || written == Outcome::kRetry) return Outcome::kRetry;
  return Outcome::kGiveUp;
}

void PodController::Impl::RecordSent(const Pass& pass, const resolve::ResolvedPod& resolved,
                                     bool created) {
  absl::Time refresh_at = absl::InfiniteFuture();
  if (pass.can_update) {
    refresh_at = resolved.refresh_at;
    if (internal::HasResolvedVolumes(*pass.pod) &&
        options_.volume_refresh_interval > absl::ZeroDuration()) {
      absl::BitGen random;
      absl::Duration jitter = options_.volume_refresh_interval * absl::Uniform(random, 0.0, 0.5);
      refresh_at = std::min(refresh_at, pass.now + options_.volume_refresh_interval + jitter);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(pass.uid);
    if (it == records_.end()) return;
    PodRecord& record = it->second;
    if (created) {
      record.in_plugin = true;
      record.in_plugin_epoch = epoch_.load();
      record.created_here = true;
    }
    record.sent_fingerprint = internal::UpdateFingerprint(*pass.pod);
    record.sent_hash = internal::ResolvedHash(resolved.pod);
    record.refresh_at = refresh_at;
    record.waiting_on_objects = false;
    record.last_warning.clear();
  }
  if (refresh_at != absl::InfiniteFuture()) {
    queue_->AddAfter(pass.uid, refresh_at - absl::Now());
  }
}

void PodController::Impl::Adopt(const Pass& pass) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(pass.uid);
  if (it != records_.end() && it->second.sent_fingerprint == 0) {
    it->second.sent_fingerprint = internal::UpdateFingerprint(*pass.pod);
  }
}

PodController::Impl::Outcome PodController::Impl::DeleteInPlugin(
    const Pass& pass, std::optional<int64_t> grace) {
  const std::string label = internal::PodLabel(pass.ns, pass.name, pass.uid);
  v1::PodRef ref;
  ref.set_uid(pass.uid);
  ref.set_namespace_(pass.ns);
  ref.set_name(pass.name);
  absl::Status s = plugin_.DeletePod(ref, grace);
  if (!s.ok()) {
    bool first = pass.pod == nullptr || Warn(pass, "ProviderDeleteFailed",
                                             std::string(s.message()));
    if (first) {
      VKLOG(WARNING) << "pod " << label << ": DeletePod failed, will retry: " << s;
    }
    return Outcome::kRetry;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(pass.uid);
    if (it != records_.end()) it->second.delete_sent = true;
  }
  if (pass.pod == nullptr) {
    VKLOG(INFO) << "pod " << label
                << ": not in the API server any more; deleted it from the plugin";
    return Outcome::kOk;
  }
  VKLOG(INFO) << "pod " << label << ": terminating in the plugin (grace "
              << (grace ? absl::StrCat(*grace, "s") : std::string("default")) << ")";
  for (const internal::PodEvent& e : internal::KillingEvents(*pass.pod, pass.facts.report)) {
    Normal(pass, e);
  }
  return Outcome::kOk;
}

PodController::Impl::Outcome PodController::Impl::SyncStatus(const Pass& pass) {
  if (pass.pod == nullptr || !pass.report) return Outcome::kOk;
  EmitContainerEvents(pass);
  return WriteStatus(pass, podstatus::FromReport(*pass.pod, *pass.report, StatusContextNow()));
}

PodController::Impl::Outcome PodController::Impl::WriteStatus(const Pass& pass,
                                                              const json& next) {
  static const json kEmpty = json::object();
  auto it = pass.pod->find("status");
  const json& current = it != pass.pod->end() ? *it : kEmpty;
  if (!podstatus::Differs(current, next)) return Outcome::kOk;
  const std::string cached_rv = MetadataString(*pass.pod, "resourceVersion");
  const uint64_t hash = std::hash<std::string>{}(next.dump());
  std::string precondition_rv = cached_rv;
  {
    absl::MutexLock lock(&mu_);
    auto rec = records_.find(pass.uid);
    if (rec != records_.end() && !cached_rv.empty() &&
        rec->second.written_base_rv == cached_rv) {
      // The cache has not seen our last write yet.
      if (rec->second.written_hash == hash) return Outcome::kOk;
      precondition_rv = rec->second.written_result_rv;
    }
  }
  const std::string label = internal::PodLabel(pass.ns, pass.name, pass.uid);
  kube::Target target{kube::kPods, pass.ns, pass.name, "status"};
  absl::StatusOr<json> result = client_.Patch(
      target, kube::PatchType::kMerge, StatusPatch(pass.uid, precondition_rv, current, next),
      {});
  if (!result.ok()) {
    if (absl::IsNotFound(result.status())) return Outcome::kOk;  // deleted meanwhile
    if (kube::IsConflict(result.status())) {
      VKLOG(DEBUG) << "pod " << label << ": status patch conflicted; retrying";
    } else {
      VKLOG(WARNING) << "pod " << label << ": cannot update status, will retry: "
                     << result.status();
    }
    return Outcome::kRetry;
  }
  absl::MutexLock lock(&mu_);
  auto rec = records_.find(pass.uid);
  if (rec != records_.end()) {
    rec->second.written_hash = hash;
    rec->second.written_base_rv = cached_rv;
    rec->second.written_result_rv = MetadataString(*result, "resourceVersion");
  }
  return Outcome::kOk;
}

PodController::Impl::Outcome PodController::Impl::DeleteApiObject(const Pass& pass) {
  if (pass.pod == nullptr) return Outcome::kOk;
  kube::DeleteOptions options;
  options.grace_period_seconds = 0;
  options.precondition_uid = pass.uid;
  const std::string label = internal::PodLabel(pass.ns, pass.name, pass.uid);
  absl::StatusOr<json> result = client_.Delete({kube::kPods, pass.ns, pass.name, ""}, options);
  if (!result.ok() && !absl::IsNotFound(result.status()) &&
      !kube::IsConflict(result.status())) {
    VKLOG(WARNING) << "pod " << label << ": cannot delete the terminated pod, will retry: "
                   << result.status();
    return Outcome::kRetry;
  }
  if (result.ok()) {
    VKLOG(INFO) << "pod " << label << ": terminated; removed from the API server";
  }
  return Outcome::kOk;
}

void PodController::Impl::Forget(const std::string& uid) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(uid);
  if (it != records_.end() && !it->second.in_plugin) records_.erase(it);
}

void PodController::Impl::EmitContainerEvents(const Pass& pass) {
  std::vector<internal::ContainerMark> marks = internal::MarksOf(*pass.report);
  std::optional<std::vector<internal::ContainerMark>> before;
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(pass.uid);
    if (it == records_.end()) return;
    before = it->second.marks;
    it->second.marks = marks;
  }
  // A pod adopted from the plugin: its history happened before this process.
  if (!before && !pass.created_here) return;
  for (const internal::PodEvent& e :
       internal::ContainerEvents(*pass.pod, before.value_or(decltype(marks)()), marks)) {
    if (e.warning) {
      events::ObjectRef ref = events::ObjectRef::ForPod(*pass.pod);
      ref.field_path = e.field_path;
      events_.Record(ref, events::EventType::kWarning, e.reason, e.message);
    } else {
      Normal(pass, e);
    }
  }
}

bool PodController::Impl::Warn(const Pass& pass, const std::string& reason,
                               const std::string& message) {
  if (pass.pod == nullptr) return true;
  const std::string key = absl::StrCat(reason, "\n", message);
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(pass.uid);
    if (it != records_.end()) {
      PodRecord& record = it->second;
      if (record.last_warning == key &&
          pass.now - record.last_warning_at < options_.warning_repeat_interval) {
        return false;
      }
      record.last_warning = key;
      record.last_warning_at = pass.now;
    }
  }
  events_.Record(events::ObjectRef::ForPod(*pass.pod), events::EventType::kWarning, reason,
                 message);
  return true;
}

void PodController::Impl::Normal(const Pass& pass, const internal::PodEvent& event) {
  if (pass.pod == nullptr) return;
  events::ObjectRef ref = events::ObjectRef::ForPod(*pass.pod);
  ref.field_path = event.field_path;
  events_.Record(ref, events::EventType::kNormal, event.reason, event.message);
}

podstatus::StatusContext PodController::Impl::StatusContextNow() const {
  podstatus::StatusContext context;
  if (!options_.resolve.host_ips.empty()) context.host_ip = options_.resolve.host_ips[0];
  context.now = absl::Now();
  return context;
}

}  // namespace vkhost::pods
