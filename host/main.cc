// vkhost: the host process. Parses the command line and runs host/app.
//
//   vkhost --plugin "CMD ARGS..." | --plugin-endpoint URL [flags]
//   vkhost plugin-info --plugin "CMD ARGS..." | --plugin-endpoint URL

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/flags/command_line.h"
#include "common/log/log.h"
#include "host/app/app.h"

ABSL_FLAG(std::string, plugin, "",
          "Launch this provider plugin: a command line, split like a shell "
          "does (quotes and backslashes; no expansions).");
ABSL_FLAG(std::string, plugin_endpoint, "",
          "Connect to a running plugin instead: unix:///PATH or "
          "tcp://HOST:PORT.");
ABSL_FLAG(std::string, plugin_ca_file, "",
          "tcp:// endpoints: CA bundle that signed the plugin's certificate.");
ABSL_FLAG(std::string, plugin_cert_file, "",
          "tcp:// endpoints: client certificate vkhost presents (mutual TLS).");
ABSL_FLAG(std::string, plugin_key_file, "",
          "tcp:// endpoints: key of --plugin-cert-file.");
ABSL_FLAG(absl::Duration, plugin_handshake_timeout, absl::Seconds(10),
          "How long a launched plugin has to print its handshake line, and "
          "an endpoint to accept the connection.");
ABSL_FLAG(std::string, kubeconfig, "",
          "Kubeconfig of the cluster the virtual node joins. Empty: "
          "$KUBECONFIG, then in-cluster credentials, then ~/.kube/config.");
ABSL_FLAG(std::string, context, "",
          "Kubeconfig context to use (default: its current-context).");
ABSL_FLAG(double, kube_api_qps, 50,
          "Client-side limit on API requests per second (watches exempt).");
ABSL_FLAG(int, kube_api_burst, 100, "Burst allowed above --kube-api-qps.");
ABSL_FLAG(double, event_qps, 50,
          "Client-side limit on Event writes per second, apart from "
          "--kube-api-qps.");
ABSL_FLAG(int, event_burst, 100, "Burst allowed above --event-qps.");
ABSL_FLAG(std::string, node_name, "",
          "Name of the Node vkhost registers (default: this machine's "
          "hostname).");
ABSL_FLAG(std::string, node_ip, "",
          "InternalIP of the node: where the API server reaches the kubelet "
          "API (default: the first non-loopback IPv4 address, else "
          "127.0.0.1).");
ABSL_FLAG(std::vector<std::string>, node_labels, {},
          "Extra node labels, KEY=VALUE,KEY=VALUE; they win over defaults and "
          "plugin labels.");
ABSL_FLAG(int, kubelet_port, 10250,
          "Port of the kubelet API (logs, exec, port-forward, stats), "
          "advertised in the Node's daemonEndpoints.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "Kubelet API serving certificate (PEM). Empty with "
          "--tls-private-key-file: a self-signed certificate for the node name "
          "and IP is generated at start (for testing).");
ABSL_FLAG(std::string, tls_private_key_file, "", "Key of --tls-cert-file.");
ABSL_FLAG(std::string, client_ca_file, "",
          "CA bundle that signs client certificates of kubelet API callers "
          "(the API server's --kubelet-client-certificate). Other callers need "
          "a bearer token, checked with TokenReview.");
ABSL_FLAG(bool, anonymous_auth, false,
          "Let requests without credentials through to authorization as "
          "system:anonymous instead of answering 401.");
ABSL_FLAG(absl::Duration, streaming_connection_idle_timeout, absl::Hours(4),
          "Close an exec, attach or port-forward connection that moved no "
          "byte either way for this long (ending its plugin stream); 0: "
          "never.");
ABSL_FLAG(int, pod_workers, 10,
          "Pods reconciled in parallel (each worker makes blocking API and "
          "plugin calls).");
ABSL_FLAG(bool, standalone, false,
          "Supervise the plugin only, without Kubernetes: for plugin "
          "development.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");

namespace {

constexpr char kUsage[] =
    "runs a Kubernetes virtual node whose pods a provider plugin runs.\n\n"
    "  vkhost --plugin \"CMD ARGS...\" | --plugin-endpoint URL [flags]\n"
    "  vkhost plugin-info --plugin \"CMD ARGS...\" | --plugin-endpoint URL\n\n"
    "plugin-info starts (or dials) the plugin, prints its name, version,\n"
    "protocol, address, capabilities and manifest, and stops it.\n"
    "Flag names take '-' or '_' (--plugin-endpoint = --plugin_endpoint).";

constexpr int kUsageError = 2;

int UsageError(const std::string& message) {
  std::cerr << "vkhost: " << message << "\nRun 'vkhost --help' for usage.\n";
  return kUsageError;
}

std::string Hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "vkhost";
  return name;
}

// KEY=VALUE pairs of --node-labels; INVALID_ARGUMENT names the bad one.
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& pairs) {
  std::map<std::string, std::string> labels;
  for (const std::string& pair : pairs) {
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError("bad --node-labels entry \"" + pair +
                                        "\" (want KEY=VALUE)");
    }
    labels[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return labels;
}

vkhost::app::HostSettings SettingsFromFlags() {
  vkhost::app::HostSettings s;
  s.kubeconfig = absl::GetFlag(FLAGS_kubeconfig);
  s.kube_context = absl::GetFlag(FLAGS_context);
  s.kube_api_qps = absl::GetFlag(FLAGS_kube_api_qps);
  s.kube_api_burst = absl::GetFlag(FLAGS_kube_api_burst);
  s.event_qps = absl::GetFlag(FLAGS_event_qps);
  s.event_burst = absl::GetFlag(FLAGS_event_burst);
  s.node_name = absl::GetFlag(FLAGS_node_name);
  if (s.node_name.empty()) s.node_name = Hostname();
  s.node_ip = absl::GetFlag(FLAGS_node_ip);
  s.kubelet_port = absl::GetFlag(FLAGS_kubelet_port);
  s.pod_workers = absl::GetFlag(FLAGS_pod_workers);
  s.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  s.tls_private_key_file = absl::GetFlag(FLAGS_tls_private_key_file);
  s.client_ca_file = absl::GetFlag(FLAGS_client_ca_file);
  s.anonymous_auth = absl::GetFlag(FLAGS_anonymous_auth);
  s.streaming_connection_idle_timeout =
      absl::GetFlag(FLAGS_streaming_connection_idle_timeout);
  s.standalone = absl::GetFlag(FLAGS_standalone);
  s.plugin_command = absl::GetFlag(FLAGS_plugin);
  s.plugin_endpoint = absl::GetFlag(FLAGS_plugin_endpoint);
  s.plugin_ca_file = absl::GetFlag(FLAGS_plugin_ca_file);
  s.plugin_cert_file = absl::GetFlag(FLAGS_plugin_cert_file);
  s.plugin_key_file = absl::GetFlag(FLAGS_plugin_key_file);
  s.plugin_handshake_timeout = absl::GetFlag(FLAGS_plugin_handshake_timeout);
  return s;
}

bool IsMainFile(absl::string_view file) {
  return absl::EndsWith(file, "host/main.cc");
}

}  // namespace

int main(int argc, char** argv) {
  absl::FlagsUsageConfig config;
  config.contains_help_flags = IsMainFile;
  config.contains_helpshort_flags = IsMainFile;
  config.version_string = [] {
    return std::string("vkhost " VKHOST_VERSION " (plugin protocol v1)\n");
  };
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(kUsage);

  std::vector<char*> positional = vkhost::flags::ParseCommandLine(argc, argv);

  vkhost::log::Level level;
  if (absl::Status s = vkhost::log::ParseLevel(absl::GetFlag(FLAGS_log_level),
                                               &level);
      !s.ok()) {
    return UsageError("bad --log-level: " + std::string(s.message()));
  }
  vkhost::log::SetLevel(level);

  bool plugin_info = positional.size() >= 2 &&
                     std::string(positional[1]) == "plugin-info";
  if (positional.size() > (plugin_info ? 2 : 1)) {
    return UsageError("unexpected argument \"" +
                      std::string(positional[plugin_info ? 2 : 1]) +
                      "\" (the only subcommand is plugin-info)");
  }
  vkhost::app::HostSettings settings = SettingsFromFlags();
  auto labels = ParseLabels(absl::GetFlag(FLAGS_node_labels));
  if (!labels.ok()) return UsageError(std::string(labels.status().message()));
  settings.node_labels = *labels;
  absl::StatusOr<vkhost::plugin::PluginSource> source =
      vkhost::app::PluginSourceFromSettings(settings);
  if (!source.ok()) return UsageError(std::string(source.status().message()));
  if (plugin_info) {
    return vkhost::app::RunPluginInfo(*source, std::cout, std::cerr);
  }
  return vkhost::app::RunHost(settings, *source);
}
