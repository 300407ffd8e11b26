// SPDY/3 frame parsing and serialisation (draft 3.1, section 2).
#include <utility>

#include "absl/strings/str_cat.h"
#include "host/spdy/spdy.h"
#include "host/spdy/wire.h"

namespace vkhost::spdy {
namespace {

constexpr uint16_t kVersion = 3;
constexpr uint32_t kControlBit = 0x80000000u;
constexpr uint32_t kId31 = 0x7FFFFFFFu;
constexpr uint8_t kFlagFin = 0x01;
constexpr uint8_t kFlagUnidirectional = 0x02;
constexpr uint8_t kFlagClearSettings = 0x01;

enum ControlType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

absl::Status Malformed(absl::string_view frame, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed SPDY ", frame, " frame: ", why));
}

// Payload must be exactly `want` bytes.
absl::Status ExpectLength(absl::string_view frame, absl::string_view payload,
                          std::size_t want) {
  if (payload.size() == want) return absl::OkStatus();
  return Malformed(frame, absl::StrCat("length ", payload.size(), ", want ", want));
}

absl::StatusOr<uint32_t> NonZeroId(absl::string_view frame, const char* p) {
  const uint32_t id = internal::ReadU32(p) & kId31;
  if (id == 0) return Malformed(frame, "stream ID 0");
  return id;
}

}  // namespace

// ------------------------------------------------------------------ parser --

FrameParser::FrameParser(ParserLimits limits)
    : limits_(limits), decompressor_(limits) {}

void FrameParser::Feed(absl::string_view bytes) {
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ >= 64 * 1024) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

absl::StatusOr<std::optional<Frame>> FrameParser::Next() {
  if (!broken_.ok()) return broken_;
  for (;;) {
    const std::size_t available = buffer_.size() - consumed_;
    if (available < 8) return std::nullopt;
    const char* p = buffer_.data() + consumed_;
    const uint32_t first = internal::ReadU32(p);
    const uint8_t flags = static_cast<uint8_t>(p[4]);
    const uint32_t length = internal::ReadU24(p + 5);
    const bool control = (first & kControlBit) != 0;
    if (control) {
      const uint16_t version = (first >> 16) & 0x7FFF;
      if (version != kVersion) {
        broken_ = absl::InvalidArgumentError(absl::StrCat(
            "SPDY control frame has version ", version, "; only SPDY/3 is spoken"));
        return broken_;
      }
    }
    const uint32_t limit =
        control ? limits_.max_control_payload : limits_.max_data_payload;
    if (length > limit) {
      broken_ = absl::InvalidArgumentError(absl::StrCat(
          "SPDY ", control ? "control" : "data", " frame of ", length,
          " bytes exceeds the limit of ", limit));
      return broken_;
    }
    if (available - 8 < length) return std::nullopt;
    const absl::string_view payload(p + 8, length);
    consumed_ += 8 + length;

    if (!control) {
      const uint32_t stream_id = first & kId31;
      if (stream_id == 0) {
        broken_ = Malformed("DATA", "stream ID 0");
        return broken_;
      }
      return Frame(DataFrame{stream_id, (flags & kFlagFin) != 0, std::string(payload)});
    }
    const uint16_t type = first & 0xFFFF;
    if (type < kSynStream || type > kWindowUpdate || type == 5) {
      continue;  // NOOP, CREDENTIAL, unknown: SPDY says ignore.
    }
    absl::StatusOr<Frame> frame = ParseControl(type, flags, payload);
    if (!frame.ok()) {
      broken_ = frame.status();
      return broken_;
    }
    return *std::move(frame);
  }
}

absl::StatusOr<Frame> FrameParser::ParseControl(uint16_t type, uint8_t flags,
                                                absl::string_view payload) {
  const char* p = payload.data();
  const bool fin = (flags & kFlagFin) != 0;
  switch (type) {
    case kSynStream: {
      if (payload.size() < 10) return Malformed("SYN_STREAM", "shorter than 10 bytes");
      // Inflate before validating anything else: the shared zlib stream must
      // see every header block, or the next one will not decode.
      absl::StatusOr<HeaderBlock> headers = decompressor_.Decompress(payload.substr(10));
      if (!headers.ok()) return headers.status();
      absl::StatusOr<uint32_t> id = NonZeroId("SYN_STREAM", p);
      if (!id.ok()) return id.status();
      SynStreamFrame f;
      f.stream_id = *id;
      f.associated_stream_id = internal::ReadU32(p + 4) & kId31;
      f.priority = static_cast<uint8_t>(p[8]) >> 5;
      f.slot = static_cast<uint8_t>(p[9]);
      f.fin = fin;
      f.unidirectional = (flags & kFlagUnidirectional) != 0;
      f.headers = *std::move(headers);
      return f;
    }
    case kSynReply:
    case kHeaders: {
      const char* name = type == kSynReply ? "SYN_REPLY" : "HEADERS";
      if (payload.size() < 4) return Malformed(name, "shorter than 4 bytes");
      absl::StatusOr<HeaderBlock> headers = decompressor_.Decompress(payload.substr(4));
      if (!headers.ok()) return headers.status();
      absl::StatusOr<uint32_t> id = NonZeroId(name, p);
      if (!id.ok()) return id.status();
      if (type == kSynReply) return SynReplyFrame{*id, fin, *std::move(headers)};
      return HeadersFrame{*id, fin, *std::move(headers)};
    }
    case kRstStream: {
      if (auto s = ExpectLength("RST_STREAM", payload, 8); !s.ok()) return s;
      absl::StatusOr<uint32_t> id = NonZeroId("RST_STREAM", p);
      if (!id.ok()) return id.status();
      const uint32_t status = internal::ReadU32(p + 4);
      if (status == 0) return Malformed("RST_STREAM", "status 0");
      return RstStreamFrame{*id, status};
    }
    case kSettings: {
      if (payload.size() < 4) return Malformed("SETTINGS", "shorter than 4 bytes");
      const uint32_t count = internal::ReadU32(p);
      if (count != (payload.size() - 4) / 8 || (payload.size() - 4) % 8 != 0) {
        return Malformed("SETTINGS", absl::StrCat(count, " entries do not fill ",
                                                  payload.size(), " bytes"));
      }
      SettingsFrame f;
      f.clear_settings = (flags & kFlagClearSettings) != 0;
      for (uint32_t i = 0; i < count; ++i) {
        const char* e = p + 4 + 8 * i;
        const uint32_t flag_id = internal::ReadU32(e);
        f.settings.push_back({static_cast<uint8_t>(flag_id >> 24),
                              flag_id & 0xFFFFFF, internal::ReadU32(e + 4)});
      }
      return f;
    }
    case kPing: {
      if (auto s = ExpectLength("PING", payload, 4); !s.ok()) return s;
      const uint32_t id = internal::ReadU32(p);
      if (id == 0) return Malformed("PING", "ID 0");
      return PingFrame{id};
    }
    case kGoAway: {
      if (auto s = ExpectLength("GOAWAY", payload, 8); !s.ok()) return s;
      return GoAwayFrame{internal::ReadU32(p) & kId31, internal::ReadU32(p + 4)};
    }
    case kWindowUpdate: {
      if (auto s = ExpectLength("WINDOW_UPDATE", payload, 8); !s.ok()) return s;
      const uint32_t delta = internal::ReadU32(p + 4) & kId31;
      if (delta == 0) return Malformed("WINDOW_UPDATE", "delta 0");
      return WindowUpdateFrame{internal::ReadU32(p) & kId31, delta};
    }
  }
  return absl::InternalError("unreachable SPDY control type");
}

// ------------------------------------------------------------------ writer --

namespace {

void AppendControlHeader(std::string& out, uint16_t type, uint8_t flags,
                         uint32_t length) {
  internal::AppendU32(out, kControlBit | (uint32_t{kVersion} << 16) | type);
  out.push_back(static_cast<char>(flags));
  internal::AppendU24(out, length);
}

absl::Status CheckId(absl::string_view frame, uint32_t id, bool zero_ok = false) {
  if (id > kId31) return absl::InvalidArgumentError(absl::StrCat(
      "SPDY ", frame, ": ID ", id, " does not fit 31 bits"));
  if (id == 0 && !zero_ok) return absl::InvalidArgumentError(absl::StrCat(
      "SPDY ", frame, ": ID 0 is not allowed"));
  return absl::OkStatus();
}

// Serialises one frame type; header-bearing frames use the compressor.
struct FrameEncoder {
  HeaderCompressor& compressor;
  std::string& out;

  absl::Status WithHeaders(absl::string_view name, uint16_t type, uint8_t flags,
                           std::string prefix, const HeaderBlock& headers) {
    absl::StatusOr<std::string> block = compressor.Compress(headers);
    if (!block.ok()) return block.status();
    const std::size_t length = prefix.size() + block->size();
    if (length > kMaxFramePayload) {
      return absl::InvalidArgumentError(absl::StrCat("SPDY ", name, ": header block too large"));
    }
    AppendControlHeader(out, type, flags, static_cast<uint32_t>(length));
    out += prefix;
    out += *block;
    return absl::OkStatus();
  }

  absl::Status operator()(const DataFrame& f) {
    if (auto s = CheckId("DATA", f.stream_id); !s.ok()) return s;
    if (f.data.size() > kMaxFramePayload) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SPDY DATA of ", f.data.size(), " bytes exceeds the 24-bit length"));
    }
    internal::AppendU32(out, f.stream_id);
    out.push_back(static_cast<char>(f.fin ? kFlagFin : 0));
    internal::AppendU24(out, static_cast<uint32_t>(f.data.size()));
    out += f.data;
    return absl::OkStatus();
  }
  absl::Status operator()(const SynStreamFrame& f) {
    if (auto s = CheckId("SYN_STREAM", f.stream_id); !s.ok()) return s;
    if (auto s = CheckId("SYN_STREAM", f.associated_stream_id, true); !s.ok()) return s;
    std::string prefix;
    internal::AppendU32(prefix, f.stream_id);
    internal::AppendU32(prefix, f.associated_stream_id);
    prefix.push_back(static_cast<char>((f.priority & 0x7) << 5));
    prefix.push_back(static_cast<char>(f.slot));
    const uint8_t flags = (f.fin ? kFlagFin : 0) | (f.unidirectional ? kFlagUnidirectional : 0);
    return WithHeaders("SYN_STREAM", kSynStream, flags, std::move(prefix), f.headers);
  }
  absl::Status operator()(const SynReplyFrame& f) {
    if (auto s = CheckId("SYN_REPLY", f.stream_id); !s.ok()) return s;
    std::string prefix;
    internal::AppendU32(prefix, f.stream_id);
    return WithHeaders("SYN_REPLY", kSynReply, f.fin ? kFlagFin : 0, std::move(prefix), f.headers);
  }
  absl::Status operator()(const HeadersFrame& f) {
    if (auto s = CheckId("HEADERS", f.stream_id); !s.ok()) return s;
    std::string prefix;
    internal::AppendU32(prefix, f.stream_id);
    return WithHeaders("HEADERS", kHeaders, f.fin ? kFlagFin : 0, std::move(prefix), f.headers);
  }
  absl::Status operator()(const RstStreamFrame& f) {
    if (auto s = CheckId("RST_STREAM", f.stream_id); !s.ok()) return s;
    if (f.status == 0) return absl::InvalidArgumentError("SPDY RST_STREAM: status 0 is invalid");
    AppendControlHeader(out, kRstStream, 0, 8);
    internal::AppendU32(out, f.stream_id);
    internal::AppendU32(out, f.status);
    return absl::OkStatus();
  }
  absl::Status operator()(const SettingsFrame& f) {
    if (f.settings.size() > (kMaxFramePayload - 4) / 8) {
      return absl::InvalidArgumentError("SPDY SETTINGS: too many entries");
    }
    for (const Setting& s : f.settings) {
      if (s.id > 0xFFFFFF) return absl::InvalidArgumentError("SPDY SETTINGS: ID over 24 bits");
    }
    AppendControlHeader(out, kSettings, f.clear_settings ? kFlagClearSettings : 0,
                        static_cast<uint32_t>(4 + 8 * f.settings.size()));
    internal::AppendU32(out, static_cast<uint32_t>(f.settings.size()));
    for (const Setting& s : f.settings) {
      internal::AppendU32(out, (uint32_t{s.flags} << 24) | s.id);
      internal::AppendU32(out, s.value);
    }
    return absl::OkStatus();
  }
  absl::Status operator()(const PingFrame& f) {
    if (f.id == 0) return absl::InvalidArgumentError("SPDY PING: ID 0 is not allowed");
    AppendControlHeader(out, kPing, 0, 4);
    internal::AppendU32(out, f.id);
    return absl::OkStatus();
  }
  absl::Status operator()(const GoAwayFrame& f) {
    if (auto s = CheckId("GOAWAY", f.last_good_stream_id, true); !s.ok()) return s;
    AppendControlHeader(out, kGoAway, 0, 8);
    internal::AppendU32(out, f.last_good_stream_id);
    internal::AppendU32(out, f.status);
    return absl::OkStatus();
  }
  absl::Status operator()(const WindowUpdateFrame& f) {
    if (auto s = CheckId("WINDOW_UPDATE", f.stream_id, true); !s.ok()) return s;
    if (f.delta == 0 || f.delta > kId31) {
      return absl::InvalidArgumentError("SPDY WINDOW_UPDATE: delta must be 1..2^31-1");
    }
    AppendControlHeader(out, kWindowUpdate, 0, 8);
    internal::AppendU32(out, f.stream_id);
    internal::AppendU32(out, f.delta);
    return absl::OkStatus();
  }
};

}  // namespace

absl::Status FrameWriter::Write(const Frame& frame, std::string& out) {
  const std::size_t before = out.size();
  absl::Status status = std::visit(FrameEncoder{compressor_, out}, frame);
  if (!status.ok()) out.resize(before);
  return status;
}

absl::StatusOr<std::string> FrameWriter::Serialize(const Frame& frame) {
  std::string out;
  if (absl::Status s = Write(frame, out); !s.ok()) return s;
  return out;
}

}  // namespace vkhost::spdy
