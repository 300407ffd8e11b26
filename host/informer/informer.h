// host/informer: a local, always-fresh cache of one kind of Kubernetes object.
//
// An Informer lists a collection (a resource, optionally one namespace and
// label/field selectors; e.g. pods with spec.nodeName=<node>), then watches it
// from the listed resourceVersion, so that controllers read objects from
// memory instead of asking the API server. It follows client-go's reflector:
// paged list, watch with bookmarks and a randomized timeout, rewatch from the
// last seen resourceVersion with exponential backoff when the connection
// drops, and a full relist when the server says that version is gone (410).
// A relist is diffed against the cache, so handlers see exactly the adds,
// updates and deletes that happened while the informer was not watching.
//
// The cache holds each object once, as std::shared_ptr<const json> without
// metadata.managedFields (it can double a pod's size; a node carries 5 000
// pods). Handlers and readers share those pointers; nobody copies objects.
#ifndef VKHOST_HOST_INFORMER_INFORMER_H_
#define VKHOST_HOST_INFORMER_INFORMER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "host/kube/client.h"
#include "nlohmann/json.hpp"

namespace vkhost::informer {

// An object as the cache holds it. Never mutated once published.
using ObjectPtr = std::shared_ptr<const nlohmann::json>;

namespace internal {
class ObjectStore;
struct StoreChange;
}  // namespace internal

struct InformerOptions {
  // The collection: resource and namespace ("" = all namespaces). Name and
  // subresource must be empty.
  kube::Target target;
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;  // items per list page
  // Each watch asks the server to end it after a random time in
  // [min_watch_timeout, 2 * min_watch_timeout), spreading reconnects.
  absl::Duration min_watch_timeout = absl::Minutes(5);
  absl::Duration initial_backoff = absl::Milliseconds(800);
  absl::Duration max_backoff = absl::Seconds(30);
  std::string name;  // for log lines; default "<plural>[ in <namespace>]"
};

// Called on the informer's own thread, one at a time, in the order the
// changes happened, after the cache already reflects the change (so a handler
// may read the informer). A handler must not block for long: it holds up all
// later events. Unset members are skipped.
struct InformerHandlers {
  std::function<void(const ObjectPtr& object)> on_add;
  std::function<void(const ObjectPtr& old_object, const ObjectPtr& new_object)> on_update;
  // `object` is the last state the informer knew (from the DELETED event,
  // or from the cache when the deletion was noticed by a relist).
  std::function<void(const ObjectPtr& object)> on_delete;
};

// One list+watch loop and its cache. Construct, AddHandlers, Start once;
// Stop (or destruction) ends the loop and joins its thread. Readers (Get,
// List, HasSynced, ...) are thread-safe and never block on the network.
class Informer {
 public:
  // `client` must outlive the informer.
  Informer(kube::KubeClient* client, InformerOptions options);
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Before Start only; handlers registered later would miss the initial adds.
  void AddHandlers(InformerHandlers handlers);

  // Spawns the informer thread. Calling it twice does nothing.
  void Start();

  // Interrupts the running watch (or lets the running list page finish) and
  // joins the thread; handlers are not called after it returns. Idempotent
  // and thread-safe, but not callable from a handler. No restart.
  void Stop();

  // True once the first list has been stored and its adds dispatched.
  bool HasSynced() const;
  // Blocks until HasSynced or `timeout`; returns HasSynced().
  bool WaitForSync(absl::Duration timeout) const;

  // nullptr when absent. For cluster-scoped resources pass ns = "".
  ObjectPtr Get(std::string_view ns, std::string_view name) const;
  ObjectPtr GetByUid(std::string_view uid) const;
  // A snapshot of every object, in no particular order.
  std::vector<ObjectPtr> List() const;
  size_t Size() const;

  // The resourceVersion the cache is current to ("" before the first list).
  std::string ResourceVersion() const;

 private:
  void Run();
  absl::Status ListAndReplace();
  absl::Status WatchOnce(bool* made_progress);
  bool HandleEvent(kube::WatchEvent&& event, absl::Status* stream_error);
  void Dispatch(const internal::StoreChange& change);
  // Sleeps up to `duration`; returns false if Stop was called meanwhile.
  bool SleepUnlessStopped(absl::Duration duration);
  bool stopping() const;

  kube::KubeClient* const client_;
  const InformerOptions options_;
  const std::string name_;
  const std::unique_ptr<internal::ObjectStore> store_;
  kube::WatchCancel watch_cancel_;
  std::vector<InformerHandlers> handlers_;  // fixed once started

  absl::Mutex stop_mu_;  // serializes Stop's join
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  std::string resource_version_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // started and joined under the rules above
};

}  // namespace vkhost::informer

#endif  // VKHOST_HOST_INFORMER_INFORMER_H_
