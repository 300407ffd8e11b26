// The pure parts of the remote-command protocol (exec/attach) as the kubelet
// speaks it: query flags, protocol negotiation, which streams to wait for,
// and what to write on the error stream at the end. No I/O.
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_REMOTE_COMMAND_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_REMOTE_COMMAND_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "host/spdy/spdy.h"

namespace vkhost::streambridge::internal {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Remote-command protocol versions, oldest first (order matters: features
// are compared with >=).
enum class Protocol { kV1, kV2, kV3, kV4, kV5 };

// The X-Stream-Protocol-Version value of `protocol` ("v4.channel.k8s.io").
std::string ProtocolName(Protocol protocol);

// What the client asked for in the query (input/output/error/tty = "1",
// command repeated once per argv element).
struct RemoteCommandOptions {
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;  // forced off by tty, as the kubelet does
  bool tty = false;
  std::vector<std::string> command;  // exec only
};

// INVALID_ARGUMENT (the kubelet's 400 text) when no stream is asked for, or
// when an exec has no command.
absl::StatusOr<RemoteCommandOptions> ParseRemoteCommandOptions(
    const HeaderList& query, bool is_exec);

// The outcome of X-Stream-Protocol-Version negotiation: the chosen protocol,
// or the HTTP error to answer with.
struct Negotiation {
  std::optional<Protocol> protocol;
  int http_status = 101;
  std::string body;
  HeaderList headers;  // X-Accepted-Stream-Protocol-Versions on 403
};
// First protocol the client lists (in header order, comma-separated values
// allowed) that we speak.
Negotiation NegotiateProtocol(const HeaderList& headers);

// Values of header `name` (case-insensitive), comma-separated ones split and
// trimmed, in order.
std::vector<std::string> HeaderValues(const HeaderList& headers,
                                      absl::string_view name);

// Whether a stream of `type` belongs to this session, and how many must be
// open before the process starts (error + the asked-for ones + resize for
// tty from v3 on).
bool StreamWanted(const RemoteCommandOptions& options, Protocol protocol,
                  spdy::StreamType type);
int ExpectedStreamCount(const RemoteCommandOptions& options, Protocol protocol);

// One exec/attach session's target and parameters, whatever the transport.
struct RemoteCommandTarget {
  bool is_exec = true;  // else attach
  std::string pod_uid;
  std::string pod_namespace;
  std::string pod_name;
  std::string container;
  RemoteCommandOptions options;
  Protocol protocol = Protocol::kV4;
};

// Session timers (the kubelet's stream creation and finish timeouts).
struct RemoteCommandTimeouts {
  absl::Duration stream_creation = absl::Seconds(30);
  absl::Duration finish = absl::Seconds(15);
};

// How the plugin's process ended, as the error stream must say it.
struct Outcome {
  // Set when the process ran and exited.
  std::optional<int32_t> exit_code;
  std::string exit_message;  // the plugin's ExitStatus.message
  // Set when there is no exit code: why the session failed.
  absl::Status error;
};
// The bytes for the error stream: v4/v5 always a metav1.Status JSON
// (Success, NonZeroExitCode with an ExitCode cause, or InternalError);
// older protocols plain text on failure and nothing on success.
std::string ErrorStreamPayload(Protocol protocol, const Outcome& outcome,
                               const std::vector<std::string>& command);

// Records how the plugin stream ended (`status` of its RPC) in `outcome`,
// unless an exit frame already did.
void RecordStreamEnd(const absl::Status& status, Outcome& outcome);

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_REMOTE_COMMAND_H_
