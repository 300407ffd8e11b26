// Volumes of a pod as the plugin receives them: configMap, secret,
// downwardAPI and projected resolved to files as the kubelet's volume plugins
// and AtomicWriter produce them; emptyDir and hostPath described; anything
// else passed on as unresolved.
#ifndef VKHOST_HOST_RESOLVE_INTERNAL_VOLUMES_H_
#define VKHOST_HOST_RESOLVE_INTERNAL_VOLUMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "host/resolve/internal/pod_context.h"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::resolve::internal {

// Resolves one entry of spec.volumes. Lowers `*refresh_at` to the refresh
// time of every service-account token it fetched. FAILED_PRECONDITION for a
// missing required ConfigMap, Secret, key or service account (kubelet
// wording), UNAVAILABLE when the source failed, INVALID_ARGUMENT for a bad
// path or field. Errors of several projected sources are joined as
// "[first, second]", as the kubelet aggregates them.
absl::StatusOr<provider::v1::Volume> ResolveVolume(PodContext& ctx,
                                                   const json& volume,
                                                   absl::Time* refresh_at);

// The AtomicWriter rules for a path inside a volume: not empty, relative, no
// ".." element, not starting with "..", at most 4096 bytes with elements of
// at most 255. INVALID_ARGUMENT with the reason otherwise.
absl::Status ValidateVolumePath(absl::string_view path);

// filepath.Clean for a relative path: "a//b/./c/" -> "a/b/c".
std::string CleanPath(absl::string_view path);

}  // namespace vkhost::resolve::internal

#endif  // VKHOST_HOST_RESOLVE_INTERNAL_VOLUMES_H_
