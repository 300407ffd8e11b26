// host/streambridge: `kubectl exec`, `attach` and `port-forward` sessions, bridged
// from the kubelet API's upgraded connection to the plugin's Streams RPCs.
//
// host/kubeletapi authenticates and authorizes an /exec, /attach or
// /portForward request and then hands it to an UpgradeHandler. StreamBridge
// is that handler: in Accept it checks the request (query flags, SPDY upgrade
// headers, the plugin's capability) and negotiates the remote-command protocol
// (v5/v4/v3/v2.channel.k8s.io, channel.k8s.io); in Serve it runs the SPDY/3.1
// session on the connection. The client opens one SPDY stream per channel
// (error, stdin, stdout, stderr, resize); once the set the query asks for has
// arrived the bridge starts Streams.Exec or Streams.Attach and moves bytes:
// stdin DATA -> stdin frames, stdin FIN -> close_stdin, resize JSON -> resize
// frames, plugin stdout/stderr -> DATA, and the plugin's exit frame -> the
// metav1.Status the client turns into kubectl's exit code.
//
// `kubectl port-forward` (/portForward, protocol portforward.k8s.io) runs on
// the same kind of session: per forwarded TCP connection the client opens an
// error and a data stream with the same requestID; each complete pair gets
// its own Streams.PortForward RPC, data flows both ways, the client's FIN
// becomes close_write, the plugin's end FINs the streams and its error (or
// a failed RPC) is written on the error stream. Many pairs share one
// connection.
//
// The same sessions run over WebSocket (RFC 6455, what kube-apiserver 1.36+
// proxies unchanged to a node whose status.declaredFeatures lists
// ExtendWebSocketsToKubelet): exec/attach with the channel subprotocols
// (v5.channel.k8s.io with its CLOSE signal for stdin, v4, base64 and v1
// variants: stdin 0, stdout 1, stderr 2, status 3, resize 4);
// port-forward either as kubectl's SPDY session tunnelled in binary
// messages (SPDY/3.1+portforward.k8s.io: the SPDY port-forward session
// runs unchanged on the tunnel) or kubelet-native (v4.channel.k8s.io,
// ?port=..., data channel 2i and error channel 2i+1 per port). The
// transports differ; the plugin side (one BidiCall per process or forwarded
// connection) and the protocol rules (flags, status JSON, error texts) are
// shared.
//
// Threading: no thread per session. Socket callbacks come from the kubelet
// server's io threads, plugin callbacks from gRPC's callback-API threads;
// each session serialises them with one mutex.
#ifndef VKHOST_HOST_STREAMBRIDGE_STREAM_BRIDGE_H_
#define VKHOST_HOST_STREAMBRIDGE_STREAM_BRIDGE_H_

#include <memory>

#include "absl/time/time.h"
#include "host/kubeletapi/kubelet_api.h"

namespace vkhost::plugin {
class PluginClient;
}

namespace vkhost::streambridge {

struct StreamBridgeOptions {
  // How long the client has to open every stream the query asked for (the
  // kubelet's default stream creation timeout).
  absl::Duration stream_creation_timeout = absl::Seconds(30);
  // After the exit status is written (or a WebSocket close frame sent), how
  // long to wait for the client to close the connection (closing first
  // could cut off buffered output).
  absl::Duration finish_timeout = absl::Seconds(15);
};

// The UpgradeHandler for /exec, /attach and /portForward. Thread-safe: Accept and Serve
// may run concurrently for any number of requests. Sessions keep what they
// need alive themselves, but `plugin` is borrowed and must outlive the
// kubelet server (whose Stop() closes every connection, which ends every
// session and cancels its plugin stream).
class StreamBridge : public kubeletapi::UpgradeHandler {
 public:
  explicit StreamBridge(plugin::PluginClient& plugin,
                        StreamBridgeOptions options = {});

  // 101 with the chosen X-Stream-Protocol-Version (SPDY) or Sec-WebSocket-
  // Accept/-Protocol (WebSocket), or the error the kubelet would give: 400
  // for missing upgrade headers, stream flags or ports, a bad WebSocket
  // handshake or no common WebSocket subprotocol; 426 for a WebSocket
  // version other than 13; 403 when no SPDY protocol is shared (listing ours
  // in X-Accepted-Stream-Protocol-Versions); 501 for a plugin without the
  // capability (exec, attach or port-forward), 503 while the plugin is down.
  kubeletapi::UpgradeResponse Accept(
      const kubeletapi::UpgradeRequest& request) override;

  // Runs the session until the plugin's process ends and the client hung up,
  // or the client goes away (which cancels the plugin stream); a port-forward
  // session runs until the client closes the connection (kubelet-native
  // WebSocket port-forward: until every port's stream ended). Returns at
  // once; the session lives on the connection's and gRPC's callbacks.
  void Serve(const kubeletapi::UpgradeRequest& request,
             std::shared_ptr<kubeletapi::UpgradedConnection> connection) override;

 private:
  kubeletapi::UpgradeResponse AcceptPortForward(const kubeletapi::UpgradeRequest& request);
  kubeletapi::UpgradeResponse AcceptWebSocket(const kubeletapi::UpgradeRequest& request);
  void ServeWebSocket(const kubeletapi::UpgradeRequest& request,
                      std::shared_ptr<kubeletapi::UpgradedConnection> connection);

  plugin::PluginClient& plugin_;
  const StreamBridgeOptions options_;
};

}  // namespace vkhost::streambridge

#endif  // VKHOST_HOST_STREAMBRIDGE_STREAM_BRIDGE_H_
