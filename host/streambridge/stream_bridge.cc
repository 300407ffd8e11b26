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
#include "host/streambridge/internal/websocket_connection.h"
#include "host/streambridge/internal/websocket_sessions.h"
#include "host/websocket/websocket.h"

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

bool IsWebSocket(const UpgradeRequest& request) {
  return websocket::IsWebSocketUpgrade(HeaderLine(request.headers, "Upgrade"),
                                       HeaderLine(request.headers, "Connection"));
}

// The RFC 6455 handshake for `request` against the subprotocols its route
// speaks. Pure, so Serve can repeat what Accept decided.
absl::StatusOr<websocket::HandshakeAnswer> WebSocketHandshake(const UpgradeRequest& request) {
  websocket::UpgradeRequest ws;
  ws.method = request.method;
  ws.upgrade = HeaderLine(request.headers, "Upgrade");
  ws.connection = HeaderLine(request.headers, "Connection");
  ws.key = HeaderLine(request.headers, "Sec-WebSocket-Key");
  ws.version = HeaderLine(request.headers, "Sec-WebSocket-Version");
  for (const auto& [name, value] : request.headers) {
    if (absl::EqualsIgnoreCase(name, "Sec-WebSocket-Protocol")) ws.protocols.push_back(value);
  }
  return websocket::AnswerHandshake(ws, request.route == "portForward"
                                            ? websocket::PortForwardSubprotocols()
                                            : websocket::ExecSubprotocols());
}

UpgradeResponse WebSocketSwitchingProtocols(const websocket::HandshakeAnswer& answer) {
  UpgradeResponse response;
  response.status = 101;
  response.headers = {{"Connection", "Upgrade"},
                      {"Upgrade", "websocket"},
                      {"Sec-WebSocket-Accept", answer.accept}};
  if (!answer.protocol.empty()) {
    response.headers.emplace_back("Sec-WebSocket-Protocol", answer.protocol);
  }
  return response;
}

internal::RemoteCommandTarget TargetOf(const UpgradeRequest& request,
                                       internal::RemoteCommandOptions options,
                                       internal::Protocol protocol) {
  internal::RemoteCommandTarget target;
  target.is_exec = request.route == "exec";
  target.pod_uid = request.pod_uid;
  target.pod_namespace = request.pod_namespace;
  target.pod_name = request.pod_name;
  target.container = request.container;
  target.options = std::move(options);
  target.protocol = protocol;
  return target;
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
  if (IsWebSocket(request)) return AcceptWebSocket(request);
  if (!absl::StrContains(absl::AsciiStrToLower(upgrade), "spdy/3.1")) {
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

UpgradeResponse StreamBridge::AcceptWebSocket(const UpgradeRequest& request) {
  absl::StatusOr<websocket::HandshakeAnswer> answer = WebSocketHandshake(request);
  if (!answer.ok()) {
    UpgradeResponse refused = Refuse(websocket::HandshakeErrorHttpStatus(answer.status()),
                                     std::string(answer.status().message()));
    if (refused.status == 426) refused.headers = {{"Sec-WebSocket-Version", "13"}};
    return refused;
  }
  if (request.route == "portForward") {
    if (answer->subprotocol->framing != websocket::Framing::kSpdyTunnel) {
      if (absl::StatusOr<std::vector<uint16_t>> ports =
              internal::ParsePortForwardPorts(request.query);
          !ports.ok()) {
        return Refuse(400, std::string(ports.status().message()));
      }
    }
    if (auto refused =
            CheckCapability(plugin_, v1::CAPABILITY_PORT_FORWARD, "port-forward")) {
      return *refused;
    }
    return WebSocketSwitchingProtocols(*answer);
  }
  const bool is_exec = request.route == "exec";
  absl::StatusOr<internal::RemoteCommandOptions> options =
      internal::ParseRemoteCommandOptions(request.query, is_exec);
  if (!options.ok()) return Refuse(400, std::string(options.status().message()));
  if (auto refused = CheckCapability(
          plugin_, is_exec ? v1::CAPABILITY_EXEC : v1::CAPABILITY_ATTACH, request.route)) {
    return *refused;
  }
  return WebSocketSwitchingProtocols(*answer);
}

void StreamBridge::ServeWebSocket(const UpgradeRequest& request,
                                  std::shared_ptr<kubeletapi::UpgradedConnection> connection) {
  absl::StatusOr<websocket::HandshakeAnswer> answer = WebSocketHandshake(request);
  if (!answer.ok()) {
    VKLOG(ERROR) << "upgraded WebSocket /" << request.route << " no longer parses; closing";
    connection->Close();
    return;
  }
  auto ws = internal::WebSocketConnection::Create(std::move(connection),
                                                  options_.finish_timeout);
  const websocket::Framing framing = answer->subprotocol->framing;
  if (request.route == "portForward") {
    internal::PortForwardTarget target{.pod_uid = request.pod_uid,
                                       .pod_namespace = request.pod_namespace,
                                       .pod_name = request.pod_name};
    if (framing == websocket::Framing::kSpdyTunnel) {
      // kubectl's SPDY port-forward inside binary messages: the SPDY
      // session runs unchanged on the tunnel.
      internal::ServeSpdyPortForward(std::move(target), options_.stream_creation_timeout,
                                     plugin_, internal::SpdyTunnel(std::move(ws)));
      return;
    }
    absl::StatusOr<std::vector<uint16_t>> ports =
        internal::ParsePortForwardPorts(request.query);
    if (!ports.ok()) {
      ws->Close(websocket::kClosePolicyViolation, std::string(ports.status().message()));
      return;
    }
    internal::ServeWebSocketPortForward(std::move(target), *std::move(ports), framing,
                                        plugin_, std::move(ws));
    return;
  }
  absl::StatusOr<internal::RemoteCommandOptions> options =
      internal::ParseRemoteCommandOptions(request.query, request.route == "exec");
  if (!options.ok()) {
    ws->Close(websocket::kClosePolicyViolation, std::string(options.status().message()));
    return;
  }
  internal::ServeWebSocketRemoteCommand(
      TargetOf(request, *std::move(options),
               internal::ProtocolOfSubprotocol(*answer->subprotocol)),
      framing, plugin_, std::move(ws));
}

void StreamBridge::Serve(const UpgradeRequest& request,
                         std::shared_ptr<kubeletapi::UpgradedConnection> connection) {
  if (IsWebSocket(request)) return ServeWebSocket(request, std::move(connection));
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
  internal::ServeSpdyRemoteCommand(
      TargetOf(request, *std::move(options), *negotiation.protocol),
      {.stream_creation = options_.stream_creation_timeout,
       .finish = options_.finish_timeout},
      plugin_, std::move(connection));
}

}  // namespace vkhost::streambridge
