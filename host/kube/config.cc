// Where a RestConfig comes from: kubeconfig files, the in-cluster service
// account, and the order the operator's flags and environment pick between
// them.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "host/kube/client.h"
#include "host/kube/internal/string_view.h"
#include "host/kube/internal/json_fields.h"
#include "host/kube/internal/read_file.h"
#include "host/kube/internal/token_source.h"
#include "host/kube/internal/yaml_to_json.h"

namespace vkhost::kube {
namespace {

using internal::ObjectField;
using internal::StringField;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Finds {"name": name, <inner>: {...}} in the list config[list] and returns
// the inner object.
absl::StatusOr<const nlohmann::json*> FindNamed(const nlohmann::json& config,
                                                std::string_view list,
                                                std::string_view inner,
                                                const std::string& name,
                                                const std::string& source) {
  auto entries = config.find(list);
  if (entries != config.end() && entries->is_array()) {
    for (const nlohmann::json& entry : *entries) {
      if (StringField(entry, "name") != name) continue;
      if (const nlohmann::json* body = ObjectField(entry, inner)) return body;
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": entry \"", name, "\" of ", internal::Sv(list), " has no ",
          internal::Sv(inner), " object"));
    }
  }
  return absl::NotFoundError(
      absl::StrCat(source, ": no entry named \"", name, "\" in ", internal::Sv(list)));
}

std::string ResolvePath(const std::filesystem::path& base_dir, const std::string& path) {
  if (path.empty()) return path;
  std::filesystem::path p(path);
  return p.is_absolute() ? path : (base_dir / p).lexically_normal().string();
}

// Loads a PEM blob given inline as `<data_key>` (base64, wins like in
// kubectl) or as a file `<file_key>`. Leaves `out` empty when neither is set.
absl::Status LoadPem(const nlohmann::json& section, std::string_view file_key,
                     std::string_view data_key,
                     const std::filesystem::path& base_dir,
                     const std::string& where, std::string* out) {
  if (std::string data = StringField(section, data_key); !data.empty()) {
    if (!absl::Base64Unescape(data, out)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", internal::Sv(data_key), " is not valid base64"));
    }
    return absl::OkStatus();
  }
  if (std::string file = StringField(section, file_key); !file.empty()) {
    absl::StatusOr<std::string> content = internal::ReadSmallFile(ResolvePath(base_dir, file));
    if (!content.ok()) {
      return absl::Status(content.status().code(),
                          absl::StrCat(where, ": ", internal::Sv(file_key), ": ",
                                       content.status().message()));
    }
    *out = *std::move(content);
  }
  return absl::OkStatus();
}

// YAML "true" arrives as a boolean, a quoted "true" as a string.
bool BoolField(const nlohmann::json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return it->is_string() && it->get<std::string>() == "true";
}

absl::Status ApplyCluster(const nlohmann::json& cluster,
                          const std::filesystem::path& base_dir,
                          const std::string& where, RestConfig* config) {
  config->server = StringField(cluster, "server");
  if (config->server.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has no server URL"));
  }
  config->insecure_skip_tls_verify = BoolField(cluster, "insecure-skip-tls-verify");
  config->tls_server_name = StringField(cluster, "tls-server-name");
  return LoadPem(cluster, "certificate-authority", "certificate-authority-data",
                 base_dir, where, &config->ca_pem);
}

absl::Status ApplyUser(const nlohmann::json& user,
                       const std::filesystem::path& base_dir,
                       const std::string& where, RestConfig* config) {
  if (absl::Status s = LoadPem(user, "client-certificate", "client-certificate-data",
                               base_dir, where, &config->client_cert_pem);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = LoadPem(user, "client-key", "client-key-data", base_dir,
                               where, &config->client_key_pem);
      !s.ok()) {
    return s;
  }
  if (config->client_cert_pem.empty() != config->client_key_pem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " has a client certificate or a client key but not both"));
  }
  config->token = StringField(user, "token");
  config->token_file = ResolvePath(base_dir, StringField(user, "tokenFile"));
  const bool has_credentials = !config->client_cert_pem.empty() ||
                               !config->token.empty() || !config->token_file.empty();
  if (has_credentials) return absl::OkStatus();
  for (std::string_view unsupported : {"exec", "auth-provider", "username"}) {
    if (user.contains(unsupported)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " authenticates with \"", internal::Sv(unsupported),
          "\", which vkhost does not support; give it a token, tokenFile or "
          "client certificate (e.g. a ServiceAccount token from `kubectl create token`)"));
    }
  }
  return absl::OkStatus();  // anonymous
}

}  // namespace

absl::StatusOr<RestConfig> LoadKubeconfig(const std::string& path,
                                          const std::string& context) {
  absl::StatusOr<std::string> text = internal::ReadSmallFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("kubeconfig: ", text.status().message()));
  }
  absl::StatusOr<nlohmann::json> doc = internal::YamlToJson(*text);
  if (!doc.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", path, ": ", doc.status().message()));
  }
  if (!doc->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, " is not a mapping"));
  }
  const std::string context_name =
      context.empty() ? StringField(*doc, "current-context") : context;
  if (context_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubeconfig ", path, " has no current-context; name one with --context"));
  }
  const std::string source = absl::StrCat("kubeconfig ", path);
  absl::StatusOr<const nlohmann::json*> ctx =
      FindNamed(*doc, "contexts", "context", context_name, source);
  if (!ctx.ok()) return ctx.status();

  RestConfig config;
  config.source = absl::StrCat(source, " context \"", context_name, "\"");
  const std::filesystem::path base_dir =
      std::filesystem::path(path).parent_path().empty()
          ? std::filesystem::path(".")
          : std::filesystem::path(path).parent_path();

  const std::string cluster_name = StringField(**ctx, "cluster");
  absl::StatusOr<const nlohmann::json*> cluster =
      FindNamed(*doc, "clusters", "cluster", cluster_name, source);
  if (!cluster.ok()) return cluster.status();
  if (absl::Status s = ApplyCluster(**cluster, base_dir,
                                    absl::StrCat(source, " cluster \"", cluster_name, "\""),
                                    &config);
      !s.ok()) {
    return s;
  }
  if (const std::string user_name = StringField(**ctx, "user"); !user_name.empty()) {
    absl::StatusOr<const nlohmann::json*> user =
        FindNamed(*doc, "users", "user", user_name, source);
    if (!user.ok()) return user.status();
    if (absl::Status s = ApplyUser(**user, base_dir,
                                   absl::StrCat(source, " user \"", user_name, "\""),
                                   &config);
        !s.ok()) {
      return s;
    }
  }
  if (std::string ns = StringField(**ctx, "namespace"); !ns.empty()) {
    config.default_namespace = std::move(ns);
  }
  return config;
}

absl::StatusOr<RestConfig> LoadInClusterConfig(const std::string& service_account_dir) {
  const std::string host = Env("KUBERNETES_SERVICE_HOST");
  const std::string port = Env("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and "
        "KUBERNETES_SERVICE_PORT must both be set");
  }
  RestConfig config;
  config.source = absl::StrCat("in-cluster service account ", service_account_dir);
  const bool ipv6 = host.find(':') != std::string::npos;
  config.server = absl::StrCat("https://", ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":", port);

  const std::filesystem::path dir(service_account_dir);
  config.token_file = (dir / "token").string();
  std::string token;
  if (absl::Status s = internal::ReadTokenFile(config.token_file, &token); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(config.source, ": ", s.message()));
  }
  absl::StatusOr<std::string> ca = internal::ReadSmallFile((dir / "ca.crt").string());
  if (!ca.ok()) {
    return absl::Status(ca.status().code(),
                        absl::StrCat(config.source, ": ", ca.status().message()));
  }
  config.ca_pem = *std::move(ca);
  if (absl::StatusOr<std::string> ns = internal::ReadSmallFile((dir / "namespace").string());
      ns.ok() && !absl::StripAsciiWhitespace(*ns).empty()) {
    config.default_namespace = std::string(absl::StripAsciiWhitespace(*ns));
  }
  return config;
}

absl::StatusOr<RestConfig> ResolveRestConfig(const std::string& kubeconfig_flag,
                                             const std::string& context_flag) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig(kubeconfig_flag, context_flag);
  for (absl::string_view entry : absl::StrSplit(Env("KUBECONFIG"), ':', absl::SkipEmpty())) {
    return LoadKubeconfig(std::string(entry), context_flag);
  }
  if (!Env("KUBERNETES_SERVICE_HOST").empty()) return LoadInClusterConfig();
  if (const std::string home = Env("HOME"); !home.empty()) {
    const std::string path = (std::filesystem::path(home) / ".kube" / "config").string();
    std::error_code ignored;
    if (std::filesystem::exists(path, ignored)) return LoadKubeconfig(path, context_flag);
  }
  return absl::FailedPreconditionError(
      "no Kubernetes configuration found: --kubeconfig not given, $KUBECONFIG "
      "empty, not in a cluster ($KUBERNETES_SERVICE_HOST unset), and no "
      "~/.kube/config");
}

}  // namespace vkhost::kube
