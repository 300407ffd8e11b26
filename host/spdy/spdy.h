// host/spdy: SPDY/3.1 framing and the server side of a SPDY session, as
// `kubectl exec/attach/port-forward` speak it to a kubelet.
//
// The API server (or kubectl, through it) upgrades an HTTPS request to
// SPDY/3.1 and then opens one SPDY stream per channel: error, stdin, stdout,
// stderr, resize for exec/attach; a data + error pair per connection for
// port-forward. host/kubeletapi owns the socket and the threads; this library
// is pure: bytes in, frames and session events out, frames to bytes. It never
// blocks and never throws; malformed input becomes an absl::Status.
//
// Layers, bottom up:
//   FrameParser / FrameWriter  one direction each of a connection's framing,
//                              each owning that direction's zlib context for
//                              header blocks (SPDY keeps one per direction
//                              for the connection's lifetime).
//   ServerSession              stream table of the server end: accepts the
//                              client's SYN_STREAMs, answers PING, handles
//                              RST_STREAM and GOAWAY, writes DATA.
//   Kubernetes bits            stream-type / port-forward headers and the
//                              terminal-resize JSON carried on those streams.
//
// Flow control: SPDY/3.1 defines 64 KiB windows replenished by WINDOW_UPDATE,
// but spdystream (the Go library every Kubernetes client uses) never sends
// WINDOW_UPDATE and drops the ones it receives. A server that waited for
// window would stall after 64 KiB, so ServerSession ignores windows in both
// directions; back-pressure comes from TCP, as it does for the real kubelet.
#ifndef VKHOST_HOST_SPDY_SPDY_H_
#define VKHOST_HOST_SPDY_SPDY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vkhost::spdy {

// ---------------------------------------------------------------- frames --

// Header names are lower-case on the wire. Several values of one name travel
// as one value joined with NUL bytes; this library passes them through.
struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};
using HeaderBlock = std::vector<Header>;

// First value of `name` (compared case-insensitively), or nullopt.
std::optional<std::string> FindHeader(const HeaderBlock& headers,
                                      absl::string_view name);

// RST_STREAM status codes (SPDY/3 section 2.4.2).
enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kInvalidCredentials = 10,
  kFrameTooLarge = 11,
};

// GOAWAY status codes.
enum class GoAwayStatus : uint32_t { kOk = 0, kProtocolError = 1, kInternalError = 2 };

struct DataFrame {
  uint32_t stream_id = 0;
  bool fin = false;
  std::string data;
  bool operator==(const DataFrame&) const = default;
};
struct SynStreamFrame {
  uint32_t stream_id = 0;
  uint32_t associated_stream_id = 0;
  uint8_t priority = 0;  // 0 (highest) .. 7
  uint8_t slot = 0;
  bool fin = false;
  bool unidirectional = false;
  HeaderBlock headers;
  bool operator==(const SynStreamFrame&) const = default;
};
struct SynReplyFrame {
  uint32_t stream_id = 0;
  bool fin = false;
  HeaderBlock headers;
  bool operator==(const SynReplyFrame&) const = default;
};
struct RstStreamFrame {
  uint32_t stream_id = 0;
  uint32_t status = static_cast<uint32_t>(RstStatus::kCancel);  // RstStatus
  bool operator==(const RstStreamFrame&) const = default;
};
struct Setting {
  uint8_t flags = 0;  // 0x1 PERSIST_VALUE, 0x2 PERSISTED
  uint32_t id = 0;    // 24 bits, e.g. 7 = INITIAL_WINDOW_SIZE
  uint32_t value = 0;
  bool operator==(const Setting&) const = default;
};
struct SettingsFrame {
  bool clear_settings = false;
  std::vector<Setting> settings;
  bool operator==(const SettingsFrame&) const = default;
};
struct PingFrame {
  uint32_t id = 0;
  bool operator==(const PingFrame&) const = default;
};
struct GoAwayFrame {
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;  // GoAwayStatus
  bool operator==(const GoAwayFrame&) const = default;
};
struct HeadersFrame {
  uint32_t stream_id = 0;
  bool fin = false;
  HeaderBlock headers;
  bool operator==(const HeadersFrame&) const = default;
};
struct WindowUpdateFrame {
  uint32_t stream_id = 0;  // 0 = the whole session (SPDY/3.1)
  uint32_t delta = 0;
  bool operator==(const WindowUpdateFrame&) const = default;
};

using Frame = std::variant<DataFrame, SynStreamFrame, SynReplyFrame,
                           RstStreamFrame, SettingsFrame, PingFrame,
                           GoAwayFrame, HeadersFrame, WindowUpdateFrame>;

// Largest payload the 24-bit length field can express.
inline constexpr uint32_t kMaxFramePayload = 0xFFFFFF;

// Bounds on what a peer can make us buffer or inflate. A peer exceeding one
// gets an error, never an allocation.
struct ParserLimits {
  uint32_t max_data_payload = kMaxFramePayload;
  uint32_t max_control_payload = 64 * 1024;
  uint32_t max_header_pairs = 256;
  uint32_t max_header_block_bytes = 256 * 1024;  // after decompression
};

// ------------------------------------------------- header compression --

// Deflates the header blocks one end sends, with the SPDY/3 dictionary, in
// one zlib stream for the connection's lifetime (each block ends with a sync
// flush, so the peer can inflate it on its own). Not thread-safe.
class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;

  // Encodes `headers` (names lower-cased, 32-bit counts and lengths) and
  // compresses them. Fails only if zlib does (or a name is empty).
  absl::StatusOr<std::string> Compress(const HeaderBlock& headers);

 private:
  struct Zlib;
  std::unique_ptr<Zlib> zlib_;
};

// Inflates the header blocks one end receives; the inverse of
// HeaderCompressor, with one zlib stream for the connection's lifetime. After
// an error the stream is unusable, as the connection is. Not thread-safe.
class HeaderDecompressor {
 public:
  explicit HeaderDecompressor(ParserLimits limits = {});
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;

  // Inflates exactly `compressed` (all of it must be consumed) and decodes
  // the name/value block. Fails on zlib errors, on a block that does not end
  // where the frame does, and on blocks beyond the limits.
  absl::StatusOr<HeaderBlock> Decompress(absl::string_view compressed);

 private:
  struct Zlib;
  ParserLimits limits_;
  std::unique_ptr<Zlib> zlib_;
  absl::Status broken_;
};

// --------------------------------------------------------------- framing --

// Incremental parser of the frames one end receives. Feed it byte chunks as
// they arrive, cut anywhere; Next() hands out each complete frame once. Any
// error is final: the connection must be torn down (a GOAWAY PROTOCOL_ERROR
// is polite). Unknown control frame types are skipped, as SPDY asks.
// Not thread-safe.
class FrameParser {
 public:
  explicit FrameParser(ParserLimits limits = {});

  void Feed(absl::string_view bytes);

  // The next complete frame, nullopt if more bytes are needed, or an error
  // naming what is malformed (truncated fields, zero stream IDs, lengths over
  // the limits, bad header blocks, wrong version).
  absl::StatusOr<std::optional<Frame>> Next();

  // Bytes fed but not yet consumed by Next.
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  absl::StatusOr<Frame> ParseControl(uint16_t type, uint8_t flags,
                                     absl::string_view payload);

  ParserLimits limits_;
  HeaderDecompressor decompressor_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  absl::Status broken_;
};

// Serialises the frames one end sends. Header blocks share this writer's
// compression context, so all frames of one connection direction must come
// from one FrameWriter, in wire order. Not thread-safe.
class FrameWriter {
 public:
  // Appends the wire bytes of `frame` to `out`. Fails (appending nothing) on
  // frames SPDY forbids: stream ID 0 where one is needed, IDs or deltas over
  // 31 bits, DATA over 2^24-1 bytes, PING ID 0, RST status 0. (A header
  // block too big for a frame fails after compression, which leaves the
  // peer's context out of step: close the connection then.)
  absl::Status Write(const Frame& frame, std::string& out);

  // Convenience: the bytes of one frame.
  absl::StatusOr<std::string> Serialize(const Frame& frame);

 private:
  HeaderCompressor compressor_;
};

// ---------------------------------------------------------------- session --

// What the peer did, as ServerSession reports it.
struct StreamOpened {  // SYN_STREAM: call AcceptStream or ResetStream.
  uint32_t stream_id = 0;
  HeaderBlock headers;
  bool fin = false;  // the peer will send nothing on it
};
struct StreamData {
  uint32_t stream_id = 0;
  std::string data;
};
struct StreamFinished {  // FIN from the peer: its half is closed (EOF).
  uint32_t stream_id = 0;
};
struct StreamReset {  // RST_STREAM from the peer: the stream is gone.
  uint32_t stream_id = 0;
  uint32_t status = 0;
};
struct SessionGoAway {  // GOAWAY: the peer opens no more streams.
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;
};
using SessionEvent = std::variant<StreamOpened, StreamData, StreamFinished,
                                  StreamReset, SessionGoAway>;

struct SessionOptions {
  ParserLimits limits;
  // SYN_STREAMs beyond this many open streams are refused (REFUSED_STREAM).
  std::size_t max_open_streams = 1000;
  // DATA we send is cut into frames of at most this many bytes.
  uint32_t max_data_frame = 32 * 1024;
};

// The server end of one SPDY connection (the kubelet's role: it accepts
// streams, never opens any). Receive() digests the peer's bytes into events
// and queues any automatic answers (PING echo, RST for bad streams); the
// Send*/Accept/Reset calls queue frames; TakeOutput() hands the queued bytes
// to whoever writes the socket.
//
// Stream rules, as spdystream expects them: client streams have odd,
// increasing IDs (others are reset with PROTOCOL_ERROR); a stream is
// forgotten once both sides finished, or either reset it. DATA for unknown or
// peer-finished streams is dropped (it races with our own RST_STREAM).
// SETTINGS and WINDOW_UPDATE are read and ignored (see the file comment).
//
// Not thread-safe: one connection, one strand.
class ServerSession {
 public:
  explicit ServerSession(SessionOptions options = {});

  // Parses `bytes` (any chunk of the connection). Returns the events they
  // complete, in order. An error is a connection error: a GOAWAY
  // PROTOCOL_ERROR has been queued; flush TakeOutput() and close.
  absl::StatusOr<std::vector<SessionEvent>> Receive(absl::string_view bytes);

  // Answers a StreamOpened with SYN_REPLY (empty headers, as the kubelet
  // does). Fails if the stream is unknown or was already answered.
  absl::Status AcceptStream(uint32_t stream_id, const HeaderBlock& headers = {});

  // Queues DATA on an accepted stream, with FIN on the last frame if `fin`.
  // Empty `data` with `fin` is a bare FIN (spdystream's Close()). Fails if
  // the stream is unknown, not accepted, or already finished by us.
  absl::Status SendData(uint32_t stream_id, absl::string_view data,
                        bool fin = false);

  // Queues RST_STREAM and forgets the stream. Fails if it is unknown.
  absl::Status ResetStream(uint32_t stream_id,
                           RstStatus status = RstStatus::kCancel);

  // Queues GOAWAY naming the last stream we accepted; later SYN_STREAMs are
  // refused. Idempotent.
  void GoAway(GoAwayStatus status = GoAwayStatus::kOk);

  // Bytes queued for the peer since the last call.
  std::string TakeOutput();

  bool HasStream(uint32_t stream_id) const { return streams_.contains(stream_id); }
  std::size_t open_streams() const { return streams_.size(); }
  bool peer_went_away() const { return peer_went_away_; }

 private:
  struct StreamState {
    bool accepted = false;
    bool local_finished = false;
    bool remote_finished = false;
  };
  absl::Status Handle(Frame frame, std::vector<SessionEvent>& events);
  void OnSynStream(SynStreamFrame frame, std::vector<SessionEvent>& events);
  void OnData(DataFrame frame, std::vector<SessionEvent>& events);
  void Queue(const Frame& frame);
  void ForgetIfDone(uint32_t stream_id);

  SessionOptions options_;
  FrameParser parser_;
  FrameWriter writer_;
  std::string output_;
  absl::flat_hash_map<uint32_t, StreamState> streams_;
  uint32_t last_peer_stream_id_ = 0;
  bool went_away_ = false;
  bool peer_went_away_ = false;
};

// ----------------------------------------------- Kubernetes stream protocol --

// Header names the Kubernetes clients put on SYN_STREAM (lower-case on the wire).
inline constexpr absl::string_view kStreamTypeHeader = "streamtype";
inline constexpr absl::string_view kPortHeader = "port";
inline constexpr absl::string_view kRequestIdHeader = "requestid";

// Values of the streamType header. exec/attach use error, stdin, stdout,
// stderr, resize; port-forward uses data and error.
enum class StreamType { kError, kStdin, kStdout, kStderr, kResize, kData };

// The wire value of `type` ("stdout", ...).
absl::string_view StreamTypeName(StreamType type);
// The stream type named by a stream's headers, or nullopt if absent/unknown
// (the kubelet ignores such streams).
std::optional<StreamType> StreamTypeOf(const HeaderBlock& headers);

// The headers of one port-forward stream.
struct PortForwardStream {
  StreamType type = StreamType::kData;  // kData or kError
  uint16_t port = 0;
  // Pairs the data and error streams of one forwarded connection; empty if
  // the (legacy) client sent none.
  std::string request_id;
};
// Validates a port-forward SYN_STREAM's headers as the kubelet does; the
// error message is what the kubelet would report ("port" header is required,
// invalid port, invalid stream type).
absl::StatusOr<PortForwardStream> ParsePortForwardHeaders(const HeaderBlock& headers);

// A terminal size, from the resize stream (or WebSocket channel 4).
struct TerminalSize {
  uint16_t width = 0;
  uint16_t height = 0;
  bool operator==(const TerminalSize&) const = default;
};

// `{"Width":W,"Height":H}` as client-go writes it (without the newline).
std::string EncodeTerminalSize(TerminalSize size);

// Decodes the resize stream: a sequence of JSON objects, cut anywhere by
// the transport. Keys match case-insensitively (as Go does); missing keys
// are 0. Errors (not JSON, not an object, values outside 0..65535, an object
// larger than 4 KiB) are final. Not thread-safe.
class TerminalSizeDecoder {
 public:
  // Returns the sizes completed by `bytes`, in order.
  absl::StatusOr<std::vector<TerminalSize>> Feed(absl::string_view bytes);

 private:
  std::string pending_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
  absl::Status broken_;
};

}  // namespace vkhost::spdy

#endif  // VKHOST_HOST_SPDY_SPDY_H_
