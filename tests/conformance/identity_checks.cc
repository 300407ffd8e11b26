// Checks of the Identity service, grpc.health.v1, capability gating (spec.md
// §2.3, §3), Node and Stats.
#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/conformance/conformance.h"

namespace vkhost::conformance {
namespace {

using grpc::StatusCode;

// Kubernetes quantity syntax: a decimal number with an optional binary or
// decimal SI suffix or exponent ("8", "500m", "32Gi", "1e3").
bool IsQuantity(const std::string& text) {
  static const std::regex kQuantity(
      R"(^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$)");
  return std::regex_match(text, kQuantity);
}

bool IsDns1123Label(const std::string& text) {
  static const std::regex kLabel("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
  return text.size() <= 63 && std::regex_match(text, kLabel);
}

absl::StatusOr<std::vector<int>> CapabilityList(Context& c) {
  v1::GetCapabilitiesResponse response;
  grpc::Status status = c.identity_stub().GetCapabilities(
      Context::Unary(absl::Seconds(5)).get(), v1::GetCapabilitiesRequest(),
      &response);
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("GetCapabilities answered ", Describe(status)));
  }
  return std::vector<int>(response.capabilities().begin(),
                          response.capabilities().end());
}

std::string CapabilityNames(const std::vector<int>& list) {
  std::vector<std::string> names;
  for (int c : list) names.push_back(v1::Capability_Name(c));
  return absl::StrJoin(names, ",");
}

Outcome PluginInfo(Context& c) {
  v1::GetPluginInfoResponse response;
  grpc::Status status = c.identity_stub().GetPluginInfo(
      Context::Unary(absl::Seconds(5)).get(), v1::GetPluginInfoRequest(),
      &response);
  if (!status.ok()) {
    return Outcome::Fail("GetPluginInfo answered " + Describe(status));
  }
  if (!IsDns1123Label(response.name())) {
    return Outcome::Fail(absl::StrCat("plugin name \"", response.name(),
                                      "\" is not a non-empty DNS-1123 label"));
  }
  return Outcome::Pass();
}

Outcome CapabilitiesStable(Context& c) {
  absl::StatusOr<std::vector<int>> first = CapabilityList(c);
  if (!first.ok()) return Outcome::FromStatus(first.status());
  std::map<int, int> counts;
  for (int capability : *first) ++counts[capability];
  for (const auto& [capability, count] : counts) {
    if (count > 1) {
      return Outcome::Fail(absl::StrCat(v1::Capability_Name(capability),
                                        " listed ", count, " times"));
    }
  }
  for (int call = 2; call <= 3; ++call) {
    absl::StatusOr<std::vector<int>> again = CapabilityList(c);
    if (!again.ok()) return Outcome::FromStatus(again.status());
    std::map<int, int> again_counts;
    for (int capability : *again) ++again_counts[capability];
    if (again_counts != counts) {
      return Outcome::Fail(absl::StrCat(
          "capabilities changed between calls: [", CapabilityNames(*first),
          "] then [", CapabilityNames(*again), "]"));
    }
  }
  return Outcome::Pass();
}

Outcome ProbeOk(Context& c) {
  v1::ProbeResponse response;
  grpc::Status status = c.identity_stub().Probe(
      Context::Unary(absl::Seconds(5)).get(), v1::ProbeRequest(), &response);
  if (!status.ok()) return Outcome::Fail("Probe answered " + Describe(status));
  if (!response.ready()) {
    return Outcome::Fail("Probe says not ready: \"" + response.message() +
                         "\" (the suite needs a ready backend)");
  }
  return Outcome::Pass();
}

Outcome HealthServing(Context& c) {
  grpc::health::v1::HealthCheckRequest request;  // service "": the server
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = c.health().Check(Context::Unary(absl::Seconds(5)).get(),
                                         request, &response);
  if (!status.ok()) {
    return Outcome::Fail("grpc.health.v1.Health/Check answered " +
                         Describe(status));
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return Outcome::Fail(
        "grpc.health.v1.Health/Check says " +
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
            response.status()));
  }
  return Outcome::Pass();
}

// --- Capability gating: each gated RPC, called as cheaply as possible. ---

v1::PodRef UnknownPod() {
  v1::PodRef ref;
  ref.set_uid("00000000-0000-4000-8000-00000000dead");
  ref.set_namespace_("vkhost-conformance");
  ref.set_name("vkhost-conformance-unknown");
  return ref;
}

// Reads a server stream's first message; OK if one came, else its end status.
// The call is cancelled after the first message and always finished.
template <typename Response>
grpc::Status FirstMessageOrEnd(grpc::ClientContext& context,
                               grpc::ClientReader<Response>& reader) {
  Response response;
  if (!reader.Read(&response)) return reader.Finish();
  context.TryCancel();
  while (reader.Read(&response)) {
  }
  reader.Finish();
  return grpc::Status::OK;
}

// Sends `first` on a bidi stream and returns how the call ended.
template <typename Request, typename Response>
grpc::Status EndAfterFirstFrame(
    grpc::ClientReaderWriter<Request, Response>& stream, const Request& first) {
  stream.Write(first);
  Response response;
  while (stream.Read(&response)) {
  }
  return stream.Finish();
}

grpc::Status CallWatchPodStatus(Context& c) {
  auto ctx = Context::Unary(absl::Seconds(10));
  auto reader = c.pods().WatchPodStatus(ctx.get(), v1::WatchPodStatusRequest());
  return FirstMessageOrEnd(*ctx, *reader);
}

grpc::Status CallUpdatePod(Context& c) {
  v1::UpdatePodRequest request;
  request.mutable_pod()->set_uid(UnknownPod().uid());
  request.mutable_pod()->add_containers()->set_name("main");
  v1::UpdatePodResponse response;
  return c.pods().UpdatePod(Context::Unary().get(), request, &response);
}

grpc::Status CallGetNode(Context& c) {
  v1::NodeStatus response;
  return c.node().GetNode(Context::Unary(absl::Seconds(10)).get(),
                          v1::GetNodeRequest(), &response);
}

grpc::Status CallWatchNode(Context& c) {
  auto ctx = Context::Unary(absl::Seconds(10));
  auto reader = c.node().WatchNode(ctx.get(), v1::WatchNodeRequest());
  return FirstMessageOrEnd(*ctx, *reader);
}

grpc::Status CallContainerLogs(Context& c) {
  auto ctx = Context::Unary(absl::Seconds(10));
  v1::ContainerLogsRequest request;
  *request.mutable_pod() = UnknownPod();
  request.set_container("main");
  auto reader = c.streams().ContainerLogs(ctx.get(), request);
  return FirstMessageOrEnd(*ctx, *reader);
}

grpc::Status CallExec(Context& c) {
  auto ctx = Context::Unary(absl::Seconds(10));
  auto stream = c.streams().Exec(ctx.get());
  v1::ExecRequest start;
  *start.mutable_start()->mutable_pod() = UnknownPod();
  start.mutable_start()->set_container("main");
  start.mutable_start()->add_command("true");
  start.mutable_start()->set_stdout(true);
  return EndAfterFirstFrame(*stream, start);
}

grpc::Status CallAttach(Context& c) {
  auto ctx = Context::Unary(absl::Seconds(10));
  auto stream = c.streams().Attach(ctx.get());
  v1::AttachRequest start;
  *start.mutable_start()->mutable_pod() = UnknownPod();
  start.mutable_start()->set_container("main");
  start.mutable_start()->set_stdout(true);
  return EndAfterFirstFrame(*stream, start);
}

grpc::Status CallPortForward(Context& c) {
  auto ctx = Context::Unary(absl::Seconds(10));
  auto stream = c.streams().PortForward(ctx.get());
  v1::PortForwardRequest start;
  *start.mutable_start()->mutable_pod() = UnknownPod();
  start.mutable_start()->set_port(80);
  return EndAfterFirstFrame(*stream, start);
}

grpc::Status CallGetStatsSummary(Context& c) {
  v1::GetStatsSummaryResponse response;
  return c.stats().GetStatsSummary(Context::Unary(absl::Seconds(10)).get(),
                                   v1::GetStatsSummaryRequest(), &response);
}

struct GatedRpc {
  v1::Capability capability;
  const char* rpc;
  grpc::Status (*call)(Context&);
};

// CONTAINER_LOGS_PREVIOUS gates an option of ContainerLogs, not an RPC, so it
// has no row.
const GatedRpc kGatedRpcs[] = {
    {v1::CAPABILITY_WATCH_POD_STATUS, "Pods.WatchPodStatus", CallWatchPodStatus},
    {v1::CAPABILITY_UPDATE_POD, "Pods.UpdatePod", CallUpdatePod},
    {v1::CAPABILITY_NODE_INFO, "Node.GetNode", CallGetNode},
    {v1::CAPABILITY_WATCH_NODE, "Node.WatchNode", CallWatchNode},
    {v1::CAPABILITY_CONTAINER_LOGS, "Streams.ContainerLogs", CallContainerLogs},
    {v1::CAPABILITY_EXEC, "Streams.Exec", CallExec},
    {v1::CAPABILITY_ATTACH, "Streams.Attach", CallAttach},
    {v1::CAPABILITY_PORT_FORWARD, "Streams.PortForward", CallPortForward},
    {v1::CAPABILITY_STATS, "Stats.GetStatsSummary", CallGetStatsSummary},
};

Outcome UnlistedRpcsUnimplemented(Context& c) {
  std::vector<std::string> wrong;
  int called = 0;
  for (const GatedRpc& gated : kGatedRpcs) {
    if (c.Has(gated.capability)) continue;
    ++called;
    grpc::Status status = gated.call(c);
    if (status.error_code() != StatusCode::UNIMPLEMENTED) {
      wrong.push_back(absl::StrCat(gated.rpc, " (",
                                   v1::Capability_Name(gated.capability),
                                   " not listed) answered ", Describe(status)));
    }
  }
  if (called == 0) return Outcome::Skip("the plugin lists every capability");
  if (!wrong.empty()) {
    return Outcome::Fail(absl::StrCat("want UNIMPLEMENTED: ",
                                      absl::StrJoin(wrong, "; ")));
  }
  return Outcome::Pass();
}

absl::Status CheckQuantities(
    const std::string& what,
    const google::protobuf::Map<std::string, std::string>& map) {
  for (const auto& [resource, quantity] : map) {
    if (!IsQuantity(quantity)) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, "[\"", resource, "\"] = \"", quantity,
                       "\" is not a Kubernetes quantity"));
    }
  }
  return absl::OkStatus();
}

Outcome GetNode(Context& c) {
  v1::NodeStatus node;
  grpc::Status status = c.node().GetNode(
      Context::Unary(absl::Seconds(10)).get(), v1::GetNodeRequest(), &node);
  if (!status.ok()) return Outcome::Fail("GetNode answered " + Describe(status));
  if (absl::Status s = CheckQuantities("capacity", node.capacity()); !s.ok()) {
    return Outcome::FromStatus(s);
  }
  return Outcome::FromStatus(CheckQuantities("allocatable", node.allocatable()));
}

Outcome WatchNodeFirstStatus(Context& c) {
  v1::WatchNodeRequest request;
  request.set_node_name("vkhost-conformance");
  BackgroundReader<v1::NodeStatus> watch([&](grpc::ClientContext* ctx) {
    return c.node().WatchNode(ctx, request);
  });
  auto any = [](const v1::NodeStatus&) { return true; };
  if (!watch.WaitFor(any, c.options().timeout).has_value()) {
    std::optional<grpc::Status> end = watch.EndStatus();
    return Outcome::Fail(
        end.has_value()
            ? "WatchNode ended with " + Describe(*end) + " before any status"
            : "WatchNode sent no status within " +
                  absl::FormatDuration(c.options().timeout));
  }
  if (watch.EndStatus().has_value()) {
    return Outcome::Fail("WatchNode ended by itself after the first status (" +
                         Describe(*watch.EndStatus()) +
                         "); it must stay open until cancelled");
  }
  return Outcome::FromStatus(
      CheckQuantities("capacity", watch.Received().front().capacity()));
}

Outcome StatsSummary(Context& c) {
  v1::GetStatsSummaryResponse response;
  grpc::Status status = c.stats().GetStatsSummary(
      Context::Unary(absl::Seconds(10)).get(), v1::GetStatsSummaryRequest(),
      &response);
  if (!status.ok()) {
    return Outcome::Fail("GetStatsSummary answered " + Describe(status));
  }
  return Outcome::Pass();
}

}  // namespace

const std::vector<Check>& IdentityChecks() {
  static const std::vector<Check> kChecks = {
      {"identity.plugin-info", v1::CAPABILITY_UNSPECIFIED, false, PluginInfo},
      {"identity.capabilities-stable", v1::CAPABILITY_UNSPECIFIED, false,
       CapabilitiesStable},
      {"identity.probe", v1::CAPABILITY_UNSPECIFIED, false, ProbeOk},
      {"identity.health-serving", v1::CAPABILITY_UNSPECIFIED, false,
       HealthServing},
      {"identity.unlisted-rpcs-unimplemented", v1::CAPABILITY_UNSPECIFIED,
       false, UnlistedRpcsUnimplemented},
      {"node.get-node", v1::CAPABILITY_NODE_INFO, false, GetNode},
      {"node.watch-node-first-status", v1::CAPABILITY_WATCH_NODE, false,
       WatchNodeFirstStatus},
      {"stats.summary", v1::CAPABILITY_STATS, false, StatsSummary},
  };
  return kChecks;
}

}  // namespace vkhost::conformance
