// The Kubernetes side of vkhost wired together: informers, the Node and its
// Lease, Events, and the pod controller, around one plugin supervisor.
//
// Private to host/app. Start and Stop are called from the main thread; the
// components run on their own threads.
#ifndef VKHOST_HOST_APP_VIRTUAL_NODE_H_
#define VKHOST_HOST_APP_VIRTUAL_NODE_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "host/kube/client.h"
#include "host/plugin/plugin.h"

namespace vkhost::app {

struct VirtualNodeSettings {
  std::string node_name;
  std::string node_ip;
  int kubelet_port = 10250;
  std::map<std::string, std::string> node_labels;
  int pod_workers = 10;
  absl::Duration cache_sync_timeout = absl::Minutes(2);
};

class VirtualNode {
 public:
  // Borrows `client` and `supervisor`; the supervisor must be started.
  VirtualNode(VirtualNodeSettings settings, kube::KubeClient& client,
              plugin::PluginSupervisor& supervisor);
  ~VirtualNode();  // Stop()s.
  VirtualNode(const VirtualNode&) = delete;
  VirtualNode& operator=(const VirtualNode&) = delete;

  // Syncs the caches, registers the node and starts the pod controller.
  // Fails with a message for the operator when the caches cannot sync (no
  // RBAC rights, API server unreachable) or the node cannot be registered.
  absl::Status Start();

  // Stops everything, pods first. Idempotent.
  void Stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The first non-loopback IPv4 address of an interface that is up, else
// 127.0.0.1: the address the API server uses to reach the kubelet API when
// --node-ip is not given.
std::string DetectNodeIp();

}  // namespace vkhost::app

#endif  // VKHOST_HOST_APP_VIRTUAL_NODE_H_
