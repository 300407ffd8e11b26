#include "host/streambridge/internal/remote_command.h"

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace vkhost::streambridge::internal {
namespace {

using ordered_json = nlohmann::ordered_json;

struct ProtocolEntry {
  Protocol protocol;
  absl::string_view name;
};
// Ours, newest first; this is also the order of X-Accepted-Stream-Protocol-
// Versions. Over SPDY v5 behaves as v4 (its CLOSE signal is WebSocket-only).
constexpr std::array<ProtocolEntry, 5> kProtocols = {{
    {Protocol::kV5, "v5.channel.k8s.io"},
    {Protocol::kV4, "v4.channel.k8s.io"},
    {Protocol::kV3, "v3.channel.k8s.io"},
    {Protocol::kV2, "v2.channel.k8s.io"},
    {Protocol::kV1, "channel.k8s.io"},
}};

constexpr absl::string_view kVersionHeader = "X-Stream-Protocol-Version";

bool QueryFlag(const HeaderList& query, absl::string_view name) {
  for (const auto& [key, value] : query) {
    if (key == name) return value == "1";
  }
  return false;
}

std::string StatusJson(const ordered_json& status) { return status.dump(); }

std::string V4Payload(const Outcome& outcome,
                      const std::vector<std::string>& command) {
  ordered_json status;
  status["metadata"] = ordered_json::object();
  if (outcome.exit_code.has_value() && *outcome.exit_code == 0) {
    status["status"] = "Success";
    return StatusJson(status);
  }
  status["status"] = "Failure";
  if (!outcome.exit_code.has_value()) {
    status["message"] = "Internal error occurred: " + std::string(outcome.error.message());
    status["reason"] = "InternalError";
    status["code"] = 500;
    return StatusJson(status);
  }
  const int32_t code = *outcome.exit_code;
  std::string why = outcome.exit_message.empty()
                        ? "error executing command [" + absl::StrJoin(command, " ") +
                              "], exit code " + std::to_string(code)
                        : outcome.exit_message;
  status["message"] = "command terminated with non-zero exit code: " + why;
  if (code < 0 || code > 255) {
    // client-go only accepts 0..255 in the ExitCode cause; anything else
    // would turn into a protocol error, so report it as a plain failure.
    return StatusJson(status);
  }
  status["reason"] = "NonZeroExitCode";
  status["details"]["causes"] = ordered_json::array(
      {{{"reason", "ExitCode"}, {"message", std::to_string(code)}}});
  return StatusJson(status);
}

}  // namespace

std::string ProtocolName(Protocol protocol) {
  for (const ProtocolEntry& entry : kProtocols) {
    if (entry.protocol == protocol) return std::string(entry.name);
  }
  return "";
}

absl::StatusOr<RemoteCommandOptions> ParseRemoteCommandOptions(
    const HeaderList& query, bool is_exec) {
  RemoteCommandOptions options;
  options.stdin = QueryFlag(query, "input");
  options.stdout = QueryFlag(query, "output");
  options.stderr = QueryFlag(query, "error");
  options.tty = QueryFlag(query, "tty");
  if (options.tty) options.stderr = false;
  for (const auto& [key, value] : query) {
    if (key == "command") options.command.push_back(value);
  }
  if (!options.stdin && !options.stdout && !options.stderr) {
    return absl::InvalidArgumentError(
        "you must specify at least 1 of stdin, stdout, stderr");
  }
  if (is_exec && options.command.empty()) {
    return absl::InvalidArgumentError(
        "no command given: pass it as command=<argv0>&command=<argv1>...");
  }
  return options;
}

std::vector<std::string> HeaderValues(const HeaderList& headers,
                                      absl::string_view name) {
  std::vector<std::string> values;
  for (const auto& [key, value] : headers) {
    if (!absl::EqualsIgnoreCase(key, name)) continue;
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (!part.empty()) values.emplace_back(part);
    }
  }
  return values;
}

Negotiation NegotiateProtocol(const HeaderList& headers) {
  Negotiation result;
  const std::vector<std::string> offered = HeaderValues(headers, kVersionHeader);
  if (offered.empty()) {
    result.http_status = 400;
    result.body = "unable to upgrade: X-Stream-Protocol-Version is required\n";
    return result;
  }
  for (const std::string& name : offered) {
    for (const ProtocolEntry& entry : kProtocols) {
      if (entry.name == name) {
        result.protocol = entry.protocol;
        return result;
      }
    }
  }
  std::vector<std::string> ours;
  for (const ProtocolEntry& entry : kProtocols) {
    ours.emplace_back(entry.name);
    result.headers.emplace_back("X-Accepted-Stream-Protocol-Versions",
                                std::string(entry.name));
  }
  result.http_status = 403;
  result.body = "unable to upgrade: unable to negotiate protocol: client supports [" +
                absl::StrJoin(offered, " ") + "], server accepts [" +
                absl::StrJoin(ours, " ") + "]\n";
  return result;
}

bool StreamWanted(const RemoteCommandOptions& options, Protocol protocol,
                  spdy::StreamType type) {
  switch (type) {
    case spdy::StreamType::kError:
      return true;
    case spdy::StreamType::kStdin:
      return options.stdin;
    case spdy::StreamType::kStdout:
      return options.stdout;
    case spdy::StreamType::kStderr:
      return options.stderr;
    case spdy::StreamType::kResize:
      return options.tty && protocol >= Protocol::kV3;
    case spdy::StreamType::kData:
      return false;
  }
  return false;
}

int ExpectedStreamCount(const RemoteCommandOptions& options, Protocol protocol) {
  int count = 0;
  for (spdy::StreamType type :
       {spdy::StreamType::kError, spdy::StreamType::kStdin, spdy::StreamType::kStdout,
        spdy::StreamType::kStderr, spdy::StreamType::kResize}) {
    if (StreamWanted(options, protocol, type)) ++count;
  }
  return count;
}

std::string ErrorStreamPayload(Protocol protocol, const Outcome& outcome,
                               const std::vector<std::string>& command) {
  if (protocol >= Protocol::kV4) return V4Payload(outcome, command);
  if (outcome.exit_code.has_value()) {
    if (*outcome.exit_code == 0) return "";
    return "command terminated with non-zero exit code: " +
           (outcome.exit_message.empty()
                ? "error executing command [" + absl::StrJoin(command, " ") +
                      "], exit code " + std::to_string(*outcome.exit_code)
                : outcome.exit_message);
  }
  return std::string(outcome.error.message());
}

void RecordStreamEnd(const absl::Status& status, Outcome& outcome) {
  if (outcome.exit_code.has_value()) return;
  outcome.error = status.ok() ? absl::InternalError(
                                    "the provider plugin ended the session without an "
                                    "exit status")
                              : status;
}

}  // namespace vkhost::streambridge::internal
