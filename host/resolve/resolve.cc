// ResolvePod: volumes first (the kubelet mounts before it starts any
// container), then each container's environment and spec, init containers
// first; the first failure decides what the pod shows.
#include "host/resolve/resolve.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "host/resolve/internal/env.h"
#include "host/resolve/internal/pod_context.h"
#include "host/resolve/internal/spec.h"
#include "host/resolve/internal/volumes.h"

namespace vkhost::resolve {
namespace {

using internal::json;

// The kubelet refreshes a token older than 24 h, whatever its lifetime.
constexpr absl::Duration kMaxTokenAge = absl::Hours(24);

ResolveResult VolumeFailure(const std::string& volume, absl::Status status) {
  ResolveResult result;
  result.failure.waiting_reason = "ContainerCreating";
  result.failure.event_reason = "FailedMount";
  result.failure.event_message = absl::StrCat(
      "MountVolume.SetUp failed for volume \"", volume, "\" : ",
      status.message());
  result.failure.volume_name = volume;
  result.status = std::move(status);
  return result;
}

ResolveResult ContainerFailure(const std::string& container,
                               absl::Status status) {
  ResolveResult result;
  result.failure.waiting_reason = "CreateContainerConfigError";
  result.failure.waiting_message = std::string(status.message());
  result.failure.event_reason = "Failed";
  result.failure.event_message = absl::StrCat("Error: ", status.message());
  result.failure.container_name = container;
  result.status = std::move(status);
  return result;
}

ResolveResult Resolve(const json& pod, ObjectSource& source,
                      const ResolveOptions& options) {
  ResolveResult result;
  if (!pod.is_object()) {
    result.status = absl::InvalidArgumentError("not a pod: not a JSON object");
    return result;
  }
  internal::PodContext ctx(pod, source, options);
  ResolvedPod& resolved = result.resolved;
  result.status = internal::ConvertPodFields(ctx, &resolved.pod);
  if (!result.status.ok()) return result;

  for (const json& volume : internal::Array(ctx.spec(), "volumes")) {
    auto converted =
        internal::ResolveVolume(ctx, volume, &resolved.refresh_at);
    if (!converted.ok()) {
      return VolumeFailure(internal::String(volume, "name"),
                           converted.status());
    }
    *resolved.pod.add_volumes() = *std::move(converted);
  }

  const auto service_env = internal::PodServiceEnvironment(ctx);
  for (const bool init : {true, false}) {
    for (const json& c :
         internal::Array(ctx.spec(), init ? "initContainers" : "containers")) {
      const std::string name = internal::String(c, "name");
      auto env = internal::ContainerEnvironment(ctx, c, service_env,
                                                &resolved.warnings);
      if (!env.ok()) return ContainerFailure(name, env.status());
      auto container =
          internal::ConvertContainer(c, *env, init, &resolved.warnings);
      if (!container.ok()) return ContainerFailure(name, container.status());
      *(init ? resolved.pod.add_init_containers()
             : resolved.pod.add_containers()) = *std::move(container);
    }
  }
  return result;
}

}  // namespace

absl::Time TokenRefreshTime(const Token& token) {
  if (token.expiration_seconds <= 0) return token.expiration;
  const absl::Duration ttl = absl::Seconds(token.expiration_seconds);
  const absl::Time issued = token.expiration - ttl;
  // The last fifth of the lifetime, in whole seconds as the kubelet computes.
  const absl::Time late =
      token.expiration - absl::Seconds(token.expiration_seconds * 20 / 100);
  return std::min(issued + kMaxTokenAge, late);
}

ResolveResult ResolvePod(const nlohmann::json& pod, ObjectSource& source,
                         const ResolveOptions& options) {
  // The accessors never throw; this guards against a library surprise on
  // pathological input so a bad pod can never take the host down.
  try {
    return Resolve(pod, source, options);
  } catch (const std::exception& e) {
    ResolveResult result;
    result.status = absl::InvalidArgumentError(
        absl::StrCat("malformed pod: ", e.what()));
    return result;
  }
}

}  // namespace vkhost::resolve
