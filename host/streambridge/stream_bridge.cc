#include "host/streambridge/stream_bridge.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/log/log.h"
#include "host/plugin/plugin.h"
#include "host/streambridge/internal/remote_command.h"
#include "host/streambridge/internal/port_forward.h"
#include "host/streambridge/internal/spdy_port_forward.h"
#include "host/streambridge/internal/spdy_remote_command.h"

namespace vkhost::streambridge {
namespace {

using kubeletapi::UpgradeRequest;
using kubeletapi::UpgradeResponse;
namespace v1 = ::vkhost::provider::v1;

UpgradeResponse Refuse(int status, std::string body) {
  UpgradeResponse response;
  response.status = status;
  response.body = std::move(body);
  if (!response.body.empty() && response.body.back() != '\n') response.body += '\n';
  return response;
}

std::string HeaderLine(const internal::HeaderList& headers, absl::string_view name) {
  std::string joined;
  for (const auto& [key, value] : headers) {
    if (!absl::EqualsIgnoreCase(key, name)) continue;
    if (!joined.empty()) joined += ", ";
    joined += value;
  }
  return joined;
}

// Why the plugin cannot serve `capability`, as an HTTP answer.
std::optional<UpgradeResponse> CheckCapability(plugin::PluginClient& plugin,
                                               v1::Capability capability,
                                               absl::string_view what) {
  absl::StatusOr<std::shared_ptr<plugin::PluginConnection>> connection =
      plugin.ConnectionFor(capability);
  if (connection.ok()) return std::nullopt;
  if (connection.status().code() == absl::StatusCode::kUnimplemented) {
    return Refuse(501, "the provider plugin does not support " + std::string(what) +
                           " (it does not declare CAPABILITY_" +
                           plugin::CapabilityName(capability) + ")");
  }
  return Refuse(503, "the provider plugin is not available: " +
                         std::string(connection.status().message()));
}

UpgradeResponse SwitchingProtocols(std::string protocol) {
  UpgradeResponse response;
  response.status = 101;
  response.headers = {{"Connection", "Upgrade"},
                      {"Upgrade", "SPDY/3.1"},
                      {"X-Stream-Protocol-Version", std::move(protocol)}};
  return response;
}

}  // namespace

StreamBridge::StreamBridge(plugin::PluginClient& plugin, StreamBridgeOptions options)
    : plugin_(plugin), options_(options) {}

UpgradeResponse StreamBridge::Accept(const UpgradeRequest& request) {
  const std::string upgrade = HeaderLine(request.headers, "Upgrade");
  VKLOG(INFO) << "upgrade request " << request.method << " /" << request.route << " for "
              << request.pod_namespace << "/" << request.pod_name << " by "
              << request.user.name << ": Upgrade=\"" << upgrade
              << "\" X-Stream-Protocol-Version=\""
              << HeaderLine(request.headers, "X-Stream-Protocol-Version")
              << "\" Sec-WebSocket-Protocol=\""
              << HeaderLine(request.headers, "Sec-WebSocket-Protocol") << "\"";
  const bool is_port_forward = request.route == "portForward";
  if (request.route != "exec" && request.route != "attach" && !is_port_forward) {
    return Refuse(501, "/" + request.route + " is not implemented yet by vkhost");
  }
  if (!absl::StrContains(absl::AsciiStrToLower(upgrade), "spdy/3.1")) {
    if (absl::StrContains(absl::AsciiStrToLower(upgrade), "websocket")) {
      return Refuse(501, "WebSocket " + request.route +
                             " is not implemented yet by vkhost; use SPDY/3.1");
    }
    return Refuse(400, "unable to upgrade: missing upgrade headers in request: Upgrade=\"" +
                           upgrade + "\"");
  }
  if (is_port_forward) return AcceptPortForward(request);
  const bool is_exec = request.route == "exec";
  absl::StatusOr<internal::RemoteCommandOptions> options =
      internal::ParseRemoteCommandOptions(request.query, is_exec);
  if (!options.ok()) return Refuse(400, std::string(options.status().message()));
  internal::Negotiation negotiation = internal::NegotiateProtocol(request.headers);
  if (!negotiation.protocol.has_value()) {
    UpgradeResponse refused = Refuse(negotiation.http_status, negotiation.body);
    refused.headers = std::move(negotiation.headers);
    return refused;
  }
  if (auto refused = CheckCapability(
          plugin_, is_exec ? v1::CAPABILITY_EXEC : v1::CAPABILITY_ATTACH, request.route)) {
    return *refused;
  }
  return SwitchingProtocols(internal::ProtocolName(*negotiation.protocol));
}

UpgradeResponse StreamBridge::AcceptPortForward(const UpgradeRequest& request) {
  if (absl::Status negotiated = internal::NegotiatePortForwardProtocol(request.headers);
      !negotiated.ok()) {
    UpgradeResponse refused = Refuse(403, std::string(negotiated.message()));
    refused.headers = {{"X-Accepted-Stream-Protocol-Versions",
                        internal::kPortForwardProtocol}};
    return refused;
  }
  if (auto refused =
          CheckCapability(plugin_, v1::CAPABILITY_PORT_FORWARD, "port-forward")) {
    return *refused;
  }
  return SwitchingProtocols(internal::kPortForwardProtocol);
}

void StreamBridge::Serve(const UpgradeRequest& request,
                         std::shared_ptr<kubeletapi::UpgradedConnection> connection) {
  if (request.route == "portForward") {
    internal::ServeSpdyPortForward(
        {.pod_uid = request.pod_uid,
         .pod_namespace = request.pod_namespace,
         .pod_name = request.pod_name},
        options_.stream_creation_timeout, plugin_, std::move(connection));
    return;
  }
  // Accept validated the same request; a failure here means the two
  // disagree, and the connection is closed rather than left hanging.
  const bool is_exec = request.route == "exec";
  absl::StatusOr<internal::RemoteCommandOptions> options =
      internal::ParseRemoteCommandOptions(request.query, is_exec);
  internal::Negotiation negotiation = internal::NegotiateProtocol(request.headers);
  if (!options.ok() || !negotiation.protocol.has_value()) {
    VKLOG(ERROR) << "upgraded /" << request.route << " request no longer parses; closing";
    connection->Close();
    return;
  }
  internal::RemoteCommandTarget target;
  target.is_exec = is_exec;
  target.pod_uid = request.pod_uid;
  target.pod_namespace = request.pod_namespace;
  target.pod_name = request.pod_name;
  target.container = request.container;
  target.options = *std::move(options);
  target.protocol = *negotiation.protocol;
  internal::ServeSpdyRemoteCommand(
      std::move(target),
      {.stream_creation = options_.stream_creation_timeout,
       .finish = options_.finish_timeout},
      plugin_, std::move(connection));
}

}  // namespace vkhost::streambridge
