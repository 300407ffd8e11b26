// Default Provider operations: every optional RPC answers UNIMPLEMENTED and
// names itself, so a plugin author sees which override is missing.
#include <string>

#include "absl/strings/str_cat.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::sdk {
namespace {

absl::Status NotImplemented(absl::string_view rpc) {
  return absl::UnimplementedError(
      absl::StrCat(rpc, " is not implemented by this plugin"));
}

}  // namespace

absl::StatusOr<v1::ProbeResponse> Provider::Probe() {
  v1::ProbeResponse response;
  response.set_ready(true);
  return response;
}

absl::StatusOr<v1::NodeStatus> Provider::GetNode(const v1::GetNodeRequest&) {
  return NotImplemented("Node.GetNode");
}

absl::Status Provider::WatchNode(const v1::WatchNodeRequest&,
                                 StreamWriter<v1::NodeStatus>&) {
  return NotImplemented("Node.WatchNode");
}

absl::Status Provider::CreatePod(const v1::Pod&) {
  return NotImplemented("Pods.CreatePod");
}

absl::Status Provider::UpdatePod(const v1::Pod&) {
  return NotImplemented("Pods.UpdatePod");
}

absl::Status Provider::DeletePod(const v1::PodRef&, std::optional<int64_t>) {
  return NotImplemented("Pods.DeletePod");
}

absl::StatusOr<v1::PodStatus> Provider::GetPodStatus(const v1::PodRef&) {
  return NotImplemented("Pods.GetPodStatus");
}

absl::StatusOr<std::vector<v1::PodStatus>> Provider::ListPods() {
  return NotImplemented("Pods.ListPods");
}

absl::Status Provider::ContainerLogs(const v1::ContainerLogsRequest&,
                                     StreamWriter<v1::ContainerLogsResponse>&) {
  return NotImplemented("Streams.ContainerLogs");
}

absl::StatusOr<v1::ExitStatus> Provider::Exec(const v1::ExecStart&,
                                              ProcessSession&) {
  return NotImplemented("Streams.Exec");
}

absl::StatusOr<v1::ExitStatus> Provider::Attach(const v1::AttachStart&,
                                                ProcessSession&) {
  return NotImplemented("Streams.Attach");
}

absl::Status Provider::PortForward(const v1::PortForwardStart&,
                                   PortForwardSession&) {
  return NotImplemented("Streams.PortForward");
}

absl::StatusOr<v1::GetStatsSummaryResponse> Provider::GetStatsSummary() {
  return NotImplemented("Stats.GetStatsSummary");
}

}  // namespace vkhost::sdk
