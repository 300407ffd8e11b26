// host/kube: the one way the host talks to the Kubernetes API server.
//
// The node, pod, resolve and kubelet-API components read and write Node,
// Lease, Pod, ConfigMap, Secret, Event, TokenRequest, TokenReview and
// SubjectAccessReview objects through a `KubeClient`. Objects are plain
// nlohmann::json (the API's own JSON shape), addressed by a `Target`: a
// `Resource` from the table below plus namespace, name and subresource.
//
// Where the client's settings come from: `ResolveRestConfig` follows
// --kubeconfig, then $KUBECONFIG, then the in-cluster service account, then
// ~/.kube/config. `NewKubeClient` turns a `RestConfig` into a client with a
// keep-alive connection pool, client-side QPS/burst limits (kubelet defaults
// 50/100) and a User-Agent naming vkhost. Failures are absl::Status values
// whose codes follow the HTTP status (see "Errors"), with the API server's own
// message. Long-running list+watch caches live in host/informer, built on
// `KubeClient::List` and `KubeClient::Watch`.
#ifndef VKHOST_HOST_KUBE_CLIENT_H_
#define VKHOST_HOST_KUBE_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace vkhost::kube {

// ---------------------------------------------------------------------------
// Configuration

// Everything needed to reach and authenticate to one API server. Certificates
// and keys are held as PEM text (files are read when the config is loaded);
// only the bearer token file is kept as a path because it rotates.
struct RestConfig {
  std::string server;  // "https://host:port[/prefix]" or "http://..."
  std::string ca_pem;  // trusted CAs; empty = the system's trust store
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  // name to verify instead of the URL's host
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;       // static bearer token
  std::string token_file;  // re-read at most once a minute; wins over token
  std::string default_namespace = "default";
  std::string source;  // where this came from, for log lines and errors
};

// Reads a kubeconfig file (YAML or JSON) using `context`, or its
// current-context when `context` is empty. Relative file paths in it are
// relative to the kubeconfig's directory; *-data fields are base64 PEM.
// NOT_FOUND if the file or context is missing, INVALID_ARGUMENT for malformed
// content or credentials vkhost cannot use (exec plugins, auth providers), each
// message naming the file and the entry at fault.
absl::StatusOr<RestConfig> LoadKubeconfig(const std::string& path,
                                          const std::string& context = "");

inline constexpr char kServiceAccountDir[] =
    "/var/run/secrets/kubernetes.io/serviceaccount";

// The config of a pod's service account: token, ca.crt and namespace from
// `service_account_dir`, server from $KUBERNETES_SERVICE_HOST and
// $KUBERNETES_SERVICE_PORT (IPv6 hosts bracketed). FAILED_PRECONDITION when
// not running in a cluster (variables unset), NOT_FOUND when files are missing.
absl::StatusOr<RestConfig> LoadInClusterConfig(
    const std::string& service_account_dir = kServiceAccountDir);

// The operator's choice: `kubeconfig_flag` if set, else the first entry of
// $KUBECONFIG, else in-cluster when $KUBERNETES_SERVICE_HOST is set, else
// ~/.kube/config. `context_flag` selects a context of a kubeconfig. The error
// says which sources were tried.
absl::StatusOr<RestConfig> ResolveRestConfig(const std::string& kubeconfig_flag,
                                             const std::string& context_flag);

// ---------------------------------------------------------------------------
// Resources and addressing

// One API resource: where its URLs live and whether it is namespaced.
struct Resource {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;
  bool namespaced = true;
};

// The resources the host uses. Other Resource values work the same way.
inline const Resource kPods{"", "v1", "pods", true};
inline const Resource kNodes{"", "v1", "nodes", false};
inline const Resource kNamespaces{"", "v1", "namespaces", false};
inline const Resource kConfigMaps{"", "v1", "configmaps", true};
inline const Resource kSecrets{"", "v1", "secrets", true};
inline const Resource kServices{"", "v1", "services", true};
inline const Resource kServiceAccounts{"", "v1", "serviceaccounts", true};
inline const Resource kCoreEvents{"", "v1", "events", true};
inline const Resource kEvents{"events.k8s.io", "v1", "events", true};
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases", true};
inline const Resource kTokenReviews{"authentication.k8s.io", "v1",
                                    "tokenreviews", false};
inline const Resource kSubjectAccessReviews{"authorization.k8s.io", "v1",
                                            "subjectaccessreviews", false};

// Finds a resource of the table above by "plural" (core group) or
// "plural.group", e.g. "leases.coordination.k8s.io". NOT_FOUND otherwise.
absl::StatusOr<Resource> LookupResource(std::string_view name);

// What a request is about. An empty name addresses the collection (list,
// watch, create); an empty namespace on a namespaced resource means all
// namespaces (list and watch only). Subresources: "status", "token", ...
struct Target {
  Resource resource;
  std::string ns;
  std::string name;
  std::string subresource;
};

// The URL path of `target`, e.g. /api/v1/namespaces/ns/pods/name/status or
// /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n.
// INVALID_ARGUMENT for a subresource without a name, a namespace on a
// cluster-scoped resource, or names that are not valid path segments.
absl::StatusOr<std::string> ResourcePath(const Target& target);

// ---------------------------------------------------------------------------
// Request options

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;  // "" = most recent (consistent read)
  int64_t limit = 0;             // page size; 0 = everything at once
  std::string continue_token;    // from the previous page's metadata.continue
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;  // start after this version
  int64_t timeout_seconds = 0;   // server closes the watch after this; 0 = its default
  bool allow_bookmarks = true;
};

struct WriteOptions {
  std::string field_manager;  // required for server-side apply
  bool dry_run = false;
  bool force = false;  // apply only: take over conflicting fields
};

enum class PatchType {
  kMerge,           // application/merge-patch+json (RFC 7386)
  kStrategicMerge,  // application/strategic-merge-patch+json (built-in kinds)
  kJson,            // application/json-patch+json (RFC 6902), an array
  kApply,           // server-side apply; needs WriteOptions::field_manager
};

struct DeleteOptions {
  std::optional<int64_t> grace_period_seconds;
  std::string precondition_uid;               // refuse if the UID differs
  std::string precondition_resource_version;  // refuse if it changed
  std::string propagation_policy;  // "Orphan", "Background", "Foreground"
};

// ---------------------------------------------------------------------------
// Watching

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

// One event of a watch stream. For kError `object` is a metav1.Status; for
// kBookmark only metadata.resourceVersion is meaningful.
struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  nlohmann::json object;
};

// Return false to end the watch (Watch then returns OK).
using WatchEventHandler = std::function<bool(WatchEvent&& event)>;

// Stops a watch from another thread. A token serves one watch at a time and
// stays cancelled for good once cancelled. Thread-safe.
class WatchCancel {
 public:
  WatchCancel() = default;
  WatchCancel(const WatchCancel&) = delete;
  WatchCancel& operator=(const WatchCancel&) = delete;

  // Marks the token cancelled and, if a watch is running with it, interrupts
  // it and waits until it has returned (promptly: its connection is shut
  // down). Called from that watch's own event handler it only marks it.
  void Cancel();
  bool cancelled() const;

  // For KubeClient implementations. Register returns false when already
  // cancelled; otherwise `interrupt` is run by Cancel (possibly repeatedly,
  // from another thread) until Unregister, which the watch calls on the way
  // out, after which Cancel no longer touches the watch's resources.
  bool Register(std::function<void()> interrupt);
  void Unregister();

 private:
  bool NoWatchRegistered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !interrupt_;
  }

  // Read lock-free from inside the watch's data path.
  std::atomic<bool> cancelled_{false};
  mutable absl::Mutex mu_;
  std::function<void()> interrupt_ ABSL_GUARDED_BY(mu_);
  std::optional<std::thread::id> watch_thread_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// The client

// Requests against one API server. All methods block the calling thread until
// the answer (or, for Watch, the end of the stream) and are thread-safe. A
// successful call returns the object the server returned; a failed one a
// status as described under "Errors". Components take a KubeClient& so tests
// can substitute a fake.
class KubeClient {
 public:
  virtual ~KubeClient() = default;

  virtual absl::StatusOr<nlohmann::json> Get(const Target& target) = 0;

  // One page of a collection: a *List object with items, metadata.continue
  // and metadata.resourceVersion. Use ListAllPages to walk every page.
  virtual absl::StatusOr<nlohmann::json> List(const Target& target,
                                              const ListOptions& options) = 0;

  // POST to the collection, or to target.name/subresource when both are set
  // (e.g. serviceaccounts/<name>/token for a TokenRequest).
  virtual absl::StatusOr<nlohmann::json> Create(const Target& target,
                                                const nlohmann::json& body,
                                                const WriteOptions& options) = 0;

  // PUT; `body` carries metadata.resourceVersion for optimistic concurrency
  // (ABORTED on conflict: see RetryOnConflict).
  virtual absl::StatusOr<nlohmann::json> Update(const Target& target,
                                                const nlohmann::json& body,
                                                const WriteOptions& options) = 0;

  virtual absl::StatusOr<nlohmann::json> Patch(const Target& target,
                                               PatchType type,
                                               const nlohmann::json& patch,
                                               const WriteOptions& options) = 0;

  // Returns the object as the server answered: the deleted object, or the
  // object with deletionTimestamp set while finalizers or grace run.
  virtual absl::StatusOr<nlohmann::json> Delete(
      const Target& target, const DeleteOptions& options) = 0;

  // Streams events of the collection `target` to `on_event` on the calling
  // thread until the server ends the stream (OK), `on_event` returns false
  // (OK), `cancel` is cancelled (CANCELLED), or an error. The initial request
  // counts against the QPS limit; the stream does not. A 410 before the
  // stream starts is returned as IsGone; one inside the stream arrives as a
  // kError event with code 410.
  virtual absl::Status Watch(const Target& target, const WatchOptions& options,
                             const WatchEventHandler& on_event,
                             WatchCancel* cancel) = 0;
};

struct ClientOptions {
  double qps = 50;  // <= 0: no client-side limit
  int burst = 100;
  int max_connections = 8;  // pooled keep-alive connections (watches extra)
  absl::Duration request_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(10);
  std::string user_agent;  // default "vkhost/<version> (linux/amd64)"
  int max_retries_on_429 = 3;  // honouring Retry-After, capped at 10 s each
};

// Builds a client for `config`. INVALID_ARGUMENT for a malformed server URL
// or unusable certificates, NOT_FOUND for an unreadable token file, each
// naming config.source. Connections open lazily, on the first request.
// Sets SIGPIPE to ignored if it is at its default (as gRPC does): TLS writes
// to a closed connection must fail, not kill the process.
absl::StatusOr<std::unique_ptr<KubeClient>> NewKubeClient(
    const RestConfig& config, const ClientOptions& options = {});

// Calls `on_page` with every page of the collection (options.limit items at
// a time) until metadata.continue is empty. Stops at the first error of the
// server or of `on_page`. If the continue token expires mid-way (IsGone),
// returns that error: the caller restarts, as the pages seen so far may be
// inconsistent with the rest.
absl::Status ListAllPages(
    KubeClient& client, const Target& target, ListOptions options,
    const std::function<absl::Status(nlohmann::json&& page)>& on_page);

// ---------------------------------------------------------------------------
// Errors
//
// HTTP status → absl::StatusCode: 400/422 INVALID_ARGUMENT, 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 405 UNIMPLEMENTED,
// 409 ALREADY_EXISTS (reason AlreadyExists) or ABORTED (a conflict), 410
// OUT_OF_RANGE (resource version or continue token expired), 429, 5xx and
// connection failures UNAVAILABLE. The message has the verb, the path and the
// server's metav1.Status message; the HTTP code and the Status reason ride as
// payloads, read with the functions below.

int HttpCode(const absl::Status& status);  // 0 if none (e.g. connection error)
std::string KubeReason(const absl::Status& status);  // "NotFound", "" if none

// absl::IsNotFound and absl::IsAlreadyExists answer those two cases.
bool IsConflict(const absl::Status& status);  // stale resourceVersion etc.
bool IsGone(const absl::Status& status);      // 410 Gone / Expired
// Worth retrying unchanged: throttled, server errors, connection failures.
bool IsTransient(const absl::Status& status);

// Builds the status for a failed response (exposed for the informer and
// tests). `body` is the response body, a metav1.Status when the API server
// produced it; anything else is quoted (truncated) in the message.
absl::Status StatusFromResponse(std::string_view verb, std::string_view path,
                                int http_code, std::string_view body);

// ---------------------------------------------------------------------------
// Retries

// Exponential backoff steps, as wait.Backoff in client-go.
struct Backoff {
  absl::Duration initial = absl::Milliseconds(10);
  double factor = 1.0;
  double jitter = 0.1;  // each wait grows by up to this fraction
  int steps = 5;        // attempts in total
  absl::Duration cap = absl::Seconds(30);
};
inline constexpr Backoff kDefaultConflictRetry{};  // retry.DefaultRetry
inline constexpr Backoff kDefaultTransientRetry{absl::Milliseconds(100), 2.0,
                                                0.1, 5, absl::Seconds(5)};

// Runs `attempt` until it returns anything but a conflict (IsConflict), at
// most backoff.steps times, sleeping between. Returns the last status.
absl::Status RetryOnConflict(const std::function<absl::Status()>& attempt,
                             const Backoff& backoff = kDefaultConflictRetry);

// Read-modify-write: GETs `target`, lets `mutate` change the object (return
// an error to give up; it is returned as is), PUTs it back, and starts over
// on a conflict. Returns the object the server stored.
absl::StatusOr<nlohmann::json> UpdateWithRetry(
    KubeClient& client, const Target& target,
    const std::function<absl::Status(nlohmann::json& object)>& mutate,
    const WriteOptions& options = {},
    const Backoff& backoff = kDefaultConflictRetry);

// Sends `patch`, retrying on conflicts (a patch that carries
// metadata.resourceVersion or that races a finalizer) and transient errors.
absl::StatusOr<nlohmann::json> PatchWithRetry(
    KubeClient& client, const Target& target, PatchType type,
    const nlohmann::json& patch, const WriteOptions& options = {},
    const Backoff& backoff = kDefaultTransientRetry);

}  // namespace vkhost::kube

#endif  // VKHOST_HOST_KUBE_CLIENT_H_
