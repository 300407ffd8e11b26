#include "host/resolve/test_objects.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace vkhost::resolve::testing {

void FakeObjectSource::AddConfigMap(const std::string& ns,
                                    const std::string& name, json data,
                                    json binary_data) {
  json cm = {{"metadata", {{"namespace", ns}, {"name", name}}},
             {"data", std::move(data)}};
  if (!binary_data.is_null()) cm["binaryData"] = std::move(binary_data);
  config_maps_[{ns, name}] = std::make_shared<const json>(std::move(cm));
}

void FakeObjectSource::AddSecret(const std::string& ns, const std::string& name,
                                 const std::map<std::string, std::string>& data) {
  json encoded = json::object();
  for (const auto& [k, v] : data) encoded[k] = absl::Base64Escape(v);
  secrets_[{ns, name}] = std::make_shared<const json>(
      json{{"metadata", {{"namespace", ns}, {"name", name}}},
           {"type", "Opaque"},
           {"data", encoded}});
}

void FakeObjectSource::AddService(const std::string& ns,
                                  const std::string& name,
                                  const std::string& cluster_ip, json ports) {
  services_[{ns, name}] = std::make_shared<const json>(
      json{{"metadata", {{"namespace", ns}, {"name", name}}},
           {"spec", {{"clusterIP", cluster_ip}, {"ports", std::move(ports)}}}});
}

void FakeObjectSource::AddServiceAccount(const std::string& ns,
                                         const std::string& name) {
  service_accounts_[{ns, name}] = true;
}

absl::StatusOr<std::shared_ptr<const json>> FakeObjectSource::ConfigMap(
    const std::string& ns, const std::string& name) {
  if (!failure_.ok()) return failure_;
  auto it = config_maps_.find({ns, name});
  if (it == config_maps_.end()) return absl::NotFoundError("no such configmap");
  return it->second;
}

absl::StatusOr<std::shared_ptr<const json>> FakeObjectSource::Secret(
    const std::string& ns, const std::string& name) {
  if (!failure_.ok()) return failure_;
  auto it = secrets_.find({ns, name});
  if (it == secrets_.end()) return absl::NotFoundError("no such secret");
  return it->second;
}

std::vector<std::shared_ptr<const json>> FakeObjectSource::Services(
    const std::string& ns) {
  std::vector<std::shared_ptr<const json>> out;
  for (const auto& [key, service] : services_) {
    if (key.first == ns) out.push_back(service);
  }
  return out;
}

absl::StatusOr<Token> FakeObjectSource::ServiceAccountToken(
    const TokenRequest& request) {
  token_requests.push_back(request);
  if (!failure_.ok()) return failure_;
  if (!service_accounts_.count({request.namespace_name, request.service_account})) {
    return absl::NotFoundError(absl::StrCat("serviceaccounts \"",
                                            request.service_account,
                                            "\" not found"));
  }
  const int64_t seconds =
      token_seconds_ > 0 ? token_seconds_ : request.expiration_seconds;
  return Token{absl::StrCat("token:", request.service_account, ":",
                            request.audience, ":", request.expiration_seconds),
               now + absl::Seconds(seconds), seconds};
}

json MinimalPod() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "ns", "uid": "uid-1",
                 "labels": {"app": "web"}},
    "spec": {"nodeName": "vnode", "serviceAccountName": "default",
             "restartPolicy": "Always",
             "containers": [{"name": "app", "image": "nginx:1.25"}]},
    "status": {"phase": "Pending"}
  })");
}

ResolveOptions TestOptions() {
  ResolveOptions options;
  options.node_name = "vnode";
  options.host_ips = {"10.1.0.1", "fd00::1"};
  options.allocatable = {
      {"cpu", "4"}, {"memory", "8Gi"}, {"ephemeral-storage", "100Gi"}};
  options.kubernetes_service =
      ServiceAddress{"10.96.0.1", {ServicePort{"https", 443, "TCP"}}};
  return options;
}

std::map<std::string, std::string> EnvOf(const provider::v1::Container& c) {
  std::map<std::string, std::string> env;
  for (const auto& var : c.env()) env[var.name()] = var.value();
  return env;
}

std::map<std::string, std::pair<std::string, int>> FilesOf(
    const provider::v1::Volume& volume) {
  std::map<std::string, std::pair<std::string, int>> files;
  for (const auto& f : volume.files().files()) {
    files[f.path()] = {f.content(), f.mode()};
  }
  return files;
}

}  // namespace vkhost::resolve::testing
