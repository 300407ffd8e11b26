#include "host/spdy/spdy.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "host/spdy/dictionary.h"

namespace vkhost::spdy {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// zlib used directly (not through this library), as spdystream would: level
// 9, SPDY dictionary, one sync-flushed block per header block.
class ReferenceDeflater {
 public:
  ReferenceDeflater() {
    deflateInit(&z_, Z_BEST_COMPRESSION);
    deflateSetDictionary(&z_, internal::kHeaderDictionary, internal::kHeaderDictionarySize);
  }
  ~ReferenceDeflater() { deflateEnd(&z_); }
  std::string Deflate(const std::string& raw) {
    std::string out(raw.size() + 256, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    z_.avail_in = static_cast<uInt>(raw.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&z_, Z_SYNC_FLUSH), Z_OK);
    out.resize(out.size() - z_.avail_out);
    return out;
  }

 private:
  z_stream z_{};
};

std::string ReferenceInflate(const std::string& compressed) {
  z_stream z{};
  inflateInit(&z);
  std::string out(64 * 1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&z, Z_SYNC_FLUSH);
  if (rc == Z_NEED_DICT) {
    inflateSetDictionary(&z, internal::kHeaderDictionary, internal::kHeaderDictionarySize);
    rc = inflate(&z, Z_SYNC_FLUSH);
  }
  EXPECT_EQ(rc, Z_OK);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

// The uncompressed header block of `streamtype: stdout`, built by hand from
// the SPDY/3 layout (32-bit count, 32-bit lengths).
const std::string kStdoutBlock =
    Bytes({0, 0, 0, 1, 0, 0, 0, 10}) + "streamtype" + Bytes({0, 0, 0, 6}) + "stdout";

// Parses everything in `bytes`, fed one byte at a time.
std::vector<Frame> ParseAllBytewise(FrameParser& parser, const std::string& bytes) {
  std::vector<Frame> frames;
  for (char c : bytes) {
    parser.Feed(absl::string_view(&c, 1));
    for (;;) {
      absl::StatusOr<std::optional<Frame>> f = parser.Next();
      EXPECT_TRUE(f.ok()) << f.status();
      if (!f.ok() || !f->has_value()) break;
      frames.push_back(**f);
    }
  }
  return frames;
}

absl::Status ParseError(const std::string& bytes, ParserLimits limits = {}) {
  FrameParser parser(limits);
  parser.Feed(bytes);
  for (;;) {
    absl::StatusOr<std::optional<Frame>> f = parser.Next();
    if (!f.ok()) return f.status();
    if (!f->has_value()) return absl::OkStatus();
  }
}

TEST(SpdyDictionary, HasTheZlibIdSpdystreamPeersUse) {
  const uLong id = adler32(adler32(0, nullptr, 0), internal::kHeaderDictionary,
                           internal::kHeaderDictionarySize);
  EXPECT_EQ(id, 0xE3C6A7C2u);
}

TEST(SpdyHeaders, ReferenceCompressedSynStreamParses) {
  ReferenceDeflater deflater;
  const std::string compressed = deflater.Deflate(kStdoutBlock);
  // CMF 0x78, FLG 0xF9 (FDICT, level 9), then the dictionary id.
  ASSERT_EQ(compressed.substr(0, 6), Bytes({0x78, 0xF9, 0xE3, 0xC6, 0xA7, 0xC2}));
  const uint32_t length = 10 + static_cast<uint32_t>(compressed.size());
  const std::string frame =
      Bytes({0x80, 0x03, 0x00, 0x01, 0x00, 0, 0, static_cast<int>(length)}) +
      Bytes({0, 0, 0, 1, 0, 0, 0, 0, 0x00, 0x00}) + compressed;

  FrameParser parser;
  const std::vector<Frame> frames = ParseAllBytewise(parser, frame);
  ASSERT_EQ(frames.size(), 1u);
  const auto& syn = std::get<SynStreamFrame>(frames[0]);
  EXPECT_EQ(syn.stream_id, 1u);
  EXPECT_FALSE(syn.fin);
  EXPECT_EQ(syn.headers, (HeaderBlock{{"streamtype", "stdout"}}));
}

TEST(SpdyHeaders, CompressorOutputInflatesToTheHandBuiltBlock) {
  HeaderCompressor compressor;
  absl::StatusOr<std::string> compressed = compressor.Compress({{"streamType", "stdout"}});
  ASSERT_TRUE(compressed.ok()) << compressed.status();
  EXPECT_EQ(ReferenceInflate(*compressed), kStdoutBlock);  // name lower-cased
}

TEST(SpdyHeaders, OneContextPerDirectionAcrossManyBlocks) {
  HeaderCompressor compressor;
  HeaderDecompressor decompressor;
  for (int i = 0; i < 50; ++i) {
    const HeaderBlock block = {{"streamtype", i % 2 ? "stdin" : "error"},
                               {"port", std::to_string(8000 + i)},
                               {"requestid", std::to_string(i)}};
    absl::StatusOr<std::string> compressed = compressor.Compress(block);
    ASSERT_TRUE(compressed.ok());
    absl::StatusOr<HeaderBlock> back = decompressor.Decompress(*compressed);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, block);
  }
}

TEST(SpdyHeaders, GarbageIsAnErrorAndBreaksTheContext) {
  HeaderDecompressor decompressor;
  EXPECT_FALSE(decompressor.Decompress("not zlib at all").ok());
  HeaderCompressor compressor;
  EXPECT_FALSE(decompressor.Decompress(*compressor.Compress({})).ok());
}

TEST(SpdyHeaders, WrongDictionaryIsRejected) {
  z_stream z{};
  deflateInit(&z, 6);
  const char dict[] = "some other dictionary";
  deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dict), sizeof(dict));
  std::string raw = kStdoutBlock, out(256, '\0');
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  HeaderDecompressor decompressor;
  EXPECT_FALSE(decompressor.Decompress(out).ok());
}

TEST(SpdyHeaders, LimitsOnPairsAndInflatedSize) {
  ReferenceDeflater deflater;
  // Claims 1000 pairs but holds none.
  HeaderDecompressor d1;
  EXPECT_FALSE(d1.Decompress(deflater.Deflate(Bytes({0, 0, 0x03, 0xE8}))).ok());

  // A small compressed block that inflates to 1 MiB.
  ReferenceDeflater bomb;
  const std::string value(1 << 20, 'a');
  std::string raw = Bytes({0, 0, 0, 1, 0, 0, 0, 1}) + "x" + Bytes({0, 0x10, 0, 0}) + value;
  HeaderDecompressor d2;
  absl::StatusOr<HeaderBlock> result = d2.Decompress(bomb.Deflate(raw));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("inflates beyond"), std::string::npos);

  // Bytes after the last pair.
  ReferenceDeflater trailing;
  HeaderDecompressor d3;
  EXPECT_FALSE(d3.Decompress(trailing.Deflate(kStdoutBlock + "xx")).ok());

  // A value length running past the block.
  ReferenceDeflater overrun;
  HeaderDecompressor d4;
  EXPECT_FALSE(d4.Decompress(overrun.Deflate(Bytes({0, 0, 0, 1, 0, 0, 0, 1}) + "x" +
                                              Bytes({0x7F, 0xFF, 0xFF, 0xFF})))
                   .ok());
}

TEST(SpdyHeaders, FindHeaderIsCaseInsensitive) {
  const HeaderBlock block = {{"streamtype", "error"}};
  EXPECT_EQ(FindHeader(block, "streamType"), "error");
  EXPECT_EQ(FindHeader(block, "port"), std::nullopt);
}

TEST(SpdyFraming, KnownByteVectors) {
  FrameWriter writer;
  EXPECT_EQ(*writer.Serialize(RstStreamFrame{3, static_cast<uint32_t>(RstStatus::kCancel)}),
            Bytes({0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5}));
  EXPECT_EQ(*writer.Serialize(PingFrame{1}),
            Bytes({0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1}));
  EXPECT_EQ(*writer.Serialize(DataFrame{1, true, "hi"}),
            Bytes({0, 0, 0, 1, 1, 0, 0, 2}) + "hi");
  EXPECT_EQ(*writer.Serialize(GoAwayFrame{5, 1}),
            Bytes({0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 1}));
  EXPECT_EQ(*writer.Serialize(WindowUpdateFrame{0, 65536}),
            Bytes({0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(*writer.Serialize(SettingsFrame{false, {{1, 7, 65536}}}),
            Bytes({0x80, 3, 0, 4, 0, 0, 0, 12, 0, 0, 0, 1, 1, 0, 0, 7, 0, 1, 0, 0}));
  // SYN_REPLY: header, stream ID, then the compressed (empty) block.
  const std::string reply = *writer.Serialize(SynReplyFrame{7, false, {}});
  EXPECT_EQ(reply.substr(0, 5), Bytes({0x80, 3, 0, 2, 0}));
  EXPECT_EQ(reply.substr(8, 4), Bytes({0, 0, 0, 7}));
}

TEST(SpdyFraming, EveryFrameTypeRoundTripsBytewise) {
  const std::vector<Frame> frames = {
      SynStreamFrame{1, 0, 2, 0, false, false, {{"streamtype", "error"}}},
      SynStreamFrame{3, 1, 7, 9, true, true,
                     {{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}}},
      SynReplyFrame{1, false, {}},
      SynReplyFrame{3, true, {{"multi", std::string("a\0b", 3)}}},
      HeadersFrame{1, true, {{"x", "y"}}},
      DataFrame{1, false, "hello"},
      DataFrame{1, true, ""},
      DataFrame{0x7FFFFFFF, false, std::string(70000, 'z')},
      RstStreamFrame{3, static_cast<uint32_t>(RstStatus::kRefusedStream)},
      SettingsFrame{true, {{1, 4, 100}, {0, 7, 65536}}},
      SettingsFrame{false, {}},
      PingFrame{0xFFFFFFFF},
      GoAwayFrame{3, 2},
      WindowUpdateFrame{1, 0x7FFFFFFF},
  };
  FrameWriter writer;
  std::string wire;
  for (const Frame& f : frames) ASSERT_TRUE(writer.Write(f, wire).ok());
  FrameParser parser;
  EXPECT_EQ(ParseAllBytewise(parser, wire), frames);
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(SpdyFraming, RandomChunkBoundaries) {
  FrameWriter writer;
  std::string wire;
  std::vector<Frame> frames;
  for (uint32_t i = 1; i < 200; i += 2) {
    frames.push_back(SynStreamFrame{i, 0, 0, 0, false, false, {{"streamtype", "stdout"}}});
    frames.push_back(DataFrame{i, i % 3 == 0, std::string(i * 7, 'a' + i % 26)});
  }
  for (const Frame& f : frames) ASSERT_TRUE(writer.Write(f, wire).ok());
  FrameParser parser;
  std::vector<Frame> got;
  std::size_t pos = 0, step = 1;
  while (pos < wire.size()) {
    const std::size_t n = std::min(step, wire.size() - pos);
    parser.Feed(absl::string_view(wire).substr(pos, n));
    pos += n;
    step = step * 7 % 1013 + 1;
    for (;;) {
      absl::StatusOr<std::optional<Frame>> f = parser.Next();
      ASSERT_TRUE(f.ok()) << f.status();
      if (!f->has_value()) break;
      got.push_back(**f);
    }
  }
  EXPECT_EQ(got, frames);
}

TEST(SpdyFraming, TruncatedInputWaitsForMore) {
  FrameWriter writer;
  const std::string wire = *writer.Serialize(DataFrame{1, false, "abcdef"});
  FrameParser parser;
  parser.Feed(wire.substr(0, wire.size() - 1));
  absl::StatusOr<std::optional<Frame>> f = parser.Next();
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  EXPECT_EQ(parser.buffered(), wire.size() - 1);
}

TEST(SpdyFraming, UnknownControlFramesAreSkipped) {
  FrameWriter writer;
  const std::string noop = Bytes({0x80, 3, 0, 5, 0, 0, 0, 0});
  const std::string credential = Bytes({0x80, 3, 0, 10, 0, 0, 0, 2, 0xAB, 0xCD});
  FrameParser parser;
  const auto frames = ParseAllBytewise(
      parser, noop + credential + *writer.Serialize(PingFrame{1}));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<PingFrame>(frames[0]).id, 1u);
}

TEST(SpdyFraming, MalformedFramesAreCleanErrors) {
  // SPDY/2 control frame.
  EXPECT_FALSE(ParseError(Bytes({0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1})).ok());
  // DATA on stream 0.
  EXPECT_FALSE(ParseError(Bytes({0, 0, 0, 0, 0, 0, 0, 1, 'x'})).ok());
  // DATA longer than the limit: rejected from the header, before buffering.
  ParserLimits small;
  small.max_data_payload = 16;
  EXPECT_FALSE(ParseError(Bytes({0, 0, 0, 1, 0, 0, 0, 17}), small).ok());
  // Control frame claiming 16 MiB.
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 1, 0, 0xFF, 0xFF, 0xFF})).ok());
  // RST_STREAM with status 0, with stream 0, with the wrong length.
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0})).ok());
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5})).ok());
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1})).ok());
  // PING ID 0; PING too long.
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 0})).ok());
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1, 0})).ok());
  // SETTINGS claiming more entries than it holds.
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 4, 0, 0, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF})).ok());
  // WINDOW_UPDATE with delta 0.
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0})).ok());
  // SYN_STREAM shorter than its fixed part; with zlib garbage.
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1})).ok());
  EXPECT_FALSE(ParseError(Bytes({0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                 0xDE, 0xAD, 0xBE, 0xEF}))
                   .ok());
  // SYN_STREAM with a valid block but stream ID 0.
  FrameWriter writer;
  std::string syn = *writer.Serialize(SynStreamFrame{1, 0, 0, 0, false, false, {}});
  syn[8] = syn[9] = syn[10] = syn[11] = 0;
  EXPECT_FALSE(ParseError(syn).ok());
}

TEST(SpdyFraming, ErrorsAreFinal) {
  FrameParser parser;
  parser.Feed(Bytes({0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1}));
  EXPECT_FALSE(parser.Next().ok());
  FrameWriter writer;
  parser.Feed(*writer.Serialize(PingFrame{1}));
  EXPECT_FALSE(parser.Next().ok());
}

TEST(SpdyFraming, WriterRejectsInvalidFrames) {
  FrameWriter writer;
  std::string out = "kept";
  EXPECT_FALSE(writer.Write(DataFrame{0, false, "x"}, out).ok());
  EXPECT_FALSE(writer.Write(DataFrame{0x80000000, false, "x"}, out).ok());
  EXPECT_FALSE(writer.Write(PingFrame{0}, out).ok());
  EXPECT_FALSE(writer.Write(RstStreamFrame{1, 0}, out).ok());
  EXPECT_FALSE(writer.Write(WindowUpdateFrame{1, 0}, out).ok());
  EXPECT_FALSE(writer.Write(SynStreamFrame{0, 0, 0, 0, false, false, {}}, out).ok());
  EXPECT_FALSE(writer.Write(SynReplyFrame{1, false, {{"", "v"}}}, out).ok());
  EXPECT_EQ(out, "kept");
}

// ----------------------------------------------------------------- session --

// The client end, as spdystream is: writes with its own compression context,
// parses the server's frames with another.
struct TestClient {
  FrameWriter writer;
  FrameParser parser;

  std::string Send(const std::vector<Frame>& frames) {
    std::string wire;
    for (const Frame& f : frames) EXPECT_TRUE(writer.Write(f, wire).ok());
    return wire;
  }
  std::vector<Frame> Read(const std::string& bytes) { return ParseAllBytewise(parser, bytes); }
};

SynStreamFrame Syn(uint32_t id, const std::string& type, bool fin = false) {
  return SynStreamFrame{id, 0, 0, 0, fin, false, {{"streamtype", type}}};
}

std::vector<SessionEvent> MustReceive(ServerSession& session, const std::string& bytes) {
  absl::StatusOr<std::vector<SessionEvent>> events = session.Receive(bytes);
  EXPECT_TRUE(events.ok()) << events.status();
  return events.ok() ? *events : std::vector<SessionEvent>{};
}

TEST(SpdySession, ExecLikeExchange) {
  ServerSession session;
  TestClient client;

  // error, stdin, stdout, each answered with SYN_REPLY.
  const char* types[] = {"error", "stdin", "stdout"};
  for (uint32_t i = 0; i < 3; ++i) {
    const uint32_t id = 2 * i + 1;
    auto events = MustReceive(session, client.Send({Syn(id, types[i])}));
    ASSERT_EQ(events.size(), 1u);
    const auto& opened = std::get<StreamOpened>(events[0]);
    EXPECT_EQ(opened.stream_id, id);
    EXPECT_EQ(StreamTypeOf(opened.headers), i == 0   ? StreamType::kError
                                            : i == 1 ? StreamType::kStdin
                                                     : StreamType::kStdout);
    ASSERT_TRUE(session.AcceptStream(id).ok());
    auto replies = client.Read(session.TakeOutput());
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(std::get<SynReplyFrame>(replies[0]), (SynReplyFrame{id, false, {}}));
  }

  // stdin data, then the client's half-close.
  auto events = MustReceive(session, client.Send({DataFrame{3, false, "ls\n"},
                                                  DataFrame{3, true, ""}}));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::get<StreamData>(events[0]).data, "ls\n");
  EXPECT_EQ(std::get<StreamFinished>(events[1]).stream_id, 3u);

  // stdout output, cut into frames, FIN on the last.
  ASSERT_TRUE(session.SendData(5, std::string(70000, 'o'), true).ok());
  auto out = client.Read(session.TakeOutput());
  ASSERT_EQ(out.size(), 3u);  // 32768 + 32768 + 4464
  std::string all;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& d = std::get<DataFrame>(out[i]);
    EXPECT_EQ(d.stream_id, 5u);
    EXPECT_EQ(d.fin, i + 1 == out.size());
    all += d.data;
  }
  EXPECT_EQ(all, std::string(70000, 'o'));
  EXPECT_FALSE(session.SendData(5, "late").ok());

  // The error stream: status, FIN. Then reset stdin: all streams gone.
  ASSERT_TRUE(session.SendData(1, "{\"status\":\"Success\"}", true).ok());
  ASSERT_TRUE(session.ResetStream(3).ok());
  auto tail = client.Read(session.TakeOutput());
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(std::get<RstStreamFrame>(tail[1]).status, static_cast<uint32_t>(RstStatus::kCancel));
  EXPECT_TRUE(session.HasStream(1));   // the client has not finished it
  EXPECT_FALSE(session.HasStream(3));  // reset
  EXPECT_TRUE(session.HasStream(5));
  MustReceive(session, client.Send({DataFrame{1, true, ""}, DataFrame{5, true, ""}}));
  EXPECT_EQ(session.open_streams(), 0u);
}

TEST(SpdySession, AnswersClientPingsOnly) {
  ServerSession session;
  TestClient client;
  EXPECT_TRUE(MustReceive(session, client.Send({PingFrame{7}, PingFrame{8}})).empty());
  auto out = client.Read(session.TakeOutput());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<PingFrame>(out[0]).id, 7u);
}

TEST(SpdySession, IgnoresFlowControlFrames) {
  ServerSession session;
  TestClient client;
  EXPECT_TRUE(MustReceive(session, client.Send({SettingsFrame{false, {{0, 7, 1}}},
                                                WindowUpdateFrame{0, 1}}))
                  .empty());
  EXPECT_TRUE(session.TakeOutput().empty());
  // A 1-byte initial window does not stop us from sending.
  MustReceive(session, client.Send({Syn(1, "stdout")}));
  ASSERT_TRUE(session.AcceptStream(1).ok());
  EXPECT_TRUE(session.SendData(1, std::string(1000, 'x')).ok());
}

TEST(SpdySession, RejectsBadStreamIds) {
  ServerSession session;
  TestClient client;
  MustReceive(session, client.Send({Syn(5, "error")}));
  // Even (server-side) ID, and an ID going backwards.
  EXPECT_TRUE(MustReceive(session, client.Send({Syn(6, "stdin"), Syn(3, "stdin")})).empty());
  auto out = client.Read(session.TakeOutput());
  ASSERT_EQ(out.size(), 2u);
  for (const Frame& f : out) {
    EXPECT_EQ(std::get<RstStreamFrame>(f).status,
              static_cast<uint32_t>(RstStatus::kProtocolError));
  }
  EXPECT_EQ(session.open_streams(), 1u);
}

TEST(SpdySession, PeerResetAndGoAway) {
  ServerSession session;
  TestClient client;
  MustReceive(session, client.Send({Syn(1, "stdout")}));
  ASSERT_TRUE(session.AcceptStream(1).ok());
  auto events = MustReceive(session, client.Send(
      {RstStreamFrame{1, 5}, RstStreamFrame{9, 5}, GoAwayFrame{0, 0}}));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(std::get<StreamReset>(events[0]).stream_id, 1u);
  EXPECT_EQ(std::get<SessionGoAway>(events[1]).status, 0u);
  EXPECT_TRUE(session.peer_went_away());
  EXPECT_FALSE(session.HasStream(1));
  EXPECT_EQ(session.SendData(1, "x").code(), absl::StatusCode::kNotFound);
  // Data racing our forgetting of the stream is dropped silently.
  EXPECT_TRUE(MustReceive(session, client.Send({DataFrame{1, false, "late"}})).empty());
}

TEST(SpdySession, OurGoAwayRefusesLaterStreams) {
  ServerSession session;
  TestClient client;
  MustReceive(session, client.Send({Syn(1, "error")}));
  session.GoAway();
  session.GoAway();  // idempotent
  MustReceive(session, client.Send({Syn(3, "stdin")}));
  auto out = client.Read(session.TakeOutput());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::get<GoAwayFrame>(out[0]), (GoAwayFrame{1, 0}));
  EXPECT_EQ(std::get<RstStreamFrame>(out[1]).status,
            static_cast<uint32_t>(RstStatus::kRefusedStream));
}

TEST(SpdySession, CapsOpenStreams) {
  SessionOptions options;
  options.max_open_streams = 2;
  ServerSession session(options);
  TestClient client;
  auto events = MustReceive(session, client.Send({Syn(1, "a"), Syn(3, "b"), Syn(5, "c")}));
  EXPECT_EQ(events.size(), 2u);
  auto out = client.Read(session.TakeOutput());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<RstStreamFrame>(out[0]).stream_id, 5u);
}

TEST(SpdySession, AcceptAndSendPreconditions) {
  ServerSession session;
  TestClient client;
  EXPECT_EQ(session.AcceptStream(1).code(), absl::StatusCode::kNotFound);
  MustReceive(session, client.Send({Syn(1, "stdout")}));
  EXPECT_EQ(session.SendData(1, "x").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(session.AcceptStream(1).ok());
  EXPECT_EQ(session.AcceptStream(1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(session.ResetStream(99).code(), absl::StatusCode::kNotFound);
}

TEST(SpdySession, StreamOpenedWithFinIsRemoteFinished) {
  ServerSession session;
  TestClient client;
  auto events = MustReceive(session, client.Send({Syn(1, "error", /*fin=*/true)}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(std::get<StreamOpened>(events[0]).fin);
  ASSERT_TRUE(session.AcceptStream(1).ok());
  ASSERT_TRUE(session.SendData(1, "", true).ok());
  EXPECT_EQ(session.open_streams(), 0u);
  auto out = client.Read(session.TakeOutput());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::get<DataFrame>(out[1]), (DataFrame{1, true, ""}));
}

TEST(SpdySession, MalformedInputQueuesGoAwayAndFails) {
  ServerSession session;
  TestClient client;
  MustReceive(session, client.Send({Syn(1, "error")}));
  EXPECT_FALSE(session.Receive(Bytes({0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 0})).ok());
  auto out = client.Read(session.TakeOutput());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<GoAwayFrame>(out[0]), (GoAwayFrame{1, 1}));
  EXPECT_FALSE(session.Receive(client.Send({PingFrame{1}})).ok());
}

// --------------------------------------------------- Kubernetes protocol --

TEST(SpdyKubernetes, StreamTypes) {
  for (StreamType t : {StreamType::kError, StreamType::kStdin, StreamType::kStdout,
                       StreamType::kStderr, StreamType::kResize, StreamType::kData}) {
    EXPECT_EQ(StreamTypeOf({{"streamtype", std::string(StreamTypeName(t))}}), t);
  }
  EXPECT_EQ(StreamTypeOf({{"streamtype", "bogus"}}), std::nullopt);
  EXPECT_EQ(StreamTypeOf({}), std::nullopt);
}

TEST(SpdyKubernetes, PortForwardHeaders) {
  absl::StatusOr<PortForwardStream> s = ParsePortForwardHeaders(
      {{"streamtype", "data"}, {"port", "8080"}, {"requestid", "3"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, StreamType::kData);
  EXPECT_EQ(s->port, 8080);
  EXPECT_EQ(s->request_id, "3");
  s = ParsePortForwardHeaders({{"streamtype", "error"}, {"port", "1"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->request_id, "");

  for (const char* bad : {"0", "65536", "-1", "+80", " 80", "80 ", "", "http", "123456"}) {
    EXPECT_FALSE(ParsePortForwardHeaders({{"streamtype", "data"}, {"port", bad}}).ok()) << bad;
  }
  EXPECT_EQ(ParsePortForwardHeaders({{"streamtype", "data"}}).status().message(),
            "\"port\" header is required");
  EXPECT_FALSE(ParsePortForwardHeaders({{"port", "80"}}).ok());
  EXPECT_FALSE(ParsePortForwardHeaders({{"streamtype", "stdout"}, {"port", "80"}}).ok());
}

TEST(SpdyKubernetes, TerminalSizeRoundTripBytewise) {
  const std::string wire = EncodeTerminalSize({120, 40}) + "\n" +
                           EncodeTerminalSize({65535, 0}) + "\n" +
                           "{\"width\": 80, \"HEIGHT\": 24, \"Other\": \"}{\\\"\"}";
  EXPECT_EQ(EncodeTerminalSize({120, 40}), "{\"Width\":120,\"Height\":40}");
  TerminalSizeDecoder decoder;
  std::vector<TerminalSize> sizes;
  for (char c : wire) {
    auto got = decoder.Feed(absl::string_view(&c, 1));
    ASSERT_TRUE(got.ok()) << got.status();
    sizes.insert(sizes.end(), got->begin(), got->end());
  }
  EXPECT_EQ(sizes, (std::vector<TerminalSize>{{120, 40}, {65535, 0}, {80, 24}}));
}

TEST(SpdyKubernetes, TerminalSizeErrors) {
  for (const char* bad : {"[1,2]", "{\"Width\":-1}", "{\"Width\":65536}",
                          "{\"Width\":1.5}", "{\"Width\":\"80\"}", "{\"Width\":}", "x"}) {
    TerminalSizeDecoder decoder;
    EXPECT_FALSE(decoder.Feed(bad).ok()) << bad;
  }
  TerminalSizeDecoder decoder;
  EXPECT_FALSE(decoder.Feed("{\"a\":\"" + std::string(5000, 'x')).ok());
  EXPECT_FALSE(decoder.Feed("{}").ok());  // errors are final
}

}  // namespace
}  // namespace vkhost::spdy

namespace vkhost::spdy {
namespace {

// Arbitrary bytes end in frames, "need more", or an error; never a crash.
TEST(SpdyFraming, SurvivesArbitraryBytes) {
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int round = 0; round < 2000; ++round) {
    std::string bytes;
    const int n = next() % 64;
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<char>(next() >> 16));
    if (round % 2 == 0 && bytes.size() >= 2) {
      bytes[0] = static_cast<char>(0x80);  // steer toward control frames
      bytes[1] = 3;
    }
    ServerSession session;
    (void)session.Receive(bytes);
    (void)session.TakeOutput();
  }
}

}  // namespace
}  // namespace vkhost::spdy
