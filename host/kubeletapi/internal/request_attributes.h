// How the kubelet names a request for authorization: HTTP method → verb and
// path → `nodes` subresources (kubelet-api.md §2.1, §2.2, fine-grained
// variant). Pure functions, no state.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_REQUEST_ATTRIBUTES_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_REQUEST_ATTRIBUTES_H_

#include <string>
#include <string_view>
#include <vector>

namespace vkhost::kubeletapi::internal {

// "get" for GET, "create" for POST, "update", "patch", "delete"; "" for any
// other method (HEAD, OPTIONS, ...), as the kubelet does.
std::string VerbForMethod(std::string_view method);

// The subresources to try, in order; the first one allowed wins. Never
// empty: unknown paths map to {"proxy"}. `path` has no query string.
std::vector<std::string> SubresourcesForPath(std::string_view path);

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_REQUEST_ATTRIBUTES_H_
