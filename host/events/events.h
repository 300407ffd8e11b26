// host/events: Kubernetes Events about pods, as `kubectl describe pod` shows
// them ("Started container app", "Failed to create pod sandbox: ...").
//
// The pod controller records an event and moves on: recording never blocks on
// the API server. A single background thread writes core/v1 Events, folding
// repeats of the same (object, type, reason, message) within ten minutes into
// one Event whose count and lastTimestamp grow, as client-go's recorder does,
// so a crash-looping pod costs one Event, not thousands. When the API server
// is slow the queue is bounded: excess events are dropped with a log line,
// never the pod work that produced them.
#ifndef VKHOST_HOST_EVENTS_EVENTS_H_
#define VKHOST_HOST_EVENTS_EVENTS_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "host/kube/client.h"
#include "nlohmann/json.hpp"

namespace vkhost::events {

// The object an event is about.
struct ObjectRef {
  std::string kind = "Pod";
  std::string api_version = "v1";
  std::string ns;
  std::string name;
  std::string uid;
  // e.g. "spec.containers{app}" for container events; may be empty.
  std::string field_path;

  // The reference to a v1.Pod given as JSON.
  static ObjectRef ForPod(const nlohmann::json& pod);
};

enum class EventType { kNormal, kWarning };

// Record and Flush are thread-safe; Stop and the destructor are for the
// owner's thread. Borrows `client`, which must outlive the recorder.
class EventRecorder {
 public:
  struct Options {
    std::string component = "vkhost";  // source.component, reportingComponent
    std::string host;                  // source.host, reportingInstance: the node
    size_t max_queued = 1000;
    absl::Duration aggregation_window = absl::Minutes(10);
  };

  EventRecorder(kube::KubeClient& client, Options options);
  ~EventRecorder();  // Stop()s.
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Queues an event. `reason` is CamelCase ("Started", "FailedCreate");
  // `message` is for a person. Never blocks; dropped (and logged) when the
  // queue is full or the recorder stopped.
  void Record(const ObjectRef& object, EventType type, absl::string_view reason,
              absl::string_view message);

  // Writes what is queued, waiting at most `deadline` for the API server,
  // then stops the writer thread. Idempotent.
  void Stop(absl::Duration deadline = absl::Seconds(5));

  // Blocks until every event queued so far has been written or dropped.
  // For tests.
  void Flush();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vkhost::events

#endif  // VKHOST_HOST_EVENTS_EVENTS_H_
