// host/pods internals: the PodController's state, shared by the reconcile
// side (reconcile.cc: workers) and the plugin-status side (plugin_status.cc:
// the status thread). See pods.h for the contract.
#ifndef VKHOST_HOST_PODS_INTERNAL_CONTROLLER_H_
#define VKHOST_HOST_PODS_INTERNAL_CONTROLLER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "host/podstatus/pod_status.h"
#include "host/pods/internal/decide.h"
#include "host/pods/pods.h"

namespace vkhost::pods {

namespace v1 = ::vkhost::provider::v1;

// What the controller remembers about one pod UID. Small on purpose: the pod
// object itself lives only in the informer cache.
struct PodRecord {
  std::string ns;
  std::string name;
  bool in_plugin = false;
  // epoch_ when CreatePod last succeeded: a plugin snapshot that began
  // earlier may not list the pod yet, so it does not count as absence.
  uint64_t in_plugin_epoch = 0;
  bool delete_sent = false;
  // CreatePod succeeded in this process (events start from nothing).
  bool created_here = false;
  std::optional<v1::PodStatus> report;
  // The container marks events were last derived from.
  std::optional<std::vector<internal::ContainerMark>> marks;
  // Set when the plugin rejected the pod: reason and message for its status.
  std::optional<std::pair<std::string, std::string>> rejection;
  uint64_t sent_fingerprint = 0;
  uint64_t sent_hash = 0;
  absl::Time refresh_at = absl::InfiniteFuture();
  // Resolution failed for a missing object; NotifyObjectsChanged retries.
  bool waiting_on_objects = false;
  // The last status patch: a hash of the status sent, the cached
  // resourceVersion it was computed from, and the version it produced. Lets
  // a reconcile that runs before the informer caught up skip a repeat.
  uint64_t written_hash = 0;
  std::string written_base_rv;
  std::string written_result_rv;
  // The last Warning Event recorded (reason + message) and when.
  std::string last_warning;
  absl::Time last_warning_at = absl::InfinitePast();
};

// Shared with the informer handlers and the supervisor's connect listener,
// which may outlive the controller.
struct ControllerHooks {
  absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  // Plugin connects seen by the listener; the status thread wakes on change.
  uint64_t connects ABSL_GUARDED_BY(mu) = 0;
  // The open WatchPodStatus call, cancelled on stop and on reconnect.
  grpc::ClientContext* watch_context ABSL_GUARDED_BY(mu) = nullptr;
};

class PodController::Impl {
 public:
  Impl(PodControllerOptions options, kube::KubeClient& client,
       informer::Informer& pods, plugin::PluginSupervisor& supervisor,
       resolve::ObjectSource& objects, events::EventRecorder& events);
  ~Impl();

  void Start();
  void Stop();
  void NotifyObjectsChanged(const std::string& namespace_name);
  bool Synced() const { return synced_.load(); }

 private:
  // How a reconcile step ended.
  enum class Outcome { kOk, kRetry, kGiveUp };

  // Everything one reconcile pass works from, read once at its start.
  struct Pass {
    std::string uid;
    std::string ns;
    std::string name;
    informer::ObjectPtr pod;  // nullptr: gone from the API server
    std::optional<v1::PodStatus> report;
    internal::PodFacts facts;  // facts.report points into `report`
    std::optional<std::pair<std::string, std::string>> rejection;
    bool created_here = false;
    bool can_update = false;
    absl::Time now;
  };

  // --- reconcile.cc: worker side ---
  bool Process(const std::string& uid);
  bool Reconcile(const std::string& uid);
  bool Gather(const std::string& uid, Pass& pass);
  Outcome RunPluginStep(const Pass& pass, const internal::Plan& plan);
  Outcome Create(const Pass& pass);
  Outcome Update(const Pass& pass);
  Outcome DeleteInPlugin(const Pass& pass, std::optional<int64_t> grace);
  Outcome ResolveFailed(const Pass& pass, const resolve::ResolveResult& result,
                        bool creating);
  Outcome Reject(const Pass& pass, const std::string& message);
  void RecordSent(const Pass& pass, const resolve::ResolvedPod& resolved, bool created);
  void Adopt(const Pass& pass);
  Outcome SyncStatus(const Pass& pass);
  Outcome WriteStatus(const Pass& pass, const nlohmann::json& next);
  Outcome DeleteApiObject(const Pass& pass);
  void Forget(const std::string& uid);
  void EmitContainerEvents(const Pass& pass);
  // Records a Warning Event unless the same one was recorded recently;
  // returns whether it did (callers log at WARNING then, DEBUG otherwise).
  bool Warn(const Pass& pass, const std::string& reason, const std::string& message);
  void Normal(const Pass& pass, const internal::PodEvent& event);
  podstatus::StatusContext StatusContextNow() const;

  // --- plugin_status.cc: status thread ---
  void StatusLoop();
  bool WaitForInformer();
  absl::Status Resync();
  absl::Status Poll();
  absl::Status WatchStatuses(plugin::PluginConnection& connection, bool* reached_sync);
  // Applies a complete list of the plugin's pods taken at `epoch`.
  void ApplySnapshot(const std::vector<v1::PodStatus>& reports, uint64_t epoch,
                     bool resync);
  // Stores a report; true when it differs from the last one.
  bool StoreReportLocked(const v1::PodStatus& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks every record not in `seen` as absent from the plugin; returns the
  // UIDs that changed (all known UIDs with `all`).
  std::vector<std::string> MarkAbsentLocked(const absl::flat_hash_set<std::string>& seen,
                                            uint64_t epoch, bool all)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PluginForgot(const v1::PodStatus& last);
  // Sleeps up to `duration`; returns true early when stopping or when the
  // plugin reconnected since `seen_connects`.
  bool Pause(uint64_t seen_connects, absl::Duration duration);
  uint64_t Connects();
  bool Stopping();
  void StartWorkers();

  const PodControllerOptions options_;
  kube::KubeClient& client_;
  informer::Informer& pods_;
  plugin::PluginSupervisor& supervisor_;
  plugin::PluginClient plugin_;
  resolve::ObjectSource& objects_;
  events::EventRecorder& events_;
  const std::shared_ptr<ControllerHooks> hooks_;
  const std::shared_ptr<workqueue::WorkQueue> queue_;
  // Counts plugin snapshots (ListPods, stream openings); see in_plugin_epoch.
  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> synced_{false};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, PodRecord> records_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<workqueue::WorkerPool> pool_ ABSL_GUARDED_BY(mu_);

  // Owner thread only.
  bool started_ = false;
  std::thread status_thread_;
};

}  // namespace vkhost::pods

#endif  // VKHOST_HOST_PODS_INTERNAL_CONTROLLER_H_
