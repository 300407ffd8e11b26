#include "host/kube/internal/url.h"
#include "host/kube/internal/string_view.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vkhost::kube::internal {

absl::StatusOr<ServerAddress> ParseServerUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("server URL \"", Sv(url), "\" ", Sv(why)));
  };
  ServerAddress out;
  absl::string_view rest(url.data(), url.size());
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.https = true;
    out.port = 443;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    out.https = false;
    out.port = 80;
  } else {
    return bad("must start with https:// or http://");
  }
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path =
      slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash);
  if (path.find_first_of("?#") != absl::string_view::npos) {
    return bad("must not have a query or fragment");
  }
  if (authority.find('@') != absl::string_view::npos) {
    return bad("must not carry credentials");
  }
  absl::string_view port_text;
  if (absl::ConsumePrefix(&authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return bad("has an unclosed '['");
    out.host = std::string(authority.substr(0, close));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) {
      return bad("has text after the IPv6 address");
    }
    port_text = after;
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("has no host");
  if (!port_text.empty() &&
      (!absl::SimpleAtoi(port_text, &out.port) || out.port <= 0 || out.port > 65535)) {
    return bad("has an invalid port");
  }
  absl::ConsumeSuffix(&path, "/");
  out.base_path = std::string(path);
  const bool ipv6 = out.host.find(':') != std::string::npos;
  out.host_header = absl::StrCat(ipv6 ? "[" : "", out.host, ipv6 ? "]" : "", ":", out.port);
  return out;
}

std::string EncodeQueryComponent(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string BuildQuery(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    absl::StrAppend(&out, out.empty() ? "?" : "&", EncodeQueryComponent(key), "=",
                    EncodeQueryComponent(value));
  }
  return out;
}

std::string ListQuery(const ListOptions& options) {
  return BuildQuery({
      {"labelSelector", options.label_selector},
      {"fieldSelector", options.field_selector},
      {"resourceVersion", options.resource_version},
      {"limit", options.limit > 0 ? absl::StrCat(options.limit) : ""},
      {"continue", options.continue_token},
  });
}

std::string WatchQuery(const WatchOptions& options) {
  return BuildQuery({
      {"watch", "true"},
      {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
      {"resourceVersion", options.resource_version},
      {"timeoutSeconds",
       options.timeout_seconds > 0 ? absl::StrCat(options.timeout_seconds) : ""},
      {"labelSelector", options.label_selector},
      {"fieldSelector", options.field_selector},
  });
}

std::string WriteQuery(const WriteOptions& options, bool apply) {
  return BuildQuery({
      {"fieldManager", options.field_manager},
      {"dryRun", options.dry_run ? "All" : ""},
      {"force", apply && options.force ? "true" : ""},
  });
}

nlohmann::json DeleteOptionsBody(const DeleteOptions& options) {
  nlohmann::json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (options.grace_period_seconds) {
    body["gracePeriodSeconds"] = *options.grace_period_seconds;
  }
  if (!options.precondition_uid.empty()) {
    body["preconditions"]["uid"] = options.precondition_uid;
  }
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
  }
  if (!options.propagation_policy.empty()) {
    body["propagationPolicy"] = options.propagation_policy;
  }
  return body;
}

}  // namespace vkhost::kube::internal
