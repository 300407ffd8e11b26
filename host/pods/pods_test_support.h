// Test support for host/pods: an in-memory API server for pods (list, watch,
// status patches, deletes, events) behind the KubeClient interface, a
// thread-safe ObjectSource, and an in-process plugin serving Identity, Pods
// and health on a unix socket for connect mode.
#ifndef VKHOST_HOST_PODS_PODS_TEST_SUPPORT_H_
#define VKHOST_HOST_PODS_PODS_TEST_SUPPORT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "host/kube/client.h"
#include "host/resolve/resolve.h"
#include "nlohmann/json.hpp"
#include "vkhost/provider/v1/identity.pb.h"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::pods::testing {

namespace v1 = ::vkhost::provider::v1;
using nlohmann::json;

// Pods in memory with resource versions and a watch log. Thread-safe.
class FakeApiServer : public kube::KubeClient {
 public:
  struct Call {
    std::string verb;  // "patch-status", "delete", "event"
    std::string name;
    json body;
  };

  // Adds (or replaces) a pod; returns it as stored.
  json PutPod(json pod);
  // What `kubectl delete --grace-period=N` does to a pod with a kubelet.
  void DeleteGracefully(const std::string& ns, const std::string& name, int64_t grace);
  // Removes the pod at once, as a forced delete does.
  void RemovePod(const std::string& ns, const std::string& name);
  std::optional<json> GetPod(const std::string& ns, const std::string& name);
  std::vector<Call> Calls(const std::string& verb);
  // Event reasons recorded for the pod, in order.
  std::vector<std::string> EventReasons(const std::string& name);
  // Waits until `predicate` holds for the pod (nullopt: absent) or 20 s.
  bool WaitForPod(const std::string& ns, const std::string& name,
                  const std::function<bool(const std::optional<json>&)>& predicate);
  // Waits until `predicate` holds for the call log or 20 s.
  bool WaitForCalls(const std::function<bool(const std::vector<Call>&)>& predicate);

  absl::StatusOr<json> Get(const kube::Target& target) override;
  absl::StatusOr<json> List(const kube::Target& target,
                            const kube::ListOptions& options) override;
  absl::StatusOr<json> Create(const kube::Target& target, const json& body,
                              const kube::WriteOptions& options) override;
  absl::StatusOr<json> Update(const kube::Target& target, const json& body,
                              const kube::WriteOptions& options) override;
  absl::StatusOr<json> Patch(const kube::Target& target, kube::PatchType type,
                             const json& patch, const kube::WriteOptions& options) override;
  absl::StatusOr<json> Delete(const kube::Target& target,
                              const kube::DeleteOptions& options) override;
  absl::Status Watch(const kube::Target& target, const kube::WatchOptions& options,
                     const kube::WatchEventHandler& on_event,
                     kube::WatchCancel* cancel) override;

 private:
  using Key = std::pair<std::string, std::string>;
  json StoreLocked(json pod, kube::WatchEventType type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  uint64_t rv_ ABSL_GUARDED_BY(mu_) = 100;
  std::map<Key, json> pods_ ABSL_GUARDED_BY(mu_);
  struct LoggedEvent {
    uint64_t rv;
    kube::WatchEvent event;
  };
  std::vector<LoggedEvent> log_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

// ConfigMaps in a map, tokens minted on demand. Thread-safe.
class FakeObjects : public resolve::ObjectSource {
 public:
  void PutConfigMap(const std::string& ns, const std::string& name, json data);
  absl::StatusOr<std::shared_ptr<const json>> ConfigMap(const std::string& ns,
                                                        const std::string& name) override;
  absl::StatusOr<std::shared_ptr<const json>> Secret(const std::string& ns,
                                                     const std::string& name) override;
  std::vector<std::shared_ptr<const json>> Services(const std::string& ns) override;
  absl::StatusOr<resolve::Token> ServiceAccountToken(
      const resolve::TokenRequest& request) override;

 private:
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const json>> config_maps_
      ABSL_GUARDED_BY(mu_);
};

// A plugin in this process. Pods run at once (every container running with
// IP 10.0.0.N); DeletePod terminates every container and forgets the pod.
// Thread-safe.
class FakePlugin {
 public:
  struct Options {
    std::vector<v1::Capability> capabilities;
    // CreatePod of a pod with a container of this image is INVALID_ARGUMENT.
    std::string reject_image = "never/runs";
  };
  FakePlugin(const std::string& socket_path, Options options);
  ~FakePlugin();

  std::string address() const { return "unix://" + socket_path_; }
  // Every CreatePod/UpdatePod/DeletePod fails with `status` while not OK.
  void FailWith(absl::Status status);
  // Identity.Probe fails with `status` while not OK (the supervisor then
  // drops the connection and reconnects).
  void FailProbesWith(absl::Status status);
  // Replaces a pod's status and tells watchers, as a backend change would.
  void SetStatus(const v1::PodStatus& status);
  // Forgets every pod, as a plugin restarted without its backend would.
  void Reset();
  std::vector<std::string> Calls(const std::string& rpc);  // UIDs per call
  std::optional<v1::Pod> LastPod(const std::string& uid);
  bool Has(const std::string& uid);
  bool WaitForCalls(const std::string& rpc, size_t count);
  // Adds a pod directly, as one left over from an earlier host run.
  void AddRunning(const std::string& uid, const std::string& ns, const std::string& name);

 private:
  class Backend;
  std::string socket_path_;
  std::unique_ptr<Backend> service_;
  std::unique_ptr<grpc::Server> server_;
};

// A pod bound to node "vnode".
json TestPod(const std::string& name, const std::string& uid);

}  // namespace vkhost::pods::testing

#endif  // VKHOST_HOST_PODS_PODS_TEST_SUPPORT_H_
