// host/resolve: turns a v1.Pod from the API server into the curated
// vkhost.provider.v1.Pod a plugin receives, with everything that needs
// Kubernetes credentials already resolved.
//
// The pod controller calls ResolvePod before CreatePod and again before every
// UpdatePod. It resolves exactly what the kubelet resolves when it starts a
// container: the environment (service links, KUBERNETES_SERVICE_*, envFrom,
// env with $(VAR) expansion, ConfigMap/Secret keys, the downward API) and the
// file contents of configMap, secret, downwardAPI and projected volumes,
// including service-account tokens from the TokenRequest API. Everything else
// of the pod spec is copied into the proto, and the whole pod goes along as
// JSON. Objects come from an ObjectSource the caller implements (informer
// caches and API calls in production, an in-memory fake in tests).
//
// A pod whose references are missing does not resolve: the result carries the
// waiting reason and the Event the kubelet would show, and the controller
// retries until the reference appears. A pod with projected tokens resolves
// with the time at which it must be resolved again so the plugin gets a fresh
// token before the old one expires.
//
// No I/O, no clock, no threads, no shared state: ResolvePod is safe to call
// from many threads at once as long as the ObjectSource is.
#ifndef VKHOST_HOST_RESOLVE_RESOLVE_H_
#define VKHOST_HOST_RESOLVE_RESOLVE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::resolve {

// What ObjectSource::ServiceAccountToken asks the TokenRequest API for: a
// token of `service_account` bound to the pod.
struct TokenRequest {
  std::string namespace_name;
  std::string service_account;
  // Empty means the API server's default audiences.
  std::string audience;
  int64_t expiration_seconds = 3600;
  std::string pod_name;
  std::string pod_uid;

  bool operator==(const TokenRequest&) const = default;
};

// A token as the TokenRequest API returned it.
struct Token {
  std::string token;
  // status.expirationTimestamp.
  absl::Time expiration;
  // spec.expirationSeconds of the response (the API server may differ from
  // the request). 0 or less means "as requested".
  int64_t expiration_seconds = 0;
};

// When the kubelet would replace `token`: once it is older than 80% of its
// lifetime or older than 24 hours, whichever comes first (the kubelet adds up
// to 10 s of jitter; this does not). A caching ObjectSource hands out a cached
// token until this time and fetches a new one after.
absl::Time TokenRefreshTime(const Token& token);

// Where ResolvePod reads Kubernetes objects. Implementations must be safe to
// call from the threads that call ResolvePod.
class ObjectSource {
 public:
  virtual ~ObjectSource() = default;

  // The ConfigMap / Secret as JSON. NOT_FOUND when it does not exist (the pod
  // waits for it, unless the reference is optional); any other error is
  // treated as transient (the controller retries soon).
  virtual absl::StatusOr<std::shared_ptr<const nlohmann::json>> ConfigMap(
      const std::string& namespace_name, const std::string& name) = 0;
  virtual absl::StatusOr<std::shared_ptr<const nlohmann::json>> Secret(
      const std::string& namespace_name, const std::string& name) = 0;

  // Every Service of the namespace, as JSON, for service-link variables.
  virtual std::vector<std::shared_ptr<const nlohmann::json>> Services(
      const std::string& namespace_name) = 0;

  // A token for a projected serviceAccountToken volume. NOT_FOUND when the
  // service account does not exist; other errors are transient. Production
  // implementations should cache by request until TokenRefreshTime, as the
  // kubelet does, so re-resolving a pod does not mint a new token every time.
  virtual absl::StatusOr<Token> ServiceAccountToken(
      const TokenRequest& request) = 0;
};

// One port of a Service, for service-link variables.
struct ServicePort {
  std::string name;
  int32_t port = 0;
  // "TCP" when empty.
  std::string protocol;
};

// A Service's cluster address.
struct ServiceAddress {
  std::string cluster_ip;
  std::vector<ServicePort> ports;
};

// Facts about the node and the cluster that resolution depends on.
struct ResolveOptions {
  std::string node_name;
  // The node's addresses as the host advertises them; the first is the
  // pod's status.hostIP. Host-network pods also get them as their pod IPs.
  std::vector<std::string> host_ips;
  // Node allocatable in Kubernetes quantity syntax for "cpu", "memory" and
  // "ephemeral-storage": resourceFieldRef limits a container does not set
  // default to these, as on the kubelet.
  std::map<std::string, std::string> allocatable;
  // The `kubernetes` Service of namespace `default`, source of the
  // KUBERNETES_SERVICE_* / KUBERNETES_PORT* variables every container gets
  // (also with enableServiceLinks: false). Unset means none. It wins over the
  // Service of that name listed by ObjectSource::Services("default"), so an
  // operator can point pods of a remote backend at a reachable address.
  std::optional<ServiceAddress> kubernetes_service;
};

// Something the kubelet reports as a Warning Event without stopping the pod
// (e.g. reason "InvalidEnvironmentVariableNames").
struct Warning {
  std::string reason;
  std::string message;
  // Container the warning is about, empty for the pod.
  std::string container_name;
};

// A pod resolved for the plugin.
struct ResolvedPod {
  provider::v1::Pod pod;
  // When the pod must be resolved again and sent with UpdatePod because a
  // projected token is due for refresh; InfiniteFuture without tokens.
  absl::Time refresh_at = absl::InfiniteFuture();
  std::vector<Warning> warnings;
};

// Why a pod did not resolve, in the words the kubelet uses.
struct ResolveFailure {
  // For the containers' waiting state: "CreateContainerConfigError" (an env
  // or mount reference of a container) or "ContainerCreating" (a volume: the
  // kubelet keeps the pod ContainerCreating while it cannot mount).
  std::string waiting_reason;
  // Waiting message; empty with ContainerCreating.
  std::string waiting_message;
  // Warning Event: reason "Failed" with message "Error: <cause>", or
  // "FailedMount" with `MountVolume.SetUp failed for volume "v" : <cause>`.
  std::string event_reason;
  std::string event_message;
  // The container (env) or volume the failure is about.
  std::string container_name;
  std::string volume_name;
};

struct ResolveResult {
  // OK; FAILED_PRECONDITION when a required ConfigMap, Secret, key or service
  // account is missing (retry when objects change), with the kubelet's
  // wording, e.g. `configmap "cfg" not found` or
  // `couldn't find key k in ConfigMap ns/cfg`; UNAVAILABLE when the source
  // failed transiently (retry with backoff); INVALID_ARGUMENT when the pod
  // itself is malformed (bad volume path, bad quantity, not a pod).
  absl::Status status;
  // Valid when status is OK.
  ResolvedPod resolved;
  // Valid when status is not OK (fields may be empty for a malformed pod).
  ResolveFailure failure;
};

// Resolves `pod` (a v1.Pod as JSON). Reads objects through `source`; never
// throws, never crashes on malformed input.
ResolveResult ResolvePod(const nlohmann::json& pod, ObjectSource& source,
                         const ResolveOptions& options);

}  // namespace vkhost::resolve

#endif  // VKHOST_HOST_RESOLVE_RESOLVE_H_
