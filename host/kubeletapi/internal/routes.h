// The kubelet API's URL space: which handler a path goes to, query decoding,
// and the container-log options (kubelet-api.md §1, §8). Pure functions.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_ROUTES_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_ROUTES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vkhost::kubeletapi::internal {

enum class RouteKind {
  kNotFound,
  kHealthz,
  kPods,
  kContainerLogs,
  kStatsSummary,
  kMetricsResource,
  kExec,
  kAttach,
  kPortForward,
  kRun,
};

struct Route {
  RouteKind kind = RouteKind::kNotFound;
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;  // optional {uid} segment of exec/attach/portForward/run
  std::string container;
};

// Matches `path` (no query). kNotFound for paths the server does not serve.
// INVALID_ARGUMENT (kubelet wording, e.g. "Missing container name.") when a
// known prefix lacks segments.
absl::StatusOr<Route> MatchRoute(absl::string_view path);

// The methods a route accepts, e.g. {"GET"}; others get 405 with Allow.
std::vector<absl::string_view> AllowedMethods(RouteKind kind);

// "exec", "attach", "portForward", "run"; "" for the others.
absl::string_view RouteName(RouteKind kind);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Splits "a=1&b=x%20y&a=2" into decoded pairs in order ('+' is a space).
// INVALID_ARGUMENT for a malformed percent escape.
absl::StatusOr<QueryParams> ParseQuery(absl::string_view query);

// %XX-decodes one path segment or query part.
absl::StatusOr<std::string> PercentDecode(absl::string_view text,
                                          bool plus_is_space);

// v1.PodLogOptions after decoding and validation.
struct LogOptions {
  bool follow = false;
  bool previous = false;
  bool timestamps = false;
  std::optional<int64_t> tail_lines;
  std::optional<absl::Time> since_time;  // sinceSeconds already applied
  std::optional<int64_t> limit_bytes;
};

// Decodes the query of /containerLogs. `now` turns sinceSeconds into a time.
// INVALID_ARGUMENT with a message for the user when a value cannot be
// parsed or is out of range (negative tailLines, sinceSeconds < 1, both
// since*, limitBytes < 1, a stream other than All).
absl::StatusOr<LogOptions> ParseLogOptions(const QueryParams& query,
                                           absl::Time now);

// The kubelet's log timestamp: RFC 3339 in UTC with exactly nine fractional
// digits, e.g. "2016-10-06T00:17:09.669794202Z".
std::string FormatLogTimestamp(absl::Time time);

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_ROUTES_H_
