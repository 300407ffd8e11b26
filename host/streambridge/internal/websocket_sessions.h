// Exec/attach and kubelet-native port-forward over WebSocket channels: the
// same plugin streams (ProcessStream, ForwardStream) and protocol rules
// (remote_command.h, port_forward.h) as the SPDY sessions, on
// WebSocketConnection instead of SPDY streams.
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_WEBSOCKET_SESSIONS_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_WEBSOCKET_SESSIONS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "host/plugin/plugin.h"
#include "host/streambridge/internal/port_forward.h"
#include "host/streambridge/internal/remote_command.h"
#include "host/streambridge/internal/websocket_connection.h"
#include "host/websocket/websocket.h"

namespace vkhost::streambridge::internal {

// The remote-command version a WebSocket subprotocol speaks (5, 4 or 1).
Protocol ProtocolOfSubprotocol(const websocket::Subprotocol& subprotocol);

// Runs exec/attach on `websocket` (already past its 101): signals readiness
// with an empty message on the lowest output channel, as the kubelet does,
// starts the plugin's process at once, carries stdin (channel 0), resize
// (4) and the v5 CLOSE signal for stdin to it and its stdout (1) / stderr
// (2) back, then writes the status on the error channel (3) and closes with
// 1000 (the client reads its channels to that EOF). The client going away
// cancels the plugin stream. Returns at once. `plugin` is borrowed and must
// outlive the session.
void ServeWebSocketRemoteCommand(RemoteCommandTarget target, websocket::Framing framing,
                                 plugin::PluginClient& plugin,
                                 std::shared_ptr<WebSocketConnection> websocket);

// Runs kubelet-native port-forward on `websocket`: one plugin PortForward
// per port, all opened at once; port i uses data channel 2i and error
// channel 2i+1, each starting with the port (2 bytes, little-endian). A
// failed port gets the kubelet's error text on its error channel; the
// connection closes once every port's stream has ended, or the client
// leaves (which cancels them). Returns at once.
void ServeWebSocketPortForward(PortForwardTarget target, std::vector<uint16_t> ports,
                               websocket::Framing framing, plugin::PluginClient& plugin,
                               std::shared_ptr<WebSocketConnection> websocket);

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_WEBSOCKET_SESSIONS_H_
