#include "host/workqueue/work_queue.h"

#include <algorithm>
#include <deque>
#include <queue>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace vkhost::workqueue {
namespace {

struct Delayed {
  absl::Time due;
  std::string key;
  bool operator>(const Delayed& other) const { return due > other.due; }
};

}  // namespace

struct WorkQueue::State {
  explicit State(BackoffOptions b) : backoff(b) {}

  const BackoffOptions backoff;
  mutable absl::Mutex mu;
  std::deque<std::string> ready ABSL_GUARDED_BY(mu);
  // Keys that need processing: in `ready`, or added while processing.
  absl::flat_hash_set<std::string> dirty ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<std::string> processing ABSL_GUARDED_BY(mu);
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<Delayed>> delayed
      ABSL_GUARDED_BY(mu);
  // Earliest pending deadline per delayed key, so repeated AddAfter calls
  // for one key do not pile up in the heap.
  absl::flat_hash_map<std::string, absl::Time> delayed_due ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, int> retries ABSL_GUARDED_BY(mu);
  bool shut_down ABSL_GUARDED_BY(mu) = false;

  void AddLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (shut_down || dirty.contains(key)) return;
    dirty.insert(key);
    if (!processing.contains(key)) ready.push_back(key);
  }

  // Moves delayed keys whose time has come to `ready`.
  void PromoteDueLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!delayed.empty() && delayed.top().due <= now) {
      Delayed d = delayed.top();
      delayed.pop();
      auto it = delayed_due.find(d.key);
      if (it == delayed_due.end() || it->second != d.due) continue;  // superseded
      delayed_due.erase(it);
      AddLocked(d.key);
    }
  }
};

WorkQueue::WorkQueue(BackoffOptions backoff) : state_(std::make_unique<State>(backoff)) {}

WorkQueue::~WorkQueue() { ShutDown(); }

void WorkQueue::Add(const std::string& key) {
  absl::MutexLock lock(&state_->mu);
  state_->AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, absl::Duration delay) {
  absl::MutexLock lock(&state_->mu);
  if (delay <= absl::ZeroDuration()) {
    state_->AddLocked(key);
    return;
  }
  if (state_->shut_down) return;
  absl::Time due = absl::Now() + delay;
  auto [it, inserted] = state_->delayed_due.try_emplace(key, due);
  if (!inserted) {
    if (it->second <= due) return;
    it->second = due;
  }
  state_->delayed.push({due, key});
}

absl::Duration WorkQueue::AddRateLimited(const std::string& key) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&state_->mu);
    int n = state_->retries[key]++;
    delay = state_->backoff.base_delay;
    for (int i = 0; i < n && delay < state_->backoff.max_delay; ++i) delay *= 2;
    delay = std::min(delay, state_->backoff.max_delay);
  }
  AddAfter(key, delay);
  return delay;
}

void WorkQueue::Forget(const std::string& key) {
  absl::MutexLock lock(&state_->mu);
  state_->retries.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->retries.find(key);
  return it == state_->retries.end() ? 0 : it->second;
}

std::optional<std::string> WorkQueue::Get() {
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  for (;;) {
    if (s.shut_down) return std::nullopt;
    s.PromoteDueLocked(absl::Now());
    if (!s.ready.empty()) break;
    auto wake = [&s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
      return s.shut_down || !s.ready.empty();
    };
    if (s.delayed.empty()) {
      s.mu.Await(absl::Condition(&wake));
    } else {
      s.mu.AwaitWithDeadline(absl::Condition(&wake), s.delayed.top().due);
    }
  }
  std::string key = std::move(s.ready.front());
  s.ready.pop_front();
  s.dirty.erase(key);
  s.processing.insert(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  absl::MutexLock lock(&state_->mu);
  state_->processing.erase(key);
  if (state_->dirty.contains(key)) state_->ready.push_back(key);
}

void WorkQueue::ShutDown() {
  absl::MutexLock lock(&state_->mu);
  state_->shut_down = true;
  state_->ready.clear();
  state_->dirty.clear();
}

size_t WorkQueue::Len() const {
  absl::MutexLock lock(&state_->mu);
  return state_->ready.size();
}

WorkerPool::WorkerPool(WorkQueue& queue, int workers,
                       std::function<bool(const std::string& key)> process) {
  for (int i = 0; i < std::max(1, workers); ++i) {
    threads_.emplace_back([&queue, process] {
      while (auto key = queue.Get()) {
        if (process(*key)) {
          queue.Forget(*key);
        } else {
          queue.AddRateLimited(*key);
        }
        queue.Done(*key);
      }
    });
  }
}

WorkerPool::~WorkerPool() {
  for (auto& t : threads_) t.join();
}

}  // namespace vkhost::workqueue
