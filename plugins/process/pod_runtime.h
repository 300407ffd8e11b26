// PodRuntime: one pod of the process plugin, run like the kubelet runs it.
//
// Each pod has a thread that steps its state machine every tick: it notices
// container instances that ended (from the shim's exit.json, or a shim that
// vanished), applies the restart policy with CrashLoopBackOff back-off
// (lifecycle.h), starts init containers one by one and then the app
// containers (each instance through a shim, shim.h), runs liveness,
// readiness and startup probes and postStart/preStop hooks, and performs
// graceful termination (preStop, SIGTERM to the process group, SIGKILL of
// the whole tree at the end of the grace period). Every change is saved to
// the state dir (pod_state.h) and published to the SDK's PodStatusFeed.
//
// Pods share the host's network: the pod IP is the node IP, and every
// declared containerPort is backed by a host port the plugin allocates
// (exported to the container as VKHOST_PORT_<containerPort>; hostPort, when
// set, is used as is). Probes, hooks and port-forward translate ports the
// same way.
//
// Thread-safety: public methods are thread-safe (RPC threads call them while
// the pod thread runs); they hold the pod lock briefly and never block on
// processes.
#ifndef VKHOST_PLUGINS_PROCESS_POD_RUNTIME_H_
#define VKHOST_PLUGINS_PROCESS_POD_RUNTIME_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "plugins/process/container_exec.h"
#include "plugins/process/image_map.h"
#include "plugins/process/lifecycle.h"
#include "plugins/process/pod_state.h"
#include "plugins/process/shim.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::process {

struct RuntimeConfig {
  std::string self_exe;  // this binary, started as `shim`
  absl::Duration restart_backoff = absl::Seconds(10);
  int64_t log_max_bytes = 10 << 20;
  bool mount_namespace = false;  // bind-mount volumes at their mount paths
  std::string cgroup_parent;     // cgroup v2 directory for containers; "": rlimits
  std::string pod_ip = "127.0.0.1";
  absl::Duration tick = absl::Milliseconds(100);
};

// Host ports handed to containerPorts. Thread-safe.
class PortAllocator {
 public:
  // A currently free TCP port not handed out before; 0 when none found.
  int Allocate();
  void Reserve(int port);
  void Release(int port);

 private:
  absl::Mutex mu_;
  std::set<int> used_ ABSL_GUARDED_BY(mu_);
};

class PodRuntime {
 public:
  struct Deps {
    const ImageMap& images;
    const RuntimeConfig& config;
    PodStateStore& store;
    sdk::PodStatusFeed& feed;
    PortAllocator& ports;
  };

  // Checks a new pod, materialises its volumes, allocates its ports and
  // saves it; the pod thread starts with Start(). INVALID_ARGUMENT for a pod
  // this backend can never run (unknown image, no command and no
  // entrypoint, unsupported volume), UNAVAILABLE when the state dir fails.
  static absl::StatusOr<std::unique_ptr<PodRuntime>> Create(const v1::Pod& pod,
                                                            Deps deps);
  // A pod found in the state dir by a restarted plugin; running instances
  // are re-adopted.
  static std::unique_ptr<PodRuntime> Adopt(PodStateStore::Loaded loaded,
                                           Deps deps);
  // Stops the pod thread. Leaves the workloads running (a plugin restart
  // re-adopts them).
  ~PodRuntime();
  PodRuntime(const PodRuntime&) = delete;
  PodRuntime& operator=(const PodRuntime&) = delete;

  void Start();

  // Starts (or shortens) graceful termination; nullopt: the pod's own
  // terminationGracePeriodSeconds.
  void Delete(std::optional<int64_t> grace_period_seconds);
  // Applies labels, annotations and new volume file contents.
  absl::Status Update(const v1::Pod& pod);
  v1::PodStatus Status() const;
  // Terminated and removed from the state dir: the provider drops it.
  bool Forgotten() const;
  const std::string& uid() const { return uid_; }

  // The instance directory whose log `logs` reads: the current instance, or
  // the one before it with `previous`. NOT_FOUND for an unknown container
  // or no previous instance, FAILED_PRECONDITION before the first start.
  struct InstanceRef {
    std::string dir;
    bool active = false;  // that instance still runs
    bool stdin = false, stdin_once = false, tty = false;
  };
  absl::StatusOr<InstanceRef> Instance(const std::string& container,
                                       bool previous) const;
  // Where `kubectl exec` runs: NOT_FOUND for an unknown container,
  // FAILED_PRECONDITION when it is not running.
  absl::StatusOr<ExecTarget> ExecTargetOf(const std::string& container) const;
  // The host port backing pod port `port` (itself when not declared).
  int HostPort(int port) const;
  v1::PodStats Stats() const;

  // Internal; public so helpers in the .cc can name it.
  struct Container;

 private:
  struct ProbeJob;
  struct HookJob;
  PodRuntime(v1::Pod spec, PodRecord record, Deps deps);

  void Run();
  void Step();
  // The steps below run on the pod thread with mu_ held.
  bool CheckExit(Container& c, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnExit(Container& c, const ExitRecord& exit, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StartDue(absl::Time now, std::vector<HookJob>* hooks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StartInstance(Container& c, absl::Time now, std::vector<HookJob>* hooks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CollectProbes(absl::Time now, std::vector<ProbeJob>* jobs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ApplyProbe(const ProbeJob& job, bool success, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopInstance(Container& c, absl::Duration grace, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool EnforceKills(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // activeDeadlineSeconds: stops every container for good once it passed.
  bool CheckDeadline(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TerminationStep(absl::Time now, std::vector<HookJob>* hooks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ExecTarget TargetOf(const Container& c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Container* Find(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::PodStatus BuildStatus() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveAndPublish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunHooks(const std::vector<HookJob>& hooks, absl::Time deadline);

  const std::string uid_;
  Deps deps_;

  mutable absl::Mutex mu_;
  v1::Pod spec_ ABSL_GUARDED_BY(mu_);
  PodRecord record_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Container>> containers_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool forgotten_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_signals_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_published_ ABSL_GUARDED_BY(mu_);
  // The previous CPU sample of each container instance (container id), for
  // usage_nano_cores between two stats calls.
  struct CpuSample {
    absl::Time time;
    uint64_t nanos = 0;
  };
  mutable std::map<std::string, CpuSample> cpu_samples_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Writes a files volume's contents under `dir`, removing files not in it.
// INVALID_ARGUMENT for a path that is absolute or contains "..".
absl::Status WriteVolumeFiles(const std::string& dir, const v1::FilesVolume& files);

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_POD_RUNTIME_H_
