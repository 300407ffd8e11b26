// /run/{ns}/{pod}/{container}?cmd=...: the kubelet's one-shot command. It
// splits `cmd` on single spaces, runs it through the plugin's Streams.Exec
// without stdin and answers with stdout followed by stderr, as the kubelet
// does (its runtime's ExecSync does not interleave them either).
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_RUN_COMMAND_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_RUN_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "host/plugin/plugin.h"

namespace vkhost::kubeletapi::internal {

namespace v1 = ::vkhost::provider::v1;

// What the process wrote and how it ended.
struct RunOutput {
  std::string stdout;
  std::string stderr;
  int32_t exit_code = 0;
};

// The argv /run executes: `cmd` cut at every single space, as the kubelet's
// strings.Split does (so "a  b" has an empty argument).
std::vector<std::string> SplitRunCommand(const std::string& cmd);

// Runs `command` in `container` of `pod` and waits for its exit. Blocks the
// calling thread (a blocking-pool thread) until the exit frame or
// `deadline`. Errors are the plugin's (NOT_FOUND, UNIMPLEMENTED, ...),
// DEADLINE_EXCEEDED, or INTERNAL when the stream ends without an exit
// status.
absl::StatusOr<RunOutput> RunInContainer(plugin::PluginConnection& connection,
                                         const v1::PodRef& pod,
                                         const std::string& container,
                                         const std::vector<std::string>& command,
                                         absl::Duration deadline);

// The kubelet's 500 text for a command that exited non-zero.
std::string NonZeroExitText(const std::vector<std::string>& command,
                            const RunOutput& output);

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_RUN_COMMAND_H_
