// Internal to host/kube: Debian's Abseil has its own string_view, distinct
// from std::string_view; StrCat and friends take only theirs.
#ifndef VKHOST_HOST_KUBE_INTERNAL_STRING_VIEW_H_
#define VKHOST_HOST_KUBE_INTERNAL_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace vkhost::kube::internal {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace vkhost::kube::internal

#endif  // VKHOST_HOST_KUBE_INTERNAL_STRING_VIEW_H_
