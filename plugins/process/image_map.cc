// ImageMap; see image_map.h.
#include "plugins/process/image_map.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vkhost::process {
namespace {

// Names an image is looked up by, most specific first.
std::vector<std::string> Candidates(absl::string_view image) {
  std::vector<std::string> names;
  absl::string_view name = image;
  if (size_t at = name.find('@'); at != absl::string_view::npos) {
    name = name.substr(0, at);
  }
  names.emplace_back(image);
  names.emplace_back(name);
  // A tag is a ':' after the last '/' (a ':' before it is a registry port).
  absl::string_view untagged = name;
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != absl::string_view::npos &&
      (slash == absl::string_view::npos || colon > slash)) {
    untagged = name.substr(0, colon);
  }
  names.emplace_back(untagged);
  if (slash != absl::string_view::npos) {
    names.emplace_back(name.substr(slash + 1));
    names.emplace_back(untagged.substr(slash + 1));
  }
  return names;
}

}  // namespace

ImageMap ImageMap::Defaults() {
  ImageMap map;
  for (const char* name : {"busybox", "python", "alpine", "debian", "ubuntu",
                           "host"}) {
    map.entries_[name] = ImageTarget{};
  }
  return map;
}

absl::Status ImageMap::Add(absl::string_view entry) {
  std::pair<absl::string_view, absl::string_view> kv =
      absl::StrSplit(entry, absl::MaxSplits('=', 1));
  if (kv.first.empty() || kv.second.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--image \"", entry, "\": want NAME=ROOT[:ENTRYPOINT ARG...]"));
  }
  ImageTarget target;
  std::pair<absl::string_view, absl::string_view> root_cmd =
      absl::StrSplit(kv.second, absl::MaxSplits(':', 1));
  target.root = std::string(root_cmd.first);
  if (target.root.empty() || target.root[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--image \"", entry, "\": the root directory must be absolute"));
  }
  for (absl::string_view word :
       absl::StrSplit(root_cmd.second, ' ', absl::SkipEmpty())) {
    target.entrypoint.emplace_back(word);
  }
  entries_[std::string(kv.first)] = std::move(target);
  return absl::OkStatus();
}

absl::StatusOr<ImageTarget> ImageMap::Resolve(absl::string_view image) const {
  for (const std::string& name : Candidates(image)) {
    if (auto it = entries_.find(name); it != entries_.end()) return it->second;
  }
  return absl::NotFoundError(absl::StrCat(
      "image \"", image, "\" is not in the process plugin's image map (known: ",
      absl::StrJoin(Describe(), ", "),
      "); the operator adds images with --image NAME=ROOT"));
}

std::vector<std::string> ImageMap::Describe() const {
  std::vector<std::string> out;
  for (const auto& [name, target] : entries_) {
    out.push_back(absl::StrCat(name, "=", target.root));
  }
  return out;
}

}  // namespace vkhost::process
