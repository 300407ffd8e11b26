#include "host/app/kube_object_source.h"

#include "absl/time/clock.h"
#include "common/log/log.h"

namespace vkhost::app {
namespace {

using json = nlohmann::json;

absl::StatusOr<std::shared_ptr<const json>> FromCache(informer::Informer& cache,
                                                     const char* kind,
                                                     const std::string& ns,
                                                     const std::string& name) {
  informer::ObjectPtr object = cache.Get(ns, name);
  if (object == nullptr) {
    if (!cache.HasSynced()) {
      return absl::UnavailableError(std::string(kind) + " cache is not synced yet");
    }
    return absl::NotFoundError(std::string(kind) + " \"" + name + "\" not found");
  }
  return object;
}

absl::Time ParseTime(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return absl::Now();
  return t;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const json>> KubeObjectSource::ConfigMap(
    const std::string& namespace_name, const std::string& name) {
  return FromCache(config_maps_, "configmap", namespace_name, name);
}

absl::StatusOr<std::shared_ptr<const json>> KubeObjectSource::Secret(
    const std::string& namespace_name, const std::string& name) {
  return FromCache(secrets_, "secret", namespace_name, name);
}

std::vector<std::shared_ptr<const json>> KubeObjectSource::Services(
    const std::string& namespace_name) {
  std::vector<std::shared_ptr<const json>> out;
  for (const informer::ObjectPtr& s : services_.List()) {
    if ((*s)["metadata"].value("namespace", "") == namespace_name) out.push_back(s);
  }
  return out;
}

absl::StatusOr<resolve::Token> KubeObjectSource::ServiceAccountToken(
    const resolve::TokenRequest& request) {
  TokenKey key{request.namespace_name, request.service_account, request.audience,
               request.expiration_seconds, request.pod_uid};
  absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    // Tokens of pods long gone must not pile up: drop what is past refresh.
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      it = resolve::TokenRefreshTime(it->second) <= now ? tokens_.erase(it) : std::next(it);
    }
    auto found = tokens_.find(key);
    if (found != tokens_.end()) return found->second;
  }
  json spec = {{"expirationSeconds", request.expiration_seconds},
               {"boundObjectRef",
                {{"kind", "Pod"},
                 {"apiVersion", "v1"},
                 {"name", request.pod_name},
                 {"uid", request.pod_uid}}}};
  if (!request.audience.empty()) spec["audiences"] = json::array({request.audience});
  json body = {{"apiVersion", "authentication.k8s.io/v1"},
               {"kind", "TokenRequest"},
               {"spec", spec}};
  auto answer = client_.Create(
      {kube::kServiceAccounts, request.namespace_name, request.service_account, "token"},
      body, {});
  if (!answer.ok()) return answer.status();
  const json& status = (*answer).value("status", json::object());
  resolve::Token token;
  token.token = status.value("token", "");
  token.expiration = ParseTime(status.value("expirationTimestamp", ""));
  token.expiration_seconds =
      (*answer).value("spec", json::object()).value("expirationSeconds", int64_t{0});
  if (token.token.empty()) {
    return absl::UnavailableError("TokenRequest for serviceaccount " +
                                  request.namespace_name + "/" + request.service_account +
                                  " returned no token");
  }
  absl::MutexLock lock(&mu_);
  tokens_[key] = token;
  return token;
}

}  // namespace vkhost::app
