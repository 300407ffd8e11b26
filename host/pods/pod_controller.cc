// PodController: wiring, start and stop. The work is in reconcile.cc and
// plugin_status.cc.
#include <string>
#include <utility>

#include "host/pods/internal/controller.h"
#include "host/pods/pods.h"

namespace vkhost::pods {
namespace {

// Queues the pod's UID; shared by every informer handler.
void Enqueue(workqueue::WorkQueue& queue, const informer::ObjectPtr& pod) {
  if (pod == nullptr) return;
  auto md = pod->find("metadata");
  if (md == pod->end() || !md->is_object()) return;
  auto uid = md->find("uid");
  if (uid != md->end() && uid->is_string()) queue.Add(uid->get<std::string>());
}

}  // namespace

PodController::Impl::Impl(PodControllerOptions options, kube::KubeClient& client,
                          informer::Informer& pods, plugin::PluginSupervisor& supervisor,
                          resolve::ObjectSource& objects, events::EventRecorder& events)
    : options_(std::move(options)),
      client_(client),
      pods_(pods),
      supervisor_(supervisor),
      plugin_(supervisor),
      objects_(objects),
      events_(events),
      hooks_(std::make_shared<ControllerHooks>()),
      queue_(std::make_shared<workqueue::WorkQueue>(options_.retry_backoff)) {
  // The hooks hold shared pointers only, so they stay harmless when the
  // informer or the supervisor outlives the controller.
  std::shared_ptr<workqueue::WorkQueue> queue = queue_;
  informer::InformerHandlers handlers;
  handlers.on_add = [queue](const informer::ObjectPtr& pod) { Enqueue(*queue, pod); };
  handlers.on_update = [queue](const informer::ObjectPtr&, const informer::ObjectPtr& pod) {
    Enqueue(*queue, pod);
  };
  handlers.on_delete = [queue](const informer::ObjectPtr& pod) { Enqueue(*queue, pod); };
  pods_.AddHandlers(std::move(handlers));

  std::shared_ptr<ControllerHooks> hooks = hooks_;
  supervisor_.AddConnectListener([hooks](const plugin::PluginIdentity&, uint64_t) {
    absl::MutexLock lock(&hooks->mu);
    ++hooks->connects;
    // A stream of the previous connection is dead; end it now.
    if (hooks->watch_context != nullptr) hooks->watch_context->TryCancel();
  });
}

PodController::Impl::~Impl() { Stop(); }

void PodController::Impl::Start() {
  if (started_) return;
  started_ = true;
  status_thread_ = std::thread([this] { StatusLoop(); });
}

void PodController::Impl::Stop() {
  {
    absl::MutexLock lock(&hooks_->mu);
    hooks_->stopping = true;
    if (hooks_->watch_context != nullptr) hooks_->watch_context->TryCancel();
  }
  if (status_thread_.joinable()) status_thread_.join();
  queue_->ShutDown();
  std::unique_ptr<workqueue::WorkerPool> pool;
  {
    absl::MutexLock lock(&mu_);
    pool = std::move(pool_);
  }
  pool.reset();  // joins the workers
}

void PodController::Impl::NotifyObjectsChanged(const std::string& namespace_name) {
  std::vector<std::string> waiting;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [uid, record] : records_) {
      if (record.waiting_on_objects && record.ns == namespace_name) waiting.push_back(uid);
    }
  }
  for (const std::string& uid : waiting) queue_->Add(uid);
}

PodController::PodController(PodControllerOptions options, kube::KubeClient& client,
                             informer::Informer& pods, plugin::PluginSupervisor& supervisor,
                             resolve::ObjectSource& objects, events::EventRecorder& events)
    : impl_(std::make_unique<Impl>(std::move(options), client, pods, supervisor, objects,
                                   events)) {}

PodController::~PodController() = default;

void PodController::Start() { impl_->Start(); }
void PodController::Stop() { impl_->Stop(); }
void PodController::NotifyObjectsChanged(const std::string& namespace_name) {
  impl_->NotifyObjectsChanged(namespace_name);
}
bool PodController::Synced() const { return impl_->Synced(); }

}  // namespace vkhost::pods
