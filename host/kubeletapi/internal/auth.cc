#include "host/kubeletapi/internal/auth.h"

#include <openssl/evp.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"

namespace vkhost::kubeletapi::internal {
namespace {

constexpr char kAnonymousUser[] = "system:anonymous";
constexpr char kUnauthenticatedGroup[] = "system:unauthenticated";
constexpr char kAuthenticatedGroup[] = "system:authenticated";

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

std::vector<std::string> StringList(const nlohmann::json& value) {
  std::vector<std::string> out;
  if (!value.is_array()) return out;
  for (const auto& item : value) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

UserInfo UserFromReview(const nlohmann::json& user) {
  UserInfo info;
  info.name = user.value("username", "");
  info.uid = user.value("uid", "");
  if (user.contains("groups")) info.groups = StringList(user["groups"]);
  if (user.contains("extra") && user["extra"].is_object()) {
    for (const auto& [key, values] : user["extra"].items()) {
      info.extra[key] = StringList(values);
    }
  }
  return info;
}

// Everything a SubjectAccessReview depends on, so a cached answer is only
// reused for the same question.
std::string DecisionKey(const UserInfo& user, const std::string& verb,
                        const std::string& subresource) {
  std::string key = absl::StrCat(user.name, "\n", user.uid, "\n",
                                 absl::StrJoin(user.groups, ","), "\n");
  for (const auto& [k, values] : user.extra) {
    absl::StrAppend(&key, k, "=", absl::StrJoin(values, ","), ";");
  }
  absl::StrAppend(&key, "\n", verb, "\n", subresource);
  return key;
}

}  // namespace

std::string BearerToken(std::string_view header) {
  std::string text(absl::StripAsciiWhitespace(
      absl::string_view(header.data(), header.size())));
  constexpr absl::string_view kScheme = "bearer ";
  if (text.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(text).substr(0, kScheme.size()),
                              kScheme)) {
    return "";
  }
  return std::string(
      absl::StripAsciiWhitespace(absl::string_view(text).substr(kScheme.size())));
}

RequestAuthenticator::RequestAuthenticator(kube::KubeClient* kube,
                                           bool anonymous_auth,
                                           absl::Duration success_ttl,
                                           absl::Duration failure_ttl,
                                           size_t max_entries)
    : kube_(kube),
      anonymous_auth_(anonymous_auth),
      success_ttl_(success_ttl),
      failure_ttl_(failure_ttl),
      cache_(max_entries) {}

absl::StatusOr<UserInfo> RequestAuthenticator::Authenticate(
    const Credentials& credentials) {
  const PeerCertificate& cert = credentials.certificate;
  if (cert.present && cert.verified && !cert.common_name.empty()) {
    UserInfo user;
    user.name = cert.common_name;
    user.groups = cert.organizations;
    user.groups.push_back(kAuthenticatedGroup);
    return user;
  }
  std::string token = BearerToken(credentials.authorization_header);
  if (!token.empty()) return ReviewToken(token);
  if (anonymous_auth_) {
    UserInfo user;
    user.name = kAnonymousUser;
    user.groups = {kUnauthenticatedGroup};
    return user;
  }
  return absl::UnauthenticatedError(
      cert.present ? "client certificate not signed by the client CA (or not "
                     "usable for client authentication), and no bearer token"
                   : "no client certificate or bearer token, and anonymous "
                     "requests are disabled");
}

absl::StatusOr<UserInfo> RequestAuthenticator::ReviewToken(
    const std::string& token) {
  const std::string key = Sha256Hex(token);
  if (std::optional<absl::StatusOr<UserInfo>> hit = cache_.Get(key)) {
    return *std::move(hit);
  }
  if (kube_ == nullptr) {
    return absl::UnauthenticatedError(
        "bearer token given but no API server to review it");
  }
  nlohmann::json review = {
      {"apiVersion", "authentication.k8s.io/v1"},
      {"kind", "TokenReview"},
      {"spec", {{"token", token}}},
  };
  absl::StatusOr<nlohmann::json> answer =
      kube_->Create(kube::Target{kube::kTokenReviews, "", "", ""}, review, {});
  if (!answer.ok()) {
    // Not cached: the API server may be back in a moment.
    VKLOG(WARNING) << "kubelet API: TokenReview failed: " << answer.status();
    return absl::UnauthenticatedError(
        absl::StrCat("TokenReview failed: ", answer.status().message()));
  }
  const nlohmann::json status = answer->value("status", nlohmann::json::object());
  absl::StatusOr<UserInfo> result;
  if (status.value("authenticated", false) && status.contains("user")) {
    result = UserFromReview(status["user"]);
    cache_.Put(key, result, success_ttl_);
  } else {
    std::string why = status.value("error", "");
    result = absl::UnauthenticatedError(absl::StrCat(
        "bearer token rejected by TokenReview", why.empty() ? "" : ": ", why));
    cache_.Put(key, result, failure_ttl_);
  }
  return result;
}

RequestAuthorizer::RequestAuthorizer(kube::KubeClient* kube,
                                     std::string node_name,
                                     absl::Duration allowed_ttl,
                                     absl::Duration denied_ttl,
                                     size_t max_entries)
    : kube_(kube),
      node_name_(std::move(node_name)),
      allowed_ttl_(allowed_ttl),
      denied_ttl_(denied_ttl),
      cache_(max_entries) {}

absl::Status RequestAuthorizer::Authorize(
    const UserInfo& user, const std::string& verb,
    const std::vector<std::string>& subresources) {
  for (const std::string& subresource : subresources) {
    absl::StatusOr<bool> allowed = Review(user, verb, subresource);
    if (!allowed.ok()) {
      return absl::InternalError(absl::StrCat(
          "Authorization error (user=", user.name, ", verb=", verb,
          ", resource=nodes, subresource=", subresource,
          "): ", allowed.status().message()));
    }
    if (*allowed) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("Forbidden (user=", user.name, ", verb=", verb,
                   ", resource=nodes, subresource(s)=[",
                   absl::StrJoin(subresources, " "), "])"));
}

absl::StatusOr<bool> RequestAuthorizer::Review(const UserInfo& user,
                                               const std::string& verb,
                                               const std::string& subresource) {
  const std::string key = DecisionKey(user, verb, subresource);
  if (std::optional<bool> hit = cache_.Get(key)) return *hit;
  if (kube_ == nullptr) {
    return absl::FailedPreconditionError("no API server to ask");
  }
  nlohmann::json spec = {
      {"resourceAttributes",
       {{"namespace", ""},
        {"verb", verb},
        {"group", ""},
        {"version", "v1"},
        {"resource", "nodes"},
        {"subresource", subresource},
        {"name", node_name_}}},
      {"user", user.name},
      {"groups", user.groups},
  };
  if (!user.uid.empty()) spec["uid"] = user.uid;
  if (!user.extra.empty()) spec["extra"] = user.extra;
  nlohmann::json review = {
      {"apiVersion", "authorization.k8s.io/v1"},
      {"kind", "SubjectAccessReview"},
      {"spec", spec},
  };
  absl::StatusOr<nlohmann::json> answer = kube_->Create(
      kube::Target{kube::kSubjectAccessReviews, "", "", ""}, review, {});
  if (!answer.ok()) return answer.status();
  const nlohmann::json status = answer->value("status", nlohmann::json::object());
  const bool allowed = status.value("allowed", false);
  cache_.Put(key, allowed, allowed ? allowed_ttl_ : denied_ttl_);
  return allowed;
}

}  // namespace vkhost::kubeletapi::internal
