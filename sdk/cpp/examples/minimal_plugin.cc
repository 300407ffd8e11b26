// The smallest useful vkhost plugin: it "runs" every container the moment a
// pod arrives and forgets the pod when asked to delete it. docs/
// plugin-authors.md walks through it; the test suite runs vkhost-conformance
// against it, so what the guide shows is known to conform.
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "vkhost/sdk/provider.h"

namespace v1 = vkhost::provider::v1;

class MinimalProvider : public vkhost::sdk::Provider {
 public:
  v1::GetPluginInfoResponse PluginInfo() override {
    v1::GetPluginInfoResponse info;
    info.set_name("minimal");
    info.set_version("1.0.0");
    return info;
  }

  std::vector<v1::Capability> Capabilities() override {
    return {v1::CAPABILITY_WATCH_POD_STATUS};
  }

  absl::Status CreatePod(const v1::Pod& pod) override {
    if (pod.uid().empty() || pod.containers().empty()) {
      return absl::InvalidArgumentError("a pod needs a uid and containers");
    }
    absl::MutexLock lock(&mu_);
    if (pods_.count(pod.uid())) return absl::OkStatus();  // idempotent by UID
    v1::PodStatus& status = pods_[pod.uid()];
    status.mutable_pod()->set_uid(pod.uid());
    status.mutable_pod()->set_namespace_(pod.namespace_());
    status.mutable_pod()->set_name(pod.name());
    status.mutable_start_time()->set_seconds(absl::ToUnixSeconds(absl::Now()));
    // Init containers "ran to completion" instantly; app containers run.
    for (const v1::Container& c : pod.init_containers()) {
      v1::ContainerStatus* cs = status.add_init_container_statuses();
      cs->set_name(c.name());
      cs->set_image(c.image());
      auto* done = cs->mutable_state()->mutable_terminated();
      done->set_reason("Completed");
      *done->mutable_started_at() = status.start_time();
      *done->mutable_finished_at() = status.start_time();
    }
    for (const v1::Container& c : pod.containers()) {
      v1::ContainerStatus* cs = status.add_container_statuses();
      cs->set_name(c.name());
      cs->set_image(c.image());
      cs->set_ready(true);
      cs->set_started(true);
      *cs->mutable_state()->mutable_running()->mutable_started_at() = status.start_time();
    }
    pod_status_feed().Publish(status);
    return absl::OkStatus();
  }

  absl::Status DeletePod(const v1::PodRef& pod, std::optional<int64_t>) override {
    absl::MutexLock lock(&mu_);
    if (pods_.erase(pod.uid()) > 0) pod_status_feed().PublishDeleted(pod);
    return absl::OkStatus();  // deleting an unknown pod is success
  }

  absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef& pod) override {
    absl::MutexLock lock(&mu_);
    auto it = pods_.find(pod.uid());
    if (it == pods_.end()) return absl::NotFoundError("no pod " + pod.uid());
    return it->second;
  }

  absl::StatusOr<std::vector<v1::PodStatus>> ListPods() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::PodStatus> out;
    for (const auto& [uid, status] : pods_) out.push_back(status);
    return out;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, v1::PodStatus> pods_ ABSL_GUARDED_BY(mu_);
};

int main(int argc, char** argv) {
  vkhost::sdk::ParseCommandLine(argc, argv);
  MinimalProvider provider;
  return vkhost::sdk::ServeMain(provider);
}
