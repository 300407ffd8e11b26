// The Kubernetes stream protocol on top of SPDY streams: which stream is
// which (streamType, port, requestID headers) and the resize messages.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "host/spdy/spdy.h"

namespace vkhost::spdy {
namespace {

struct StreamTypeName {
  StreamType type;
  absl::string_view name;
};
constexpr std::array<StreamTypeName, 6> kStreamTypes = {{
    {StreamType::kError, "error"},
    {StreamType::kStdin, "stdin"},
    {StreamType::kStdout, "stdout"},
    {StreamType::kStderr, "stderr"},
    {StreamType::kResize, "resize"},
    {StreamType::kData, "data"},
}};

// A resize object bigger than this is not a resize message.
constexpr std::size_t kMaxResizeMessage = 4096;

}  // namespace

absl::string_view StreamTypeName(StreamType type) {
  for (const auto& entry : kStreamTypes) {
    if (entry.type == type) return entry.name;
  }
  return "";
}

std::optional<StreamType> StreamTypeOf(const HeaderBlock& headers) {
  const std::optional<std::string> value = FindHeader(headers, kStreamTypeHeader);
  if (!value.has_value()) return std::nullopt;
  for (const auto& entry : kStreamTypes) {
    if (entry.name == *value) return entry.type;
  }
  return std::nullopt;
}

absl::StatusOr<PortForwardStream> ParsePortForwardHeaders(const HeaderBlock& headers) {
  PortForwardStream stream;
  const std::optional<std::string> port = FindHeader(headers, kPortHeader);
  if (!port.has_value()) {
    return absl::InvalidArgumentError("\"port\" header is required");
  }
  // Digits only, as Go's ParseUint(port, 10, 16): no sign, no spaces.
  const bool digits = !port->empty() && port->size() <= 5 &&
                      std::all_of(port->begin(), port->end(), [](char c) {
                        return absl::ascii_isdigit(static_cast<unsigned char>(c));
                      });
  uint32_t number = 0;
  if (!digits || !absl::SimpleAtoi(*port, &number) || number == 0 || number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"port\" header ", *port, " is not a port number (1-65535)"));
  }
  stream.port = static_cast<uint16_t>(number);
  const std::optional<std::string> type = FindHeader(headers, kStreamTypeHeader);
  if (!type.has_value()) {
    return absl::InvalidArgumentError("\"streamType\" header is required");
  }
  if (*type == "data") {
    stream.type = StreamType::kData;
  } else if (*type == "error") {
    stream.type = StreamType::kError;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid port-forward stream type \"", *type, "\" (want data or error)"));
  }
  stream.request_id = FindHeader(headers, kRequestIdHeader).value_or("");
  return stream;
}

// ---------------------------------------------------------------- resize --

std::string EncodeTerminalSize(TerminalSize size) {
  return absl::StrCat("{\"Width\":", size.width, ",\"Height\":", size.height, "}");
}

namespace {

absl::StatusOr<TerminalSize> ParseTerminalSize(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resize message is not a JSON object: ", text));
  }
  TerminalSize size;
  for (const auto& [key, value] : json.items()) {
    const std::string lower = absl::AsciiStrToLower(key);
    uint16_t* field = lower == "width"    ? &size.width
                      : lower == "height" ? &size.height
                                          : nullptr;
    if (field == nullptr) continue;  // Go ignores unknown fields.
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "resize message field ", key, " must be an integer 0-65535, got ",
          value.dump()));
    }
    *field = static_cast<uint16_t>(value.get<int64_t>());
  }
  return size;
}

}  // namespace

absl::StatusOr<std::vector<TerminalSize>> TerminalSizeDecoder::Feed(
    absl::string_view bytes) {
  if (!broken_.ok()) return broken_;
  std::vector<TerminalSize> sizes;
  // Objects are found by brace depth (outside strings), then parsed whole.
  for (const char c : bytes) {
    if (depth_ == 0) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
      if (c != '{') {
        broken_ = absl::InvalidArgumentError(absl::StrCat(
            "resize stream: expected a JSON object, got byte 0x",
            absl::Hex(static_cast<unsigned char>(c))));
        return broken_;
      }
    }
    pending_.push_back(c);
    if (pending_.size() > kMaxResizeMessage) {
      broken_ = absl::InvalidArgumentError(absl::StrCat(
          "resize stream: message longer than ", kMaxResizeMessage, " bytes"));
      return broken_;
    }
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        absl::StatusOr<TerminalSize> size = ParseTerminalSize(pending_);
        if (!size.ok()) {
          broken_ = size.status();
          return broken_;
        }
        sizes.push_back(*size);
        pending_.clear();
      }
    }
  }
  return sizes;
}

}  // namespace vkhost::spdy
