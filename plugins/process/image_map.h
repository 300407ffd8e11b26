// ImageMap: what a container image means to the process plugin.
//
// The plugin pulls nothing. An image name maps to a local root directory
// (and optionally an entrypoint); the container's process runs with that
// directory as its root (chroot when it is not "/"). Operators extend or
// override the map with `--image NAME=ROOT[:ENTRYPOINT ARG...]`; by default
// busybox, python, alpine, debian, ubuntu and `host` map to the host's "/".
// A name matches with or without its tag, digest and registry/library
// prefix ("docker.io/library/python:3.12" finds "python").
#ifndef VKHOST_PLUGINS_PROCESS_IMAGE_MAP_H_
#define VKHOST_PLUGINS_PROCESS_IMAGE_MAP_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vkhost::process {

struct ImageTarget {
  std::string root = "/";
  // Used when the container has no `command`; empty: none known.
  std::vector<std::string> entrypoint;
};

// Immutable after set-up; reads are thread-safe.
class ImageMap {
 public:
  // The default map (see above).
  static ImageMap Defaults();

  // Adds or replaces one entry from "NAME=ROOT[:ENTRYPOINT ARG...]".
  // INVALID_ARGUMENT for a malformed entry or a relative ROOT.
  absl::Status Add(absl::string_view entry);

  // NOT_FOUND, with a message naming the image and the --image flag, when
  // no entry matches.
  absl::StatusOr<ImageTarget> Resolve(absl::string_view image) const;

  // "name=root" entries, for the plugin's manifest and logs.
  std::vector<std::string> Describe() const;

 private:
  std::map<std::string, ImageTarget> entries_;
};

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_IMAGE_MAP_H_
