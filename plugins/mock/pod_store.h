// PodStore: the mock plugin's pods, in memory, keyed by UID.
//
// It is the whole "backend": it gives each pod an IP, runs its containers'
// built-in programs (commands.h) on one timer thread, follows the kubelet's
// rules for init containers, restart policy, back-off and graceful deletion,
// keeps each container's log (container_log.h), and publishes every status
// change to the SDK's PodStatusFeed. MockProvider (mock_provider.h) puts the
// RPCs in front of it.
//
// Lifecycle of a container: Waiting(ContainerCreating) → Running after the
// running delay (init containers first, one by one; app containers wait as
// PodInitializing) → Terminated when its program exits (exit 0 "Completed",
// otherwise "Error") → per restart policy Waiting(CrashLoopBackOff) and
// Running again after a back-off that doubles per restart (max 5 s).
// DeletePod stops running containers with exit 143 ("Error") after
// min(grace, stop delay), or at once for grace 0; never-started containers
// become Terminated 0 "Completed". Then the pod is forgotten.
#ifndef VKHOST_PLUGINS_MOCK_POD_STORE_H_
#define VKHOST_PLUGINS_MOCK_POD_STORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "plugins/mock/commands.h"
#include "plugins/mock/container_log.h"
#include "plugins/mock/scheduler.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::mock {

struct PodStoreConfig {
  absl::Duration running_delay = absl::Milliseconds(100);
  absl::Duration log_interval = absl::Seconds(1);
  absl::Duration restart_backoff = absl::Milliseconds(200);
  absl::Duration stop_delay = absl::Milliseconds(100);
  size_t max_log_lines = 10000;
  std::string pod_cidr = "10.250.0.0/16";
  // CreatePod of a pod using one of these images is INVALID_ARGUMENT.
  std::set<std::string> rejected_images;
};

// What attach sees of a container: its new output and its exit. Filled by
// the store, drained by the attach session's thread. Thread-safe.
class AttachChannel {
 public:
  struct Chunk {
    bool is_stderr = false;
    std::string data;
  };
  // Output so far (cleared) and the exit code once the program ended.
  std::vector<Chunk> Take(std::optional<int>* exit_code);
  void Push(bool is_stderr, absl::string_view data);
  void Exited(int code);

 private:
  friend class PodStore;
  std::string uid_;
  bool init_ = false;
  size_t index_ = 0;
  uint64_t instance_ = 0;
  absl::Mutex mu_;
  std::vector<Chunk> chunks_ ABSL_GUARDED_BY(mu_);
  std::optional<int> exit_code_ ABSL_GUARDED_BY(mu_);
};

// Facts an exec needs about a running container.
struct ExecTarget {
  std::vector<std::pair<std::string, std::string>> env;
  std::string identity;  // ns/pod/container
};

// Thread-safe. Every public method takes the store lock briefly; none blocks
// on I/O. Timer callbacks run on the store's own TimerScheduler thread.
class PodStore {
 public:
  // INVALID_ARGUMENT when config.pod_cidr is not an IPv4 CIDR.
  static absl::StatusOr<std::unique_ptr<PodStore>> Create(
      PodStoreConfig config, sdk::PodStatusFeed& feed);
  ~PodStore();

  absl::Status CreatePod(const v1::Pod& pod);
  absl::Status UpdatePod(const v1::Pod& pod);
  absl::Status DeletePod(const v1::PodRef& ref,
                         std::optional<int64_t> grace_period_seconds);
  absl::StatusOr<v1::PodStatus> GetPodStatus(const std::string& uid);
  std::vector<v1::PodStatus> ListPods();

  // The log of the current (or, with `previous`, the last terminated)
  // instance. NOT_FOUND for an unknown pod, container or previous instance.
  absl::StatusOr<std::shared_ptr<const ContainerLog>> Log(
      const std::string& uid, const std::string& container, bool previous);
  // NOT_FOUND for an unknown pod or container, FAILED_PRECONDITION when the
  // container is not running.
  absl::StatusOr<ExecTarget> PrepareExec(const std::string& uid,
                                         const std::string& container);
  absl::StatusOr<std::shared_ptr<AttachChannel>> Attach(
      const std::string& uid, const std::string& container);
  // Feeds an attach session's stdin to the container's program; ignored when
  // that instance has ended.
  void WriteStdin(const AttachChannel& channel, absl::string_view data);
  void CloseStdin(const AttachChannel& channel);
  bool HasPod(const std::string& uid);

  v1::GetStatsSummaryResponse Stats();

 // Internal; public only so helpers in the .cc can name it.
  struct Container;

 private:
  struct Pod;
  PodStore(PodStoreConfig config, sdk::PodStatusFeed& feed, uint32_t network,
           uint32_t size);

  Container* FindContainer(Pod& pod, const std::string& name, bool* init)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The running container `name` of pod `uid` for exec and attach:
  // NOT_FOUND for an unknown pod or container, FAILED_PRECONDITION when it
  // is not running.
  absl::StatusOr<Container*> RunningContainer(const std::string& uid,
                                              const std::string& name,
                                              Pod** pod, bool* init)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Container* ContainerAt(const std::string& uid, bool init, size_t index,
                         Pod** pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleStart(Pod& pod, bool init, size_t index, absl::Duration delay)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartContainer(Pod& pod, bool init, size_t index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns true when the container's status changed.
  bool Apply(Pod& pod, bool init, size_t index, ProcessOutput output)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ContainerExited(Pod& pod, bool init, size_t index, int code)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceInit(Pod& pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnTimer(const std::string& uid, bool init, size_t index,
               uint64_t instance);
  void KillPod(const std::string& uid, uint64_t token);
  // Terminates every container, publishes, forgets the pod.
  void TerminateAndForget(const std::string& uid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::PodStatus BuildStatus(const Pod& pod) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(const Pod& pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> AllocateIp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseIp(const std::string& ip) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PodStoreConfig config_;
  sdk::PodStatusFeed& feed_;
  const uint32_t network_;  // first address of the CIDR, host order
  const uint32_t size_;     // addresses in the CIDR
  const absl::Time created_ = absl::Now();

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Pod>> pods_
      ABSL_GUARDED_BY(mu_);
  std::set<uint32_t> used_offsets_ ABSL_GUARDED_BY(mu_);
  uint32_t next_offset_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_kill_token_ ABSL_GUARDED_BY(mu_) = 0;
  // CPU time of container instances that have ended, for the node total.
  uint64_t retired_cpu_ ABSL_GUARDED_BY(mu_) = 0;

  // Last member: destroyed (and joined) first, before what callbacks use.
  TimerScheduler scheduler_;
};

// Parses "a.b.c.d/len" into the network address and the number of
// addresses. INVALID_ARGUMENT otherwise.
absl::Status ParseCidr(absl::string_view cidr, uint32_t* network,
                       uint32_t* size);

}  // namespace vkhost::mock

#endif  // VKHOST_PLUGINS_MOCK_POD_STORE_H_
