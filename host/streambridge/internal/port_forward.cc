#include "host/streambridge/internal/port_forward.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"

namespace vkhost::streambridge::internal {

absl::Status NegotiatePortForwardProtocol(const HeaderList& headers) {
  const std::vector<std::string> offered = HeaderValues(headers, "X-Stream-Protocol-Version");
  if (offered.empty()) return absl::OkStatus();
  for (const std::string& protocol : offered) {
    if (protocol == kPortForwardProtocol) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "unable to upgrade: unable to negotiate protocol: client supports ",
      absl::StrJoin(offered, ", "), ", server supports ", kPortForwardProtocol));
}

std::string PairKey(uint32_t stream_id, const spdy::PortForwardStream& stream) {
  if (!stream.request_id.empty()) return stream.request_id;
  const uint32_t guess =
      stream.type == spdy::StreamType::kData && stream_id >= 2 ? stream_id - 2 : stream_id;
  return absl::StrCat(guess);
}

absl::Status AddToPair(StreamPair& pair, const std::string& request_id,
                       uint32_t stream_id, const spdy::PortForwardStream& stream) {
  const bool is_data = stream.type == spdy::StreamType::kData;
  std::optional<uint32_t>& slot = is_data ? pair.data_stream : pair.error_stream;
  if (slot.has_value()) {
    return absl::AlreadyExistsError(
        absl::StrCat("error processing stream for request ", request_id, ": ",
                     is_data ? "data" : "error", " stream already assigned"));
  }
  const bool first = !pair.data_stream.has_value() && !pair.error_stream.has_value();
  if (!first && pair.port != stream.port) {
    return absl::InvalidArgumentError(
        absl::StrCat("error processing stream for request ", request_id, ": port ",
                     stream.port, " differs from its partner stream's port ", pair.port));
  }
  pair.port = stream.port;
  slot = stream_id;
  return absl::OkStatus();
}

std::string ForwardErrorText(uint16_t port, const std::string& pod_uid,
                             const std::string& why) {
  return absl::StrCat("error forwarding port ", port, " to pod ", pod_uid, ", uid : ", why);
}

absl::StatusOr<std::vector<uint16_t>> ParsePortForwardPorts(const HeaderList& query) {
  std::vector<uint16_t> ports;
  for (const auto& [key, value] : query) {
    if (key != "port") continue;
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      part = absl::StripAsciiWhitespace(part);
      uint32_t port = 0;
      if (!absl::SimpleAtoi(part, &port) || port == 0 || port > 65535) {
        return absl::InvalidArgumentError(
            absl::StrCat("unable to parse \"", part, "\" as a port: it must be 1..65535"));
      }
      ports.push_back(static_cast<uint16_t>(port));
    }
  }
  if (ports.empty()) {
    return absl::InvalidArgumentError(
        "query parameter \"port\" is required (e.g. ?port=8080)");
  }
  if (ports.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat(ports.size(), " ports asked for; at most 128 fit one WebSocket"));
  }
  return ports;
}

}  // namespace vkhost::streambridge::internal
