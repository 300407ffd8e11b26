// Pure builders of the Node and Lease objects (see node.h).
#include <sys/utsname.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/json/kube_time.h"
#include "common/json/omit_empty.h"
#include "host/node/node.h"

namespace vkhost::node {
namespace {

using json = nlohmann::json;

// The standard node conditions and what the kubelet writes when all is well.
struct ConditionDefault {
  const char* type;
  const char* healthy_status;
  const char* reason;
  const char* message;
};
constexpr ConditionDefault kConditionDefaults[] = {
    {"MemoryPressure", "False", "KubeletHasSufficientMemory",
     "kubelet has sufficient memory available"},
    {"DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
    {"PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
};

constexpr const char* kConditionStatusNames[] = {"Unknown", "True", "False", "Unknown"};

// Label keys a plugin may not set: the host owns the node's identity.
constexpr const char* kHostOwnedLabelPrefixes[] = {"kubernetes.io/", "k8s.io/",
                                                   "beta.kubernetes.io/"};
constexpr const char* kAllowedPluginLabelPrefixes[] = {"topology.kubernetes.io/",
                                                       "node.kubernetes.io/"};

bool HasPrefix(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool PluginMaySet(const std::string& key) {
  for (const char* p : kAllowedPluginLabelPrefixes) {
    if (HasPrefix(key, p)) return true;
  }
  for (const char* p : kHostOwnedLabelPrefixes) {
    if (HasPrefix(key, p) || key.find(std::string(".") + p) != std::string::npos) return false;
  }
  return true;
}

std::string GoArch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

std::string KernelVersion() {
  struct utsname u;
  if (uname(&u) != 0) return "";
  return u.release;
}

std::string Os(const PluginView& plugin) {
  if (plugin.reported && !plugin.reported->system_info().operating_system().empty()) {
    return plugin.reported->system_info().operating_system();
  }
  return "linux";
}

std::string Arch(const PluginView& plugin) {
  if (plugin.reported && !plugin.reported->system_info().architecture().empty()) {
    return plugin.reported->system_info().architecture();
  }
  return GoArch();
}

json Labels(const NodeConfig& config, const PluginView& plugin) {
  json labels = json::object();
  if (plugin.reported) {
    for (const auto& [k, v] : plugin.reported->labels()) {
      if (PluginMaySet(k)) labels[k] = v;
    }
  }
  const std::string os = Os(plugin), arch = Arch(plugin);
  labels["type"] = "virtual-kubelet";
  labels["kubernetes.io/role"] = "agent";
  labels["kubernetes.io/hostname"] = config.name;
  labels["kubernetes.io/os"] = os;
  labels["kubernetes.io/arch"] = arch;
  labels["beta.kubernetes.io/os"] = os;
  labels["beta.kubernetes.io/arch"] = arch;
  labels["node.kubernetes.io/exclude-from-external-load-balancers"] = "true";
  for (const auto& [k, v] : config.labels) labels[k] = v;
  return labels;
}

json ResourceList(const google::protobuf::Map<std::string, std::string>& reported,
                  const std::map<std::string, std::string>& defaults) {
  json out = json::object();
  for (const auto& [k, v] : defaults) out[k] = v;
  for (const auto& [k, v] : reported) out[k] = v;
  return out;
}

json FindCondition(const json& node, const std::string& type) {
  if (!node.is_object() || !node.contains("status")) return nullptr;
  const json& list = node["status"].value("conditions", json::array());
  for (const auto& c : list) {
    if (c.value("type", "") == type) return c;
  }
  return nullptr;
}

json Condition(const std::string& type, const std::string& status,
               const std::string& reason, const std::string& message,
               const json& current_node, absl::Time now) {
  const std::string stamp = apijson::KubeTime(now);
  json old = FindCondition(current_node, type);
  json transition = stamp;
  if (!old.is_null() && old.value("status", "") == status &&
      old.contains("lastTransitionTime")) {
    transition = old["lastTransitionTime"];
  }
  return {{"type", type},
          {"status", status},
          {"reason", reason},
          {"message", message},
          {"lastHeartbeatTime", stamp},
          {"lastTransitionTime", transition}};
}

// Ready reflects the host's view first: a plugin that is down or not ready
// makes the node NotReady whatever it last said.
json ReadyCondition(const PluginView& plugin, const json& current, absl::Time now) {
  if (!plugin.connected) {
    return Condition("Ready", "False", "PluginUnavailable",
                     plugin.name.empty() ? "no provider plugin connected"
                                         : "provider plugin \"" + plugin.name +
                                               "\" is not connected; vkhost is restarting it",
                     current, now);
  }
  if (!plugin.ready) {
    return Condition("Ready", "False", "PluginNotReady",
                     "provider plugin \"" + plugin.name + "\" is not ready: " +
                         plugin.not_ready_message,
                     current, now);
  }
  if (plugin.reported) {
    for (const auto& c : plugin.reported->conditions()) {
      if (c.type() != "Ready" || c.status() == v1::CONDITION_STATUS_TRUE) continue;
      int index = static_cast<int>(c.status());
      return Condition("Ready", kConditionStatusNames[index >= 0 && index < 4 ? index : 0],
                       c.reason().empty() ? "ProviderNotReady" : c.reason(), c.message(),
                       current, now);
    }
  }
  return Condition("Ready", "True", "KubeletReady",
                   "vkhost is posting ready status; provider plugin \"" + plugin.name +
                       "\" is ready",
                   current, now);
}

json Conditions(const PluginView& plugin, const json& current, absl::Time now) {
  json out = json::array();
  for (const auto& d : kConditionDefaults) {
    json c = Condition(d.type, d.healthy_status, d.reason, d.message, current, now);
    out.push_back(c);
  }
  if (plugin.reported) {
    for (const auto& c : plugin.reported->conditions()) {
      if (c.type() == "Ready" || c.type().empty()) continue;
      int index = static_cast<int>(c.status());
      json cond = Condition(c.type(), kConditionStatusNames[index >= 0 && index < 4 ? index : 0],
                            c.reason(), c.message(), current, now);
      bool replaced = false;
      for (auto& existing : out) {
        if (existing["type"] == c.type()) {
          existing = cond;
          replaced = true;
        }
      }
      if (!replaced) out.push_back(cond);
    }
  }
  out.push_back(ReadyCondition(plugin, current, now));
  return out;
}

json Addresses(const NodeConfig& config, const PluginView& plugin) {
  json out = json::array();
  // No Hostname address: the API server prefers it for reaching the kubelet
  // API, and a virtual node's name is not a resolvable host.
  if (!config.internal_ip.empty()) out.push_back({{"type", "InternalIP"}, {"address", config.internal_ip}});
  if (plugin.reported) {
    for (const auto& a : plugin.reported->addresses()) {
      if (a.type() == "InternalIP" || a.type() == "Hostname" || a.address().empty()) continue;
      out.push_back({{"type", a.type()}, {"address", a.address()}});
    }
  }
  return out;
}

json NodeInfo(const NodeConfig& config, const PluginView& plugin) {
  v1::NodeSystemInfo info;
  if (plugin.reported) info = plugin.reported->system_info();
  auto or_default = [](const std::string& v, const std::string& d) { return v.empty() ? d : v; };
  return {{"machineID", info.machine_id()},
          {"systemUUID", info.system_uuid()},
          {"bootID", info.boot_id()},
          {"kernelVersion", or_default(info.kernel_version(), KernelVersion())},
          {"osImage", or_default(info.os_image(), "vkhost virtual node")},
          {"containerRuntimeVersion",
           or_default(info.container_runtime_version(),
                      plugin.name.empty() ? "vkhost://" VKHOST_VERSION
                                          : plugin.name + "://" + plugin.version)},
          {"kubeletVersion", config.kubelet_version},
          {"kubeProxyVersion", ""},
          {"operatingSystem", Os(plugin)},
          {"architecture", Arch(plugin)}};
}

// Removes heartbeat times so two statuses compare on substance.
json WithoutHeartbeats(json status) {
  if (status.is_object() && status.contains("conditions")) {
    for (auto& c : status["conditions"]) c.erase("lastHeartbeatTime");
  }
  return status;
}

}  // namespace


std::vector<Taint> EffectiveTaints(const NodeConfig& config, const std::string& plugin_name) {
  if (config.taints) return *config.taints;
  return {{"virtual-kubelet.io/provider", plugin_name.empty() ? "vkhost" : plugin_name,
           "NoSchedule"}};
}

json BuildNode(const NodeConfig& config, const PluginView& plugin) {
  json taints = json::array();
  for (const Taint& t : EffectiveTaints(config, plugin.name)) {
    json taint = {{"key", t.key}, {"effect", t.effect}};
    if (!t.value.empty()) taint["value"] = t.value;
    taints.push_back(taint);
  }
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", config.name}, {"labels", Labels(config, plugin)}}},
          {"spec", {{"taints", taints}}}};
}

// Node features the API server asks about before it relays a request
// (node.status.declaredFeatures, sorted). ExtendWebSocketsToKubelet: the
// kubelet API takes exec/attach/port-forward over WebSocket as well as SPDY,
// so kube-apiserver passes a client's WebSocket through instead of
// translating it to SPDY.
constexpr const char* kDeclaredFeatures[] = {"ExtendWebSocketsToKubelet"};

json BuildNodeStatus(const NodeConfig& config, const PluginView& plugin,
                     const json& current, absl::Time now) {
  static const google::protobuf::Map<std::string, std::string> kEmpty;
  const auto& capacity_reported = plugin.reported ? plugin.reported->capacity() : kEmpty;
  json capacity = ResourceList(capacity_reported, config.default_capacity);
  json allocatable = capacity;
  if (plugin.reported && !plugin.reported->allocatable().empty()) {
    allocatable = ResourceList(plugin.reported->allocatable(), {});
  }
  return {{"capacity", capacity},
          {"allocatable", allocatable},
          {"conditions", Conditions(plugin, current, now)},
          {"addresses", Addresses(config, plugin)},
          {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", config.kubelet_port}}}}},
          {"nodeInfo", NodeInfo(config, plugin)},
          {"declaredFeatures", kDeclaredFeatures}};
}

bool StatusChanged(const json& current, const json& next) {
  json a = current.is_object() && current.contains("status") ? current["status"] : json();
  json trimmed = json::object();
  json wanted = next;
  for (auto it = next.begin(); it != next.end(); ++it) {
    trimmed[it.key()] = a.is_object() && a.contains(it.key()) ? a[it.key()] : json();
  }
  // An API server older than the field drops it; that is no change to chase
  // every tick.
  if (!(a.is_object() && a.contains("declaredFeatures"))) {
    trimmed.erase("declaredFeatures");
    wanted.erase("declaredFeatures");
  }
  return !vkhost::apijson::EqualOmittingEmpty(WithoutHeartbeats(trimmed),
                                         WithoutHeartbeats(wanted));
}

json BuildLease(const NodeConfig& config, const std::string& node_uid, absl::Time now) {
  json lease = {
      {"apiVersion", "coordination.k8s.io/v1"},
      {"kind", "Lease"},
      {"metadata", {{"name", config.name}, {"namespace", "kube-node-lease"}}},
      {"spec",
       {{"holderIdentity", config.name},
        {"leaseDurationSeconds", absl::ToInt64Seconds(config.lease_duration)},
        {"renewTime", apijson::KubeMicroTime(now)}}}};
  if (!node_uid.empty()) {
    lease["metadata"]["ownerReferences"] = json::array(
        {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", config.name}, {"uid", node_uid}}});
  }
  return lease;
}

}  // namespace vkhost::node
