// The Kubernetes channel protocols inside WebSocket data messages
// (k8s.io/apimachinery wsstream; remotecommand v5 CLOSE; kubelet port-forward).
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "host/websocket/websocket.h"

namespace vkhost::websocket {

absl::StatusOr<std::optional<ChannelMessage>> DecodeChannelMessage(
    Framing framing, const Message& message) {
  if (message.opcode != Opcode::kBinary && message.opcode != Opcode::kText) {
    return absl::InvalidArgumentError("only data messages carry channels");
  }
  if (framing == Framing::kSpdyTunnel) {
    return absl::InvalidArgumentError(
        "the SPDY tunnel has no channels: feed the payload to a SPDY session");
  }
  if (message.payload.empty()) return std::nullopt;
  ChannelMessage out;
  const absl::string_view rest = absl::string_view(message.payload).substr(1);
  if (framing == Framing::kChannels) {
    out.channel = static_cast<uint8_t>(message.payload[0]);
    out.data = std::string(rest);
    return out;
  }
  out.channel = static_cast<uint8_t>(message.payload[0] - '0');
  if (!absl::Base64Unescape(rest, &out.data)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "base64 channel message for channel ", out.channel, " is not valid base64"));
  }
  return out;
}

std::string EncodeChannelFrame(Framing framing, uint8_t channel, absl::string_view data) {
  switch (framing) {
    case Framing::kBase64Channels:
      return EncodeRawFrame(Opcode::kText,
                            absl::StrCat(std::string(1, static_cast<char>('0' + channel)),
                                         absl::Base64Escape(data)),
                            true, std::nullopt);
    case Framing::kSpdyTunnel:
      return EncodeRawFrame(Opcode::kBinary, data, true, std::nullopt);
    case Framing::kChannels:
      break;
  }
  std::string payload(1, static_cast<char>(channel));
  payload.append(data.data(), data.size());
  return EncodeRawFrame(Opcode::kBinary, payload, true, std::nullopt);
}

std::optional<uint8_t> ClosedChannel(const ChannelMessage& message) {
  if (message.channel != kCloseSignal || message.data.size() != 1) return std::nullopt;
  return static_cast<uint8_t>(message.data[0]);
}

std::string EncodeCloseSignalFrame(uint8_t channel) {
  return EncodeChannelFrame(Framing::kChannels, kCloseSignal,
                            std::string(1, static_cast<char>(channel)));
}

PortChannels PortForwardChannels(std::size_t port_index) {
  return {static_cast<uint8_t>(2 * port_index), static_cast<uint8_t>(2 * port_index + 1)};
}

std::string PortPrefix(uint16_t port) {
  return {static_cast<char>(port & 0xFF), static_cast<char>(port >> 8)};
}

}  // namespace vkhost::websocket
