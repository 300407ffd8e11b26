// RFC 6455 framing (section 5): the parser of client frames and the encoders
// of server frames.
#include <utility>

#include "absl/strings/str_cat.h"
#include "host/websocket/websocket.h"

namespace vkhost::websocket {
namespace {

constexpr uint8_t kFin = 0x80;
constexpr uint8_t kReservedBits = 0x70;
constexpr uint8_t kMaskBit = 0x80;
constexpr std::size_t kMaxControlPayload = 125;

bool IsKnownOpcode(uint8_t op) {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}
bool IsControl(uint8_t op) { return (op & 0x8) != 0; }

uint64_t ReadBigEndian(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool IsValidUtf8(absl::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra;
    uint32_t cp, min;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; min = 0x10000; }
    else return false;
    if (s.size() - i <= static_cast<std::size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

// Codes a peer may put in a close frame (RFC 6455 7.4 and the IANA registry).
bool IsValidCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace

FrameParser::FrameParser(ParserLimits limits) : limits_(limits) {}

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

absl::Status FrameParser::Fail(uint16_t code, absl::string_view why) {
  failure_code_ = code;
  broken_ = absl::InvalidArgumentError(absl::StrCat("WebSocket: ", why));
  return broken_;
}

absl::StatusOr<std::optional<Message>> FrameParser::Next() {
  if (!broken_.ok()) return broken_;
  for (;;) {
    const std::size_t available = buffer_.size() - consumed_;
    if (available < 2) return std::nullopt;
    const char* p = buffer_.data() + consumed_;
    const auto b0 = static_cast<uint8_t>(p[0]);
    const auto b1 = static_cast<uint8_t>(p[1]);
    const bool fin = (b0 & kFin) != 0;
    const uint8_t op = b0 & 0x0F;
    const bool masked = (b1 & kMaskBit) != 0;
    const uint8_t len7 = b1 & 0x7F;

    if ((b0 & kReservedBits) != 0) {
      return Fail(kCloseProtocolError, "reserved bits set, but no extension was negotiated");
    }
    if (!IsKnownOpcode(op)) {
      return Fail(kCloseProtocolError, absl::StrCat("unknown opcode ", op));
    }
    if (IsControl(op) && (!fin || len7 > kMaxControlPayload)) {
      return Fail(kCloseProtocolError,
                  "control frames must be unfragmented and carry at most 125 bytes");
    }
    if (limits_.require_masked && !masked) {
      return Fail(kCloseProtocolError, "client frames must be masked");
    }
    std::size_t header = 2;
    uint64_t length = len7;
    if (len7 == 126 || len7 == 127) {
      const int bytes = len7 == 126 ? 2 : 8;
      if (available < header + bytes) return std::nullopt;
      length = ReadBigEndian(p + 2, bytes);
      header += bytes;
      if (length >> 63) {
        return Fail(kCloseProtocolError, "64-bit payload length has its top bit set");
      }
    }
    if (!IsControl(op) &&
        (length > limits_.max_message ||
         fragments_.size() > limits_.max_message - length)) {
      return Fail(kCloseTooBig, absl::StrCat("message larger than the limit of ",
                                             limits_.max_message, " bytes"));
    }
    std::array<uint8_t, 4> key{};
    if (masked) {
      if (available < header + 4) return std::nullopt;
      for (int i = 0; i < 4; ++i) key[i] = static_cast<uint8_t>(p[header + i]);
      header += 4;
    }
    if (available - header < length) return std::nullopt;
    std::string payload(p + header, static_cast<std::size_t>(length));
    consumed_ += header + static_cast<std::size_t>(length);
    if (masked) {
      for (std::size_t i = 0; i < payload.size(); ++i) payload[i] ^= key[i % 4];
    }

    if (IsControl(op)) return Finish(static_cast<Opcode>(op), std::move(payload));
    if (op == static_cast<uint8_t>(Opcode::kContinuation)) {
      if (!fragmented_.has_value()) {
        return Fail(kCloseProtocolError, "continuation frame with no message to continue");
      }
      fragments_ += payload;
      if (!fin) continue;
      const Opcode whole = *std::exchange(fragmented_, std::nullopt);
      return Finish(whole, std::exchange(fragments_, {}));
    }
    if (fragmented_.has_value()) {
      return Fail(kCloseProtocolError, "new message started before the previous one ended");
    }
    if (fin) return Finish(static_cast<Opcode>(op), std::move(payload));
    fragmented_ = static_cast<Opcode>(op);
    fragments_ = std::move(payload);
  }
}

absl::StatusOr<std::optional<Message>> FrameParser::Finish(Opcode opcode,
                                                           std::string payload) {
  Message message;
  message.opcode = opcode;
  if (opcode == Opcode::kText && !IsValidUtf8(payload)) {
    return Fail(kCloseInvalidPayload, "text message is not valid UTF-8");
  }
  if (opcode == Opcode::kClose) {
    if (payload.empty()) {
      message.close_code = kCloseNoStatus;
    } else if (payload.size() == 1) {
      return Fail(kCloseProtocolError, "close frame with a 1-byte payload");
    } else {
      message.close_code = static_cast<uint16_t>(ReadBigEndian(payload.data(), 2));
      if (!IsValidCloseCode(message.close_code)) {
        return Fail(kCloseProtocolError,
                    absl::StrCat("invalid close code ", message.close_code));
      }
      message.close_reason = payload.substr(2);
      if (!IsValidUtf8(message.close_reason)) {
        return Fail(kCloseInvalidPayload, "close reason is not valid UTF-8");
      }
    }
  }
  message.payload = std::move(payload);
  return message;
}

// ---------------------------------------------------------------- encoding --

std::string EncodeRawFrame(Opcode opcode, absl::string_view payload, bool fin,
                           std::optional<std::array<uint8_t, 4>> mask) {
  std::string out;
  out.reserve(payload.size() + 14);
  out.push_back(static_cast<char>((fin ? kFin : 0) | static_cast<uint8_t>(opcode)));
  const uint8_t mask_bit = mask.has_value() ? kMaskBit : 0;
  const uint64_t size = payload.size();
  if (size < 126) {
    out.push_back(static_cast<char>(mask_bit | size));
  } else {
    const int bytes = size <= 0xFFFF ? 2 : 8;
    out.push_back(static_cast<char>(mask_bit | (bytes == 2 ? 126 : 127)));
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>(size >> (8 * i)));
  }
  if (!mask.has_value()) {
    out.append(payload.data(), payload.size());
    return out;
  }
  out.append(reinterpret_cast<const char*>(mask->data()), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<char>(payload[i] ^ (*mask)[i % 4]));
  }
  return out;
}

absl::StatusOr<std::string> EncodeFrame(Opcode opcode, absl::string_view payload) {
  if (opcode == Opcode::kContinuation) {
    return absl::InvalidArgumentError("a whole frame cannot be a continuation");
  }
  if (IsControl(static_cast<uint8_t>(opcode)) && payload.size() > kMaxControlPayload) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WebSocket control frame payload of ", payload.size(),
        " bytes exceeds 125"));
  }
  return EncodeRawFrame(opcode, payload, /*fin=*/true, std::nullopt);
}

std::string EncodeCloseFrame(uint16_t code, absl::string_view reason) {
  std::size_t cut = std::min(reason.size(), kMaxControlPayload - 2);
  // Never split a UTF-8 sequence: back up to the start of the one cut into.
  if (cut < reason.size()) {
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
  }
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason.data(), cut);
  return EncodeRawFrame(Opcode::kClose, payload, /*fin=*/true, std::nullopt);
}

}  // namespace vkhost::websocket
