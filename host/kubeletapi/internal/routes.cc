#include "host/kubeletapi/internal/routes.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/kube_time.h"

namespace vkhost::kubeletapi::internal {
namespace {

// How the segments after a pod-scoped prefix are laid out.
enum class Shape {
  kNone,              // fixed path, no segments
  kPodContainer,      // {ns}/{pod}/{container}
  kPodUidContainer,   // {ns}/{pod}[/{uid}]/{container}
  kPodUid,            // {ns}/{pod}[/{uid}]
};

struct RouteRow {
  absl::string_view prefix;
  RouteKind kind;
  Shape shape;
};

constexpr RouteRow kRoutes[] = {
    {"/healthz", RouteKind::kHealthz, Shape::kNone},
    {"/pods", RouteKind::kPods, Shape::kNone},
    {"/stats/summary", RouteKind::kStatsSummary, Shape::kNone},
    {"/metrics/resource", RouteKind::kMetricsResource, Shape::kNone},
    {"/containerLogs", RouteKind::kContainerLogs, Shape::kPodContainer},
    {"/exec", RouteKind::kExec, Shape::kPodUidContainer},
    {"/attach", RouteKind::kAttach, Shape::kPodUidContainer},
    {"/portForward", RouteKind::kPortForward, Shape::kPodUid},
    {"/run", RouteKind::kRun, Shape::kPodUidContainer},
};

struct MethodRow {
  RouteKind kind;
  std::vector<absl::string_view> methods;
};

const std::vector<MethodRow>& MethodTable() {
  static const std::vector<MethodRow> table = {
      {RouteKind::kHealthz, {"GET"}},
      {RouteKind::kPods, {"GET"}},
      {RouteKind::kContainerLogs, {"GET"}},
      {RouteKind::kStatsSummary, {"GET", "POST"}},
      {RouteKind::kMetricsResource, {"GET"}},
      {RouteKind::kExec, {"GET", "POST"}},
      {RouteKind::kAttach, {"GET", "POST"}},
      {RouteKind::kPortForward, {"GET", "POST"}},
      {RouteKind::kRun, {"POST"}},
  };
  return table;
}

absl::Status Missing(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("Missing ", what, "."));
}

// Fills the pod-scoped fields of `route` from `segments` per `shape`.
absl::Status FillSegments(Shape shape, const std::vector<std::string>& segments,
                          Route* route) {
  const size_t n = segments.size();
  if (n < 1 || segments[0].empty()) return Missing("podNamespace");
  if (n < 2 || segments[1].empty()) return Missing("podID");
  route->pod_namespace = segments[0];
  route->pod_name = segments[1];
  switch (shape) {
    case Shape::kNone:
      return absl::OkStatus();
    case Shape::kPodUid:
      if (n > 3) return absl::NotFoundError("too many path segments");
      if (n == 3) route->pod_uid = segments[2];
      return absl::OkStatus();
    case Shape::kPodContainer:
      if (n < 3 || segments[2].empty()) return Missing("container name");
      if (n > 3) return absl::NotFoundError("too many path segments");
      route->container = segments[2];
      return absl::OkStatus();
    case Shape::kPodUidContainer:
      if (n < 3 || segments[n - 1].empty()) return Missing("container name");
      if (n > 4) return absl::NotFoundError("too many path segments");
      if (n == 4) route->pod_uid = segments[2];
      route->container = segments[n - 1];
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::StatusOr<Route> MatchRow(const RouteRow& row, absl::string_view rest) {
  Route route;
  route.kind = row.kind;
  if (row.shape == Shape::kNone) {
    // "/stats/summary/" is served too; "/healthz/ping" and friends as well.
    if (rest.empty() || rest == "/" || row.kind == RouteKind::kHealthz) {
      return route;
    }
    return Route{};
  }
  if (rest.size() > 0) rest.remove_prefix(1);  // the '/'
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::vector<std::string> segments;
  if (!rest.empty()) {
    for (absl::string_view raw : absl::StrSplit(rest, '/')) {
      absl::StatusOr<std::string> decoded = PercentDecode(raw, false);
      if (!decoded.ok()) return decoded.status();
      segments.push_back(*std::move(decoded));
    }
  }
  absl::Status filled = FillSegments(row.shape, segments, &route);
  if (absl::IsNotFound(filled)) return Route{};
  if (!filled.ok()) return filled;
  return route;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's query bool conversion: absent, "", "false" and "0" are false;
// anything else is true.
bool QueryBool(absl::string_view value) {
  return !(value.empty() || absl::EqualsIgnoreCase(value, "false") ||
           value == "0");
}

absl::Status BadValue(absl::string_view name, absl::string_view value,
                      absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid value \"", value, "\" for query parameter ", name, ": ", why));
}

absl::StatusOr<int64_t> QueryInt(absl::string_view name, absl::string_view value) {
  int64_t out = 0;
  if (!absl::SimpleAtoi(value, &out)) {
    return BadValue(name, value, "not an integer");
  }
  return out;
}

// The first value of `name`, if present (the kubelet ignores repeats).
const std::string* First(const QueryParams& query, absl::string_view name) {
  for (const auto& [key, value] : query) {
    if (key == name) return &value;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<Route> MatchRoute(absl::string_view path) {
  for (const RouteRow& row : kRoutes) {
    if (path.substr(0, row.prefix.size()) != row.prefix) continue;
    absl::string_view rest = path.substr(row.prefix.size());
    if (!rest.empty() && rest[0] != '/') continue;
    return MatchRow(row, rest);
  }
  return Route{};
}

std::vector<absl::string_view> AllowedMethods(RouteKind kind) {
  for (const MethodRow& row : MethodTable()) {
    if (row.kind == kind) return row.methods;
  }
  return {};
}

absl::string_view RouteName(RouteKind kind) {
  switch (kind) {
    case RouteKind::kExec:
      return "exec";
    case RouteKind::kAttach:
      return "attach";
    case RouteKind::kPortForward:
      return "portForward";
    case RouteKind::kRun:
      return "run";
    default:
      return "";
  }
}

absl::StatusOr<std::string> PercentDecode(absl::string_view text,
                                          bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("malformed percent escape in \"", text, "\""));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<QueryParams> ParseQuery(absl::string_view query) {
  QueryParams params;
  if (query.empty()) return params;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    absl::StatusOr<std::string> key = PercentDecode(kv.first, true);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> value = PercentDecode(kv.second, true);
    if (!value.ok()) return value.status();
    params.emplace_back(*std::move(key), *std::move(value));
  }
  return params;
}

absl::StatusOr<LogOptions> ParseLogOptions(const QueryParams& query,
                                           absl::Time now) {
  LogOptions options;
  if (const std::string* v = First(query, "follow")) options.follow = QueryBool(*v);
  if (const std::string* v = First(query, "previous")) {
    options.previous = QueryBool(*v);
  }
  if (const std::string* v = First(query, "timestamps")) {
    options.timestamps = QueryBool(*v);
  }
  if (const std::string* v = First(query, "stream")) {
    if (!v->empty() && *v != "All") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unable to return the given log stream: \"", *v,
          "\": only All is supported"));
    }
  }
  const std::string* tail = First(query, "tailLines");
  const std::string* legacy_tail = First(query, "tail");
  if (tail == nullptr && legacy_tail != nullptr && *legacy_tail != "all") {
    tail = legacy_tail;
  }
  if (tail != nullptr) {
    absl::StatusOr<int64_t> n = QueryInt("tailLines", *tail);
    if (!n.ok()) return n.status();
    if (*n < 0) return BadValue("tailLines", *tail, "must be 0 or more");
    options.tail_lines = *n;
  }
  const std::string* since_seconds = First(query, "sinceSeconds");
  const std::string* since_time = First(query, "sinceTime");
  if (since_seconds != nullptr && since_time != nullptr) {
    return absl::InvalidArgumentError(
        "at most one of sinceSeconds and sinceTime may be given");
  }
  if (since_seconds != nullptr) {
    absl::StatusOr<int64_t> n = QueryInt("sinceSeconds", *since_seconds);
    if (!n.ok()) return n.status();
    if (*n < 1) return BadValue("sinceSeconds", *since_seconds, "must be 1 or more");
    options.since_time = now - absl::Seconds(*n);
  }
  if (since_time != nullptr) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, *since_time, &t, &err)) {
      return BadValue("sinceTime", *since_time, "not an RFC 3339 time");
    }
    options.since_time = t;
  }
  if (const std::string* v = First(query, "limitBytes")) {
    absl::StatusOr<int64_t> n = QueryInt("limitBytes", *v);
    if (!n.ok()) return n.status();
    if (*n < 1) return BadValue("limitBytes", *v, "must be 1 or more");
    options.limit_bytes = *n;
  }
  return options;
}

std::string FormatLogTimestamp(absl::Time time) { return apijson::KubeNanoTime(time); }

}  // namespace vkhost::kubeletapi::internal
