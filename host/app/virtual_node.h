// The Kubernetes side of vkhost wired together: informers, the Node and its
// Lease, Events, the pod controller and the kubelet API server, around one
// plugin supervisor.
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
  // The kubelet API's TLS: serving certificate and key (both empty: a
  // self-signed one), the CA of client certificates, anonymous access.
  std::string tls_cert_file;
  std::string tls_private_key_file;
  std::string client_ca_file;
  bool anonymous_auth = false;
  // Upgraded kubelet API connections idle this long are closed; <= 0: never.
  absl::Duration streaming_connection_idle_timeout = absl::Hours(4);
  std::map<std::string, std::string> node_labels;
  int pod_workers = 10;
  absl::Duration cache_sync_timeout = absl::Minutes(2);
};

class VirtualNode {
 public:
  // Borrows the clients and `supervisor`; the supervisor must be started.
  // `event_client` writes Events only, under its own rate limit.
  VirtualNode(VirtualNodeSettings settings, kube::KubeClient& client,
              kube::KubeClient& event_client, plugin::PluginSupervisor& supervisor);
  ~VirtualNode();  // Stop()s.
  VirtualNode(const VirtualNode&) = delete;
  VirtualNode& operator=(const VirtualNode&) = delete;

  // Syncs the caches, registers the node, starts the pod controller and
  // serves the kubelet API. Fails with a message for the operator when the
  // caches cannot sync (no RBAC rights, API server unreachable), the node
  // cannot be registered or the kubelet port cannot be served.
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
