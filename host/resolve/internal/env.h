// A container's environment as the kubelet builds it
// (makeEnvironmentVariables), and $(VAR) expansion.
#ifndef VKHOST_HOST_RESOLVE_INTERNAL_ENV_H_
#define VKHOST_HOST_RESOLVE_INTERNAL_ENV_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "host/resolve/internal/pod_context.h"

namespace vkhost::resolve::internal {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// Service-link variables of every Service given (those without a cluster IP
// are skipped), in the order given, one Service's variables together.
EnvList ServiceLinkVariables(const std::vector<std::pair<std::string, ServiceAddress>>& services);

// The service-link variables a pod's containers get: the `kubernetes`
// Service's always, the namespace's Services' unless enableServiceLinks is
// false. Keyed by name.
std::map<std::string, std::string> PodServiceEnvironment(PodContext& ctx);

// The environment of `container`: envFrom, then env, then the service
// variables no declared variable overrides (sorted by name). Each name once,
// at its first position, with its last value. Keys of envFrom sources that
// cannot be variable names are skipped and reported in `warnings`.
// FAILED_PRECONDITION (kubelet wording) for a missing required reference,
// UNAVAILABLE when the source failed, INVALID_ARGUMENT for a bad field.
absl::StatusOr<EnvList> ContainerEnvironment(
    PodContext& ctx, const json& container,
    const std::map<std::string, std::string>& service_env,
    std::vector<Warning>* warnings);

// Kubernetes $(VAR) expansion: $(NAME) becomes lookup(NAME) or stays as it
// is when lookup has no value; $$ becomes $; any other $ stays.
std::string Expand(
    std::string_view input,
    const std::function<std::optional<std::string>(const std::string&)>&
        lookup);

// Whether `name` can be an environment variable name at all: not empty,
// printable ASCII, no '='. Kubelets since relaxed variable names went GA pass
// every envFrom key through; this keeps only that check for names a process
// environment cannot carry (older kubelets also dropped names such as
// "1abc" or "app.yaml", which are valid today).
bool IsEnvVarName(absl::string_view name);

}  // namespace vkhost::resolve::internal

#endif  // VKHOST_HOST_RESOLVE_INTERNAL_ENV_H_
