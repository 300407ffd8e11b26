#include "host/kube/internal/read_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace vkhost::kube::internal {
namespace {
constexpr std::streamoff kMaxBytes = 16 << 20;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string why = absl::StrCat("cannot read ", path, ": ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(why);
    if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(why);
    return absl::InvalidArgumentError(why);
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size > kMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is ", size, " bytes, too large for a credential file"));
  }
  in.seekg(0, std::ios::beg);
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("error reading ", path));
  }
  return content.str();
}

}  // namespace vkhost::kube::internal
