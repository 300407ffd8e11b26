// The WebSocket transport under the exec/attach/port-forward sessions: RFC
// 6455 message framing on the kubelet API's upgraded connection (the pure
// framing lives in host/websocket; this adds the I/O), and the SPDY tunnel
// that lets the SPDY port-forward session run unchanged inside WebSocket
// binary messages (`SPDY/3.1+portforward.k8s.io`, what kubectl and the API
// server send to a node that declares ExtendWebSocketsToKubelet).
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_WEBSOCKET_CONNECTION_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_WEBSOCKET_CONNECTION_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "host/kubeletapi/kubelet_api.h"
#include "host/websocket/websocket.h"

namespace vkhost::streambridge::internal {

// One server-side WebSocket after its 101. Pull model, like the connection
// beneath it: the owner asks for one message at a time (which is also the
// back-pressure: nothing is read from the socket while nobody asks), and
// queues frames to write. Pings are answered and the closing handshake is
// done here; only data messages reach the owner.
//
// Thread-safe. Callbacks run on the connection's executor, never inline in
// a call to this object and never under its lock, so an owner may call in
// while holding its own lock and may call back in from a callback.
class WebSocketConnection final
    : public std::enable_shared_from_this<WebSocketConnection> {
 public:
  using ReadDone = std::function<void(absl::Status status, websocket::Message message)>;
  using WriteDone = std::function<void(absl::Status status)>;

  // `linger`: after our close frame, how long to wait for the client's
  // before dropping the TCP connection.
  static std::shared_ptr<WebSocketConnection> Create(
      std::shared_ptr<kubeletapi::UpgradedConnection> connection,
      absl::Duration linger = absl::Seconds(5));

  // Delivers the next text or binary message. Errors: CANCELLED once the
  // client sent its close frame (or after Close/Abort), UNAVAILABLE when the
  // connection broke, INVALID_ARGUMENT when the client broke the protocol
  // (a close frame with the matching code has then been sent). At most one
  // read outstanding.
  void ReadMessage(ReadDone done);

  // Queues encoded frame bytes (websocket::Encode*); `done` (may be empty)
  // runs once they are written or the connection failed. Frames queued after
  // Close are dropped with CANCELLED.
  void Write(std::string frame, WriteDone done = nullptr);

  // Starts the closing handshake: sends a close frame with `code` after
  // everything queued, waits (up to linger) for the client's close frame,
  // then closes the TCP connection. Idempotent.
  void Close(uint16_t code = websocket::kCloseNormal, std::string reason = "");

  // Drops the TCP connection at once (the client went away, or a timeout).
  void Abort();

  // Runs `task` on the connection's executor (UpgradedConnection::Post).
  void Post(std::function<void()> task);

 private:
  struct PendingWrite {
    std::string bytes;
    WriteDone done;
  };
  enum class State { kOpen, kClosing, kClosed };

  WebSocketConnection(std::shared_ptr<kubeletapi::UpgradedConnection> connection,
                      absl::Duration linger);

  // Runs completions later on the connection's executor: for the public
  // methods, whose caller may hold a lock its callbacks take.
  void Defer(std::vector<std::function<void()>> completions);
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnBytes(const absl::Status& status, std::string_view data);
  // Drains the parser: control frames are handled here, a data message (or
  // a final error) completes the owner's read via `completions`.
  void ParseLocked(std::vector<std::function<void()>>& completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailReadLocked(absl::Status status, std::vector<std::function<void()>>& completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueLocked(std::string bytes, WriteDone done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendCloseLocked(uint16_t code, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnWritten(const absl::Status& status);
  void ShutdownLocked(std::vector<std::function<void()>>& completions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<kubeletapi::UpgradedConnection> connection_;
  const absl::Duration linger_;

  absl::Mutex mu_;
  websocket::FrameParser parser_ ABSL_GUARDED_BY(mu_);
  State state_ ABSL_GUARDED_BY(mu_) = State::kOpen;
  bool close_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool close_queued_ ABSL_GUARDED_BY(mu_) = false;
  bool close_written_ ABSL_GUARDED_BY(mu_) = false;
  bool peer_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool socket_read_pending_ ABSL_GUARDED_BY(mu_) = false;
  ReadDone reader_ ABSL_GUARDED_BY(mu_);  // the owner's outstanding read
  std::deque<PendingWrite> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  WriteDone in_flight_done_ ABSL_GUARDED_BY(mu_);
  bool in_flight_is_close_ ABSL_GUARDED_BY(mu_) = false;
  bool linger_set_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Alarm linger_alarm_;
};

// The SPDY byte stream carried in the binary messages of `websocket`, as an
// UpgradedConnection a SPDY session can run on: Read returns message
// payloads (message boundaries mean nothing), Write sends one binary
// message, Close does the closing handshake.
std::shared_ptr<kubeletapi::UpgradedConnection> SpdyTunnel(
    std::shared_ptr<WebSocketConnection> websocket);

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_WEBSOCKET_CONNECTION_H_
