// Resource table lookups and URL paths.
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "host/kube/client.h"
#include "host/kube/internal/string_view.h"

namespace vkhost::kube {
namespace {

const std::array<const Resource*, 12> kKnownResources{
    &kPods,           &kNodes,         &kNamespaces,   &kConfigMaps,
    &kSecrets,        &kServices,      &kServiceAccounts, &kCoreEvents,
    &kEvents,         &kLeases,        &kTokenReviews, &kSubjectAccessReviews,
};

// A name or namespace must be one URL path segment, never a traversal.
absl::Status CheckSegment(std::string_view what, std::string_view value) {
  if (value == "." || value == "..") {
    return absl::InvalidArgumentError(absl::StrCat(internal::Sv(what), " \"", internal::Sv(value), "\" is not a valid name"));
  }
  for (char c : value) {
    if (c == '/' || c == '%' || c == '?' || c == '#' ||
        static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(internal::Sv(what), " \"", internal::Sv(value), "\" contains a character not allowed in a name"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Resource> LookupResource(std::string_view name) {
  for (const Resource* r : kKnownResources) {
    const std::string full =
        r->group.empty() ? r->plural : absl::StrCat(r->plural, ".", r->group);
    if (name == full) return *r;
  }
  return absl::NotFoundError(absl::StrCat("unknown resource \"", internal::Sv(name), "\""));
}

absl::StatusOr<std::string> ResourcePath(const Target& target) {
  const Resource& r = target.resource;
  if (r.plural.empty() || r.version.empty()) {
    return absl::InvalidArgumentError("resource without plural or version");
  }
  for (auto [what, value] :
       {std::pair<std::string_view, std::string_view>{"namespace", target.ns},
        {"name", target.name},
        {"subresource", target.subresource}}) {
    if (absl::Status s = CheckSegment(what, value); !s.ok()) return s;
  }
  if (!r.namespaced && !target.ns.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        r.plural, " are cluster-scoped; got namespace \"", target.ns, "\""));
  }
  if (!target.subresource.empty() && target.name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subresource \"", target.subresource, "\" of ", r.plural, " needs a name"));
  }
  std::string path = r.group.empty() ? absl::StrCat("/api/", r.version)
                                     : absl::StrCat("/apis/", r.group, "/", r.version);
  if (!target.ns.empty()) absl::StrAppend(&path, "/namespaces/", target.ns);
  absl::StrAppend(&path, "/", r.plural);
  if (!target.name.empty()) absl::StrAppend(&path, "/", target.name);
  if (!target.subresource.empty()) absl::StrAppend(&path, "/", target.subresource);
  return path;
}

}  // namespace vkhost::kube
