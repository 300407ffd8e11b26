// NodeController: registration, Lease renewal, status reports, recreation.
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "host/node/node.h"
#include "host/plugin/plugin.h"

namespace vkhost::node {
namespace {

using json = nlohmann::json;

constexpr char kLeaseNamespace[] = "kube-node-lease";
constexpr absl::Duration kWatchRetry = absl::Seconds(2);

kube::Target NodeTarget(const std::string& name, const std::string& sub = "") {
  return kube::Target{kube::kNodes, "", name, sub};
}

kube::Target LeaseTarget(const std::string& name) {
  return kube::Target{kube::kLeases, kLeaseNamespace, name, ""};
}

// Our taints replace any with the same key and effect; taints others put on
// the node (unreachable, cordon) stay.
json MergeTaints(const json& existing, const json& ours) {
  json out = json::array();
  if (existing.is_array()) {
    for (const auto& t : existing) {
      bool replaced = false;
      for (const auto& o : ours) {
        replaced |= t.value("key", "") == o.value("key", "") &&
                    t.value("effect", "") == o.value("effect", "");
      }
      if (!replaced) out.push_back(t);
    }
  }
  for (const auto& o : ours) out.push_back(o);
  return out;
}

}  // namespace

struct NodeController::State {
  State(NodeConfig c, kube::KubeClient& k, plugin::PluginSupervisor& s)
      : config(std::move(c)), client(k), supervisor(s), plugin_client(s) {}

  const NodeConfig config;
  kube::KubeClient& client;
  plugin::PluginSupervisor& supervisor;
  plugin::PluginClient plugin_client;

  mutable absl::Mutex mu;
  std::string node_uid ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool poked ABSL_GUARDED_BY(mu) = false;
  std::optional<v1::NodeStatus> watched ABSL_GUARDED_BY(mu);
  // The WatchNode call in flight, so Stop can cancel it.
  grpc::ClientContext* watch_context ABSL_GUARDED_BY(mu) = nullptr;
  absl::Time last_status_patch = absl::InfinitePast();  // loop thread only

  std::thread loop;
  std::thread watcher;

  PluginView CurrentPluginView();
  absl::Status Register();
  absl::StatusOr<json> EnsureNode(const PluginView& view);
  absl::Status RenewLease();
  absl::Status ReportStatus(const json& current, const PluginView& view, bool force);
  void Tick();
  void Loop();
  void WatchLoop();
  bool WaitForStop(absl::Duration d);
};

PluginView NodeController::State::CurrentPluginView() {
  PluginView view;
  auto conn = supervisor.Current();
  if (!conn.ok()) return view;
  const plugin::PluginIdentity& id = (*conn)->identity();
  view.name = id.name;
  view.version = id.version;
  view.connected = true;
  // The supervisor probes every connection; ask the plugin only until it has.
  std::optional<absl::StatusOr<v1::ProbeResponse>> last = supervisor.LastProbe();
  absl::StatusOr<v1::ProbeResponse> probe = last ? *std::move(last) : plugin_client.Probe();
  if (!probe.ok()) {
    view.not_ready_message = std::string(probe.status().message());
  } else {
    view.ready = probe->ready();
    view.not_ready_message = probe->message();
  }
  if (id.Has(v1::CAPABILITY_WATCH_NODE)) {
    absl::MutexLock lock(&mu);
    view.reported = watched;
  } else if (id.Has(v1::CAPABILITY_NODE_INFO)) {
    auto node = plugin_client.GetNode(config.name);
    if (node.ok()) {
      view.reported = *node;
    } else {
      VKLOG(WARNING) << "plugin GetNode failed, keeping defaults: " << node.status();
    }
  }
  return view;
}

// Creates the Node or adopts an existing one, making our labels and taints
// hold either way. Returns the Node as stored.
absl::StatusOr<json> NodeController::State::EnsureNode(const PluginView& view) {
  json desired = BuildNode(config, view);
  auto created = client.Create(NodeTarget(""), desired, {});
  if (created.ok()) {
    VKLOG(INFO) << "registered node " << config.name;
    return created;
  }
  if (!absl::IsAlreadyExists(created.status())) return created.status();
  return kube::UpdateWithRetry(client, NodeTarget(config.name), [&](json& node) {
    for (auto& [k, v] : desired["metadata"]["labels"].items()) node["metadata"]["labels"][k] = v;
    json existing = node.contains("spec") ? node["spec"].value("taints", json::array())
                                          : json::array();
    node["spec"]["taints"] = MergeTaints(existing, desired["spec"]["taints"]);
    return absl::OkStatus();
  });
}

absl::Status NodeController::State::Register() {
  PluginView view = CurrentPluginView();
  auto node = EnsureNode(view);
  if (!node.ok()) return node.status();
  {
    absl::MutexLock lock(&mu);
    node_uid = (*node)["metadata"].value("uid", "");
  }
  if (absl::Status s = RenewLease(); !s.ok()) return s;
  return ReportStatus(*node, view, /*force=*/true);
}

absl::Status NodeController::State::RenewLease() {
  std::string uid;
  {
    absl::MutexLock lock(&mu);
    uid = node_uid;
  }
  json lease = BuildLease(config, uid, absl::Now());
  json patch = {{"spec", lease["spec"]}};
  auto renewed = client.Patch(LeaseTarget(config.name), kube::PatchType::kMerge, patch, {});
  if (renewed.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(renewed.status())) return renewed.status();
  auto created = client.Create(LeaseTarget(""), lease, {});
  if (created.ok() || absl::IsAlreadyExists(created.status())) return absl::OkStatus();
  return created.status();
}

absl::Status NodeController::State::ReportStatus(const json& current, const PluginView& view,
                                                 bool force) {
  absl::Time now = absl::Now();
  json status = BuildNodeStatus(config, view, current, now);
  bool due = now - last_status_patch >= config.status_report_interval;
  if (!force && !due && !StatusChanged(current, status)) return absl::OkStatus();
  auto patched = client.Patch(NodeTarget(config.name, "status"), kube::PatchType::kMerge,
                              {{"status", status}}, {});
  if (!patched.ok()) return patched.status();
  last_status_patch = now;
  return absl::OkStatus();
}

void NodeController::State::Tick() {
  if (absl::Status s = RenewLease(); !s.ok()) {
    VKLOG(WARNING) << "renewing lease " << kLeaseNamespace << "/" << config.name
                   << " failed: " << s;
  }
  PluginView view = CurrentPluginView();
  auto current = client.Get(NodeTarget(config.name));
  bool force = false;
  if (!current.ok() && absl::IsNotFound(current.status())) {
    VKLOG(WARNING) << "node " << config.name << " was deleted; registering it again";
    current = EnsureNode(view);
    if (current.ok()) {
      absl::MutexLock lock(&mu);
      node_uid = (*current)["metadata"].value("uid", "");
    }
    force = true;
  }
  if (!current.ok()) {
    VKLOG(WARNING) << "reading node " << config.name << " failed: " << current.status();
    return;
  }
  if (absl::Status s = ReportStatus(*current, view, force); !s.ok()) {
    VKLOG(WARNING) << "updating status of node " << config.name << " failed: " << s;
  }
}

bool NodeController::State::WaitForStop(absl::Duration d) {
  absl::MutexLock lock(&mu);
  auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return stopping || poked; };
  mu.AwaitWithTimeout(absl::Condition(&woken), d);
  poked = false;
  return stopping;
}

void NodeController::State::Loop() {
  while (!WaitForStop(config.renew_interval)) Tick();
}

// Follows Node.WatchNode while the plugin offers it; reopens the stream after
// a plugin restart.
void NodeController::State::WatchLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu);
      if (stopping) return;
    }
    auto conn = plugin_client.ConnectionFor(v1::CAPABILITY_WATCH_NODE);
    if (conn.ok()) {
      grpc::ClientContext context;
      {
        absl::MutexLock lock(&mu);
        if (stopping) return;
        watch_context = &context;
      }
      auto stub = v1::Node::NewStub((*conn)->channel());
      v1::WatchNodeRequest request;
      request.set_node_name(config.name);
      auto reader = stub->WatchNode(&context, request);
      v1::NodeStatus status;
      while (reader->Read(&status)) {
        {
          absl::MutexLock lock(&mu);
          watched = status;
          poked = true;
        }
      }
      grpc::Status end = reader->Finish();
      {
        absl::MutexLock lock(&mu);
        watch_context = nullptr;
        if (stopping) return;
      }
      VKLOG(INFO) << "plugin WatchNode stream ended (" << end.error_message()
                  << "); reopening";
    }
    absl::MutexLock lock(&mu);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return stopping; };
    mu.AwaitWithTimeout(absl::Condition(&stop), kWatchRetry);
  }
}

NodeController::NodeController(NodeConfig config, kube::KubeClient& client,
                               plugin::PluginSupervisor& supervisor)
    : state_(std::make_unique<State>(std::move(config), client, supervisor)) {}

NodeController::~NodeController() { Stop(); }

absl::Status NodeController::Start() {
  if (absl::Status s = state_->Register(); !s.ok()) {
    return absl::Status(s.code(), "registering node \"" + state_->config.name +
                                      "\": " + std::string(s.message()));
  }
  state_->loop = std::thread([this] { state_->Loop(); });
  state_->watcher = std::thread([this] { state_->WatchLoop(); });
  return absl::OkStatus();
}

void NodeController::Stop() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
    if (state_->watch_context != nullptr) state_->watch_context->TryCancel();
  }
  if (state_->loop.joinable()) state_->loop.join();
  if (state_->watcher.joinable()) state_->watcher.join();
}

std::string NodeController::uid() const {
  absl::MutexLock lock(&state_->mu);
  return state_->node_uid;
}

void NodeController::Poke() {
  absl::MutexLock lock(&state_->mu);
  state_->poked = true;
}

}  // namespace vkhost::node
