// PodStatusFeed: fan-out of pod status changes to WatchPodStatus streams.
//
// Each subscriber has its own queue holding at most one event per pod, so a
// slow stream costs memory proportional to the number of pods, never to the
// number of changes: a newer event of a pod replaces the pending one in place,
// which keeps the pod's position (and so the order of pods) and delivers its
// latest status.
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::sdk {

using Event = v1::WatchPodStatusResponse;

struct PodStatusFeed::Subscription::Queue {
  absl::Mutex mu;
  // UIDs with a pending event, oldest first; each UID at most once.
  std::deque<std::string> order ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, Event> pending ABSL_GUARDED_BY(mu);

  void Push(Event event) {
    absl::MutexLock lock(&mu);
    const std::string& uid = event.status().pod().uid();
    auto it = pending.find(uid);
    if (it == pending.end()) {
      order.push_back(uid);
      pending.emplace(uid, std::move(event));
      return;
    }
    Event& slot = it->second;
    if (event.type() == Event::TYPE_DELETED &&
        slot.type() == Event::TYPE_STATUS) {
      // Keep the last status the stream has not seen yet inside the DELETED
      // event rather than dropping it (spec.md §5.3.4).
      slot.set_type(Event::TYPE_DELETED);
      return;
    }
    slot = std::move(event);
  }
};

struct PodStatusFeed::Subscription::Hub {
  absl::Mutex mu;
  std::vector<std::shared_ptr<Queue>> queues ABSL_GUARDED_BY(mu);

  void Broadcast(const Event& event) {
    // Held while pushing so every subscriber sees publications in one order.
    absl::MutexLock lock(&mu);
    for (const auto& queue : queues) queue->Push(event);
  }
};

PodStatusFeed::PodStatusFeed() : hub_(std::make_shared<Subscription::Hub>()) {}
PodStatusFeed::~PodStatusFeed() = default;

void PodStatusFeed::Publish(const v1::PodStatus& status) {
  Event event;
  event.set_type(Event::TYPE_STATUS);
  *event.mutable_status() = status;
  hub_->Broadcast(event);
}

void PodStatusFeed::PublishDeleted(const v1::PodRef& pod) {
  Event event;
  event.set_type(Event::TYPE_DELETED);
  *event.mutable_status()->mutable_pod() = pod;
  hub_->Broadcast(event);
}

std::unique_ptr<PodStatusFeed::Subscription> PodStatusFeed::Subscribe() {
  auto queue = std::make_shared<Subscription::Queue>();
  {
    absl::MutexLock lock(&hub_->mu);
    hub_->queues.push_back(queue);
  }
  return std::unique_ptr<Subscription>(new Subscription(hub_, queue));
}

PodStatusFeed::Subscription::Subscription(std::shared_ptr<Hub> hub,
                                          std::shared_ptr<Queue> queue)
    : hub_(std::move(hub)), queue_(std::move(queue)) {}

PodStatusFeed::Subscription::~Subscription() {
  absl::MutexLock lock(&hub_->mu);
  auto& queues = hub_->queues;
  for (auto it = queues.begin(); it != queues.end(); ++it) {
    if (*it == queue_) {
      queues.erase(it);
      break;
    }
  }
}

std::optional<Event> PodStatusFeed::Subscription::NextUntil(
    absl::Time deadline) {
  Queue& q = *queue_;
  absl::MutexLock lock(&q.mu);
  auto has_event = [&q]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(q.mu) {
    return !q.order.empty();
  };
  q.mu.AwaitWithDeadline(absl::Condition(&has_event), deadline);
  if (q.order.empty()) return std::nullopt;
  std::string uid = std::move(q.order.front());
  q.order.pop_front();
  auto node = q.pending.extract(uid);
  return std::move(node.mapped());
}

}  // namespace vkhost::sdk
