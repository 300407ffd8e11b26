#include "host/kubeletapi/internal/stats.h"

#include <charconv>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/json/kube_time.h"

namespace vkhost::kubeletapi::internal {
namespace {

using nlohmann::json;

std::string FormatTime(const google::protobuf::Timestamp& t) {
  return apijson::KubeTime(absl::FromUnixSeconds(t.seconds()));
}

// Adds "name": value when the proto field is set.
#define VK_PUT_OPTIONAL(out, key, msg, field) \
  if ((msg).has_##field()) (out)[key] = (msg).field()

void PutTime(json& out, const char* key, bool has, const google::protobuf::Timestamp& t) {
  if (has) out[key] = FormatTime(t);
}

json Cpu(const v1::CpuStats& cpu) {
  json out = json::object();
  PutTime(out, "time", cpu.has_time(), cpu.time());
  VK_PUT_OPTIONAL(out, "usageNanoCores", cpu, usage_nano_cores);
  VK_PUT_OPTIONAL(out, "usageCoreNanoSeconds", cpu, usage_core_nano_seconds);
  return out;
}

json Memory(const v1::MemoryStats& m) {
  json out = json::object();
  PutTime(out, "time", m.has_time(), m.time());
  VK_PUT_OPTIONAL(out, "availableBytes", m, available_bytes);
  VK_PUT_OPTIONAL(out, "usageBytes", m, usage_bytes);
  VK_PUT_OPTIONAL(out, "workingSetBytes", m, working_set_bytes);
  VK_PUT_OPTIONAL(out, "rssBytes", m, rss_bytes);
  VK_PUT_OPTIONAL(out, "pageFaults", m, page_faults);
  VK_PUT_OPTIONAL(out, "majorPageFaults", m, major_page_faults);
  return out;
}

json Interface(const v1::InterfaceStats& i) {
  json out = json::object();
  out["name"] = i.name();
  VK_PUT_OPTIONAL(out, "rxBytes", i, rx_bytes);
  VK_PUT_OPTIONAL(out, "rxErrors", i, rx_errors);
  VK_PUT_OPTIONAL(out, "txBytes", i, tx_bytes);
  VK_PUT_OPTIONAL(out, "txErrors", i, tx_errors);
  return out;
}

// The kubelet inlines the default interface (eth0 when there is one) into
// NetworkStats and lists all interfaces under "interfaces".
json Network(const v1::NetworkStats& n) {
  json out = json::object();
  PutTime(out, "time", n.has_time(), n.time());
  if (n.interfaces().empty()) return out;
  const v1::InterfaceStats* primary = &n.interfaces(0);
  for (const v1::InterfaceStats& i : n.interfaces()) {
    if (i.name() == "eth0") primary = &i;
  }
  out.update(Interface(*primary));
  json all = json::array();
  for (const v1::InterfaceStats& i : n.interfaces()) all.push_back(Interface(i));
  out["interfaces"] = std::move(all);
  return out;
}

json Fs(const v1::FsStats& f) {
  json out = json::object();
  PutTime(out, "time", f.has_time(), f.time());
  VK_PUT_OPTIONAL(out, "availableBytes", f, available_bytes);
  VK_PUT_OPTIONAL(out, "capacityBytes", f, capacity_bytes);
  VK_PUT_OPTIONAL(out, "usedBytes", f, used_bytes);
  VK_PUT_OPTIONAL(out, "inodesFree", f, inodes_free);
  VK_PUT_OPTIONAL(out, "inodes", f, inodes);
  VK_PUT_OPTIONAL(out, "inodesUsed", f, inodes_used);
  return out;
}

#undef VK_PUT_OPTIONAL

json Container(const v1::ContainerStats& c) {
  json out = json::object();
  out["name"] = c.name();
  PutTime(out, "startTime", c.has_start_time(), c.start_time());
  if (c.has_cpu()) out["cpu"] = Cpu(c.cpu());
  if (c.has_memory()) out["memory"] = Memory(c.memory());
  if (c.has_rootfs()) out["rootfs"] = Fs(c.rootfs());
  if (c.has_logs()) out["logs"] = Fs(c.logs());
  return out;
}

json Pod(const v1::PodStats& p, const PodUidLookup& uid_of) {
  std::string uid = p.pod().uid();
  if (uid.empty() && uid_of) uid = uid_of(p.pod().namespace_(), p.pod().name());
  json out = json::object();
  out["podRef"] = {{"name", p.pod().name()},
                   {"namespace", p.pod().namespace_()},
                   {"uid", uid}};
  PutTime(out, "startTime", p.has_start_time(), p.start_time());
  json containers = json::array();
  for (const v1::ContainerStats& c : p.containers()) containers.push_back(Container(c));
  out["containers"] = std::move(containers);
  if (p.has_cpu()) out["cpu"] = Cpu(p.cpu());
  if (p.has_memory()) out["memory"] = Memory(p.memory());
  if (p.has_network()) out["network"] = Network(p.network());
  if (!p.volumes().empty()) {
    json volumes = json::array();
    for (const v1::VolumeStats& v : p.volumes()) {
      json volume = Fs(v.fs());  // FsStats is inlined in VolumeStats
      volume["name"] = v.name();
      volumes.push_back(std::move(volume));
    }
    out["volume"] = std::move(volumes);
  }
  if (p.has_ephemeral_storage()) out["ephemeral-storage"] = Fs(p.ephemeral_storage());
  return out;
}

// ---------------------------------------------------------------------------
// Prometheus text

std::string Number(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (ec != std::errc()) return "0";
  return std::string(buffer, end);
}

std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

int64_t Millis(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1000000;
}

struct Sample {
  std::string labels;  // {a="b",...} or ""
  double value = 0;
  std::optional<int64_t> timestamp_ms;
};

struct Family {
  std::string name;
  std::string type;
  std::string help;
  std::vector<Sample> samples;
};

void Write(const Family& family, std::string* out) {
  absl::StrAppend(out, "# HELP ", family.name, " ", family.help, "\n",
                  "# TYPE ", family.name, " ", family.type, "\n");
  for (const Sample& s : family.samples) {
    absl::StrAppend(out, family.name, s.labels, " ", Number(s.value));
    if (s.timestamp_ms) absl::StrAppend(out, " ", *s.timestamp_ms);
    out->push_back('\n');
  }
}

std::string ContainerLabels(const std::string& container, const v1::PodRef& pod) {
  return absl::StrCat("{container=\"", EscapeLabel(container), "\",namespace=\"",
                      EscapeLabel(pod.namespace_()), "\",pod=\"",
                      EscapeLabel(pod.name()), "\"}");
}

std::string PodLabels(const v1::PodRef& pod) {
  return absl::StrCat("{namespace=\"", EscapeLabel(pod.namespace_()), "\",pod=\"",
                      EscapeLabel(pod.name()), "\"}");
}

// metrics-server drops a whole pod when any container reports exactly 0 cpu
// or memory (kubelet-api.md §7.3); a container that exists has used at least
// a nanosecond and a byte, so report that instead of hiding the pod.
uint64_t AtLeastOne(uint64_t v) { return v == 0 ? 1 : v; }

struct ResourceFamilies {
  Family node_cpu{"node_cpu_usage_seconds_total", "counter",
                  "[STABLE] Cumulative cpu time consumed by the node in core-seconds", {}};
  Family node_memory{"node_memory_working_set_bytes", "gauge",
                     "[STABLE] Current working set of the node in bytes", {}};
  Family container_cpu{"container_cpu_usage_seconds_total", "counter",
                       "[STABLE] Cumulative cpu time consumed by the container in core-seconds", {}};
  Family container_memory{"container_memory_working_set_bytes", "gauge",
                          "[STABLE] Current working set of the container in bytes", {}};
  Family container_start{"container_start_time_seconds", "gauge",
                         "[STABLE] Start time of the container since unix epoch in seconds", {}};
  Family pod_cpu{"pod_cpu_usage_seconds_total", "counter",
                 "[STABLE] Cumulative cpu time consumed by the pod in core-seconds", {}};
  Family pod_memory{"pod_memory_working_set_bytes", "gauge",
                    "[STABLE] Current working set of the pod in bytes", {}};
  Family scrape_error{"scrape_error", "gauge",
                      "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise", {}};
  Family resource_scrape_error{"resource_scrape_error", "gauge",
                               "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", {}};
};

void AddNode(const v1::NodeStats& node, ResourceFamilies* f) {
  if (node.cpu().has_usage_core_nano_seconds()) {
    f->node_cpu.samples.push_back(
        {"", node.cpu().usage_core_nano_seconds() / 1e9, Millis(node.cpu().time())});
  }
  if (node.memory().has_working_set_bytes()) {
    f->node_memory.samples.push_back(
        {"", static_cast<double>(node.memory().working_set_bytes()),
         Millis(node.memory().time())});
  }
}

void AddPod(const v1::PodStats& pod, ResourceFamilies* f) {
  for (const v1::ContainerStats& c : pod.containers()) {
    const std::string labels = ContainerLabels(c.name(), pod.pod());
    if (c.cpu().has_usage_core_nano_seconds()) {
      f->container_cpu.samples.push_back(
          {labels, AtLeastOne(c.cpu().usage_core_nano_seconds()) / 1e9,
           Millis(c.cpu().time())});
    }
    if (c.memory().has_working_set_bytes()) {
      f->container_memory.samples.push_back(
          {labels, static_cast<double>(AtLeastOne(c.memory().working_set_bytes())),
           Millis(c.memory().time())});
    }
    if (c.has_start_time() && c.start_time().seconds() > 0) {
      f->container_start.samples.push_back(
          {labels, c.start_time().seconds() + c.start_time().nanos() / 1e9, std::nullopt});
    }
  }
  const std::string labels = PodLabels(pod.pod());
  if (pod.cpu().has_usage_core_nano_seconds()) {
    f->pod_cpu.samples.push_back(
        {labels, pod.cpu().usage_core_nano_seconds() / 1e9, Millis(pod.cpu().time())});
  }
  if (pod.memory().has_working_set_bytes()) {
    f->pod_memory.samples.push_back(
        {labels, static_cast<double>(pod.memory().working_set_bytes()),
         Millis(pod.memory().time())});
  }
}

}  // namespace

nlohmann::json SummaryToJson(const v1::GetStatsSummaryResponse& summary,
                             const std::string& node_name,
                             const PodUidLookup& uid_of) {
  const v1::NodeStats& n = summary.node();
  json node = json::object();
  node["nodeName"] = node_name;
  PutTime(node, "startTime", n.has_start_time(), n.start_time());
  if (n.has_cpu()) node["cpu"] = Cpu(n.cpu());
  if (n.has_memory()) node["memory"] = Memory(n.memory());
  if (n.has_network()) node["network"] = Network(n.network());
  if (n.has_fs()) node["fs"] = Fs(n.fs());
  json pods = json::array();
  for (const v1::PodStats& p : summary.pods()) pods.push_back(Pod(p, uid_of));
  return json{{"node", std::move(node)}, {"pods", std::move(pods)}};
}

std::string ResourceMetricsText(
    const absl::StatusOr<v1::GetStatsSummaryResponse>& summary) {
  ResourceFamilies f;
  const double failed = summary.ok() ? 0 : 1;
  f.scrape_error.samples.push_back({"", failed, std::nullopt});
  f.resource_scrape_error.samples.push_back({"", failed, std::nullopt});
  if (summary.ok()) {
    AddNode(summary->node(), &f);
    for (const v1::PodStats& pod : summary->pods()) AddPod(pod, &f);
  }
  std::string out;
  for (const Family* family :
       {&f.container_cpu, &f.container_memory, &f.container_start, &f.node_cpu,
        &f.node_memory, &f.pod_cpu, &f.pod_memory, &f.resource_scrape_error,
        &f.scrape_error}) {
    if (!family->samples.empty()) Write(*family, &out);
  }
  return out;
}

}  // namespace vkhost::kubeletapi::internal
