// Copies the pod spec into the curated proto: pod-level fields, containers,
// probes and hooks (named ports resolved as the kubelet's prober does).
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "host/resolve/internal/spec.h"

namespace vkhost::resolve::internal {
namespace {

namespace v1 = ::vkhost::provider::v1;

constexpr size_t kMaxHostnameLength = 63;

struct RestartPolicyName {
  const char* name;
  v1::RestartPolicy policy;
};
constexpr RestartPolicyName kRestartPolicies[] = {
    {"Always", v1::RESTART_POLICY_ALWAYS},
    {"OnFailure", v1::RESTART_POLICY_ON_FAILURE},
    {"Never", v1::RESTART_POLICY_NEVER},
};

v1::RestartPolicy RestartPolicyOf(const std::string& name) {
  for (const auto& entry : kRestartPolicies) {
    if (name == entry.name) return entry.policy;
  }
  return v1::RESTART_POLICY_UNSPECIFIED;
}

// The kubelet's hostname for a pod without spec.hostname: its name, cut to
// a DNS label's 63 characters without a trailing '-' or '.'.
std::string Hostname(const json& spec, const std::string& pod_name) {
  std::string hostname = String(spec, "hostname");
  if (!hostname.empty()) return hostname;
  hostname = pod_name;
  if (hostname.size() > kMaxHostnameLength) {
    hostname.resize(kMaxHostnameLength);
    while (!hostname.empty() &&
           (hostname.back() == '-' || hostname.back() == '.')) {
      hostname.pop_back();
    }
  }
  return hostname;
}

std::string QuantityText(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

void CopyResourceMap(const json& resources, std::string_view key,
                     google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [name, value] : Object(resources, key).items()) {
    (*out)[name] = QuantityText(value);
  }
}

// Sets `*field` from an optional JSON member of the matching type.
template <typename T>
void SetIfPresent(const json& obj, std::string_view key,
                  void (T::*setter)(int64_t), T* out) {
  if (auto v = Int(obj, key)) (out->*setter)(*v);
}

void ConvertPodSecurity(const json& sc, v1::PodSecurityContext* out) {
  SetIfPresent(sc, "runAsUser", &v1::PodSecurityContext::set_run_as_user, out);
  SetIfPresent(sc, "runAsGroup", &v1::PodSecurityContext::set_run_as_group, out);
  SetIfPresent(sc, "fsGroup", &v1::PodSecurityContext::set_fs_group, out);
  if (const json* v = Member(sc, "runAsNonRoot"); v && v->is_boolean()) {
    out->set_run_as_non_root(v->get<bool>());
  }
  for (const json& g : Array(sc, "supplementalGroups")) {
    if (g.is_number_integer()) out->add_supplemental_groups(g.get<int64_t>());
  }
}

void ConvertContainerSecurity(const json& sc, v1::SecurityContext* out) {
  SetIfPresent(sc, "runAsUser", &v1::SecurityContext::set_run_as_user, out);
  SetIfPresent(sc, "runAsGroup", &v1::SecurityContext::set_run_as_group, out);
  struct BoolField {
    const char* key;
    void (v1::SecurityContext::*setter)(bool);
  };
  static constexpr BoolField kBools[] = {
      {"runAsNonRoot", &v1::SecurityContext::set_run_as_non_root},
      {"privileged", &v1::SecurityContext::set_privileged},
      {"readOnlyRootFilesystem",
       &v1::SecurityContext::set_read_only_root_filesystem},
      {"allowPrivilegeEscalation",
       &v1::SecurityContext::set_allow_privilege_escalation},
  };
  for (const BoolField& f : kBools) {
    if (const json* v = Member(sc, f.key); v && v->is_boolean()) {
      (out->*f.setter)(v->get<bool>());
    }
  }
}

// Port number of a probe/hook `port` (a number, a container port name, or a
// number written as a string), as the kubelet's ResolveContainerPort.
std::optional<int32_t> ResolvePort(const json* port, const json& container) {
  if (port == nullptr) return std::nullopt;
  int64_t number = -1;
  if (port->is_number_integer()) {
    number = port->get<int64_t>();
  } else if (port->is_string()) {
    const std::string& name = port->get_ref<const std::string&>();
    for (const json& p : Array(container, "ports")) {
      if (String(p, "name") == name) {
        number = Int(p, "containerPort").value_or(-1);
        break;
      }
    }
    int parsed = 0;
    if (number < 0 && absl::SimpleAtoi(name, &parsed)) number = parsed;
  }
  if (number > 0 && number < 65536) return static_cast<int32_t>(number);
  return std::nullopt;
}

class HandlerConverter {
 public:
  HandlerConverter(const json& container, std::string what,
                   std::vector<Warning>* warnings)
      : container_(container), what_(std::move(what)), warnings_(warnings) {}

  int32_t Port(const json& action) {
    const json* port = Member(action, "port");
    if (auto number = ResolvePort(port, container_)) return *number;
    warnings_->push_back(Warning{
        "ProbeWarning",
        absl::StrCat(what_, " port ", port ? port->dump() : "(none)",
                     " is not a port of the container; it will fail"),
        String(container_, "name")});
    return 0;
  }

  void Exec(const json& action, v1::ExecAction* out) {
    for (const json& arg : Array(action, "command")) {
      if (arg.is_string()) out->add_command(arg.get<std::string>());
    }
  }

  void HttpGet(const json& action, v1::HTTPGetAction* out) {
    out->set_path(String(action, "path"));
    out->set_port(Port(action));
    out->set_host(String(action, "host"));
    std::string scheme = String(action, "scheme");
    out->set_scheme(scheme.empty() ? "HTTP" : scheme);
    for (const json& header : Array(action, "httpHeaders")) {
      (*out->mutable_headers())[String(header, "name")] =
          String(header, "value");
    }
  }

  void TcpSocket(const json& action, v1::TCPSocketAction* out) {
    out->set_port(Port(action));
    out->set_host(String(action, "host"));
  }

 private:
  const json& container_;
  std::string what_;
  std::vector<Warning>* warnings_;
};

void ConvertProbe(const json& probe, const json& container, const char* what,
                  std::vector<Warning>* warnings, v1::ContainerProbe* out) {
  HandlerConverter handlers(container, what, warnings);
  if (const json* a = Member(probe, "exec")) {
    handlers.Exec(*a, out->mutable_exec());
  } else if (const json* a = Member(probe, "httpGet")) {
    handlers.HttpGet(*a, out->mutable_http_get());
  } else if (const json* a = Member(probe, "tcpSocket")) {
    handlers.TcpSocket(*a, out->mutable_tcp_socket());
  } else if (const json* a = Member(probe, "grpc")) {
    out->mutable_grpc()->set_port(
        static_cast<int32_t>(Int(*a, "port").value_or(0)));
    out->mutable_grpc()->set_service(String(*a, "service"));
  }
  // The API server's defaults, for pods that reach us without them.
  struct IntField {
    const char* key;
    int32_t fallback;
    void (v1::ContainerProbe::*setter)(int32_t);
  };
  static constexpr IntField kFields[] = {
      {"initialDelaySeconds", 0, &v1::ContainerProbe::set_initial_delay_seconds},
      {"timeoutSeconds", 1, &v1::ContainerProbe::set_timeout_seconds},
      {"periodSeconds", 10, &v1::ContainerProbe::set_period_seconds},
      {"successThreshold", 1, &v1::ContainerProbe::set_success_threshold},
      {"failureThreshold", 3, &v1::ContainerProbe::set_failure_threshold},
  };
  for (const IntField& f : kFields) {
    (out->*f.setter)(
        static_cast<int32_t>(Int(probe, f.key).value_or(f.fallback)));
  }
  if (auto grace = Int(probe, "terminationGracePeriodSeconds")) {
    out->set_termination_grace_period_seconds(*grace);
  }
}

void ConvertHook(const json& hook, const json& container, const char* what,
                 std::vector<Warning>* warnings, v1::LifecycleHandler* out) {
  HandlerConverter handlers(container, what, warnings);
  if (const json* a = Member(hook, "exec")) {
    handlers.Exec(*a, out->mutable_exec());
  } else if (const json* a = Member(hook, "httpGet")) {
    handlers.HttpGet(*a, out->mutable_http_get());
  } else if (const json* a = Member(hook, "tcpSocket")) {
    handlers.TcpSocket(*a, out->mutable_tcp_socket());
  } else if (const json* a = Member(hook, "sleep")) {
    out->mutable_sleep()->set_seconds(Int(*a, "seconds").value_or(0));
  }
}

// subPathExpr expanded with the container's environment; every variable it
// names must have a non-empty value.
absl::StatusOr<std::string> ExpandSubPath(
    const std::string& expr, const std::map<std::string, std::string>& env) {
  std::set<std::string> missing;
  std::string path = Expand(expr, [&](const std::string& name) {
    auto it = env.find(name);
    if (it == env.end() || it->second.empty()) {
      missing.insert(name);
      return std::optional<std::string>(std::string());
    }
    return std::optional<std::string>(it->second);
  });
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subPathExpr \"", expr, "\": missing value for ",
        absl::StrJoin(missing, ", ")));
  }
  return path;
}

// The kubelet's checks on a subPath before it mounts.
absl::Status ValidateSubPath(const std::string& path) {
  if (!path.empty() && path.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("error SubPath `", path, "` must not be an absolute path"));
  }
  for (absl::string_view item : absl::StrSplit(path, '/')) {
    if (item == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unable to provision SubPath `", path, "`: must not contain '..'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ConvertPodFields(const PodContext& ctx, v1::Pod* out) {
  const json& metadata = Object(ctx.pod(), "metadata");
  const json& spec = ctx.spec();
  if (ctx.uid().empty() || ctx.name().empty()) {
    return absl::InvalidArgumentError(
        "not a pod: metadata.name and metadata.uid are required");
  }
  out->set_uid(ctx.uid());
  out->set_namespace_(ctx.namespace_name());
  out->set_name(ctx.name());
  for (const auto& [k, v] : StringMap(metadata, "labels")) {
    (*out->mutable_labels())[k] = v;
  }
  for (const auto& [k, v] : StringMap(metadata, "annotations")) {
    (*out->mutable_annotations())[k] = v;
  }
  out->set_node_name(String(spec, "nodeName"));
  out->set_restart_policy(RestartPolicyOf(String(spec, "restartPolicy")));
  if (auto v = Int(spec, "terminationGracePeriodSeconds")) {
    out->set_termination_grace_period_seconds(*v);
  }
  if (auto v = Int(spec, "activeDeadlineSeconds")) {
    out->set_active_deadline_seconds(*v);
  }
  out->set_hostname(Hostname(spec, ctx.name()));
  out->set_subdomain(String(spec, "subdomain"));
  out->set_host_network(Bool(spec, "hostNetwork", false));
  out->set_service_account_name(String(spec, "serviceAccountName"));
  ConvertPodSecurity(Object(spec, "securityContext"),
                     out->mutable_security_context());
  out->set_pod_json(
      ctx.pod().dump(-1, ' ', false, json::error_handler_t::replace));

  absl::Time created;
  std::string error;
  const std::string stamp = String(metadata, "creationTimestamp");
  if (!stamp.empty() &&
      absl::ParseTime(absl::RFC3339_full, stamp, &created, &error)) {
    const int64_t seconds = absl::ToUnixSeconds(created);
    out->mutable_creation_time()->set_seconds(seconds);
    out->mutable_creation_time()->set_nanos(static_cast<int32_t>(
        absl::ToInt64Nanoseconds(created - absl::FromUnixSeconds(seconds))));
  }
  const auto& host_ips = ctx.options().host_ips;
  out->set_host_ip(host_ips.empty() ? "" : host_ips.front());
  return absl::OkStatus();
}

absl::StatusOr<v1::Container> ConvertContainer(const json& c,
                                               const EnvList& env,
                                               bool init_container,
                                               std::vector<Warning>* warnings) {
  v1::Container out;
  out.set_name(String(c, "name"));
  out.set_image(String(c, "image"));
  out.set_image_pull_policy(String(c, "imagePullPolicy"));
  const std::map<std::string, std::string> env_map(env.begin(), env.end());
  auto lookup = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env_map.find(name);
    if (it == env_map.end()) return std::nullopt;
    return it->second;
  };
  for (const json& arg : Array(c, "command")) {
    if (arg.is_string()) out.add_command(Expand(arg.get<std::string>(), lookup));
  }
  for (const json& arg : Array(c, "args")) {
    if (arg.is_string()) out.add_args(Expand(arg.get<std::string>(), lookup));
  }
  out.set_working_dir(String(c, "workingDir"));
  for (const auto& [name, value] : env) {
    v1::EnvVar* var = out.add_env();
    var->set_name(name);
    var->set_value(value);
  }
  for (const json& p : Array(c, "ports")) {
    v1::ContainerPort* port = out.add_ports();
    port->set_name(String(p, "name"));
    port->set_container_port(
        static_cast<int32_t>(Int(p, "containerPort").value_or(0)));
    const std::string protocol = String(p, "protocol");
    port->set_protocol(protocol.empty() ? "TCP" : protocol);
    port->set_host_port(static_cast<int32_t>(Int(p, "hostPort").value_or(0)));
    port->set_host_ip(String(p, "hostIP"));
  }
  const json& resources = Object(c, "resources");
  CopyResourceMap(resources, "requests",
                  out.mutable_resources()->mutable_requests());
  CopyResourceMap(resources, "limits", out.mutable_resources()->mutable_limits());
  for (const json& m : Array(c, "volumeMounts")) {
    v1::VolumeMount* mount = out.add_volume_mounts();
    mount->set_name(String(m, "name"));
    mount->set_mount_path(String(m, "mountPath"));
    mount->set_read_only(Bool(m, "readOnly", false));
    std::string sub_path = String(m, "subPath");
    const std::string expr = String(m, "subPathExpr");
    if (!expr.empty()) {
      auto expanded = ExpandSubPath(expr, env_map);
      if (!expanded.ok()) return expanded.status();
      sub_path = *std::move(expanded);
    }
    absl::Status valid = ValidateSubPath(sub_path);
    if (!valid.ok()) return valid;
    mount->set_sub_path(sub_path);
  }
  struct ProbeField {
    const char* key;
    const char* what;
    v1::ContainerProbe* (v1::Container::*mutable_probe)();
  };
  static constexpr ProbeField kProbes[] = {
      {"livenessProbe", "Liveness probe", &v1::Container::mutable_liveness_probe},
      {"readinessProbe", "Readiness probe",
       &v1::Container::mutable_readiness_probe},
      {"startupProbe", "Startup probe", &v1::Container::mutable_startup_probe},
  };
  for (const ProbeField& f : kProbes) {
    if (const json* probe = Member(c, f.key)) {
      ConvertProbe(*probe, c, f.what, warnings, (out.*f.mutable_probe)());
    }
  }
  const json& lifecycle = Object(c, "lifecycle");
  if (const json* hook = Member(lifecycle, "postStart")) {
    ConvertHook(*hook, c, "PostStart hook", warnings, out.mutable_post_start());
  }
  if (const json* hook = Member(lifecycle, "preStop")) {
    ConvertHook(*hook, c, "PreStop hook", warnings, out.mutable_pre_stop());
  }
  out.set_stdin(Bool(c, "stdin", false));
  out.set_stdin_once(Bool(c, "stdinOnce", false));
  out.set_tty(Bool(c, "tty", false));
  out.set_termination_message_path(String(c, "terminationMessagePath"));
  out.set_termination_message_policy(String(c, "terminationMessagePolicy"));
  if (const json* sc = Member(c, "securityContext")) {
    ConvertContainerSecurity(*sc, out.mutable_security_context());
  }
  if (init_container) {
    out.set_restart_policy(RestartPolicyOf(String(c, "restartPolicy")));
  }
  return out;
}

}  // namespace vkhost::resolve::internal
