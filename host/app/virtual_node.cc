#include "host/app/virtual_node.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <atomic>

#include "common/log/log.h"
#include "host/app/kube_object_source.h"
#include "host/events/events.h"
#include "host/informer/informer.h"
#include "host/kubeletapi/kubelet_api.h"
#include "host/node/node.h"
#include "host/pods/pods.h"
#include "host/streambridge/stream_bridge.h"

namespace vkhost::app {
namespace {

using json = nlohmann::json;

std::unique_ptr<informer::Informer> NewInformer(kube::KubeClient& client,
                                                const kube::Resource& resource,
                                                const std::string& field_selector = "") {
  informer::InformerOptions options;
  options.target.resource = resource;
  options.field_selector = field_selector;
  return std::make_unique<informer::Informer>(&client, std::move(options));
}

// The `kubernetes` Service every container's KUBERNETES_SERVICE_* comes from.
std::optional<resolve::ServiceAddress> MasterService(informer::Informer& services) {
  informer::ObjectPtr svc = services.Get("default", "kubernetes");
  if (svc == nullptr) return std::nullopt;
  const json& spec = svc->value("spec", json::object());
  resolve::ServiceAddress address;
  address.cluster_ip = spec.value("clusterIP", "");
  for (const json& p : spec.value("ports", json::array())) {
    address.ports.push_back(
        {p.value("name", ""), p.value("port", 0), p.value("protocol", "TCP")});
  }
  return address;
}

}  // namespace

struct VirtualNode::State {
  State(VirtualNodeSettings s, kube::KubeClient& c, kube::KubeClient& e,
        plugin::PluginSupervisor& p)
      : settings(std::move(s)), client(c), event_client(e), supervisor(p), plugin_client(p) {}

  const VirtualNodeSettings settings;
  kube::KubeClient& client;
  kube::KubeClient& event_client;
  plugin::PluginSupervisor& supervisor;
  plugin::PluginClient plugin_client;

  std::unique_ptr<informer::Informer> config_maps;
  std::unique_ptr<informer::Informer> secrets;
  std::unique_ptr<informer::Informer> services;
  std::unique_ptr<informer::Informer> pods;
  std::unique_ptr<KubeObjectSource> objects;
  std::unique_ptr<events::EventRecorder> recorder;
  std::unique_ptr<node::NodeController> node;
  std::unique_ptr<pods::PodController> pod_controller;
  std::unique_ptr<streambridge::StreamBridge> stream_bridge;  // exec, attach
  std::unique_ptr<kubeletapi::KubeletServer> kubelet;
  // Set once the pod controller exists; read by informer handlers.
  std::atomic<pods::PodController*> notify{nullptr};
  bool stopped = false;

  absl::Status SyncCaches();
  absl::Status ServeKubeletApi();
};

absl::Status VirtualNode::State::ServeKubeletApi() {
  kubeletapi::KubeletServerOptions options;
  options.node_name = settings.node_name;
  options.port = static_cast<uint16_t>(settings.kubelet_port);
  options.node_ips = {settings.node_ip};
  options.tls_cert_file = settings.tls_cert_file;
  options.tls_private_key_file = settings.tls_private_key_file;
  options.client_ca_file = settings.client_ca_file;
  options.anonymous_auth = settings.anonymous_auth;
  options.streaming_connection_idle_timeout = settings.streaming_connection_idle_timeout;
  stream_bridge = std::make_unique<streambridge::StreamBridge>(plugin_client);
  kubelet = std::make_unique<kubeletapi::KubeletServer>(
      options, kubeletapi::KubeletServerDependencies{.kube = &client,
                                                     .pods = pods.get(),
                                                     .plugin = &plugin_client,
                                                     .upgrades = stream_bridge.get()});
  if (absl::Status s = kubelet->Start(); !s.ok()) {
    return absl::Status(s.code(), "serving the kubelet API on port " +
                                      std::to_string(settings.kubelet_port) + ": " +
                                      std::string(s.message()));
  }
  VKLOG(INFO) << "kubelet API listening on port " << kubelet->port()
              << (settings.client_ca_file.empty()
                      ? " (no --client-ca-file: client certificates are not checked)"
                      : "");
  return absl::OkStatus();
}

absl::Status VirtualNode::State::SyncCaches() {
  config_maps = NewInformer(client, kube::kConfigMaps);
  secrets = NewInformer(client, kube::kSecrets);
  services = NewInformer(client, kube::kServices);
  // A missing ConfigMap or Secret that appears lets waiting pods start now,
  // not at their next retry.
  auto changed = [this](const informer::ObjectPtr& object) {
    if (pods::PodController* p = notify.load()) {
      p->NotifyObjectsChanged((*object)["metadata"].value("namespace", ""));
    }
  };
  for (informer::Informer* cache : {config_maps.get(), secrets.get()}) {
    cache->AddHandlers({changed, [changed](const informer::ObjectPtr&,
                                           const informer::ObjectPtr& now) { changed(now); },
                        nullptr});
    cache->Start();
  }
  services->Start();
  for (informer::Informer* cache : {config_maps.get(), secrets.get(), services.get()}) {
    if (!cache->WaitForSync(settings.cache_sync_timeout)) {
      return absl::DeadlineExceededError(
          "the ConfigMap, Secret and Service caches did not sync within " +
          absl::FormatDuration(settings.cache_sync_timeout) +
          "; check that vkhost's credentials may list and watch them cluster-wide");
    }
  }
  return absl::OkStatus();
}

VirtualNode::VirtualNode(VirtualNodeSettings settings, kube::KubeClient& client,
                         kube::KubeClient& event_client, plugin::PluginSupervisor& supervisor)
    : state_(std::make_unique<State>(std::move(settings), client, event_client, supervisor)) {}

VirtualNode::~VirtualNode() { Stop(); }

absl::Status VirtualNode::Start() {
  State& s = *state_;
  if (absl::Status synced = s.SyncCaches(); !synced.ok()) return synced;
  s.objects = std::make_unique<KubeObjectSource>(s.client, *s.config_maps, *s.secrets,
                                                 *s.services);
  s.recorder = std::make_unique<events::EventRecorder>(
      s.event_client, events::EventRecorder::Options{.component = "vkhost",
                                               .host = s.settings.node_name});

  node::NodeConfig node_config;
  node_config.name = s.settings.node_name;
  node_config.internal_ip = s.settings.node_ip;
  node_config.kubelet_port = s.settings.kubelet_port;
  node_config.labels = s.settings.node_labels;
  s.node = std::make_unique<node::NodeController>(node_config, s.client, s.supervisor);
  if (absl::Status registered = s.node->Start(); !registered.ok()) return registered;
  VKLOG(INFO) << "node " << s.settings.node_name << " registered (InternalIP "
              << s.settings.node_ip << ", kubelet port " << s.settings.kubelet_port << ")";

  pods::PodControllerOptions options;
  options.workers = s.settings.pod_workers;
  options.resolve.node_name = s.settings.node_name;
  options.resolve.host_ips = {s.settings.node_ip};
  options.resolve.allocatable = node_config.default_capacity;
  options.resolve.kubernetes_service = MasterService(*s.services);
  s.pods = NewInformer(s.client, kube::kPods, "spec.nodeName=" + s.settings.node_name);
  s.pod_controller = std::make_unique<pods::PodController>(
      options, s.client, *s.pods, s.supervisor, *s.objects, *s.recorder);
  s.notify.store(s.pod_controller.get());
  s.supervisor.AddConnectListener(
      [node = s.node.get()](const plugin::PluginIdentity&, uint64_t) { node->Poke(); });
  s.pods->Start();
  s.pod_controller->Start();
  return s.ServeKubeletApi();
}

void VirtualNode::Stop() {
  State& s = *state_;
  if (s.stopped) return;
  s.stopped = true;
  s.notify.store(nullptr);
  if (s.kubelet) s.kubelet->Stop();
  if (s.pod_controller) s.pod_controller->Stop();
  if (s.pods) s.pods->Stop();
  if (s.node) s.node->Stop();
  if (s.recorder) s.recorder->Stop();
  for (auto* cache : {s.config_maps.get(), s.secrets.get(), s.services.get()}) {
    if (cache) cache->Stop();
  }
}

std::string DetectNodeIp() {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "127.0.0.1";
  std::string found;
  for (struct ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET_ADDRSTRLEN] = {};
    auto* in = reinterpret_cast<struct sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) found = text;
  }
  freeifaddrs(list);
  return found.empty() ? "127.0.0.1" : found;
}

}  // namespace vkhost::app
