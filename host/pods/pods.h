// host/pods: the pod controller, which makes the plugin run the pods bound to
// the virtual node and reports their status back, as the kubelet does.
//
// Inputs are the pods informer (spec.nodeName=<node>, owned by the caller)
// and the plugin's status reports; outputs are plugin RPCs (CreatePod,
// UpdatePod, DeletePod), status patches, pod deletions and Events. Informer
// handlers queue pod UIDs on a rate-limited work queue that a fixed pool of
// workers drains, one pass per UID at a time; each pass reads the pod from
// the informer cache (the only copy of pod objects) and the controller's
// small per-UID bookkeeping, decides (internal/decide.h) and acts. Failed
// steps are retried with per-pod exponential backoff; a plugin that is down
// costs retries and WARNING lines, never a crash.
//
// Status flows in on one thread: WatchPodStatus when the plugin has that
// capability (snapshot, SYNCED, changes; reopened after a backoff and after
// every reconnect), otherwise one ListPods every status_poll_interval. Once
// the informer has synced, and after every plugin (re)connect, the controller
// resynchronises with ListPods: pods the API server does not know are deleted
// from the plugin, pods the plugin lacks are created (CreatePod is idempotent
// by UID and a UID is never processed twice at once, so nothing starts twice).
// Statuses are derived with host/podstatus and patched only when they differ
// from the informer's copy.
#ifndef VKHOST_HOST_PODS_PODS_H_
#define VKHOST_HOST_PODS_PODS_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "host/events/events.h"
#include "host/informer/informer.h"
#include "host/kube/client.h"
#include "host/plugin/plugin.h"
#include "host/resolve/resolve.h"
#include "host/workqueue/work_queue.h"

namespace vkhost::pods {

struct PodControllerOptions {
  // Node facts for resolution; resolve.host_ips[0] is also the pods' hostIP.
  resolve::ResolveOptions resolve;
  // Reconcile workers (the --pod-workers flag).
  int workers = 10;
  // Without WATCH_POD_STATUS: how often ListPods refreshes every status.
  absl::Duration status_poll_interval = absl::Seconds(5);
  // Per-pod retry backoff for failed reconciles (plugin down, API errors,
  // a ConfigMap that does not exist yet).
  workqueue::BackoffOptions retry_backoff{absl::Milliseconds(200), absl::Seconds(30)};
  // Backoff before reopening an ended status stream or retrying a failed
  // resync, doubling up to the maximum.
  absl::Duration stream_retry_initial = absl::Seconds(1);
  absl::Duration stream_retry_max = absl::Seconds(30);
  // With UPDATE_POD: how often pods with configMap, secret, downwardAPI or
  // projected volumes are re-resolved so edited objects reach the plugin
  // (the kubelet's sync period); a 0-50% jitter spreads the load.
  absl::Duration volume_refresh_interval = absl::Minutes(1);
  // The same Warning Event for one pod is recorded at most this often while
  // a failure repeats (the recorder aggregates what it does get).
  absl::Duration warning_repeat_interval = absl::Minutes(5);
};

// Reconciles the pods of one node with its plugin.
//
// Lifecycle: construct (this registers the informer handlers and the
// supervisor's connect listener, so construct it before starting either),
// Start, Stop. Workers begin once the informer has synced and the first
// resync with the plugin succeeded; until then pod changes only queue up.
//
// Thread-safety: Start and Stop are for the owner's thread; NotifyObjectsChanged
// and Synced may be called from any thread. Internally: informer handlers only
// queue UIDs; workers run reconciles, never two for one UID at once; one
// status thread reads the plugin's reports; bookkeeping is guarded by a mutex
// that is never held across an RPC or API call.
class PodController {
 public:
  // Borrows everything; all must outlive the controller except that the
  // informer and supervisor may call their registered hooks after the
  // controller is gone (the hooks then do nothing).
  PodController(PodControllerOptions options, kube::KubeClient& client,
                informer::Informer& pods, plugin::PluginSupervisor& supervisor,
                resolve::ObjectSource& objects, events::EventRecorder& events);
  ~PodController();  // Stop()s.
  PodController(const PodController&) = delete;
  PodController& operator=(const PodController&) = delete;

  // Starts the status thread, which waits for the informer to sync, resyncs
  // with the plugin and then starts the workers. Returns at once; calling it
  // again does nothing.
  void Start();

  // Cancels the status stream, stops the queue and joins every thread. A
  // reconcile in flight finishes its current RPC first (bounded by the RPC
  // deadlines). Idempotent.
  void Stop();

  // Re-examines at once the pods of `namespace_name` that wait for a missing
  // ConfigMap, Secret or service account. Call it from the handlers of the
  // caches the ObjectSource reads. Cheap; any thread.
  void NotifyObjectsChanged(const std::string& namespace_name);

  // True once the first resync with the plugin finished and workers run.
  bool Synced() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vkhost::pods

#endif  // VKHOST_HOST_PODS_PODS_H_
