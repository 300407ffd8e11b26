// Internal to host/kube: reading the small files a config points at.
#ifndef VKHOST_HOST_KUBE_INTERNAL_READ_FILE_H_
#define VKHOST_HOST_KUBE_INTERNAL_READ_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace vkhost::kube::internal {

// The whole content of `path`. NOT_FOUND if it does not exist,
// PERMISSION_DENIED if it cannot be read, INVALID_ARGUMENT if larger than
// 16 MiB (no credential file is); every message names the file.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_READ_FILE_H_
