// Container environments, built as the kubelet's makeEnvironmentVariables
// builds them, with the service-link variables of pkg/kubelet/envvars.
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "host/resolve/internal/env.h"

namespace vkhost::resolve::internal {
namespace {

// Environment being built: each name once, at its first position.
class OrderedEnv {
 public:
  void Set(const std::string& name, std::string value) {
    auto [it, inserted] = index_.try_emplace(name, vars_.size());
    if (inserted) {
      vars_.emplace_back(name, std::move(value));
    } else {
      vars_[it->second].second = std::move(value);
    }
  }
  std::optional<std::string> Get(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) return std::nullopt;
    return vars_[it->second].second;
  }
  EnvList Take() { return std::move(vars_); }

 private:
  EnvList vars_;
  absl::flat_hash_map<std::string, size_t> index_;
};

std::string VariableName(absl::string_view service_or_port_name) {
  return absl::AsciiStrToUpper(
      absl::StrReplaceAll(service_or_port_name, {{"-", "_"}}));
}

std::string JoinHostPort(const std::string& host, int32_t port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

ServiceAddress AddressOf(const json& service) {
  const json& spec = Object(service, "spec");
  ServiceAddress address;
  address.cluster_ip = String(spec, "clusterIP");
  for (const json& p : Array(spec, "ports")) {
    address.ports.push_back(ServicePort{
        String(p, "name"), static_cast<int32_t>(Int(p, "port").value_or(0)),
        String(p, "protocol")});
  }
  return address;
}

// A missing object or key the pod needs: the pod waits for it.
absl::Status Required(const absl::Status& status) {
  if (absl::IsNotFound(status)) {
    return absl::FailedPreconditionError(status.message());
  }
  return status;
}

struct EnvSourceKind {
  const char* field;    // "configMapRef" / "configMapKeyRef"
  const char* word;     // as the kubelet's messages name the kind
  bool secret;
};

constexpr EnvSourceKind kEnvFromKinds[] = {{"configMapRef", "configMap", false},
                                           {"secretRef", "secret", true}};
constexpr EnvSourceKind kKeyRefKinds[] = {{"configMapKeyRef", "ConfigMap", false},
                                          {"secretKeyRef", "Secret", true}};

absl::StatusOr<const ObjectData*> FetchData(PodContext& ctx,
                                            const EnvSourceKind& kind,
                                            const std::string& name) {
  return kind.secret ? ctx.Secret(name) : ctx.ConfigMap(name);
}

absl::Status AddEnvFrom(PodContext& ctx, const json& container,
                        const json& env_from, OrderedEnv& env,
                        std::vector<Warning>* warnings) {
  const std::string prefix = String(env_from, "prefix");
  for (const EnvSourceKind& kind : kEnvFromKinds) {
    const json* ref = Member(env_from, kind.field);
    if (ref == nullptr) continue;
    const std::string name = String(*ref, "name");
    auto data = FetchData(ctx, kind, name);
    if (absl::IsNotFound(data.status()) && Bool(*ref, "optional", false)) {
      continue;
    }
    if (!data.ok()) return Required(data.status());
    std::vector<std::string> invalid;
    for (const auto& [key, value] : (*data)->data) {
      std::string var = prefix + key;
      if (!IsEnvVarName(var)) {
        invalid.push_back(std::move(var));
        continue;
      }
      env.Set(var, value);
    }
    if (!invalid.empty()) {
      std::sort(invalid.begin(), invalid.end());
      warnings->push_back(Warning{
          "InvalidEnvironmentVariableNames",
          absl::StrCat("Keys [", absl::StrJoin(invalid, ", "),
                       "] from the EnvFrom ", kind.word, " ",
                       ctx.namespace_name(), "/", name,
                       " were skipped since they are considered invalid "
                       "environment variable names."),
          String(container, "name")});
    }
  }
  return absl::OkStatus();
}

// The value of env[].valueFrom, or nullopt when an optional reference is
// missing (the variable is then not set at all).
absl::StatusOr<std::optional<std::string>> ValueFrom(PodContext& ctx,
                                                     const json& container,
                                                     const json& value_from) {
  if (const json* ref = Member(value_from, "fieldRef")) {
    return FieldRefValue(ctx, *ref, /*for_env=*/true);
  }
  if (const json* ref = Member(value_from, "resourceFieldRef")) {
    // Usually the container itself; may name another one of the pod.
    const std::string other = String(*ref, "containerName");
    const json* target =
        other.empty() ? &container : FindContainer(ctx.spec(), other);
    if (target == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "resourceFieldRef: container \"", other, "\" not found in the pod"));
    }
    return ResourceFieldRefValue(ctx, *target, *ref);
  }
  for (const EnvSourceKind& kind : kKeyRefKinds) {
    const json* ref = Member(value_from, kind.field);
    if (ref == nullptr) continue;
    const std::string name = String(*ref, "name");
    const std::string key = String(*ref, "key");
    const bool optional = Bool(*ref, "optional", false);
    auto data = FetchData(ctx, kind, name);
    if (absl::IsNotFound(data.status()) && optional) return std::nullopt;
    if (!data.ok()) return Required(data.status());
    auto it = (*data)->data.find(key);
    if (it != (*data)->data.end()) return it->second;
    if (optional) return std::nullopt;
    return absl::FailedPreconditionError(
        absl::StrCat("couldn't find key ", key, " in ", kind.word, " ",
                     ctx.namespace_name(), "/", name));
  }
  return absl::InvalidArgumentError(
      "env valueFrom has no source vkhost supports (fieldRef, "
      "resourceFieldRef, configMapKeyRef, secretKeyRef)");
}

}  // namespace

EnvList ServiceLinkVariables(
    const std::vector<std::pair<std::string, ServiceAddress>>& services) {
  EnvList out;
  for (const auto& [service_name, address] : services) {
    if (address.cluster_ip.empty() || address.cluster_ip == "None" ||
        address.ports.empty()) {
      continue;
    }
    const std::string prefix = VariableName(service_name);
    out.emplace_back(prefix + "_SERVICE_HOST", address.cluster_ip);
    out.emplace_back(prefix + "_SERVICE_PORT",
                     absl::StrCat(address.ports.front().port));
    for (const ServicePort& port : address.ports) {
      if (port.name.empty()) continue;
      out.emplace_back(prefix + "_SERVICE_PORT_" + VariableName(port.name),
                       absl::StrCat(port.port));
    }
    // Docker-link style variables.
    for (size_t i = 0; i < address.ports.size(); ++i) {
      const ServicePort& port = address.ports[i];
      const std::string protocol =
          port.protocol.empty() ? "TCP" : port.protocol;
      const std::string lower = absl::AsciiStrToLower(protocol);
      const std::string url = absl::StrCat(
          lower, "://", JoinHostPort(address.cluster_ip, port.port));
      if (i == 0) out.emplace_back(prefix + "_PORT", url);
      const std::string port_prefix = absl::StrCat(
          prefix, "_PORT_", port.port, "_", absl::AsciiStrToUpper(protocol));
      out.emplace_back(port_prefix, url);
      out.emplace_back(port_prefix + "_PROTO", lower);
      out.emplace_back(port_prefix + "_PORT", absl::StrCat(port.port));
      out.emplace_back(port_prefix + "_ADDR", address.cluster_ip);
    }
  }
  return out;
}

std::map<std::string, std::string> PodServiceEnvironment(PodContext& ctx) {
  const auto& master = ctx.options().kubernetes_service;
  std::map<std::string, ServiceAddress> by_name;
  if (master.has_value()) by_name["kubernetes"] = *master;
  if (Bool(ctx.spec(), "enableServiceLinks", true)) {
    for (const auto& service : ctx.source().Services(ctx.namespace_name())) {
      if (service == nullptr) continue;
      const std::string name = String(Object(*service, "metadata"), "name");
      if (name.empty()) continue;
      if (master.has_value() && name == "kubernetes" &&
          ctx.namespace_name() == "default") {
        continue;
      }
      by_name[name] = AddressOf(*service);
    }
  }
  const std::vector<std::pair<std::string, ServiceAddress>> list(
      by_name.begin(), by_name.end());
  std::map<std::string, std::string> out;
  for (auto& [name, value] : ServiceLinkVariables(list)) out[name] = value;
  return out;
}

absl::StatusOr<EnvList> ContainerEnvironment(
    PodContext& ctx, const json& container,
    const std::map<std::string, std::string>& service_env,
    std::vector<Warning>* warnings) {
  OrderedEnv env;
  for (const json& env_from : Array(container, "envFrom")) {
    absl::Status status = AddEnvFrom(ctx, container, env_from, env, warnings);
    if (!status.ok()) return status;
  }
  // Values see the variables declared before them, then the service ones.
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (auto v = env.Get(name)) return v;
    auto it = service_env.find(name);
    if (it != service_env.end()) return it->second;
    return std::nullopt;
  };
  for (const json& var : Array(container, "env")) {
    const std::string name = String(var, "name");
    std::string value = String(var, "value");
    if (!value.empty()) {
      value = Expand(value, lookup);
    } else if (const json* value_from = Member(var, "valueFrom")) {
      auto resolved = ValueFrom(ctx, container, *value_from);
      if (!resolved.ok()) return resolved.status();
      if (!resolved->has_value()) continue;
      value = **std::move(resolved);
    }
    env.Set(name, std::move(value));
  }
  for (const auto& [name, value] : service_env) {
    if (!env.Get(name).has_value()) env.Set(name, value);
  }
  return env.Take();
}

std::string Expand(
    std::string_view input,
    const std::function<std::optional<std::string>(const std::string&)>&
        lookup) {
  std::string out;
  size_t checkpoint = 0;
  for (size_t cursor = 0; cursor < input.size(); ++cursor) {
    if (input[cursor] != '$' || cursor + 1 >= input.size()) continue;
    out.append(input.substr(checkpoint, cursor - checkpoint));
    const char next = input[cursor + 1];
    size_t advance = 1;
    if (next == '$') {
      out += '$';  // "$$" is an escaped "$".
    } else if (next == '(') {
      const size_t close = input.find(')', cursor + 2);
      if (close == std::string_view::npos) {
        out += "$(";  // Unterminated: kept as written.
      } else {
        const std::string name(input.substr(cursor + 2, close - cursor - 2));
        std::optional<std::string> value = lookup(name);
        out += value.has_value() ? *value : absl::StrCat("$(", name, ")");
        advance = close - cursor;
      }
    } else {
      out += '$';
      out += next;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  if (checkpoint < input.size()) out.append(input.substr(checkpoint));
  return out;
}

bool IsEnvVarName(absl::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c >= 0x20 && c <= 0x7e && c != '=';
  });
}

}  // namespace vkhost::resolve::internal
