#include "host/app/app.h"

#include <signal.h>

#include <cstring>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"

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

// The parts of vkhost that are not built yet, said plainly so nobody waits
// for a node that will not appear.
void LogKubernetesSettings(const HostSettings& settings) {
  VKLOG(INFO) << "node name \"" << settings.node_name << "\", kubeconfig "
              << (settings.kubeconfig.empty() ? "(in-cluster)"
                                              : settings.kubeconfig)
              << ", kubelet port " << settings.kubelet_port;
  VKLOG(WARNING) << "the Kubernetes side of vkhost is not built yet: this "
                    "build supervises the plugin only; it does not register "
                    "node \""
                 << settings.node_name << "\" or serve the kubelet API on port "
                 << settings.kubelet_port;
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

int RunHost(const HostSettings& settings, const plugin::PluginSource& source) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  VKLOG(INFO) << "vkhost " << VKHOST_VERSION << " starting";
  LogKubernetesSettings(settings);
  plugin::PluginSupervisor::Options options;
  options.source = source;
  plugin::PluginSupervisor supervisor(options);
  supervisor.AddConnectListener(LogPlugin);
  if (absl::Status started = supervisor.Start(); !started.ok()) {
    VKLOG(ERROR) << "cannot start the plugin: " << started.message();
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  VKLOG(INFO) << "received SIG" << ::sigabbrev_np(sig) << ", shutting down";
  supervisor.Stop();
  VKLOG(INFO) << "vkhost stopped";
  return 0;
}

}  // namespace vkhost::app
