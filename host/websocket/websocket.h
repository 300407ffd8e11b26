// host/websocket: the server side of RFC 6455 WebSocket and the Kubernetes
// channel protocols on top of it, for the kubelet API's exec, attach and
// port-forward.
//
// kubectl (1.29+) talks WebSocket to the API server; the API server forwards
// WebSocket to a kubelet only when the node declares ExtendWebSocketsToKubelet,
// and SPDY otherwise (see host/spdy). host/kubeletapi owns sockets and
// threads; this library is pure: bytes in, messages out, messages to bytes.
//
// Layers:
//   Handshake      check the upgrade request, pick the subprotocol, compute
//                  Sec-WebSocket-Accept.
//   FrameParser    incremental parser of client frames: unmasking,
//                  reassembly of fragments, control frames, close codes.
//   Encode*        server frames (unmasked).
//   Channels       the k8s framing inside data messages: one channel byte
//                  (or digit, for the base64 variants) before the payload;
//                  v5 adds the CLOSE signal {255, channel}. Port-forward
//                  either uses channels 2i/2i+1 per port (kubelet-native) or
//                  tunnels a SPDY/3.1 byte stream in binary messages (what
//                  kubectl sends: feed the payloads to spdy::ServerSession,
//                  message boundaries mean nothing).
#ifndef VKHOST_HOST_WEBSOCKET_WEBSOCKET_H_
#define VKHOST_HOST_WEBSOCKET_WEBSOCKET_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vkhost::websocket {

// ------------------------------------------------------------ handshake --

// How data messages of a subprotocol are framed.
enum class Framing {
  kChannels,        // binary; first byte = channel number
  kBase64Channels,  // text; first char = '0' + channel, rest = base64 payload
  kSpdyTunnel,      // binary; payloads concatenate to a SPDY/3.1 byte stream
};

struct Subprotocol {
  absl::string_view name;  // "" = the client offered none
  Framing framing;
  // Remote-command protocol version: 1 (channel.k8s.io), 4 (JSON status on
  // the error channel), 5 (4 + CLOSE signal). 0 for the SPDY tunnel.
  int version;
};

// The subprotocol called `name`, or nullptr if this library does not know it.
const Subprotocol* FindSubprotocol(absl::string_view name);

// What each endpoint accepts, in server preference order (the client's
// order decides, though; see AnswerHandshake).
absl::Span<const absl::string_view> ExecSubprotocols();         // exec, attach
absl::Span<const absl::string_view> PortForwardSubprotocols();  // portForward

// The parts of an HTTP upgrade request the handshake looks at.
struct UpgradeRequest {
  std::string method;
  std::string upgrade;     // Upgrade
  std::string connection;  // Connection
  std::string key;         // Sec-WebSocket-Key
  std::string version;     // Sec-WebSocket-Version
  // Every Sec-WebSocket-Protocol header line; each may be a comma list.
  std::vector<std::string> protocols;
};

// True if the request asks for a WebSocket (Upgrade: websocket and a
// Connection header with the "upgrade" token, case-insensitive).
bool IsWebSocketUpgrade(absl::string_view upgrade, absl::string_view connection);

// base64(SHA-1(key + RFC 6455 GUID)): the Sec-WebSocket-Accept value.
std::string ComputeAcceptKey(absl::string_view key);

struct HandshakeAnswer {
  std::string accept;  // Sec-WebSocket-Accept
  // Sec-WebSocket-Protocol to send back; empty = send no such header.
  std::string protocol;
  const Subprotocol* subprotocol = nullptr;  // never null on success
};

// Validates `request` and picks the first protocol the client offered that
// is in `supported` ("" in `supported` accepts a client that offered none).
// Errors, and the HTTP answer HandshakeErrorHttpStatus gives them:
//   InvalidArgument     not GET, not an upgrade, bad key        -> 400
//   Unimplemented       Sec-WebSocket-Version other than 13      -> 426
//                       (send "Sec-WebSocket-Version: 13")
//   FailedPrecondition  no subprotocol in common                 -> 400
absl::StatusOr<HandshakeAnswer> AnswerHandshake(
    const UpgradeRequest& request, absl::Span<const absl::string_view> supported);
int HandshakeErrorHttpStatus(const absl::Status& status);

// ---------------------------------------------------------------- frames --

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes (RFC 6455 section 7.4.1) this side sends.
enum CloseCode : uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,
  kCloseProtocolError = 1002,
  kCloseUnsupportedData = 1003,
  kCloseNoStatus = 1005,  // reported for an empty close frame; never sent
  kCloseInvalidPayload = 1007,
  kClosePolicyViolation = 1008,
  kCloseTooBig = 1009,
  kCloseInternalError = 1011,
};

// A whole message (fragments joined) or a control frame.
struct Message {
  Opcode opcode = Opcode::kBinary;  // never kContinuation
  std::string payload;              // unmasked
  uint16_t close_code = 0;          // kClose only; kCloseNoStatus if absent
  std::string close_reason;         // kClose only
};

struct ParserLimits {
  uint64_t max_message = 16 * 1024 * 1024;  // data message, fragments joined
  bool require_masked = true;               // RFC 6455: clients always mask
};

// Incremental parser of the frames a client sends. Feed chunks as they
// arrive; Next() yields each complete message or control frame once, in
// order (control frames may arrive between fragments of a message). Any
// error is final: send a close frame with failure_close_code() and drop the
// connection. Not thread-safe.
class FrameParser {
 public:
  explicit FrameParser(ParserLimits limits = {});

  void Feed(absl::string_view bytes);

  // The next message, nullopt if more bytes are needed, or an error saying
  // what the client did wrong (unmasked frame, reserved bits, unknown
  // opcode, control frame over 125 bytes or fragmented, bad continuation,
  // oversized length, invalid UTF-8 in text, invalid close code).
  absl::StatusOr<std::optional<Message>> Next();

  // After an error: the close code to send (1002, 1007 or 1009).
  uint16_t failure_close_code() const { return failure_code_; }

 private:
  absl::Status Fail(uint16_t code, absl::string_view why);
  absl::StatusOr<std::optional<Message>> Finish(Opcode opcode, std::string payload);

  ParserLimits limits_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  // The data message being reassembled from fragments.
  std::optional<Opcode> fragmented_;
  std::string fragments_;
  absl::Status broken_;
  uint16_t failure_code_ = kCloseProtocolError;
};

// One unfragmented, unmasked server frame. Data frames (text, binary) of any
// size; control frames must carry at most 125 bytes or this fails.
absl::StatusOr<std::string> EncodeFrame(Opcode opcode, absl::string_view payload);

// A close frame; the reason is cut (on a UTF-8 boundary) to fit 125 bytes.
std::string EncodeCloseFrame(uint16_t code, absl::string_view reason = "");

// Any frame, masked or not, fragment or not, unchecked: for tests and
// clients.
std::string EncodeRawFrame(Opcode opcode, absl::string_view payload, bool fin,
                           std::optional<std::array<uint8_t, 4>> mask);

// -------------------------------------------------------------- channels --

// Channel numbers of the remote-command protocols.
enum Channel : uint8_t {
  kStdin = 0,
  kStdout = 1,
  kStderr = 2,
  kError = 3,
  kResize = 4,
  kCloseSignal = 255,  // v5: payload is the one channel being closed
};

struct ChannelMessage {
  uint8_t channel = 0;
  std::string data;
  bool operator==(const ChannelMessage&) const = default;
};

// Splits a data message of a channel framing into channel and payload.
// nullopt for an empty message (wsstream skips those). Text and binary
// messages are both accepted, as wsstream does. Errors: a control message,
// invalid base64, the tunnel framing (which has no channels).
absl::StatusOr<std::optional<ChannelMessage>> DecodeChannelMessage(
    Framing framing, const Message& message);

// The server frame carrying `data` on `channel` under `framing`.
std::string EncodeChannelFrame(Framing framing, uint8_t channel, absl::string_view data);

// v5: the channel a CLOSE signal message closes, or nullopt if `message` is
// not a well-formed CLOSE signal.
std::optional<uint8_t> ClosedChannel(const ChannelMessage& message);
// v5: the server frame saying "no more data from us on `channel`".
std::string EncodeCloseSignalFrame(uint8_t channel);

// Kubelet-native port-forward: the i-th requested port uses channel 2i for
// data and 2i+1 for errors, and the server first writes the port number
// (2 bytes, little-endian) on both. `port_index` must be < 128.
struct PortChannels {
  uint8_t data;
  uint8_t error;
};
PortChannels PortForwardChannels(std::size_t port_index);
std::string PortPrefix(uint16_t port);

}  // namespace vkhost::websocket

#endif  // VKHOST_HOST_WEBSOCKET_WEBSOCKET_H_
