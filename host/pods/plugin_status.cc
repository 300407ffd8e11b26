// PodController, status side: one thread that keeps the host's view of the
// plugin's pods current (resync after connects, WatchPodStatus or ListPods
// polling) and queues the pods whose reports changed.
#include <algorithm>
#include <string>
#include <vector>

#include "common/log/log.h"
#include "google/protobuf/util/message_differencer.h"
#include "host/pods/internal/controller.h"

namespace vkhost::pods {
namespace {

std::string UidOf(const nlohmann::json& pod) {
  auto md = pod.find("metadata");
  if (md == pod.end() || !md->is_object()) return "";
  auto uid = md->find("uid");
  return uid != md->end() && uid->is_string() ? uid->get<std::string>() : "";
}

// Doubling delays between attempts, reset after a success.
class RetryDelay {
 public:
  RetryDelay(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}
  absl::Duration Next() {
    absl::Duration d = next_ > absl::ZeroDuration() ? next_ : initial_;
    next_ = std::min(d * 2, max_);
    return d;
  }
  void Reset() { next_ = absl::ZeroDuration(); }

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration next_ = absl::ZeroDuration();
};

}  // namespace

void PodController::Impl::StatusLoop() {
  if (!WaitForInformer()) return;
  RetryDelay delay(options_.stream_retry_initial, options_.stream_retry_max);
  uint64_t synced_generation = 0;
  while (!Stopping()) {
    const uint64_t seen = Connects();
    auto connection = supervisor_.Current();
    if (!connection.ok()) {
      Pause(seen, delay.Next());
      continue;
    }
    const uint64_t generation = supervisor_.generation();
    if (generation != synced_generation) {
      absl::Status s = Resync();
      if (!s.ok()) {
        absl::Duration wait = delay.Next();
        VKLOG(WARNING) << "cannot resynchronise pods with the plugin, retrying in " << wait
                       << ": " << s;
        Pause(seen, wait);
        continue;
      }
      synced_generation = generation;
      delay.Reset();
      StartWorkers();
    }
    if ((*connection)->identity().Has(v1::CAPABILITY_WATCH_POD_STATUS)) {
      bool reached_sync = false;
      absl::Status s = WatchStatuses(**connection, &reached_sync);
      if (Stopping()) return;
      if (reached_sync) delay.Reset();
      if (Connects() != seen) continue;  // reconnected: resync at once
      absl::Duration wait = delay.Next();
      VKLOG(WARNING) << "plugin status stream ended (" << s << "); reopening in " << wait;
      Pause(seen, wait);
    } else {
      if (Pause(seen, options_.status_poll_interval)) continue;
      absl::Status s = Poll();
      if (!s.ok()) {
        VKLOG(WARNING) << "cannot poll pod statuses from the plugin: " << s;
      }
    }
  }
}

bool PodController::Impl::WaitForInformer() {
  while (!pods_.WaitForSync(absl::Milliseconds(500))) {
    if (Stopping()) return false;
  }
  return !Stopping();
}

absl::Status PodController::Impl::Resync() {
  const uint64_t epoch = ++epoch_;
  absl::StatusOr<std::vector<v1::PodStatus>> reports = plugin_.ListPods();
  if (!reports.ok()) return reports.status();
  ApplySnapshot(*reports, epoch, /*resync=*/true);
  VKLOG(INFO) << "resynchronised pods with the plugin: it has " << reports->size()
              << ", the API server " << pods_.Size() << " bound to this node";
  return absl::OkStatus();
}

absl::Status PodController::Impl::Poll() {
  const uint64_t epoch = ++epoch_;
  absl::StatusOr<std::vector<v1::PodStatus>> reports = plugin_.ListPods();
  if (!reports.ok()) return reports.status();
  ApplySnapshot(*reports, epoch, /*resync=*/false);
  return absl::OkStatus();
}

void PodController::Impl::ApplySnapshot(const std::vector<v1::PodStatus>& reports,
                                        uint64_t epoch, bool resync) {
  std::vector<std::string> changed;
  {
    absl::MutexLock lock(&mu_);
    absl::flat_hash_set<std::string> seen;
    for (const v1::PodStatus& report : reports) {
      const std::string& uid = report.pod().uid();
      if (uid.empty()) continue;
      seen.insert(uid);
      if (StoreReportLocked(report)) changed.push_back(uid);
    }
    std::vector<std::string> absent = MarkAbsentLocked(seen, epoch, resync);
    changed.insert(changed.end(), absent.begin(), absent.end());
  }
  if (resync) {
    // Every pod of the node gets a pass: the missing ones are created.
    for (const informer::ObjectPtr& pod : pods_.List()) changed.push_back(UidOf(*pod));
  }
  for (const std::string& uid : changed) {
    if (!uid.empty()) queue_->Add(uid);
  }
}

bool PodController::Impl::StoreReportLocked(const v1::PodStatus& report) {
  PodRecord& record = records_[report.pod().uid()];
  if (record.ns.empty() && record.name.empty()) {
    record.ns = report.pod().namespace_();
    record.name = report.pod().name();
  }
  bool changed = !record.in_plugin || !record.report ||
                 !google::protobuf::util::MessageDifferencer::Equals(*record.report, report);
  record.in_plugin = true;
  if (changed) record.report = report;
  return changed;
}

std::vector<std::string> PodController::Impl::MarkAbsentLocked(
    const absl::flat_hash_set<std::string>& seen, uint64_t epoch, bool all) {
  std::vector<std::string> changed;
  for (auto& [uid, record] : records_) {
    // After a reconnect, a termination in progress may have been lost with
    // the old plugin process: send DeletePod again (it is idempotent).
    if (all) record.delete_sent = false;
    if (seen.contains(uid)) {
      if (all) changed.push_back(uid);
      continue;
    }
    // Created after the snapshot began: the snapshot cannot know it yet.
    bool fresh = record.in_plugin && record.in_plugin_epoch >= epoch;
    bool was_known = record.in_plugin || record.report.has_value();
    if (!fresh && was_known) {
      record.in_plugin = false;
      record.report.reset();
    }
    if (all || (!fresh && was_known)) changed.push_back(uid);
  }
  return changed;
}

void PodController::Impl::PluginForgot(const v1::PodStatus& last) {
  const std::string& uid = last.pod().uid();
  {
    absl::MutexLock lock(&mu_);
    auto it = records_.find(uid);
    if (it == records_.end()) return;
    it->second.in_plugin = false;
    it->second.report.reset();
  }
  queue_->Add(uid);
}

absl::Status PodController::Impl::WatchStatuses(plugin::PluginConnection& connection,
                                                bool* reached_sync) {
  std::unique_ptr<v1::Pods::Stub> stub = v1::Pods::NewStub(connection.channel());
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&hooks_->mu);
    if (hooks_->stopping) return absl::CancelledError("stopping");
    hooks_->watch_context = &context;
  }
  const uint64_t epoch = ++epoch_;
  std::unique_ptr<grpc::ClientReader<v1::WatchPodStatusResponse>> reader =
      stub->WatchPodStatus(&context, v1::WatchPodStatusRequest());
  absl::flat_hash_set<std::string> snapshot;
  v1::WatchPodStatusResponse event;
  while (reader->Read(&event)) {
    const std::string& uid = event.status().pod().uid();
    switch (event.type()) {
      case v1::WatchPodStatusResponse::TYPE_STATUS: {
        if (uid.empty()) break;
        if (!*reached_sync) snapshot.insert(uid);
        bool changed;
        {
          absl::MutexLock lock(&mu_);
          changed = StoreReportLocked(event.status());
        }
        if (changed) queue_->Add(uid);
        break;
      }
      case v1::WatchPodStatusResponse::TYPE_SYNCED: {
        if (*reached_sync) break;
        *reached_sync = true;
        std::vector<std::string> absent;
        {
          absl::MutexLock lock(&mu_);
          absent = MarkAbsentLocked(snapshot, epoch, /*all=*/false);
        }
        snapshot.clear();
        for (const std::string& gone : absent) queue_->Add(gone);
        break;
      }
      case v1::WatchPodStatusResponse::TYPE_DELETED:
        if (!uid.empty()) PluginForgot(event.status());
        break;
      default:
        break;  // a newer plugin's event type: ignored (spec §1.3)
    }
  }
  grpc::Status status = reader->Finish();
  {
    absl::MutexLock lock(&hooks_->mu);
    hooks_->watch_context = nullptr;
  }
  return plugin::FromGrpc(status);
}

bool PodController::Impl::Pause(uint64_t seen_connects, absl::Duration duration) {
  absl::MutexLock lock(&hooks_->mu);
  ControllerHooks* hooks = hooks_.get();
  auto woken = [hooks, seen_connects]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hooks->mu) {
    return hooks->stopping || hooks->connects != seen_connects;
  };
  hooks_->mu.AwaitWithTimeout(absl::Condition(&woken), duration);
  return woken();
}

uint64_t PodController::Impl::Connects() {
  absl::MutexLock lock(&hooks_->mu);
  return hooks_->connects;
}

bool PodController::Impl::Stopping() {
  absl::MutexLock lock(&hooks_->mu);
  return hooks_->stopping;
}

void PodController::Impl::StartWorkers() {
  absl::MutexLock lock(&mu_);
  if (pool_ != nullptr) return;
  pool_ = std::make_unique<workqueue::WorkerPool>(
      *queue_, std::max(1, options_.workers),
      [this](const std::string& uid) { return Process(uid); });
  synced_ = true;
  VKLOG(INFO) << "pod controller running with " << std::max(1, options_.workers)
              << " workers";
}

}  // namespace vkhost::pods
