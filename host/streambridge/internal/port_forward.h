// The pure parts of the port-forward protocol (portforward.k8s.io) as the
// kubelet speaks it: protocol negotiation, pairing a forwarded connection's
// data and error streams by requestID, and the text of the error stream.
// No I/O.
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_PORT_FORWARD_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_PORT_FORWARD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "host/spdy/spdy.h"
#include "host/streambridge/internal/remote_command.h"

namespace vkhost::streambridge::internal {

inline constexpr char kPortForwardProtocol[] = "portforward.k8s.io";

// The pod a port-forward session reaches, whatever the transport.
struct PortForwardTarget {
  std::string pod_uid;
  std::string pod_namespace;
  std::string pod_name;
};

// The ports of a WebSocket port-forward (kubelet-native framing): every
// `port` query value, each possibly a comma-separated list, in order.
// INVALID_ARGUMENT (the 400 text) when there is none, when one is not a
// number in 1..65535, or when there are more than 128 (channel numbers are
// one byte: data 2i, error 2i+1).
absl::StatusOr<std::vector<uint16_t>> ParsePortForwardPorts(const HeaderList& query);

// OK when the client offers portforward.k8s.io in X-Stream-Protocol-Version,
// or offers nothing (legacy clients, which the kubelet accepts). Otherwise
// PERMISSION_DENIED with the kubelet's 403 text.
absl::Status NegotiatePortForwardProtocol(const HeaderList& headers);

// The key pairing a stream with its partner: the requestID header, or for
// legacy clients without one the kubelet's guess (the error stream's own ID,
// the data stream's ID minus 2: error first, then data, consecutive IDs).
std::string PairKey(uint32_t stream_id, const spdy::PortForwardStream& stream);

// The streams of one forwarded connection seen so far.
struct StreamPair {
  uint16_t port = 0;
  std::optional<uint32_t> data_stream;
  std::optional<uint32_t> error_stream;

  bool complete() const { return data_stream.has_value() && error_stream.has_value(); }
};

// Adds stream `stream_id` of type `stream.type` to `pair` (whose key is
// `request_id`). Fails, leaving `pair` as it was, when that type already has
// a stream (the kubelet's "error processing stream for request ..." text) or
// the port differs from the partner's.
absl::Status AddToPair(StreamPair& pair, const std::string& request_id,
                       uint32_t stream_id, const spdy::PortForwardStream& stream);

// What the error stream says when forwarding failed, as the kubelet words it
// (it names the sandbox where we name the pod UID, and leaves uid empty).
std::string ForwardErrorText(uint16_t port, const std::string& pod_uid,
                             const std::string& why);

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_PORT_FORWARD_H_
