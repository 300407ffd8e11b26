#include "host/kubeletapi/internal/request_attributes.h"

#include <utility>

namespace vkhost::kubeletapi::internal {
namespace {

struct VerbRow {
  std::string_view method;
  std::string_view verb;
};
constexpr VerbRow kVerbs[] = {
    {"GET", "get"},     {"POST", "create"},  {"PUT", "update"},
    {"PATCH", "patch"}, {"DELETE", "delete"},
};

struct PathRow {
  std::string_view prefix;
  std::vector<std::string> subresources;
};

// Fine-grained authorization (KubeletFineGrainedAuthz, GA in 1.36): the
// read-only informational paths first try their own subresource, so a
// monitoring agent does not need the powerful `nodes/proxy`.
const std::vector<PathRow>& PathTable() {
  static const std::vector<PathRow> table = {
      {"/stats", {"stats"}},
      {"/metrics", {"metrics"}},
      {"/logs", {"log"}},
      {"/checkpoint", {"checkpoint"}},
      {"/pods", {"pods", "proxy"}},
      {"/runningpods", {"pods", "proxy"}},
      {"/healthz", {"healthz", "proxy"}},
      {"/configz", {"configz", "proxy"}},
      {"/statusz", {"statusz", "proxy"}},
  };
  return table;
}

// "path equals prefix or starts with prefix + '/'": /podsx is not /pods.
bool IsSubpath(std::string_view path, std::string_view prefix) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

std::string VerbForMethod(std::string_view method) {
  for (const VerbRow& row : kVerbs) {
    if (row.method == method) return std::string(row.verb);
  }
  return "";
}

std::vector<std::string> SubresourcesForPath(std::string_view path) {
  for (const PathRow& row : PathTable()) {
    if (IsSubpath(path, row.prefix)) return row.subresources;
  }
  return {"proxy"};
}

}  // namespace vkhost::kubeletapi::internal
