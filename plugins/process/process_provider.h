// ProcessProvider: the vkhost provider plugin `vkhost-process-plugin`, which
// runs every container of a pod as a real local process tree.
//
// It puts the protocol's RPCs in front of one PodRuntime per pod
// (pod_runtime.h): pods are created, adopted from the state dir after a
// plugin restart, deleted and forgotten there; logs come from the shims'
// log files (log_file.h); exec runs in the container's environment
// (container_exec.h); attach follows the log and writes to the container's
// stdin FIFO; port-forward connects to 127.0.0.1 on the pod's host port;
// stats come from /proc; the node is this machine (CPU count, MemTotal, a
// pods limit by flag, pressure conditions from /proc/meminfo, the state
// dir's filesystem and the pid count). main.cc maps the flags onto
// ProcessConfig and also dispatches the hidden `shim` subcommand (shim.h).
//
// Thread-safe, as sdk::Provider requires.
#ifndef VKHOST_PLUGINS_PROCESS_PROCESS_PROVIDER_H_
#define VKHOST_PLUGINS_PROCESS_PROCESS_PROVIDER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "plugins/process/image_map.h"
#include "plugins/process/pod_runtime.h"
#include "plugins/process/pod_state.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::process {

struct ProcessConfig {
  std::string state_dir;
  ImageMap images = ImageMap::Defaults();
  RuntimeConfig runtime;
  int max_pods = 110;
  // "auto": use mount namespaces when the machine allows; "off": never.
  std::string mount_namespaces = "auto";
};

class ProcessProvider final : public sdk::Provider {
 public:
  // Probes the machine's isolation features (one log line each), creates
  // the state dir and adopts the pods found there. FAILED_PRECONDITION when
  // the state dir is unusable.
  static absl::StatusOr<std::unique_ptr<ProcessProvider>> Create(ProcessConfig config);
  // Stops the pod threads; leaves the workloads running for the next start.
  ~ProcessProvider() override;

  v1::GetPluginInfoResponse PluginInfo() override;
  std::vector<v1::Capability> Capabilities() override;
  absl::StatusOr<v1::NodeStatus> GetNode(const v1::GetNodeRequest& request) override;
  absl::Status WatchNode(const v1::WatchNodeRequest& request,
                         sdk::StreamWriter<v1::NodeStatus>& out) override;
  absl::Status CreatePod(const v1::Pod& pod) override;
  absl::Status UpdatePod(const v1::Pod& pod) override;
  absl::Status DeletePod(const v1::PodRef& pod,
                         std::optional<int64_t> grace_period_seconds) override;
  absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef& pod) override;
  absl::StatusOr<std::vector<v1::PodStatus>> ListPods() override;
  absl::Status ContainerLogs(const v1::ContainerLogsRequest& request,
                             sdk::StreamWriter<v1::ContainerLogsResponse>& out) override;
  absl::StatusOr<v1::ExitStatus> Exec(const v1::ExecStart& start,
                                      sdk::ProcessSession& session) override;
  absl::StatusOr<v1::ExitStatus> Attach(const v1::AttachStart& start,
                                        sdk::ProcessSession& session) override;
  absl::Status PortForward(const v1::PortForwardStart& start,
                           sdk::PortForwardSession& session) override;
  absl::StatusOr<v1::GetStatsSummaryResponse> GetStatsSummary() override;

 private:
  explicit ProcessProvider(ProcessConfig config);
  // The pod, unless unknown or forgotten: NOT_FOUND.
  absl::StatusOr<std::shared_ptr<PodRuntime>> Find(const std::string& uid);
  PodRuntime::Deps Deps();
  v1::NodeStatus NodeStatus() const;
  void Janitor();

  ProcessConfig config_;
  PodStateStore store_;
  PortAllocator ports_;
  const absl::Time started_ = absl::Now();

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<PodRuntime>> pods_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread janitor_;
};

// Probes whether this process may create a mount namespace (in a child,
// leaving the plugin untouched). Returns an empty string when it may,
// otherwise why not.
std::string ProbeMountNamespace();
// The cgroup v2 directory for containers when the unified hierarchy is
// mounted and writable (created with the memory and cpu controllers
// enabled), or an empty string and `why_not`.
std::string PrepareCgroupParent(std::string* why_not);

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_PROCESS_PROVIDER_H_
