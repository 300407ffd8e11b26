// Shared by the parts of host/resolve: JSON accessors that never throw, the
// per-resolution PodContext, and the downward API.
#ifndef VKHOST_HOST_RESOLVE_INTERNAL_POD_CONTEXT_H_
#define VKHOST_HOST_RESOLVE_INTERNAL_POD_CONTEXT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "host/resolve/resolve.h"
#include "nlohmann/json.hpp"

namespace vkhost::resolve::internal {

using json = nlohmann::json;

// Member `key` of `obj`, or nullptr when obj is not an object or the member
// is absent or null.
const json* Member(const json& obj, std::string_view key);
// The member as a string; "" when absent or not a string.
std::string String(const json& obj, std::string_view key);
// The member as a bool; `fallback` when absent or not a bool.
bool Bool(const json& obj, std::string_view key, bool fallback);
// The member as an integer; nullopt when absent or not an integer.
std::optional<int64_t> Int(const json& obj, std::string_view key);
// The member when it is an array / object, else a shared empty one.
const json& Array(const json& obj, std::string_view key);
const json& Object(const json& obj, std::string_view key);
// A string-valued map member (labels, annotations); non-strings skipped.
std::map<std::string, std::string> StringMap(const json& obj,
                                             std::string_view key);

// The key/value contents of a ConfigMap or Secret, decoded.
struct ObjectData {
  // ConfigMap `data`, or Secret `data` base64-decoded.
  std::map<std::string, std::string> data;
  // ConfigMap `binaryData` base64-decoded; empty for Secrets.
  std::map<std::string, std::string> binary_data;
};

// One resolution of one pod. Remembers the ConfigMaps and Secrets it fetched
// so every reference within the pod sees the same version of an object, as
// the kubelet's per-container maps do. Not thread-safe; lives on one stack.
class PodContext {
 public:
  PodContext(const json& pod, ObjectSource& source,
             const ResolveOptions& options);

  const json& pod() const { return pod_; }
  const json& spec() const { return spec_; }
  const std::string& namespace_name() const { return namespace_; }
  const std::string& name() const { return name_; }
  const std::string& uid() const { return uid_; }
  const ResolveOptions& options() const { return options_; }
  ObjectSource& source() { return source_; }
  // status.podIPs of the pod (the host's IPs for host-network pods).
  const std::vector<std::string>& pod_ips() const { return pod_ips_; }

  // The named ConfigMap / Secret of the pod's namespace. NOT_FOUND worded as
  // the kubelet words it (`configmap "x" not found`), UNAVAILABLE for any
  // other source failure, INVALID_ARGUMENT for undecodable data.
  absl::StatusOr<const ObjectData*> ConfigMap(const std::string& name);
  absl::StatusOr<const ObjectData*> Secret(const std::string& name);

 private:
  using Cache = std::map<std::string, absl::StatusOr<ObjectData>>;
  absl::StatusOr<const ObjectData*> Fetch(const std::string& name,
                                          bool secret);

  const json& pod_;
  const json& spec_;
  ObjectSource& source_;
  const ResolveOptions& options_;
  std::string namespace_;
  std::string name_;
  std::string uid_;
  std::vector<std::string> pod_ips_;
  Cache config_maps_;
  Cache secrets_;
};

// The value of a downward API fieldRef. Volumes (`for_env` false) support
// the metadata.* paths; env also spec.nodeName, spec.serviceAccountName and
// status.hostIP(s)/podIP(s). INVALID_ARGUMENT for other paths.
absl::StatusOr<std::string> FieldRefValue(const PodContext& ctx,
                                          const json& field_ref,
                                          bool for_env);

// The value of a resourceFieldRef for `container` (limits default to node
// allocatable), divided by the divisor and rounded up as the kubelet does.
absl::StatusOr<std::string> ResourceFieldRefValue(const PodContext& ctx,
                                                  const json& container,
                                                  const json& ref);

// The container or init container named `name`, or nullptr.
const json* FindContainer(const json& spec, std::string_view name);

// Go's %q quoting, which the downward API uses for label and annotation maps.
std::string GoQuote(std::string_view text);

}  // namespace vkhost::resolve::internal

#endif  // VKHOST_HOST_RESOLVE_INTERNAL_POD_CONTEXT_H_
