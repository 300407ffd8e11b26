#include "host/app/app.h"

#include <signal.h>

#include <cstring>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "host/app/virtual_node.h"
#include "host/kube/client.h"

namespace vkhost::app {
namespace {

std::vector<std::string> CapabilityNames(const plugin::PluginIdentity& identity) {
  std::vector<std::string> names;
  for (plugin::v1::Capability c : identity.capabilities) {
    names.push_back(plugin::CapabilityName(c));
  }
  return names;
}

void LogPlugin(const plugin::PluginIdentity& identity, uint64_t generation) {
  std::vector<std::string> names = CapabilityNames(identity);
  VKLOG(INFO) << "plugin \"" << identity.name << "\" (generation "
              << generation << ") capabilities: "
              << (names.empty() ? "none" : absl::StrJoin(names, ", "));
  for (const auto& [key, value] : identity.manifest) {
    VKLOG(INFO) << "plugin \"" << identity.name << "\" manifest " << key
                << ": " << value;
  }
}

void LogSettings(const HostSettings& settings) {
  VKLOG(INFO) << "node \"" << settings.node_name << "\" (InternalIP "
              << settings.node_ip << ", kubelet port " << settings.kubelet_port
              << "), kubeconfig "
              << (settings.kubeconfig.empty() ? "(default lookup)" : settings.kubeconfig)
              << ", " << settings.pod_workers << " pod workers, API QPS "
              << settings.kube_api_qps << " burst " << settings.kube_api_burst;
}

// One client for everything but Events, one for Events, each with its own
// rate limit.
struct KubeClients {
  std::unique_ptr<kube::KubeClient> main;
  std::unique_ptr<kube::KubeClient> events;
};

absl::StatusOr<KubeClients> NewClients(const HostSettings& settings) {
  absl::StatusOr<kube::RestConfig> config =
      kube::ResolveRestConfig(settings.kubeconfig, settings.kube_context);
  if (!config.ok()) return config.status();
  VKLOG(INFO) << "API server " << config->server << " (credentials from "
              << config->source << ")";
  kube::ClientOptions options;
  options.qps = settings.kube_api_qps;
  options.burst = settings.kube_api_burst;
  auto main = kube::NewKubeClient(*config, options);
  if (!main.ok()) return main.status();
  options.qps = settings.event_qps;
  options.burst = settings.event_burst;
  options.max_connections = 2;
  auto events = kube::NewKubeClient(*config, options);
  if (!events.ok()) return events.status();
  return KubeClients{*std::move(main), *std::move(events)};
}

int WaitForStopSignal(const sigset_t& stop_signals) {
  int sig = 0;
  sigwait(&stop_signals, &sig);
  VKLOG(INFO) << "received SIG" << ::sigabbrev_np(sig) << ", shutting down";
  return sig;
}

}  // namespace

absl::StatusOr<plugin::PluginSource> PluginSourceFromSettings(
    const HostSettings& settings) {
  bool launch = !settings.plugin_command.empty();
  bool dial = !settings.plugin_endpoint.empty();
  if (launch == dial) {
    return absl::InvalidArgumentError(
        launch ? "give either --plugin or --plugin-endpoint, not both"
               : "missing plugin: give --plugin \"COMMAND ARGS...\" to launch "
                 "one, or --plugin-endpoint unix:///PATH|tcp://HOST:PORT to "
                 "connect to a running one");
  }
  plugin::PluginSource source;
  source.handshake_timeout = settings.plugin_handshake_timeout;
  if (launch) {
    absl::StatusOr<std::vector<std::string>> argv =
        plugin::SplitCommandLine(settings.plugin_command);
    if (!argv.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --plugin: ", argv.status().message()));
    }
    source.command = *std::move(argv);
    return source;
  }
  source.endpoint = settings.plugin_endpoint;
  source.tls_ca_file = settings.plugin_ca_file;
  source.tls_cert_file = settings.plugin_cert_file;
  source.tls_key_file = settings.plugin_key_file;
  return source;
}

std::string DescribePlugin(const plugin::PluginIdentity& identity) {
  std::ostringstream out;
  out << "name: " << identity.name << "\n"
      << "version: " << identity.version << "\n"
      << "protocol: v" << identity.protocol_major << "\n"
      << "address: " << identity.address << "\n"
      << "capabilities:" << (identity.capabilities.empty() ? " none" : "")
      << "\n";
  for (const std::string& name : CapabilityNames(identity)) {
    out << "  " << name << "\n";
  }
  out << "manifest:" << (identity.manifest.empty() ? " empty" : "") << "\n";
  for (const auto& [key, value] : identity.manifest) {
    out << "  " << key << ": " << value << "\n";
  }
  return out.str();
}

int RunPluginInfo(const plugin::PluginSource& source, std::ostream& out,
                  std::ostream& err) {
  absl::StatusOr<std::unique_ptr<plugin::PluginConnection>> connection =
      plugin::PluginConnection::Open(source);
  if (!connection.ok()) {
    err << "vkhost: " << connection.status().message() << "\n";
    return 1;
  }
  out << DescribePlugin((*connection)->identity()) << std::flush;
  return 0;
}

int RunHost(const HostSettings& given, const plugin::PluginSource& source) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  HostSettings settings = given;
  if (settings.node_ip.empty()) settings.node_ip = DetectNodeIp();
  VKLOG(INFO) << "vkhost " << VKHOST_VERSION << " starting";
  KubeClients clients;
  LogSettings(settings);
  if (!settings.standalone) {
    auto made = NewClients(settings);
    if (!made.ok()) {
      VKLOG(ERROR) << "cannot reach Kubernetes: " << made.status().message();
      return 1;
    }
    clients = *std::move(made);
  }
  plugin::PluginSupervisor::Options options;
  options.source = source;
  plugin::PluginSupervisor supervisor(options);
  supervisor.AddConnectListener(LogPlugin);
  if (absl::Status started = supervisor.Start(); !started.ok()) {
    VKLOG(ERROR) << "cannot start the plugin: " << started.message();
    return 1;
  }
  std::unique_ptr<VirtualNode> node;
  if (clients.main != nullptr) {
    node = std::make_unique<VirtualNode>(
        VirtualNodeSettings{.node_name = settings.node_name,
                            .node_ip = settings.node_ip,
                            .kubelet_port = settings.kubelet_port,
                            .tls_cert_file = settings.tls_cert_file,
                            .tls_private_key_file = settings.tls_private_key_file,
                            .client_ca_file = settings.client_ca_file,
                            .anonymous_auth = settings.anonymous_auth,
                            .streaming_connection_idle_timeout =
                                settings.streaming_connection_idle_timeout,
                            .node_labels = settings.node_labels,
                            .pod_workers = settings.pod_workers},
        *clients.main, *clients.events, supervisor);
    if (absl::Status started = node->Start(); !started.ok()) {
      VKLOG(ERROR) << "cannot start node \"" << settings.node_name
                   << "\": " << started.message();
      node->Stop();
      supervisor.Stop();
      return 1;
    }
  } else {
    VKLOG(WARNING) << "--standalone: supervising the plugin only; no node is "
                      "registered and no pods run";
  }
  WaitForStopSignal(stop_signals);
  if (node != nullptr) node->Stop();
  supervisor.Stop();
  VKLOG(INFO) << "vkhost stopped";
  return 0;
}

}  // namespace vkhost::app
