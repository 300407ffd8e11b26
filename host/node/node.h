// host/node: the virtual node's Node object and its Lease.
//
// The NodeController registers the Node named by --node-name (or adopts the
// one a previous run left), keeps its status true to what the plugin reports
// (capacity, allocatable, conditions, system info) and to whether the plugin
// is reachable at all, renews the node's Lease in kube-node-lease so the
// node-lifecycle controller sees a live node, and recreates the Node when
// someone deletes it. It works as the kubelet does: every renew interval
// (10 s) it renews the Lease and reads the Node; it patches the Node's status
// only when something other than heartbeat times changed, or when the last
// patch is older than the report interval (1 minute).
//
// The pure functions below build the objects and are what the unit tests pin
// down; the controller adds the timing and the API calls.
#ifndef VKHOST_HOST_NODE_NODE_H_
#define VKHOST_HOST_NODE_NODE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "host/kube/client.h"
#include "nlohmann/json.hpp"
#include "vkhost/provider/v1/node.pb.h"

namespace vkhost::plugin {
class PluginSupervisor;
}

namespace vkhost::node {

namespace v1 = ::vkhost::provider::v1;

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // "NoSchedule", "PreferNoSchedule" or "NoExecute"
};

// What the operator configures about the node.
struct NodeConfig {
  std::string name;
  // The address the API server reaches the kubelet API on.
  std::string internal_ip;
  int kubelet_port = 10250;
  // Operator labels; they win over plugin labels and defaults.
  std::map<std::string, std::string> labels;
  // Replaces the default taint virtual-kubelet.io/provider=<plugin>:NoSchedule
  // when set (an empty vector means no taint at all).
  std::optional<std::vector<Taint>> taints;
  // Used where the plugin reports nothing.
  std::map<std::string, std::string> default_capacity = {
      {"cpu", "20"}, {"memory", "100Gi"}, {"pods", "110"}};
  std::string kubelet_version = "v" VKHOST_VERSION "-vkhost";
  absl::Duration lease_duration = absl::Seconds(40);
  absl::Duration renew_interval = absl::Seconds(10);
  absl::Duration status_report_interval = absl::Minutes(1);
};

// What the host knows about its plugin when it builds the node status.
struct PluginView {
  std::string name;  // empty while no plugin ever connected
  std::string version;
  bool connected = false;
  bool ready = false;
  std::string not_ready_message;
  // The plugin's last NodeStatus, if it reports node facts at all.
  std::optional<v1::NodeStatus> reported;
};

// The Node to create: metadata (labels, no taints there) and spec (taints).
// Status is added separately with BuildNodeStatus.
nlohmann::json BuildNode(const NodeConfig& config, const PluginView& plugin);

// The taints the node carries for `plugin_name`.
std::vector<Taint> EffectiveTaints(const NodeConfig& config,
                                   const std::string& plugin_name);

// The node's desired `status`. `current` is the Node as the API server has it
// (or null): its conditions' transition times survive when their status did
// not change. Heartbeat times are `now`.
nlohmann::json BuildNodeStatus(const NodeConfig& config, const PluginView& plugin,
                               const nlohmann::json& current, absl::Time now);

// True when `next` differs from `current` in anything but heartbeat times.
bool StatusChanged(const nlohmann::json& current, const nlohmann::json& next);

// The Lease object for the node, owned by the Node so that deleting the Node
// deletes it too.
nlohmann::json BuildLease(const NodeConfig& config, const std::string& node_uid,
                          absl::Time now);


// Keeps the Node and Lease alive. Thread-safe. One background thread does
// all the API work; Start registers synchronously so the caller knows the
// node exists before it starts serving pods.
class NodeController {
 public:
  // Borrows `client` and `supervisor`; both must outlive the controller.
  NodeController(NodeConfig config, kube::KubeClient& client,
                 plugin::PluginSupervisor& supervisor);
  ~NodeController();  // Stop()s.
  NodeController(const NodeController&) = delete;
  NodeController& operator=(const NodeController&) = delete;

  // Creates the Node, or adopts an existing one of that name (updating its
  // labels, taints and status), creates or renews the Lease, then starts the
  // background thread. Fails with the API error when the Node can be neither
  // created nor read (bad credentials, no RBAC rights).
  absl::Status Start();

  // Stops the background thread. Leaves the Node and Lease in place: the
  // node goes NotReady through the node-lifecycle controller when the Lease
  // expires, as with a stopped kubelet. Idempotent.
  void Stop();

  // The node's UID as registered (empty before Start).
  std::string uid() const;

  // Wakes the controller to re-read the plugin's node facts and push status
  // now, e.g. after a plugin (re)connect.
  void Poke();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vkhost::node

#endif  // VKHOST_HOST_NODE_NODE_H_
