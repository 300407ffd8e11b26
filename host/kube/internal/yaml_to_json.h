// Internal to host/kube: turns a YAML document (a kubeconfig) into JSON so the
// config loader reads one data model. Not for other components.
#ifndef VKHOST_HOST_KUBE_INTERNAL_YAML_TO_JSON_H_
#define VKHOST_HOST_KUBE_INTERNAL_YAML_TO_JSON_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace vkhost::kube::internal {

// Parses the first document of `yaml`. Mappings become objects, sequences
// arrays; plain scalars true/false (any case) become booleans, null/~/empty
// become null, everything else stays a string (kubeconfig needs no numbers).
// An empty input is an empty object. INVALID_ARGUMENT with line and column on
// malformed YAML, non-string mapping keys, or documents nested or aliased
// beyond sane limits (alias bombs).
absl::StatusOr<nlohmann::json> YamlToJson(std::string_view yaml);

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_YAML_TO_JSON_H_
