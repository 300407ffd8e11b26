// host/app: the modes of the vkhost program, wired from its settings.
//
// main.cc turns the command line into HostSettings and runs one mode:
// RunPluginInfo (`vkhost plugin-info`: start the plugin, show what it is,
// stop it) or RunHost (the long-running host: the plugin supervisor, then the
// virtual node — caches, Node and Lease, pod controller — around it). Wiring
// lives here so main.cc stays a flag table.
#ifndef VKHOST_HOST_APP_APP_H_
#define VKHOST_HOST_APP_APP_H_

#include <map>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "host/plugin/plugin.h"

namespace vkhost::app {

// Everything the command line configures.
struct HostSettings {
  std::string kubeconfig;
  std::string kube_context;
  double kube_api_qps = 50;
  int kube_api_burst = 100;
  // Events get a budget of their own, as on the kubelet, so a burst of pod
  // starts does not starve status updates.
  double event_qps = 50;
  int event_burst = 100;
  std::string node_name;
  // Empty: detected (DetectNodeIp).
  std::string node_ip;
  std::map<std::string, std::string> node_labels;
  int kubelet_port = 10250;
  std::string tls_cert_file;
  std::string tls_private_key_file;
  std::string client_ca_file;
  bool anonymous_auth = false;
  absl::Duration streaming_connection_idle_timeout = absl::Hours(4);
  int pod_workers = 10;
  // Supervise the plugin only, without Kubernetes (plugin development).
  bool standalone = false;
  // Exactly one of these two: a command line to launch, or a URL to dial.
  std::string plugin_command;
  std::string plugin_endpoint;
  std::string plugin_ca_file;
  std::string plugin_cert_file;
  std::string plugin_key_file;
  absl::Duration plugin_handshake_timeout = absl::Seconds(10);
};

// The plugin the settings name. INVALID_ARGUMENT, worded for a usage error,
// unless exactly one of plugin_command and plugin_endpoint is set and the
// command splits into words.
absl::StatusOr<plugin::PluginSource> PluginSourceFromSettings(
    const HostSettings& settings);

// What `vkhost plugin-info` prints for a plugin: name, version, protocol,
// address, capabilities one per line, manifest.
std::string DescribePlugin(const plugin::PluginIdentity& identity);

// `vkhost plugin-info`: starts or dials the plugin, writes DescribePlugin to
// `out` and stops the plugin. Returns 0, or 1 after writing the error to
// `err`.
int RunPluginInfo(const plugin::PluginSource& source, std::ostream& out,
                  std::ostream& err);

// The host: blocks SIGTERM and SIGINT in the calling thread (call it before
// any other thread starts, so every thread inherits the mask), starts the
// plugin, registers the node and runs its pods until one of those signals
// arrives. Returns 0 after a clean stop, 1 when the plugin, the API server
// credentials or the node registration fail at start.
int RunHost(const HostSettings& settings, const plugin::PluginSource& source);

}  // namespace vkhost::app

#endif  // VKHOST_HOST_APP_APP_H_
