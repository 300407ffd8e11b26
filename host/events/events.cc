#include "host/events/events.h"

#include <deque>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/json/kube_time.h"
#include "common/log/log.h"

namespace vkhost::events {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxAggregates = 4096;

struct Pending {
  ObjectRef object;
  EventType type;
  std::string reason;
  std::string message;
  absl::Time when;
};

// An Event already written, for folding repeats into it.
struct Written {
  std::string ns;
  std::string name;
  int count = 0;
  absl::Time first;
  absl::Time last;
};

std::string Timestamp(absl::Time t) { return apijson::KubeTime(t); }

std::string AggregateKey(const Pending& p) {
  return absl::StrCat(p.object.uid, "\x1f", p.object.field_path, "\x1f",
                      p.type == EventType::kWarning ? "W" : "N", "\x1f", p.reason, "\x1f",
                      p.message);
}

}  // namespace

ObjectRef ObjectRef::ForPod(const json& pod) {
  ObjectRef ref;
  const json& meta = pod.value("metadata", json::object());
  ref.ns = meta.value("namespace", "");
  ref.name = meta.value("name", "");
  ref.uid = meta.value("uid", "");
  return ref;
}

struct EventRecorder::State {
  State(kube::KubeClient& c, Options o) : client(c), options(std::move(o)) {}

  kube::KubeClient& client;
  const Options options;

  absl::Mutex mu;
  std::deque<Pending> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool writing ABSL_GUARDED_BY(mu) = false;
  size_t dropped ABSL_GUARDED_BY(mu) = 0;
  // Writer thread only.
  absl::flat_hash_map<std::string, Written> written;
  std::mt19937_64 rng{std::random_device{}()};
  std::thread writer;

  void Write(const Pending& p);
  void Run();
};

void EventRecorder::State::Write(const Pending& p) {
  std::string key = AggregateKey(p);
  auto it = written.find(key);
  if (it != written.end() && p.when - it->second.last < options.aggregation_window) {
    Written& w = it->second;
    json patch = {{"count", w.count + 1}, {"lastTimestamp", Timestamp(p.when)}};
    auto r = client.Patch({kube::kCoreEvents, w.ns, w.name, ""}, kube::PatchType::kMerge,
                          patch, {});
    if (r.ok()) {
      ++w.count;
      w.last = p.when;
      return;
    }
    if (!absl::IsNotFound(r.status())) {
      VKLOG(WARNING) << "updating event " << w.ns << "/" << w.name << " failed: " << r.status();
      return;
    }
    written.erase(it);  // expired on the server: write a new one
  }
  if (written.size() >= kMaxAggregates) written.clear();
  std::string name = absl::StrFormat("%s.%016x", p.object.name, rng());
  json involved = {{"kind", p.object.kind},
                   {"apiVersion", p.object.api_version},
                   {"namespace", p.object.ns},
                   {"name", p.object.name},
                   {"uid", p.object.uid}};
  if (!p.object.field_path.empty()) involved["fieldPath"] = p.object.field_path;
  json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", name}, {"namespace", p.object.ns}}},
                {"involvedObject", involved},
                {"type", p.type == EventType::kWarning ? "Warning" : "Normal"},
                {"reason", p.reason},
                {"message", p.message},
                {"source", {{"component", options.component}, {"host", options.host}}},
                {"reportingComponent", options.component},
                {"reportingInstance", options.host},
                {"firstTimestamp", Timestamp(p.when)},
                {"lastTimestamp", Timestamp(p.when)},
                {"eventTime", nullptr},
                {"count", 1}};
  auto r = client.Create({kube::kCoreEvents, p.object.ns, "", ""}, event, {});
  if (!r.ok()) {
    VKLOG(WARNING) << "writing event " << p.reason << " for " << p.object.ns << "/"
                   << p.object.name << " failed: " << r.status();
    return;
  }
  written[key] = Written{p.object.ns, name, 1, p.when, p.when};
}

void EventRecorder::State::Run() {
  for (;;) {
    Pending next;
    {
      absl::MutexLock lock(&mu);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return stopping || !queue.empty();
      };
      mu.Await(absl::Condition(&ready));
      if (queue.empty()) return;  // stopping and drained
      next = std::move(queue.front());
      queue.pop_front();
      writing = true;
    }
    Write(next);
    absl::MutexLock lock(&mu);
    writing = false;
  }
}

EventRecorder::EventRecorder(kube::KubeClient& client, Options options)
    : state_(std::make_unique<State>(client, std::move(options))) {
  state_->writer = std::thread([this] { state_->Run(); });
}

EventRecorder::~EventRecorder() { Stop(); }

void EventRecorder::Record(const ObjectRef& object, EventType type, absl::string_view reason,
                           absl::string_view message) {
  absl::MutexLock lock(&state_->mu);
  if (state_->stopping || state_->queue.size() >= state_->options.max_queued) {
    if (++state_->dropped % 100 == 1) {
      VKLOG(WARNING) << "dropping event " << reason << " for " << object.ns << "/"
                     << object.name << " (" << state_->dropped
                     << " dropped so far): event queue full or recorder stopped";
    }
    return;
  }
  state_->queue.push_back(
      Pending{object, type, std::string(reason), std::string(message), absl::Now()});
}

void EventRecorder::Flush() {
  absl::MutexLock lock(&state_->mu);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    return state_->queue.empty() && !state_->writing;
  };
  state_->mu.Await(absl::Condition(&idle));
}

void EventRecorder::Stop(absl::Duration deadline) {
  {
    absl::MutexLock lock(&state_->mu);
    if (!state_->writer.joinable()) return;
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
      return state_->queue.empty() && !state_->writing;
    };
    state_->mu.AwaitWithTimeout(absl::Condition(&idle), deadline);
    state_->queue.clear();
    state_->stopping = true;
  }
  state_->writer.join();
}

}  // namespace vkhost::events
