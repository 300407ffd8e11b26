#include "host/websocket/websocket.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host/spdy/spdy.h"

namespace vkhost::websocket {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

constexpr std::array<uint8_t, 4> kMask = {0x37, 0xFA, 0x21, 0x3D};

std::string ClientFrame(Opcode op, absl::string_view payload, bool fin = true) {
  return EncodeRawFrame(op, payload, fin, kMask);
}

// Parses all of `bytes`, one byte at a time.
std::vector<Message> ParseBytewise(FrameParser& parser, const std::string& bytes) {
  std::vector<Message> messages;
  for (char c : bytes) {
    parser.Feed(absl::string_view(&c, 1));
    for (;;) {
      absl::StatusOr<std::optional<Message>> m = parser.Next();
      EXPECT_TRUE(m.ok()) << m.status();
      if (!m.ok() || !m->has_value()) break;
      messages.push_back(**m);
    }
  }
  return messages;
}

// The error parsing `bytes` ends in, with the close code the parser chose.
std::pair<absl::Status, uint16_t> ParseFailure(const std::string& bytes,
                                               ParserLimits limits = {}) {
  FrameParser parser(limits);
  parser.Feed(bytes);
  for (;;) {
    absl::StatusOr<std::optional<Message>> m = parser.Next();
    if (!m.ok()) return {m.status(), parser.failure_close_code()};
    if (!m->has_value()) return {absl::OkStatus(), 0};
  }
}

UpgradeRequest ExampleRequest() {
  UpgradeRequest r;
  r.method = "GET";
  r.upgrade = "websocket";
  r.connection = "Upgrade";
  r.key = "dGhlIHNhbXBsZSBub25jZQ==";
  r.version = "13";
  return r;
}

// -------------------------------------------------------------- handshake --

TEST(WebSocketHandshake, Rfc6455AcceptKey) {
  EXPECT_EQ(ComputeAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, ClientOrderPicksTheProtocol) {
  UpgradeRequest r = ExampleRequest();
  r.connection = "keep-alive, Upgrade";
  r.upgrade = "WebSocket";
  r.protocols = {"bogus.k8s.io, v4.channel.k8s.io", "v5.channel.k8s.io"};
  absl::StatusOr<HandshakeAnswer> a = AnswerHandshake(r, ExecSubprotocols());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(a->protocol, "v4.channel.k8s.io");
  EXPECT_EQ(a->subprotocol->version, 4);
  EXPECT_EQ(a->subprotocol->framing, Framing::kChannels);
}

TEST(WebSocketHandshake, KubectlProtocols) {
  UpgradeRequest exec = ExampleRequest();
  exec.protocols = {"v5.channel.k8s.io"};
  EXPECT_EQ(AnswerHandshake(exec, ExecSubprotocols())->subprotocol->version, 5);
  exec.protocols = {"v4.base64.channel.k8s.io"};
  EXPECT_EQ(AnswerHandshake(exec, ExecSubprotocols())->subprotocol->framing,
            Framing::kBase64Channels);

  UpgradeRequest pf = ExampleRequest();
  pf.protocols = {"SPDY/3.1+portforward.k8s.io"};
  absl::StatusOr<HandshakeAnswer> a = AnswerHandshake(pf, PortForwardSubprotocols());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->subprotocol->framing, Framing::kSpdyTunnel);
  // exec protocols are not port-forward ones, and the reverse.
  EXPECT_FALSE(AnswerHandshake(pf, ExecSubprotocols()).ok());
}

TEST(WebSocketHandshake, NoOfferedProtocolMeansChannelK8sIo) {
  UpgradeRequest r = ExampleRequest();
  absl::StatusOr<HandshakeAnswer> a = AnswerHandshake(r, ExecSubprotocols());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->protocol, "");
  EXPECT_EQ(a->subprotocol->version, 1);
  const std::vector<absl::string_view> only_v5 = {"v5.channel.k8s.io"};
  absl::StatusOr<HandshakeAnswer> refused = AnswerHandshake(r, only_v5);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(HandshakeErrorHttpStatus(refused.status()), 400);
}

TEST(WebSocketHandshake, BadRequests) {
  UpgradeRequest r = ExampleRequest();
  r.version = "8";
  absl::Status s = AnswerHandshake(r, ExecSubprotocols()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(HandshakeErrorHttpStatus(s), 426);

  for (const char* key : {"", "short", "dGhlIHNhbXBsZSBub25jZQ", "!!!!!!!!!!!!!!!!!!!!!!==",
                          "dGhlIHNhbXBsZSBub25jZXh4"}) {
    r = ExampleRequest();
    r.key = key;
    EXPECT_EQ(AnswerHandshake(r, ExecSubprotocols()).status().code(),
              absl::StatusCode::kInvalidArgument) << key;
  }
  r = ExampleRequest();
  r.method = "POST";
  EXPECT_FALSE(AnswerHandshake(r, ExecSubprotocols()).ok());
  r = ExampleRequest();
  r.connection = "keep-alive";
  EXPECT_FALSE(AnswerHandshake(r, ExecSubprotocols()).ok());
  EXPECT_FALSE(IsWebSocketUpgrade("SPDY/3.1", "Upgrade"));
  EXPECT_TRUE(IsWebSocketUpgrade("websocket", "upgrade"));
}

// ------------------------------------------------------------------ frames --

TEST(WebSocketFrames, Rfc6455Examples) {
  // Section 5.7: a masked "Hello" from a client, and a masked pong.
  FrameParser parser;
  auto messages = ParseBytewise(
      parser, Bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
                     0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].opcode, Opcode::kText);
  EXPECT_EQ(messages[0].payload, "Hello");
  EXPECT_EQ(messages[1].opcode, Opcode::kPong);
  EXPECT_EQ(messages[1].payload, "Hello");

  // Unmasked fragmented "Hel" + "lo" (a server's frames, parsed leniently).
  FrameParser lenient({.max_message = 1024, .require_masked = false});
  messages = ParseBytewise(lenient, Bytes({0x01, 0x03, 0x48, 0x65, 0x6c,
                                           0x80, 0x02, 0x6c, 0x6f}));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].payload, "Hello");

  // Server frames: unmasked, 7-, 16- and 64-bit lengths.
  EXPECT_EQ(*EncodeFrame(Opcode::kText, "Hello"), Bytes({0x81, 0x05}) + "Hello");
  EXPECT_EQ(*EncodeFrame(Opcode::kPing, "Hello"), Bytes({0x89, 0x05}) + "Hello");
  EXPECT_EQ(EncodeFrame(Opcode::kBinary, std::string(256, 'x'))->substr(0, 4),
            Bytes({0x82, 0x7E, 0x01, 0x00}));
  EXPECT_EQ(EncodeFrame(Opcode::kBinary, std::string(65536, 'x'))->substr(0, 10),
            Bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}));
}

TEST(WebSocketFrames, FragmentsWithInterleavedControlFrames) {
  const std::string big(70000, 'b');
  const std::string wire = ClientFrame(Opcode::kBinary, "ab", false) +
                           ClientFrame(Opcode::kPing, "p") +
                           ClientFrame(Opcode::kContinuation, big, false) +
                           ClientFrame(Opcode::kContinuation, "z", true) +
                           ClientFrame(Opcode::kText, "héllo") +
                           ClientFrame(Opcode::kClose, Bytes({0x03, 0xE8}) + "bye");
  FrameParser parser;
  auto messages = ParseBytewise(parser, wire);
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].opcode, Opcode::kPing);
  EXPECT_EQ(messages[0].payload, "p");
  EXPECT_EQ(messages[1].opcode, Opcode::kBinary);
  EXPECT_EQ(messages[1].payload, "ab" + big + "z");
  EXPECT_EQ(messages[2].payload, "héllo");
  EXPECT_EQ(messages[3].opcode, Opcode::kClose);
  EXPECT_EQ(messages[3].close_code, 1000);
  EXPECT_EQ(messages[3].close_reason, "bye");
}

TEST(WebSocketFrames, RandomChunkBoundaries) {
  std::string wire;
  std::vector<std::string> sent;
  for (int i = 0; i < 300; ++i) {
    sent.push_back(std::string(i * 13 % 700, static_cast<char>('a' + i % 26)));
    wire += ClientFrame(Opcode::kBinary, sent.back());
  }
  FrameParser parser;
  std::vector<std::string> got;
  std::size_t pos = 0, step = 1;
  while (pos < wire.size()) {
    const std::size_t n = std::min(step, wire.size() - pos);
    parser.Feed(absl::string_view(wire).substr(pos, n));
    pos += n;
    step = step * 7 % 997 + 1;
    for (;;) {
      auto m = parser.Next();
      ASSERT_TRUE(m.ok()) << m.status();
      if (!m->has_value()) break;
      got.push_back((*m)->payload);
    }
  }
  EXPECT_EQ(got, sent);
}

TEST(WebSocketFrames, EmptyCloseMeansNoStatus) {
  FrameParser parser;
  auto messages = ParseBytewise(parser, ClientFrame(Opcode::kClose, ""));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].close_code, kCloseNoStatus);
}

TEST(WebSocketFrames, MalformedFramesAreCleanErrors) {
  struct Case {
    const char* what;
    std::string bytes;
    uint16_t code;
  };
  const std::string invalid_utf8 = Bytes({0xC0, 0xAF});  // overlong '/'
  std::string reserved = ClientFrame(Opcode::kBinary, "x");
  reserved[0] = static_cast<char>(reserved[0] | 0x40);
  std::string unknown = ClientFrame(Opcode::kBinary, "x");
  unknown[0] = static_cast<char>(0x83);
  const std::vector<Case> cases = {
      {"unmasked client frame", EncodeRawFrame(Opcode::kBinary, "x", true, std::nullopt),
       kCloseProtocolError},
      {"reserved bit", reserved, kCloseProtocolError},
      {"unknown opcode", unknown, kCloseProtocolError},
      {"control frame too long", ClientFrame(Opcode::kPing, std::string(126, 'p')),
       kCloseProtocolError},
      {"fragmented control frame", ClientFrame(Opcode::kPing, "p", false), kCloseProtocolError},
      {"continuation without start", ClientFrame(Opcode::kContinuation, "x"),
       kCloseProtocolError},
      {"new message mid-fragment",
       ClientFrame(Opcode::kText, "a", false) + ClientFrame(Opcode::kText, "b"),
       kCloseProtocolError},
      {"64-bit length with top bit", Bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1}),
       kCloseProtocolError},
      {"length over the limit, bytes not sent", Bytes({0x82, 0xFF, 0, 0, 0, 0, 0x10, 0, 0, 0}),
       kCloseTooBig},
      {"invalid UTF-8 text", ClientFrame(Opcode::kText, invalid_utf8), kCloseInvalidPayload},
      {"surrogate in text", ClientFrame(Opcode::kText, Bytes({0xED, 0xA0, 0x80})),
       kCloseInvalidPayload},
      {"truncated UTF-8", ClientFrame(Opcode::kText, Bytes({0xE2, 0x82})), kCloseInvalidPayload},
      {"1-byte close", ClientFrame(Opcode::kClose, Bytes({0x03})), kCloseProtocolError},
      {"close code 1005", ClientFrame(Opcode::kClose, Bytes({0x03, 0xED})), kCloseProtocolError},
      {"close code 999", ClientFrame(Opcode::kClose, Bytes({0x03, 0xE7})), kCloseProtocolError},
      {"close code 5000", ClientFrame(Opcode::kClose, Bytes({0x13, 0x88})), kCloseProtocolError},
      {"close reason not UTF-8", ClientFrame(Opcode::kClose, Bytes({0x03, 0xE8}) + invalid_utf8),
       kCloseInvalidPayload},
  };
  for (const Case& c : cases) {
    auto [status, code] = ParseFailure(c.bytes);
    EXPECT_FALSE(status.ok()) << c.what;
    EXPECT_EQ(code, c.code) << c.what << ": " << status;
  }
  // Fragments adding up past the limit.
  ParserLimits small{.max_message = 10, .require_masked = true};
  auto [status, code] = ParseFailure(ClientFrame(Opcode::kBinary, "123456", false) +
                                         ClientFrame(Opcode::kContinuation, "789012"),
                                     small);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(code, kCloseTooBig);
}

TEST(WebSocketFrames, ErrorsAreFinal) {
  FrameParser parser;
  parser.Feed(EncodeRawFrame(Opcode::kBinary, "x", true, std::nullopt));
  EXPECT_FALSE(parser.Next().ok());
  parser.Feed(ClientFrame(Opcode::kBinary, "y"));
  EXPECT_FALSE(parser.Next().ok());
}

TEST(WebSocketFrames, ServerEncoders) {
  EXPECT_FALSE(EncodeFrame(Opcode::kPong, std::string(126, 'x')).ok());
  EXPECT_FALSE(EncodeFrame(Opcode::kContinuation, "x").ok());
  EXPECT_EQ(EncodeCloseFrame(1000), Bytes({0x88, 0x02, 0x03, 0xE8}));

  // A long reason of 2-byte characters is cut without splitting one.
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "é";
  const std::string frame = EncodeCloseFrame(1011, reason);
  FrameParser parser({.max_message = 1024, .require_masked = false});
  auto messages = ParseBytewise(parser, frame);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].close_code, 1011);
  EXPECT_EQ(messages[0].close_reason.size(), 122u);
}

// ---------------------------------------------------------------- channels --

Message Binary(const std::string& payload) { return {Opcode::kBinary, payload, 0, ""}; }
Message Text(const std::string& payload) { return {Opcode::kText, payload, 0, ""}; }

TEST(WebSocketChannels, BinaryChannels) {
  auto m = DecodeChannelMessage(Framing::kChannels, Binary(Bytes({0}) + "foo\n"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(**m, (ChannelMessage{kStdin, "foo\n"}));
  EXPECT_EQ(EncodeChannelFrame(Framing::kChannels, kStdout, "\n"), Bytes({0x82, 0x02, 0x01, 0x0A}));
  // The readiness message the kubelet sends: an empty stdout message.
  EXPECT_EQ(EncodeChannelFrame(Framing::kChannels, kStdout, ""), Bytes({0x82, 0x01, 0x01}));
  // Empty messages carry no channel and are skipped.
  EXPECT_EQ(*DecodeChannelMessage(Framing::kChannels, Binary("")), std::nullopt);
}

TEST(WebSocketChannels, Base64Channels) {
  auto m = DecodeChannelMessage(Framing::kBase64Channels, Text("0Zm9vCg=="));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(**m, (ChannelMessage{kStdin, "foo\n"}));
  EXPECT_EQ(EncodeChannelFrame(Framing::kBase64Channels, kStdout, "\n"),
            Bytes({0x81, 0x05}) + "1Cg==");
  EXPECT_FALSE(DecodeChannelMessage(Framing::kBase64Channels, Text("0***")).ok());
}

TEST(WebSocketChannels, V5CloseSignal) {
  EXPECT_EQ(EncodeCloseSignalFrame(kStdout), Bytes({0x82, 0x02, 0xFF, 0x01}));
  auto m = DecodeChannelMessage(Framing::kChannels, Binary(Bytes({0xFF, 0x00})));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(ClosedChannel(**m), kStdin);
  EXPECT_EQ(ClosedChannel(ChannelMessage{kCloseSignal, ""}), std::nullopt);
  EXPECT_EQ(ClosedChannel(ChannelMessage{kStdin, Bytes({0})}), std::nullopt);
}

TEST(WebSocketChannels, PortForwardLayout) {
  EXPECT_EQ(PortForwardChannels(0).data, 0);
  EXPECT_EQ(PortForwardChannels(0).error, 1);
  EXPECT_EQ(PortForwardChannels(2).data, 4);
  EXPECT_EQ(PortForwardChannels(2).error, 5);
  EXPECT_EQ(PortPrefix(8080), Bytes({0x90, 0x1F}));
  EXPECT_EQ(EncodeChannelFrame(Framing::kChannels, PortForwardChannels(0).data, PortPrefix(8080)),
            Bytes({0x82, 0x03, 0x00, 0x90, 0x1F}));
}

TEST(WebSocketChannels, TunnelHasNoChannels) {
  EXPECT_FALSE(DecodeChannelMessage(Framing::kSpdyTunnel, Binary("x")).ok());
  EXPECT_FALSE(DecodeChannelMessage(Framing::kChannels, Message{Opcode::kPing, "x", 0, ""}).ok());
  EXPECT_EQ(EncodeChannelFrame(Framing::kSpdyTunnel, 7, "raw"), Bytes({0x82, 0x03}) + "raw");
}

// SPDY inside WebSocket, as kubectl port-forward sends it: the SPDY byte
// stream cut at arbitrary points into binary messages.
TEST(WebSocketChannels, SpdyTunnelCarriesASpdySession) {
  spdy::FrameWriter client;
  std::string spdy_bytes;
  ASSERT_TRUE(client.Write(spdy::SynStreamFrame{1, 0, 0, 0, false, false,
                                                {{"streamtype", "error"}, {"port", "80"},
                                                 {"requestid", "0"}}},
                           spdy_bytes).ok());
  ASSERT_TRUE(client.Write(spdy::SynStreamFrame{3, 0, 0, 0, false, false,
                                                {{"streamtype", "data"}, {"port", "80"},
                                                 {"requestid", "0"}}},
                           spdy_bytes).ok());
  ASSERT_TRUE(client.Write(spdy::DataFrame{3, false, "GET / HTTP/1.0\r\n\r\n"}, spdy_bytes).ok());
  std::string wire;
  for (std::size_t pos = 0; pos < spdy_bytes.size(); pos += 5) {
    wire += ClientFrame(Opcode::kBinary, absl::string_view(spdy_bytes).substr(pos, 5));
  }

  FrameParser parser;
  spdy::ServerSession session;
  std::vector<spdy::SessionEvent> events;
  for (const Message& m : ParseBytewise(parser, wire)) {
    auto got = session.Receive(m.payload);
    ASSERT_TRUE(got.ok()) << got.status();
    events.insert(events.end(), got->begin(), got->end());
  }
  ASSERT_EQ(events.size(), 3u);
  auto pf = spdy::ParsePortForwardHeaders(std::get<spdy::StreamOpened>(events[1]).headers);
  ASSERT_TRUE(pf.ok());
  EXPECT_EQ(pf->type, spdy::StreamType::kData);
  EXPECT_EQ(pf->port, 80);
  EXPECT_EQ(std::get<spdy::StreamData>(events[2]).data, "GET / HTTP/1.0\r\n\r\n");
}

}  // namespace
}  // namespace vkhost::websocket

namespace vkhost::websocket {
namespace {

// Arbitrary bytes end in messages, "need more", or an error; never a crash.
TEST(WebSocketFrames, SurvivesArbitraryBytes) {
  uint32_t seed = 54321;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int round = 0; round < 2000; ++round) {
    std::string bytes;
    const int n = next() % 64;
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<char>(next() >> 16));
    FrameParser parser({.max_message = 1024, .require_masked = round % 2 == 0});
    parser.Feed(bytes);
    for (int i = 0; i < 100; ++i) {
      auto m = parser.Next();
      if (!m.ok() || !m->has_value()) break;
    }
  }
}

}  // namespace
}  // namespace vkhost::websocket
