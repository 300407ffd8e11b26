// The parts of the curated Pod copied from the pod spec rather than resolved:
// pod-level fields and containers (given their resolved environment).
#ifndef VKHOST_HOST_RESOLVE_INTERNAL_SPEC_H_
#define VKHOST_HOST_RESOLVE_INTERNAL_SPEC_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "host/resolve/internal/env.h"
#include "host/resolve/internal/pod_context.h"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::resolve::internal {

// Fills every field of `out` but containers and volumes. INVALID_ARGUMENT
// when metadata.uid or metadata.name is missing.
absl::Status ConvertPodFields(const PodContext& ctx, provider::v1::Pod* out);

// Converts one container. `env` is its resolved environment, which $(VAR)
// references in command, args and subPathExpr are expanded with. A named
// probe or hook port that the container does not declare becomes 0 with a
// "ProbeWarning" in `warnings` (on the kubelet such a probe errors each
// time it runs). INVALID_ARGUMENT for a subPath (or expanded subPathExpr)
// that is absolute or has "..", or a subPathExpr naming an unset variable.
absl::StatusOr<provider::v1::Container> ConvertContainer(
    const json& container, const EnvList& env, bool init_container,
    std::vector<Warning>* warnings);

}  // namespace vkhost::resolve::internal

#endif  // VKHOST_HOST_RESOLVE_INTERNAL_SPEC_H_
