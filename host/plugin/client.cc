// PluginClient: typed calls with deadlines and capability gating.

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "host/plugin/plugin.h"

namespace vkhost::plugin {
namespace {

constexpr char kCapabilityPrefix[] = "CAPABILITY_";

// Runs one unary RPC on a fresh context with `timeout` as deadline.
template <typename Call>
absl::Status CallWithDeadline(absl::Duration timeout, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return FromGrpc(call(&ctx));
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode share the canonical numbering.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::string CapabilityName(v1::Capability c) {
  const std::string& full = v1::Capability_Name(c);
  if (full.empty()) return absl::StrCat("UNKNOWN_CAPABILITY_", static_cast<int>(c));
  absl::string_view name = full;
  absl::ConsumePrefix(&name, kCapabilityPrefix);
  return std::string(name);
}

PluginClient::PluginClient(const PluginSupervisor& supervisor)
    : supervisor_(supervisor) {}

absl::StatusOr<std::shared_ptr<PluginConnection>> PluginClient::ConnectionFor(
    v1::Capability needed) {
  absl::StatusOr<std::shared_ptr<PluginConnection>> connection =
      supervisor_.Current();
  if (!connection.ok()) return connection.status();
  const PluginIdentity& identity = (*connection)->identity();
  if (needed != v1::CAPABILITY_UNSPECIFIED && !identity.Has(needed)) {
    return absl::UnimplementedError(
        absl::StrCat("plugin \"", identity.name, "\" does not have capability ",
                     CapabilityName(needed)));
  }
  return connection;
}

absl::StatusOr<v1::ProbeResponse> PluginClient::Probe() {
  auto connection = ConnectionFor(v1::CAPABILITY_UNSPECIFIED);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Identity::NewStub((*connection)->channel());
  v1::ProbeResponse response;
  absl::Status s = CallWithDeadline(
      supervisor_.deadlines().identity,
      [&](grpc::ClientContext* ctx) { return stub->Probe(ctx, {}, &response); });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::NodeStatus> PluginClient::GetNode(
    const std::string& node_name) {
  auto connection = ConnectionFor(v1::CAPABILITY_NODE_INFO);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Node::NewStub((*connection)->channel());
  v1::GetNodeRequest request;
  request.set_node_name(node_name);
  v1::NodeStatus response;
  absl::Status s = CallWithDeadline(
      supervisor_.deadlines().node, [&](grpc::ClientContext* ctx) {
        return stub->GetNode(ctx, request, &response);
      });
  if (!s.ok()) return s;
  return response;
}

absl::Status PluginClient::CreatePod(const v1::Pod& pod) {
  auto connection = ConnectionFor(v1::CAPABILITY_UNSPECIFIED);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Pods::NewStub((*connection)->channel());
  v1::CreatePodRequest request;
  *request.mutable_pod() = pod;
  v1::CreatePodResponse response;
  return CallWithDeadline(supervisor_.deadlines().pods,
                          [&](grpc::ClientContext* ctx) {
                            return stub->CreatePod(ctx, request, &response);
                          });
}

absl::Status PluginClient::UpdatePod(const v1::Pod& pod) {
  auto connection = ConnectionFor(v1::CAPABILITY_UPDATE_POD);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Pods::NewStub((*connection)->channel());
  v1::UpdatePodRequest request;
  *request.mutable_pod() = pod;
  v1::UpdatePodResponse response;
  return CallWithDeadline(supervisor_.deadlines().pods,
                          [&](grpc::ClientContext* ctx) {
                            return stub->UpdatePod(ctx, request, &response);
                          });
}

absl::Status PluginClient::DeletePod(const v1::PodRef& pod,
                                     std::optional<int64_t> grace_period_seconds) {
  auto connection = ConnectionFor(v1::CAPABILITY_UNSPECIFIED);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Pods::NewStub((*connection)->channel());
  v1::DeletePodRequest request;
  *request.mutable_pod() = pod;
  if (grace_period_seconds.has_value()) {
    request.set_grace_period_seconds(*grace_period_seconds);
  }
  v1::DeletePodResponse response;
  return CallWithDeadline(supervisor_.deadlines().pods,
                          [&](grpc::ClientContext* ctx) {
                            return stub->DeletePod(ctx, request, &response);
                          });
}

absl::StatusOr<v1::PodStatus> PluginClient::GetPodStatus(const v1::PodRef& pod) {
  auto connection = ConnectionFor(v1::CAPABILITY_UNSPECIFIED);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Pods::NewStub((*connection)->channel());
  v1::GetPodStatusRequest request;
  *request.mutable_pod() = pod;
  v1::GetPodStatusResponse response;
  absl::Status s = CallWithDeadline(
      supervisor_.deadlines().pods, [&](grpc::ClientContext* ctx) {
        return stub->GetPodStatus(ctx, request, &response);
      });
  if (!s.ok()) return s;
  return std::move(*response.mutable_status());
}

absl::StatusOr<std::vector<v1::PodStatus>> PluginClient::ListPods() {
  auto connection = ConnectionFor(v1::CAPABILITY_UNSPECIFIED);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Pods::NewStub((*connection)->channel());
  v1::ListPodsResponse response;
  absl::Status s = CallWithDeadline(
      supervisor_.deadlines().pods, [&](grpc::ClientContext* ctx) {
        return stub->ListPods(ctx, {}, &response);
      });
  if (!s.ok()) return s;
  return std::vector<v1::PodStatus>(
      std::make_move_iterator(response.mutable_pods()->begin()),
      std::make_move_iterator(response.mutable_pods()->end()));
}

absl::StatusOr<v1::GetStatsSummaryResponse> PluginClient::GetStatsSummary() {
  auto connection = ConnectionFor(v1::CAPABILITY_STATS);
  if (!connection.ok()) return connection.status();
  auto stub = v1::Stats::NewStub((*connection)->channel());
  v1::GetStatsSummaryResponse response;
  absl::Status s = CallWithDeadline(
      supervisor_.deadlines().stats, [&](grpc::ClientContext* ctx) {
        return stub->GetStatsSummary(ctx, {}, &response);
      });
  if (!s.ok()) return s;
  return response;
}

}  // namespace vkhost::plugin
