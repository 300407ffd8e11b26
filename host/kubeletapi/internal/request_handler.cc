#include "host/kubeletapi/internal/request_handler.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "host/informer/informer.h"
#include "host/kubeletapi/internal/request_attributes.h"
#include "host/kubeletapi/internal/run_command.h"
#include "host/kubeletapi/internal/stats.h"

namespace vkhost::kubeletapi::internal {
namespace {

using nlohmann::json;

// A non-follow log request that takes longer than this is stuck; follow has
// no deadline (the client or the container's end stops it).
constexpr absl::Duration kLogDeadline = absl::Minutes(10);
// /run has no client to cancel it but the HTTP connection; a command that
// outlives this is stuck (the kubelet passes no timeout at all).
constexpr absl::Duration kRunDeadline = absl::Minutes(10);

struct CodeRow {
  absl::StatusCode code;
  int http;
};
// Plugin error → HTTP status for answers that have not started streaming.
constexpr CodeRow kPluginCodes[] = {
    {absl::StatusCode::kNotFound, 404},
    {absl::StatusCode::kInvalidArgument, 400},
    {absl::StatusCode::kFailedPrecondition, 400},
    {absl::StatusCode::kOutOfRange, 400},
    {absl::StatusCode::kUnimplemented, 501},
    {absl::StatusCode::kUnavailable, 503},
    {absl::StatusCode::kDeadlineExceeded, 504},
    {absl::StatusCode::kResourceExhausted, 429},
    {absl::StatusCode::kPermissionDenied, 403},
};

int HttpCodeFor(const absl::Status& status) {
  for (const CodeRow& row : kPluginCodes) {
    if (row.code == status.code()) return row.http;
  }
  return 500;
}

std::string PluginErrorText(const absl::Status& status, absl::string_view what) {
  if (absl::IsUnimplemented(status)) {
    return absl::StrCat("the node's provider plugin does not support ", what,
                        " (", status.message(), ")\n");
  }
  if (absl::IsUnavailable(status)) {
    return absl::StrCat("the node's provider plugin is unavailable, try again "
                        "later (", status.message(), ")\n");
  }
  return absl::StrCat(status.message(), "\n");
}

const std::string* Header(const Headers& headers, absl::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

bool HasContainer(const json& pod, const std::string& container) {
  const json spec = pod.value("spec", json::object());
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (const json& c : spec[list]) {
      if (c.value("name", "") == container) return true;
    }
  }
  return false;
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp out;
  const int64_t nanos = absl::ToUnixNanos(t);
  out.set_seconds(nanos / 1000000000);
  out.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return out;
}

}  // namespace

HttpResponse StatusResponse(int code, const std::string& reason,
                            const std::string& message) {
  json status = {
      {"kind", "Status"},     {"apiVersion", "v1"}, {"metadata", json::object()},
      {"status", "Failure"},  {"message", message}, {"reason", reason},
      {"code", code},
  };
  HttpResponse response;
  response.status = code;
  response.content_type = "application/json";
  response.body = status.dump() + "\n";
  return response;
}

HttpResponse TextResponse(int code, const std::string& text) {
  HttpResponse response;
  response.status = code;
  response.body = text;
  return response;
}

HttpResponse LogFailureResponse(const absl::Status& status,
                                const std::string& pod_name,
                                const std::string& container) {
  if (absl::IsNotFound(status)) {
    return TextResponse(404, absl::StrCat("container \"", container,
                                          "\" in pod \"", pod_name,
                                          "\" not found: ", status.message(),
                                          "\n"));
  }
  return TextResponse(HttpCodeFor(status),
                      PluginErrorText(status, "container logs"));
}

RequestHandler::RequestHandler(const KubeletServerOptions& options,
                               const KubeletServerDependencies& dependencies)
    : options_(options),
      deps_(dependencies),
      authenticator_(dependencies.kube, options.anonymous_auth,
                     options.authn_success_ttl, options.authn_failure_ttl,
                     options.auth_cache_entries),
      authorizer_(dependencies.kube, options.node_name,
                  options.authz_allowed_ttl, options.authz_denied_ttl,
                  options.auth_cache_entries) {}

Action RequestHandler::Handle(const HttpRequest& request) {
  const size_t q = request.target.find('?');
  const std::string path = request.target.substr(0, q);
  const std::string query_text =
      q == std::string::npos ? "" : request.target.substr(q + 1);

  Credentials credentials{request.certificate, ""};
  if (const std::string* h = Header(request.headers, "Authorization")) {
    credentials.authorization_header = *h;
  }
  absl::StatusOr<UserInfo> user = authenticator_.Authenticate(credentials);
  if (!user.ok()) {
    VKLOG(DEBUG) << "kubelet API: " << request.method << " " << path
                 << " unauthenticated: " << user.status().message();
    return StatusResponse(401, "Unauthorized", "Unauthorized");
  }
  absl::Status allowed = authorizer_.Authorize(
      *user, VerbForMethod(request.method), SubresourcesForPath(path));
  if (absl::IsPermissionDenied(allowed)) {
    return StatusResponse(403, "Forbidden", std::string(allowed.message()));
  }
  if (!allowed.ok()) {
    VKLOG(WARNING) << "kubelet API: " << allowed.message();
    return StatusResponse(500, "InternalError", std::string(allowed.message()));
  }
  absl::StatusOr<QueryParams> query = ParseQuery(query_text);
  if (!query.ok()) {
    return TextResponse(400, "{\"message\": \"Unable to decode query.\"}\n");
  }
  return Route(request, *user, path, *query);
}

Action RequestHandler::Route(const HttpRequest& request, const UserInfo& user,
                             const std::string& path, const QueryParams& query) {
  absl::StatusOr<internal::Route> route = MatchRoute(path);
  if (!route.ok()) {
    return TextResponse(400, absl::StrCat("{\"message\": \"",
                                          route.status().message(), "\"}\n"));
  }
  if (route->kind == RouteKind::kNotFound) {
    return TextResponse(404, "404 page not found\n");
  }
  std::vector<absl::string_view> methods = AllowedMethods(route->kind);
  if (std::find(methods.begin(), methods.end(), request.method) == methods.end()) {
    HttpResponse response = TextResponse(405, "Method Not Allowed\n");
    response.headers.emplace_back("Allow", absl::StrJoin(methods, ", "));
    return response;
  }
  switch (route->kind) {
    case RouteKind::kHealthz:
      return TextResponse(200, "ok");
    case RouteKind::kPods:
      return Pods();
    case RouteKind::kStatsSummary:
      return StatsSummary();
    case RouteKind::kMetricsResource:
      return ResourceMetrics();
    case RouteKind::kContainerLogs:
      return ContainerLogs(*route, query);
    case RouteKind::kExec:
    case RouteKind::kAttach:
    case RouteKind::kPortForward:
      return Upgrade(request, user, *route, query);
    case RouteKind::kRun:
      return Run(*route, query);
    case RouteKind::kNotFound:
      break;
  }
  return StatusResponse(501, "NotImplemented",
                        absl::StrCat("/", RouteName(route->kind),
                                     " is not implemented yet by vkhost"));
}

HttpResponse RequestHandler::Pods() {
  json items = json::array();
  if (deps_.pods != nullptr) {
    for (const informer::ObjectPtr& pod : deps_.pods->List()) {
      const json spec = pod->value("spec", json::object());
      if (spec.value("nodeName", "") == options_.node_name) items.push_back(*pod);
    }
  }
  json list = {{"kind", "PodList"},
               {"apiVersion", "v1"},
               {"metadata", json::object()},
               {"items", std::move(items)}};
  HttpResponse response = TextResponse(200, list.dump());
  response.content_type = "application/json";
  return response;
}

std::string RequestHandler::PodUid(const std::string& ns,
                                   const std::string& name) const {
  if (deps_.pods == nullptr) return "";
  informer::ObjectPtr pod = deps_.pods->Get(ns, name);
  if (pod == nullptr) return "";
  return pod->value("metadata", json::object()).value("uid", "");
}

HttpResponse RequestHandler::StatsSummary() {
  if (deps_.plugin == nullptr) {
    return TextResponse(503, "no provider plugin is configured\n");
  }
  absl::StatusOr<v1::GetStatsSummaryResponse> summary =
      deps_.plugin->GetStatsSummary();
  if (!summary.ok()) {
    return TextResponse(HttpCodeFor(summary.status()),
                        PluginErrorText(summary.status(), "stats"));
  }
  json body = SummaryToJson(*summary, options_.node_name,
                            [this](const std::string& ns, const std::string& name) {
                              return PodUid(ns, name);
                            });
  HttpResponse response = TextResponse(200, body.dump());
  response.content_type = "application/json";
  return response;
}

HttpResponse RequestHandler::ResourceMetrics() {
  absl::StatusOr<v1::GetStatsSummaryResponse> summary =
      deps_.plugin == nullptr
          ? absl::UnavailableError("no provider plugin is configured")
          : deps_.plugin->GetStatsSummary();
  if (!summary.ok()) {
    VKLOG(WARNING) << "kubelet API: /metrics/resource: " << summary.status();
  }
  HttpResponse response = TextResponse(200, ResourceMetricsText(summary));
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return response;
}

Action RequestHandler::ContainerLogs(const internal::Route& route,
                                     const QueryParams& query) {
  absl::StatusOr<LogOptions> options = ParseLogOptions(query, absl::Now());
  if (!options.ok()) {
    return TextResponse(400, absl::StrCat(options.status().message(), "\n"));
  }
  std::string uid;
  if (deps_.pods != nullptr) {
    informer::ObjectPtr pod = deps_.pods->Get(route.pod_namespace, route.pod_name);
    if (pod == nullptr) {
      return TextResponse(404, absl::StrCat("pod \"", route.pod_name,
                                            "\" does not exist\n"));
    }
    if (!HasContainer(*pod, route.container)) {
      return TextResponse(404, absl::StrCat("container \"", route.container,
                                            "\" not found in pod \"",
                                            route.pod_name, "\"\n"));
    }
    uid = pod->value("metadata", json::object()).value("uid", "");
  }
  if (deps_.plugin == nullptr) {
    return TextResponse(503, "no provider plugin is configured\n");
  }
  absl::StatusOr<std::shared_ptr<plugin::PluginConnection>> connection =
      deps_.plugin->ConnectionFor(options->previous
                                      ? v1::CAPABILITY_CONTAINER_LOGS_PREVIOUS
                                      : v1::CAPABILITY_CONTAINER_LOGS);
  if (!connection.ok()) {
    return TextResponse(HttpCodeFor(connection.status()),
                        PluginErrorText(connection.status(),
                                        options->previous ? "previous container logs"
                                                          : "container logs"));
  }
  StartLogs start;
  start.connection = *std::move(connection);
  v1::ContainerLogsRequest& r = start.request;
  r.mutable_pod()->set_uid(uid);
  r.mutable_pod()->set_namespace_(route.pod_namespace);
  r.mutable_pod()->set_name(route.pod_name);
  r.set_container(route.container);
  r.set_follow(options->follow);
  r.set_previous(options->previous);
  r.set_timestamps(options->timestamps);
  if (options->tail_lines) r.set_tail_lines(*options->tail_lines);
  if (options->since_time) *r.mutable_since_time() = ToProto(*options->since_time);
  if (options->limit_bytes) r.set_limit_bytes(*options->limit_bytes);
  start.format = {options->timestamps, options->limit_bytes};
  start.deadline = options->follow ? absl::ZeroDuration() : kLogDeadline;
  start.pod_name = route.pod_name;
  start.container = route.container;
  return start;
}

absl::StatusOr<std::string> RequestHandler::KnownPod(const internal::Route& route) const {
  if (deps_.pods == nullptr) return route.pod_uid;
  informer::ObjectPtr pod = deps_.pods->Get(route.pod_namespace, route.pod_name);
  const std::string uid =
      pod == nullptr ? "" : pod->value("metadata", json::object()).value("uid", "");
  if (uid.empty() || (!route.pod_uid.empty() && route.pod_uid != uid)) {
    return absl::NotFoundError("pod does not exist");
  }
  if (!route.container.empty() && !HasContainer(*pod, route.container)) {
    return absl::NotFoundError(absl::StrCat("container \"", route.container,
                                            "\" not found in pod \"", route.pod_name, "\""));
  }
  return uid;
}

HttpResponse RequestHandler::Run(const internal::Route& route, const QueryParams& query) {
  absl::StatusOr<std::string> uid = KnownPod(route);
  if (!uid.ok()) return TextResponse(404, absl::StrCat(uid.status().message(), "\n"));
  std::string cmd;
  for (const auto& [key, value] : query) {
    if (key == "cmd") {
      cmd = value;
      break;
    }
  }
  if (cmd.empty()) return TextResponse(400, "query parameter \"cmd\" is required\n");
  if (deps_.plugin == nullptr) {
    return TextResponse(503, "no provider plugin is configured\n");
  }
  absl::StatusOr<std::shared_ptr<plugin::PluginConnection>> connection =
      deps_.plugin->ConnectionFor(v1::CAPABILITY_EXEC);
  if (!connection.ok()) {
    return TextResponse(HttpCodeFor(connection.status()),
                        PluginErrorText(connection.status(), "running commands (exec)"));
  }
  v1::PodRef pod;
  pod.set_uid(*uid);
  pod.set_namespace_(route.pod_namespace);
  pod.set_name(route.pod_name);
  const std::vector<std::string> command = SplitRunCommand(cmd);
  absl::StatusOr<RunOutput> output =
      RunInContainer(**connection, pod, route.container, command, kRunDeadline);
  if (!output.ok()) {
    return TextResponse(HttpCodeFor(output.status()),
                        PluginErrorText(output.status(), "running commands (exec)"));
  }
  if (output->exit_code != 0) return TextResponse(500, NonZeroExitText(command, *output));
  // The kubelet's (sic) content type for this plain output.
  HttpResponse response = TextResponse(200, output->stdout + output->stderr);
  response.content_type = "application/json";
  return response;
}

Action RequestHandler::Upgrade(const HttpRequest& request, const UserInfo& user,
                               const internal::Route& route,
                               const QueryParams& query) {
  const std::string name(RouteName(route.kind));
  if (deps_.upgrades == nullptr) {
    return StatusResponse(
        501, "NotImplemented",
        absl::StrCat("/", name, " (", request.wants_upgrade ? "upgrade" : "plain",
                     " request) is not implemented yet by vkhost"));
  }
  if (!request.wants_upgrade) {
    return TextResponse(400, "unable to upgrade: missing upgrade headers in request\n");
  }
  UpgradeRequest upgrade;
  upgrade.route = name;
  upgrade.method = request.method;
  upgrade.target = request.target;
  upgrade.headers = request.headers;
  upgrade.query = query;
  upgrade.pod_namespace = route.pod_namespace;
  upgrade.pod_name = route.pod_name;
  upgrade.container = route.container;
  upgrade.user = user;
  absl::StatusOr<std::string> uid = KnownPod(route);
  if (!uid.ok()) return TextResponse(404, absl::StrCat(uid.status().message(), "\n"));
  upgrade.pod_uid = *uid;
  UpgradeResponse answer = deps_.upgrades->Accept(upgrade);
  if (answer.status != 101) {
    HttpResponse response = TextResponse(answer.status, answer.body);
    response.headers = answer.headers;
    return response;
  }
  return StartUpgrade{std::move(upgrade), std::move(answer)};
}

}  // namespace vkhost::kubeletapi::internal
