// vkhost-broken-plugin: a deliberately non-conforming plugin, so the
// conformance suite's own test can show that it catches violations.
//
// The handshake, Identity and the happy paths are right (it is built on the
// SDK); these MUSTs of spec.md are broken on purpose:
//   - CreatePod of a UID it already has answers ALREADY_EXISTS (§5.1.2);
//   - DeletePod of an unknown UID answers NOT_FOUND (§5.1.3);
//   - GetPodStatus of an unknown UID answers OK with an empty status (§5.1.5);
//   - it lists CAPABILITY_EXEC but does not implement Exec (§3).
// Never use it for anything else.
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "vkhost/sdk/provider.h"

namespace {

namespace v1 = ::vkhost::sdk::v1;

v1::PodStatus RunningStatus(const v1::Pod& pod) {
  v1::PodStatus status;
  status.mutable_pod()->set_uid(pod.uid());
  status.mutable_pod()->set_namespace_(pod.namespace_());
  status.mutable_pod()->set_name(pod.name());
  for (const v1::Container& container : pod.init_containers()) {
    v1::ContainerStatus* c = status.add_init_container_statuses();
    c->set_name(container.name());
    c->set_image(container.image());
    c->mutable_state()->mutable_terminated()->set_reason("Completed");
  }
  for (const v1::Container& container : pod.containers()) {
    v1::ContainerStatus* c = status.add_container_statuses();
    c->set_name(container.name());
    c->set_image(container.image());
    c->mutable_state()->mutable_running();
    c->set_ready(true);
    c->set_started(true);
  }
  return status;
}

// Keeps pods in memory, all of them "running" at once. Thread-safe.
class BrokenProvider final : public vkhost::sdk::Provider {
 public:
  v1::GetPluginInfoResponse PluginInfo() override {
    v1::GetPluginInfoResponse info;
    info.set_name("broken");
    info.set_version("0.0.1");
    return info;
  }

  // Violation: EXEC is listed, yet Exec keeps the SDK's UNIMPLEMENTED.
  std::vector<v1::Capability> Capabilities() override {
    return {v1::CAPABILITY_EXEC};
  }

  absl::Status CreatePod(const v1::Pod& pod) override {
    if (pod.uid().empty()) return absl::InvalidArgumentError("pod has no UID");
    if (pod.containers().empty()) {
      return absl::InvalidArgumentError("pod has no containers");
    }
    absl::MutexLock lock(&mu_);
    if (pods_.count(pod.uid()) > 0) {
      // Violation: a known UID must be success.
      return absl::AlreadyExistsError(
          absl::StrCat("pod ", pod.uid(), " already exists"));
    }
    pods_[pod.uid()] = RunningStatus(pod);
    return absl::OkStatus();
  }

  absl::Status DeletePod(const v1::PodRef& pod,
                         std::optional<int64_t>) override {
    if (pod.uid().empty()) return absl::InvalidArgumentError("pod has no UID");
    absl::MutexLock lock(&mu_);
    if (pods_.erase(pod.uid()) == 0) {
      // Violation: deleting an unknown UID must be success.
      return absl::NotFoundError(absl::StrCat("pod ", pod.uid(), " not found"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef& pod) override {
    absl::MutexLock lock(&mu_);
    auto it = pods_.find(pod.uid());
    // Violation: an unknown UID must be NOT_FOUND, not an empty status.
    if (it == pods_.end()) return v1::PodStatus();
    return it->second;
  }

  absl::StatusOr<std::vector<v1::PodStatus>> ListPods() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::PodStatus> all;
    for (const auto& [uid, status] : pods_) all.push_back(status);
    return all;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, v1::PodStatus> pods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char* argv[]) {
  vkhost::sdk::ParseCommandLine(argc, argv);
  BrokenProvider provider;
  return vkhost::sdk::ServeMain(provider);
}
