// The plugin's stats in the shapes kubelet clients read: the stats/v1alpha1
// Summary JSON of /stats/summary and the Prometheus text of /metrics/resource
// (kubelet-api.md §7). Pure functions.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_STATS_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_STATS_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "vkhost/provider/v1/stats.pb.h"

namespace vkhost::kubeletapi::internal {

namespace v1 = ::vkhost::provider::v1;

// Finds a pod's UID when the plugin did not report it ("" if unknown).
using PodUidLookup =
    std::function<std::string(const std::string& ns, const std::string& name)>;

// The Summary JSON. Unset counters are omitted (unknown is not zero); times
// are RFC 3339 at second precision, as metav1.Time marshals.
nlohmann::json SummaryToJson(const v1::GetStatsSummaryResponse& summary,
                             const std::string& node_name,
                             const PodUidLookup& uid_of);

// The /metrics/resource exposition. With an error status only the scrape
// error gauges are written (set to 1), as the kubelet does.
std::string ResourceMetricsText(
    const absl::StatusOr<v1::GetStatsSummaryResponse>& summary);

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_STATS_H_
