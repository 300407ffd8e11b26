#include "host/pods/pods_test_support.h"

#include <deque>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "vkhost/provider/v1/identity.grpc.pb.h"
#include "vkhost/provider/v1/pods.grpc.pb.h"

namespace vkhost::pods::testing {
namespace {

constexpr absl::Duration kWaitLimit = absl::Seconds(20);

std::string Field(const json& pod, const char* key) {
  return pod.value("metadata", json::object()).value(key, "");
}

absl::Status ApiError(const std::string& verb, const std::string& name, int code,
                      const std::string& reason) {
  json body = {{"kind", "Status"}, {"reason", reason}, {"message", name + ": " + reason}};
  return kube::StatusFromResponse(verb, name, code, body.dump());
}

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

// --- FakeApiServer ---

json FakeApiServer::StoreLocked(json pod, kube::WatchEventType type) {
  pod["metadata"]["resourceVersion"] = std::to_string(++rv_);
  pods_[{Field(pod, "namespace"), Field(pod, "name")}] = pod;
  log_.push_back({rv_, {type, pod}});
  return pod;
}

void FakeApiServer::RemoveLocked(const Key& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  json pod = it->second;
  pods_.erase(it);
  pod["metadata"]["resourceVersion"] = std::to_string(++rv_);
  log_.push_back({rv_, {kube::WatchEventType::kDeleted, pod}});
}

json FakeApiServer::PutPod(json pod) {
  absl::MutexLock lock(&mu_);
  bool exists = pods_.count({Field(pod, "namespace"), Field(pod, "name")}) > 0;
  return StoreLocked(std::move(pod),
                     exists ? kube::WatchEventType::kModified : kube::WatchEventType::kAdded);
}

void FakeApiServer::DeleteGracefully(const std::string& ns, const std::string& name,
                                     int64_t grace) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find({ns, name});
  if (it == pods_.end()) return;
  json pod = it->second;
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  pod["metadata"]["deletionGracePeriodSeconds"] = grace;
  StoreLocked(std::move(pod), kube::WatchEventType::kModified);
}

void FakeApiServer::RemovePod(const std::string& ns, const std::string& name) {
  absl::MutexLock lock(&mu_);
  RemoveLocked({ns, name});
}

std::optional<json> FakeApiServer::GetPod(const std::string& ns, const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find({ns, name});
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

std::vector<FakeApiServer::Call> FakeApiServer::Calls(const std::string& verb) {
  absl::MutexLock lock(&mu_);
  std::vector<Call> out;
  for (const Call& c : calls_) {
    if (c.verb == verb) out.push_back(c);
  }
  return out;
}

std::vector<std::string> FakeApiServer::EventReasons(const std::string& name) {
  std::vector<std::string> out;
  for (const Call& c : Calls("event")) {
    if (c.body.value("involvedObject", json::object()).value("name", "") == name) {
      out.push_back(c.body.value("reason", ""));
    }
  }
  return out;
}

bool FakeApiServer::WaitForPod(
    const std::string& ns, const std::string& name,
    const std::function<bool(const std::optional<json>&)>& predicate) {
  absl::Time deadline = absl::Now() + kWaitLimit;
  while (absl::Now() < deadline) {
    if (predicate(GetPod(ns, name))) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return predicate(GetPod(ns, name));
}

bool FakeApiServer::WaitForCalls(
    const std::function<bool(const std::vector<Call>&)>& predicate) {
  absl::Time deadline = absl::Now() + kWaitLimit;
  while (true) {
    std::vector<Call> calls;
    {
      absl::MutexLock lock(&mu_);
      calls = calls_;
    }
    if (predicate(calls)) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<json> FakeApiServer::Get(const kube::Target& target) {
  auto pod = GetPod(target.ns, target.name);
  if (!pod) return ApiError("GET", target.name, 404, "NotFound");
  return *pod;
}

absl::StatusOr<json> FakeApiServer::List(const kube::Target&, const kube::ListOptions&) {
  absl::MutexLock lock(&mu_);
  json items = json::array();
  for (const auto& [key, pod] : pods_) items.push_back(pod);
  return json{{"kind", "PodList"},
              {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
              {"items", items}};
}

absl::StatusOr<json> FakeApiServer::Create(const kube::Target& target, const json& body,
                                           const kube::WriteOptions&) {
  absl::MutexLock lock(&mu_);
  if (target.resource.plural == "events") {
    calls_.push_back({"event", body.value("involvedObject", json::object()).value("name", ""),
                      body});
    json stored = body;
    stored["metadata"]["resourceVersion"] = std::to_string(++rv_);
    return stored;
  }
  return ApiError("POST", target.name, 405, "MethodNotAllowed");
}

absl::StatusOr<json> FakeApiServer::Update(const kube::Target& target, const json&,
                                           const kube::WriteOptions&) {
  return ApiError("PUT", target.name, 405, "MethodNotAllowed");
}

absl::StatusOr<json> FakeApiServer::Patch(const kube::Target& target, kube::PatchType type,
                                          const json& patch, const kube::WriteOptions&) {
  absl::MutexLock lock(&mu_);
  if (target.resource.plural == "events") {
    calls_.push_back({"event-patch", target.name, patch});
    return patch;
  }
  if (target.subresource != "status" || type != kube::PatchType::kMerge) {
    return ApiError("PATCH", target.name, 415, "UnsupportedMediaType");
  }
  auto it = pods_.find({target.ns, target.name});
  if (it == pods_.end()) return ApiError("PATCH", target.name, 404, "NotFound");
  const json& md = patch.value("metadata", json::object());
  if (md.contains("uid") && md["uid"] != it->second["metadata"]["uid"]) {
    return ApiError("PATCH", target.name, 409, "Conflict");
  }
  if (md.contains("resourceVersion") &&
      md["resourceVersion"] != it->second["metadata"]["resourceVersion"]) {
    return ApiError("PATCH", target.name, 409, "Conflict");
  }
  calls_.push_back({"patch-status", target.name, patch});
  json pod = it->second;
  json status = pod.value("status", json::object());
  status.merge_patch(patch.value("status", json::object()));
  pod["status"] = status;
  return StoreLocked(std::move(pod), kube::WatchEventType::kModified);
}

absl::StatusOr<json> FakeApiServer::Delete(const kube::Target& target,
                                           const kube::DeleteOptions& options) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find({target.ns, target.name});
  if (it == pods_.end()) return ApiError("DELETE", target.name, 404, "NotFound");
  if (!options.precondition_uid.empty() &&
      options.precondition_uid != Field(it->second, "uid")) {
    return ApiError("DELETE", target.name, 409, "Conflict");
  }
  calls_.push_back({"delete", target.name,
                    {{"grace", options.grace_period_seconds.value_or(-1)},
                     {"uid", options.precondition_uid}}});
  json pod = it->second;
  RemoveLocked({target.ns, target.name});
  return pod;
}

absl::Status FakeApiServer::Watch(const kube::Target&, const kube::WatchOptions& options,
                                  const kube::WatchEventHandler& on_event,
                                  kube::WatchCancel* cancel) {
  auto interrupted = std::make_shared<bool>(false);
  if (cancel != nullptr && !cancel->Register([this, interrupted] {
        absl::MutexLock lock(&mu_);
        *interrupted = true;
      })) {
    return absl::CancelledError("watch cancelled");
  }
  uint64_t from = 0;
  (void)absl::SimpleAtoi(options.resource_version, &from);
  size_t next = 0;
  absl::Status result = absl::OkStatus();
  while (true) {
    std::vector<kube::WatchEvent> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return *interrupted || next < log_.size();
      };
      mu_.Await(absl::Condition(&ready));
      if (*interrupted) {
        result = absl::CancelledError("watch cancelled");
        break;
      }
      for (; next < log_.size(); ++next) {
        if (log_[next].rv > from) batch.push_back(log_[next].event);
      }
    }
    bool keep_going = true;
    for (kube::WatchEvent& e : batch) {
      if (!on_event(std::move(e))) {
        keep_going = false;
        break;
      }
    }
    if (!keep_going) break;
  }
  if (cancel != nullptr) cancel->Unregister();
  return result;
}

// --- FakeObjects ---

void FakeObjects::PutConfigMap(const std::string& ns, const std::string& name, json data) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"namespace", ns}, {"name", name}}},
             {"data", std::move(data)}};
  absl::MutexLock lock(&mu_);
  config_maps_[{ns, name}] = std::make_shared<const json>(std::move(cm));
}

absl::StatusOr<std::shared_ptr<const json>> FakeObjects::ConfigMap(const std::string& ns,
                                                                  const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = config_maps_.find({ns, name});
  if (it == config_maps_.end()) {
    return absl::NotFoundError(absl::StrCat("configmap \"", name, "\" not found"));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<const json>> FakeObjects::Secret(const std::string&,
                                                               const std::string& name) {
  return absl::NotFoundError(absl::StrCat("secret \"", name, "\" not found"));
}

std::vector<std::shared_ptr<const json>> FakeObjects::Services(const std::string&) {
  return {};
}

absl::StatusOr<resolve::Token> FakeObjects::ServiceAccountToken(
    const resolve::TokenRequest& request) {
  resolve::Token token;
  token.token = "token-" + request.service_account;
  token.expiration = absl::Now() + absl::Seconds(request.expiration_seconds);
  token.expiration_seconds = request.expiration_seconds;
  return token;
}

// --- FakePlugin ---

class FakePlugin::Backend {
 public:
  explicit Backend(Options options) : options_(std::move(options)), identity_(*this),
                                      pods_(*this) {}

  void Register(grpc::ServerBuilder& builder) {
    builder.RegisterService(&identity_);
    builder.RegisterService(&pods_);
  }
  void ShutDown() {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
  }

  void FailWith(absl::Status s) {
    absl::MutexLock lock(&mu_);
    failure_ = std::move(s);
  }
  void FailProbesWith(absl::Status s) {
    absl::MutexLock lock(&mu_);
    probe_failure_ = std::move(s);
  }
  void SetStatus(const v1::PodStatus& status) {
    absl::MutexLock lock(&mu_);
    pods_by_uid_[status.pod().uid()] = status;
    PublishLocked(v1::WatchPodStatusResponse::TYPE_STATUS, status);
  }
  void Reset() {
    absl::MutexLock lock(&mu_);
    pods_by_uid_.clear();
  }
  void AddRunning(const std::string& uid, const std::string& ns, const std::string& name) {
    v1::Pod pod;
    pod.set_uid(uid);
    pod.set_namespace_(ns);
    pod.set_name(name);
    pod.add_containers()->set_name("app");
    absl::MutexLock lock(&mu_);
    StartLocked(pod);
  }
  std::vector<std::string> Calls(const std::string& rpc) {
    absl::MutexLock lock(&mu_);
    return calls_[rpc];
  }
  std::optional<v1::Pod> LastPod(const std::string& uid) {
    absl::MutexLock lock(&mu_);
    auto it = last_pod_.find(uid);
    if (it == last_pod_.end()) return std::nullopt;
    return it->second;
  }
  bool Has(const std::string& uid) {
    absl::MutexLock lock(&mu_);
    return pods_by_uid_.count(uid) > 0;
  }

 private:
  struct Watcher {
    std::deque<v1::WatchPodStatusResponse> queue;
  };

  class IdentityImpl : public v1::Identity::Service {
   public:
    explicit IdentityImpl(Backend& s) : s_(s) {}
    grpc::Status GetPluginInfo(grpc::ServerContext*, const v1::GetPluginInfoRequest*,
                               v1::GetPluginInfoResponse* out) override {
      out->set_name("fake-pods");
      out->set_version("1.0");
      return grpc::Status::OK;
    }
    grpc::Status GetCapabilities(grpc::ServerContext*, const v1::GetCapabilitiesRequest*,
                                 v1::GetCapabilitiesResponse* out) override {
      for (v1::Capability c : s_.options_.capabilities) out->add_capabilities(c);
      return grpc::Status::OK;
    }
    grpc::Status Probe(grpc::ServerContext*, const v1::ProbeRequest*,
                       v1::ProbeResponse* out) override {
      absl::MutexLock lock(&s_.mu_);
      if (!s_.probe_failure_.ok()) return ToGrpc(s_.probe_failure_);
      out->set_ready(true);
      return grpc::Status::OK;
    }

   private:
    Backend& s_;
  };

  class PodsImpl : public v1::Pods::Service {
   public:
    explicit PodsImpl(Backend& s) : s_(s) {}
    grpc::Status CreatePod(grpc::ServerContext*, const v1::CreatePodRequest* in,
                           v1::CreatePodResponse*) override {
      return ToGrpc(s_.Create(in->pod()));
    }
    grpc::Status UpdatePod(grpc::ServerContext*, const v1::UpdatePodRequest* in,
                           v1::UpdatePodResponse*) override {
      return ToGrpc(s_.Update(in->pod()));
    }
    grpc::Status DeletePod(grpc::ServerContext*, const v1::DeletePodRequest* in,
                           v1::DeletePodResponse*) override {
      return ToGrpc(s_.Delete(in->pod()));
    }
    grpc::Status GetPodStatus(grpc::ServerContext*, const v1::GetPodStatusRequest* in,
                              v1::GetPodStatusResponse* out) override {
      absl::MutexLock lock(&s_.mu_);
      auto it = s_.pods_by_uid_.find(in->pod().uid());
      if (it == s_.pods_by_uid_.end()) return grpc::Status(grpc::NOT_FOUND, "no such pod");
      *out->mutable_status() = it->second;
      return grpc::Status::OK;
    }
    grpc::Status ListPods(grpc::ServerContext*, const v1::ListPodsRequest*,
                          v1::ListPodsResponse* out) override {
      absl::MutexLock lock(&s_.mu_);
      s_.calls_["ListPods"].push_back("");
      for (const auto& [uid, status] : s_.pods_by_uid_) *out->add_pods() = status;
      return grpc::Status::OK;
    }
    grpc::Status WatchPodStatus(grpc::ServerContext* ctx, const v1::WatchPodStatusRequest*,
                                grpc::ServerWriter<v1::WatchPodStatusResponse>* out) override {
      return s_.Watch(ctx, out);
    }

   private:
    Backend& s_;
  };

  absl::Status Create(const v1::Pod& pod) {
    absl::MutexLock lock(&mu_);
    calls_["CreatePod"].push_back(pod.uid());
    if (!failure_.ok()) return failure_;
    for (const v1::Container& c : pod.containers()) {
      if (c.image() == options_.reject_image) {
        return absl::InvalidArgumentError("image " + c.image() + " is not available here");
      }
    }
    last_pod_[pod.uid()] = pod;
    if (pods_by_uid_.count(pod.uid()) == 0) StartLocked(pod);
    return absl::OkStatus();
  }

  absl::Status Update(const v1::Pod& pod) {
    absl::MutexLock lock(&mu_);
    calls_["UpdatePod"].push_back(pod.uid());
    if (!failure_.ok()) return failure_;
    if (pods_by_uid_.count(pod.uid()) == 0) return absl::NotFoundError("no such pod");
    last_pod_[pod.uid()] = pod;
    return absl::OkStatus();
  }

  absl::Status Delete(const v1::PodRef& ref) {
    absl::MutexLock lock(&mu_);
    calls_["DeletePod"].push_back(ref.uid());
    if (!failure_.ok()) return failure_;
    auto it = pods_by_uid_.find(ref.uid());
    if (it == pods_by_uid_.end()) return absl::OkStatus();
    v1::PodStatus final_status = it->second;
    for (v1::ContainerStatus& c : *final_status.mutable_container_statuses()) {
      auto* t = c.mutable_state()->mutable_terminated();
      t->set_exit_code(0);
      t->set_reason("Completed");
      c.set_ready(false);
    }
    PublishLocked(v1::WatchPodStatusResponse::TYPE_STATUS, final_status);
    pods_by_uid_.erase(it);
    PublishLocked(v1::WatchPodStatusResponse::TYPE_DELETED, final_status);
    return absl::OkStatus();
  }

  void StartLocked(const v1::Pod& pod) {
    v1::PodStatus status;
    status.mutable_pod()->set_uid(pod.uid());
    status.mutable_pod()->set_namespace_(pod.namespace_());
    status.mutable_pod()->set_name(pod.name());
    status.add_pod_ips(absl::StrCat("10.0.0.", ++next_ip_));
    *status.mutable_start_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
    for (const v1::Container& c : pod.containers()) {
      v1::ContainerStatus* cs = status.add_container_statuses();
      cs->set_name(c.name());
      cs->set_image(c.image());
      cs->set_ready(true);
      cs->set_started(true);
      cs->set_container_id(absl::StrCat("fake://", pod.uid(), "/", c.name()));
      *cs->mutable_state()->mutable_running()->mutable_started_at() =
          google::protobuf::util::TimeUtil::GetCurrentTime();
    }
    pods_by_uid_[pod.uid()] = status;
    PublishLocked(v1::WatchPodStatusResponse::TYPE_STATUS, status);
  }

  void PublishLocked(v1::WatchPodStatusResponse::Type type, const v1::PodStatus& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::WatchPodStatusResponse event;
    event.set_type(type);
    *event.mutable_status() = status;
    for (const auto& w : watchers_) w->queue.push_back(event);
  }

  grpc::Status Watch(grpc::ServerContext* ctx,
                     grpc::ServerWriter<v1::WatchPodStatusResponse>* out) {
    auto watcher = std::make_shared<Watcher>();
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [uid, status] : pods_by_uid_) {
        v1::WatchPodStatusResponse event;
        event.set_type(v1::WatchPodStatusResponse::TYPE_STATUS);
        *event.mutable_status() = status;
        watcher->queue.push_back(event);
      }
      v1::WatchPodStatusResponse synced;
      synced.set_type(v1::WatchPodStatusResponse::TYPE_SYNCED);
      watcher->queue.push_back(synced);
      watchers_.push_back(watcher);
    }
    while (!ctx->IsCancelled()) {
      std::deque<v1::WatchPodStatusResponse> batch;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return shutting_down_ || !watcher->queue.empty();
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(100));
        if (shutting_down_) break;
        batch.swap(watcher->queue);
      }
      bool ok = true;
      for (const auto& e : batch) ok = ok && out->Write(e);
      if (!ok) break;
    }
    absl::MutexLock lock(&mu_);
    std::erase(watchers_, watcher);
    return grpc::Status::OK;
  }

  const Options options_;
  IdentityImpl identity_;
  PodsImpl pods_;
  absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  absl::Status probe_failure_ ABSL_GUARDED_BY(mu_);
  int next_ip_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, v1::PodStatus> pods_by_uid_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Pod> last_pod_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

FakePlugin::FakePlugin(const std::string& socket_path, Options options)
    : socket_path_(socket_path), service_(std::make_unique<Backend>(std::move(options))) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address(), grpc::InsecureServerCredentials());
  service_->Register(builder);
  server_ = builder.BuildAndStart();
}

FakePlugin::~FakePlugin() {
  service_->ShutDown();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void FakePlugin::FailWith(absl::Status status) { service_->FailWith(std::move(status)); }
void FakePlugin::FailProbesWith(absl::Status status) {
  service_->FailProbesWith(std::move(status));
}
void FakePlugin::SetStatus(const v1::PodStatus& status) { service_->SetStatus(status); }
void FakePlugin::Reset() { service_->Reset(); }
std::vector<std::string> FakePlugin::Calls(const std::string& rpc) {
  return service_->Calls(rpc);
}
std::optional<v1::Pod> FakePlugin::LastPod(const std::string& uid) {
  return service_->LastPod(uid);
}
bool FakePlugin::Has(const std::string& uid) { return service_->Has(uid); }
void FakePlugin::AddRunning(const std::string& uid, const std::string& ns,
                            const std::string& name) {
  service_->AddRunning(uid, ns, name);
}

bool FakePlugin::WaitForCalls(const std::string& rpc, size_t count) {
  absl::Time deadline = absl::Now() + kWaitLimit;
  while (Calls(rpc).size() < count) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

json TestPod(const std::string& name, const std::string& uid) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "ns"}, {"uid", uid},
                        {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
          {"spec",
           {{"nodeName", "vnode"},
            {"restartPolicy", "Always"},
            {"containers", json::array({{{"name", "app"}, {"image", "nginx:1"}}})}}},
          {"status", {{"phase", "Pending"}}}};
}

}  // namespace vkhost::pods::testing
