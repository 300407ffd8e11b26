// PodStateStore: the process plugin's memory on disk, under --state-dir.
//
// Every pod has a directory <state-dir>/pods/<uid>/ holding pod.pb (the Pod
// message as received, binary protobuf), state.json (the runtime record:
// container statuses, restart counts, back-off, the shim of each running
// instance with its start time so a recycled pid is never adopted, port
// mappings, termination), volumes/<name>/ (the materialised volumes) and
// containers/<name>/<instance>/ (one shim's instance directory, shim.h).
// A restarted plugin loads every pod from here and re-adopts the running
// instances. Writes are atomic (temp file + rename). Not thread-safe per
// pod: the pod's own thread is its only writer.
#ifndef VKHOST_PLUGINS_PROCESS_POD_STATE_H_
#define VKHOST_PLUGINS_PROCESS_POD_STATE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::process {

namespace v1 = ::vkhost::provider::v1;

// The runtime facts of one container that must survive a plugin restart.
struct ContainerRecord {
  std::string name;
  int instance = 0;        // latest instance number; 0: never started
  bool active = false;     // that instance runs (its exit not yet seen)
  pid_t shim_pid = 0;
  uint64_t shim_start_ticks = 0;
  int backoff_consecutive = 0;
  absl::Time next_start = absl::InfinitePast();  // back-off ends
  v1::ContainerStatus status;
};

struct PodRecord {
  std::string uid;
  absl::Time start_time;
  size_t next_init = 0;  // the init container running or about to
  bool terminating = false;
  bool deadline_exceeded = false;  // activeDeadlineSeconds passed: Failed
  absl::Time kill_at = absl::InfiniteFuture();
  std::map<int, int> ports;  // containerPort -> host port
  std::vector<ContainerRecord> init, app;
};

std::string EncodePodRecord(const PodRecord& record);
absl::StatusOr<PodRecord> DecodePodRecord(const std::string& json);

// Files of the pods under one state directory. Thread-safe (no state beyond
// the root path; callers serialise writes per pod).
class PodStateStore {
 public:
  explicit PodStateStore(std::string state_dir);

  // Creates <state-dir>/pods with mode 0700. FAILED_PRECONDITION on failure.
  absl::Status Init();
  std::string PodDir(const std::string& uid) const;
  std::string InstanceDir(const std::string& uid, const std::string& container,
                          int instance) const;

  absl::Status SaveSpec(const v1::Pod& pod);
  absl::Status SaveRecord(const PodRecord& record);

  struct Loaded {
    v1::Pod spec;
    PodRecord record;
  };
  // Every pod with a readable spec and record; unreadable ones are logged
  // and skipped.
  std::vector<Loaded> LoadAll() const;
  void Remove(const std::string& uid);

  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_POD_STATE_H_
