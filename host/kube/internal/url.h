// Internal to host/kube: the pieces of a request URL: the API server's
// address and the query string.
#ifndef VKHOST_HOST_KUBE_INTERNAL_URL_H_
#define VKHOST_HOST_KUBE_INTERNAL_URL_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "host/kube/client.h"

namespace vkhost::kube::internal {

struct ServerAddress {
  bool https = true;
  std::string host;       // without brackets: "::1", "10.0.0.1", "api.example"
  int port = 443;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
  std::string host_header;  // "host:port" with IPv6 bracketed
};

// Parses "https://host[:port][/prefix]" (or http). INVALID_ARGUMENT naming
// the URL for another scheme, a missing host, a bad port, or a query part.
absl::StatusOr<ServerAddress> ParseServerUrl(std::string_view url);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string EncodeQueryComponent(std::string_view value);

// "?k1=v1&k2=v2" from the pairs whose value is not empty; "" if none.
std::string BuildQuery(const std::vector<std::pair<std::string, std::string>>& params);

std::string ListQuery(const ListOptions& options);
std::string WatchQuery(const WatchOptions& options);
std::string WriteQuery(const WriteOptions& options, bool apply);

// The DeleteOptions body of a DELETE request.
nlohmann::json DeleteOptionsBody(const DeleteOptions& options);

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_URL_H_
