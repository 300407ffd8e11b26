#include "host/resolve/internal/pod_context.h"

#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "host/resolve/internal/quantity.h"

namespace vkhost::resolve::internal {
namespace {

const json& EmptyArray() {
  static const json* const kEmpty = new json(json::array());
  return *kEmpty;
}

const json& EmptyObject() {
  static const json* const kEmpty = new json(json::object());
  return *kEmpty;
}

// Pod IPs as the pod's status records them; a host-network pod has the
// node's addresses.
std::vector<std::string> PodIps(const json& pod, const ResolveOptions& options) {
  if (Bool(Object(pod, "spec"), "hostNetwork", false)) return options.host_ips;
  const json& status = Object(pod, "status");
  std::vector<std::string> ips;
  for (const json& entry : Array(status, "podIPs")) {
    std::string ip = String(entry, "ip");
    if (!ip.empty()) ips.push_back(std::move(ip));
  }
  if (ips.empty()) {
    std::string ip = String(status, "podIP");
    if (!ip.empty()) ips.push_back(std::move(ip));
  }
  return ips;
}

absl::StatusOr<std::map<std::string, std::string>> DecodeMap(
    const json& obj, std::string_view key, bool base64,
    absl::string_view what) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : Object(obj, key).items()) {
    if (!v.is_string()) continue;
    const std::string& text = v.get_ref<const std::string&>();
    if (!base64) {
      out[k] = text;
      continue;
    }
    std::string decoded;
    if (!absl::Base64Unescape(text, &decoded)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " key ", k, " is not valid base64"));
    }
    out[k] = std::move(decoded);
  }
  return out;
}

// Labels and annotations as the downward API writes a whole map: sorted
// `key="value"` lines.
std::string FormatMap(const std::map<std::string, std::string>& values) {
  std::vector<std::string> lines;
  lines.reserve(values.size());
  for (const auto& [key, value] : values) {
    lines.push_back(absl::StrCat(key, "=", GoQuote(value)));
  }
  return absl::StrJoin(lines, "\n");
}

// "metadata.labels['key']" -> {"metadata.labels", "key"}.
std::optional<std::pair<std::string, std::string>> SplitSubscript(
    absl::string_view path) {
  if (!absl::ConsumeSuffix(&path, "']")) return std::nullopt;
  const size_t open = path.find("['");
  if (open == absl::string_view::npos || open == 0) return std::nullopt;
  return std::make_pair(std::string(path.substr(0, open)),
                        std::string(path.substr(open + 2)));
}

absl::StatusOr<std::string> MetadataField(const PodContext& ctx,
                                          const std::string& path) {
  const json& metadata = Object(ctx.pod(), "metadata");
  if (auto sub = SplitSubscript(path)) {
    if (sub->first == "metadata.labels" ||
        sub->first == "metadata.annotations") {
      const auto values = StringMap(metadata, sub->first.substr(9));
      auto it = values.find(sub->second);
      return it == values.end() ? std::string() : it->second;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("fieldPath \"", path, "\" does not support subscript"));
  }
  if (path == "metadata.name") return ctx.name();
  if (path == "metadata.namespace") return ctx.namespace_name();
  if (path == "metadata.uid") return ctx.uid();
  if (path == "metadata.labels") return FormatMap(StringMap(metadata, "labels"));
  if (path == "metadata.annotations") {
    return FormatMap(StringMap(metadata, "annotations"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported fieldPath: ", path));
}

enum class ResourceKind { kCpu, kBytes };

struct ResourceName {
  std::string section;  // "limits" or "requests"
  std::string name;     // "cpu", "memory", "hugepages-2Mi", ...
  ResourceKind kind;
};

absl::StatusOr<ResourceName> ParseResourceName(absl::string_view resource) {
  const size_t dot = resource.find('.');
  if (dot != absl::string_view::npos) {
    ResourceName r{std::string(resource.substr(0, dot)),
                   std::string(resource.substr(dot + 1)), ResourceKind::kBytes};
    const bool known_section = r.section == "limits" || r.section == "requests";
    const bool known_name = r.name == "cpu" || r.name == "memory" ||
                            r.name == "ephemeral-storage" ||
                            absl::StartsWith(r.name, "hugepages-");
    if (known_section && known_name) {
      if (r.name == "cpu") r.kind = ResourceKind::kCpu;
      return r;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported container resource : ", resource));
}

// Quantity given as a JSON string (or, leniently, a number).
absl::StatusOr<Quantity> ParseQuantityJson(const json& value) {
  if (value.is_string()) {
    return Quantity::Parse(value.get_ref<const std::string&>());
  }
  if (value.is_number()) return Quantity::Parse(value.dump());
  return absl::InvalidArgumentError("quantity is not a string");
}

int64_t CeilDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) == (b < 0))) ? q + 1 : q;
}

}  // namespace

const json* Member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string String(const json& obj, std::string_view key) {
  const json* v = Member(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

bool Bool(const json& obj, std::string_view key, bool fallback) {
  const json* v = Member(obj, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : fallback;
}

std::optional<int64_t> Int(const json& obj, std::string_view key) {
  const json* v = Member(obj, key);
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  return v->get<int64_t>();
}

const json& Array(const json& obj, std::string_view key) {
  const json* v = Member(obj, key);
  return v != nullptr && v->is_array() ? *v : EmptyArray();
}

const json& Object(const json& obj, std::string_view key) {
  const json* v = Member(obj, key);
  return v != nullptr && v->is_object() ? *v : EmptyObject();
}

std::map<std::string, std::string> StringMap(const json& obj,
                                             std::string_view key) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : Object(obj, key).items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

PodContext::PodContext(const json& pod, ObjectSource& source,
                       const ResolveOptions& options)
    : pod_(pod),
      spec_(Object(pod, "spec")),
      source_(source),
      options_(options),
      namespace_(String(Object(pod, "metadata"), "namespace")),
      name_(String(Object(pod, "metadata"), "name")),
      uid_(String(Object(pod, "metadata"), "uid")),
      pod_ips_(PodIps(pod, options)) {}

absl::StatusOr<const ObjectData*> PodContext::ConfigMap(
    const std::string& name) {
  return Fetch(name, /*secret=*/false);
}

absl::StatusOr<const ObjectData*> PodContext::Secret(const std::string& name) {
  return Fetch(name, /*secret=*/true);
}

absl::StatusOr<const ObjectData*> PodContext::Fetch(const std::string& name,
                                                    bool secret) {
  Cache& cache = secret ? secrets_ : config_maps_;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const char* kind = secret ? "secret" : "configmap";
    auto fetched = secret ? source_.Secret(namespace_, name)
                          : source_.ConfigMap(namespace_, name);
    absl::StatusOr<ObjectData> entry;
    if (fetched.ok() && *fetched == nullptr) {
      fetched = absl::NotFoundError("");
    }
    if (absl::IsNotFound(fetched.status())) {
      entry = absl::NotFoundError(absl::StrCat(kind, " \"", name, "\" not found"));
    } else if (!fetched.ok()) {
      entry = absl::UnavailableError(
          absl::StrCat("couldn't get ", kind, " ", namespace_, "/", name, ": ",
                       fetched.status().message()));
    } else {
      const std::string what = absl::StrCat(kind, " ", namespace_, "/", name);
      auto data = DecodeMap(**fetched, "data", secret, what);
      auto binary = secret ? absl::StatusOr<std::map<std::string, std::string>>(
                                 std::map<std::string, std::string>())
                           : DecodeMap(**fetched, "binaryData", true, what);
      if (!data.ok()) {
        entry = data.status();
      } else if (!binary.ok()) {
        entry = binary.status();
      } else {
        entry = ObjectData{*std::move(data), *std::move(binary)};
      }
    }
    it = cache.emplace(name, std::move(entry)).first;
  }
  if (!it->second.ok()) return it->second.status();
  return &*it->second;
}

absl::StatusOr<std::string> FieldRefValue(const PodContext& ctx,
                                          const json& field_ref,
                                          bool for_env) {
  const std::string path = String(field_ref, "fieldPath");
  if (for_env) {
    const auto& host_ips = ctx.options().host_ips;
    const auto& pod_ips = ctx.pod_ips();
    if (path == "spec.nodeName") return String(ctx.spec(), "nodeName");
    if (path == "spec.serviceAccountName") {
      return String(ctx.spec(), "serviceAccountName");
    }
    if (path == "status.hostIP") {
      return host_ips.empty() ? std::string() : host_ips.front();
    }
    if (path == "status.hostIPs") return absl::StrJoin(host_ips, ",");
    if (path == "status.podIP") {
      return pod_ips.empty() ? std::string() : pod_ips.front();
    }
    if (path == "status.podIPs") return absl::StrJoin(pod_ips, ",");
  }
  return MetadataField(ctx, path);
}

const json* FindContainer(const json& spec, std::string_view name) {
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& c : Array(spec, list)) {
      if (String(c, "name") == name) return &c;
    }
  }
  return nullptr;
}

absl::StatusOr<std::string> ResourceFieldRefValue(const PodContext& ctx,
                                                  const json& container,
                                                  const json& ref) {
  auto resource = ParseResourceName(String(ref, "resource"));
  if (!resource.ok()) return resource.status();

  Quantity divisor;
  if (const json* d = Member(ref, "divisor")) {
    auto parsed = ParseQuantityJson(*d);
    if (!parsed.ok()) return parsed.status();
    divisor = *parsed;
  }
  if (divisor.IsZero()) divisor = *Quantity::Parse("1");

  Quantity value;
  const json& section =
      Object(Object(container, "resources"), resource->section);
  if (const json* v = Member(section, resource->name)) {
    auto parsed = ParseQuantityJson(*v);
    if (!parsed.ok()) return parsed.status();
    value = *parsed;
  }
  // An unset or zero limit means "whatever the node has"; hugepages are
  // never overcommitted, so they keep their own limit.
  if (resource->section == "limits" && value.IsZero() &&
      !absl::StartsWith(resource->name, "hugepages-")) {
    auto it = ctx.options().allocatable.find(resource->name);
    if (it != ctx.options().allocatable.end()) {
      auto parsed = Quantity::Parse(it->second);
      if (!parsed.ok()) return parsed.status();
      value = *parsed;
    }
  }

  const bool cpu = resource->kind == ResourceKind::kCpu;
  const int64_t numerator = cpu ? value.MilliValue() : value.Value();
  const int64_t denominator = cpu ? divisor.MilliValue() : divisor.Value();
  if (denominator <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid divisor for ", String(ref, "resource"), ": must be positive"));
  }
  return absl::StrCat(CeilDiv(numerator, denominator));
}

std::string GoQuote(std::string_view text) {
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    char buf[16];
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': out += "\\\""; continue;
        case '\\': out += "\\\\"; continue;
        case '\a': out += "\\a"; continue;
        case '\b': out += "\\b"; continue;
        case '\f': out += "\\f"; continue;
        case '\n': out += "\\n"; continue;
        case '\r': out += "\\r"; continue;
        case '\t': out += "\\t"; continue;
        case '\v': out += "\\v"; continue;
        default: break;
      }
      if (c < 0x20 || c == 0x7f) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
      continue;
    }
    // Multi-byte UTF-8: copy valid sequences, escape stray bytes as Go does.
    const int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    bool valid = len > 0 && c < 0xf5 && i + len <= text.size();
    uint32_t rune = valid ? (c & (0x7f >> len)) : 0;
    for (int k = 1; valid && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      valid = (cc & 0xc0) == 0x80;
      rune = (rune << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMinRune[] = {0, 0, 0x80, 0x800, 0x10000};
    if (valid && (rune < kMinRune[len] || rune > 0x10ffff ||
                  (rune >= 0xd800 && rune <= 0xdfff))) {
      valid = false;
    }
    if (!valid) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    // C1 controls and the Unicode line/paragraph separators are not
    // printable; everything else above them is treated as printable.
    if (rune < 0xa0 || rune == 0xad || rune == 0x2028 || rune == 0x2029) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", rune);
      out += buf;
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  out += "\"";
  return out;
}

}  // namespace vkhost::resolve::internal
