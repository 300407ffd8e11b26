// host/kubeletapi: the node's kubelet endpoint (:10250), as the API server,
// kubectl and metrics-server expect it.
//
// The API server reaches a node's kubelet at status.daemonEndpoints for
// `kubectl logs/exec/attach/port-forward/top` and `get --raw .../proxy/...`.
// KubeletServer answers there over HTTPS: it authenticates every request the
// way the kubelet does (client certificate against a CA, else bearer token by
// TokenReview, else anonymous when allowed), authorizes it with a
// SubjectAccessReview on the `nodes` resource, and serves /healthz, /pods
// (from the pods informer), /containerLogs (streamed from the plugin's
// Streams.ContainerLogs), /stats/summary and /metrics/resource (from the
// plugin's Stats.GetStatsSummary). Requests that switch protocols (exec,
// attach, portForward over SPDY or WebSocket) are handed, once authorized,
// with their TLS connection to an UpgradeHandler; without one they get 501.
// /run executes a command through the plugin's Streams.Exec and answers
// with its output.
//
// Threading: one io_context run by a small fixed pool of threads does all
// socket work; blocking calls (TokenReview, SubjectAccessReview, unary plugin
// calls) run on a second small pool; log streams use gRPC's callback API. No
// thread per connection.
#ifndef VKHOST_HOST_KUBELETAPI_KUBELET_API_H_
#define VKHOST_HOST_KUBELETAPI_KUBELET_API_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vkhost::kube {
class KubeClient;
}
namespace vkhost::informer {
class Informer;
}
namespace vkhost::plugin {
class PluginClient;
}

namespace vkhost::kubeletapi {

struct KubeletServerOptions {
  // The node this server speaks for: the SubjectAccessReview's object name,
  // the /stats/summary nodeName and a SAN of a self-signed certificate.
  std::string node_name;
  // Where to listen. Port 0 picks a free port (see KubeletServer::port()).
  std::string address = "0.0.0.0";
  uint16_t port = 10250;
  // Serving certificate and key (PEM files). Both empty: a self-signed
  // certificate for node_name and node_ips is generated at Start(), which is
  // meant for testing (the API server does not verify kubelets by default).
  std::string tls_cert_file;
  std::string tls_private_key_file;
  std::vector<std::string> node_ips;  // IP SANs of the self-signed certificate
  // CA bundle that signs client certificates (the API server's
  // kubelet-client certificate). Empty: client certificates are not asked
  // for. Username = subject CN, groups = subject O entries.
  std::string client_ca_file;
  // Requests without credentials become system:anonymous (group
  // system:unauthenticated) instead of 401. They are still authorized.
  bool anonymous_auth = false;

  int io_threads = 2;        // run the io_context
  int blocking_threads = 4;  // TokenReview, SubjectAccessReview, plugin calls
  absl::Duration idle_timeout = absl::Seconds(90);  // between requests
  // An exec/attach/port-forward connection that moves no byte either way
  // for this long is closed (the kubelet's
  // --streaming-connection-idle-timeout). Zero or less: never.
  absl::Duration streaming_connection_idle_timeout = absl::Hours(4);
  absl::Duration handshake_timeout = absl::Seconds(30);
  absl::Duration write_timeout = absl::Minutes(5);  // one response write
  size_t max_header_bytes = 1 << 20;
  // How long answers of the API server are reused, and how many are kept.
  absl::Duration authn_success_ttl = absl::Minutes(2);
  absl::Duration authn_failure_ttl = absl::Seconds(10);
  absl::Duration authz_allowed_ttl = absl::Minutes(5);
  absl::Duration authz_denied_ttl = absl::Seconds(30);
  size_t auth_cache_entries = 4096;
};

// Who made a request, after authentication.
struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

// An authenticated, authorized request that asks to switch protocols
// (Connection: Upgrade) on /exec, /attach or /portForward.
struct UpgradeRequest {
  std::string route;  // "exec", "attach" or "portForward"
  std::string method;
  std::string target;  // path and query as sent
  // Every header line in order; names as sent (compare case-insensitively).
  std::vector<std::pair<std::string, std::string>> headers;
  // Query parameters in order, decoded; repeated names repeat (command=...).
  std::vector<std::pair<std::string, std::string>> query;
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;  // from the path if given (and checked), else the cache
  std::string container;  // empty for portForward
  UserInfo user;
};

// The HTTP answer an UpgradeHandler gives to a request: 101 hands the
// connection over, anything else is written as a normal response.
struct UpgradeResponse {
  int status = 101;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// A TLS connection after its 101 response, as a byte stream. Callbacks run
// on the connection's own serialized executor, never two at a time; methods
// may be called from any thread. At most one Read and one Write outstanding.
// The server keeps the connection in its live-session count until the last
// reference is dropped; Stop() closes it.
class UpgradedConnection {
 public:
  virtual ~UpgradedConnection() = default;
  // Delivers the next bytes (possibly some the client sent right after its
  // request header). Error status: the peer closed or the connection failed.
  virtual void Read(
      std::function<void(absl::Status status, std::string_view data)> done) = 0;
  virtual void Write(std::string data,
                     std::function<void(absl::Status status)> done) = 0;
  // Closes both directions; outstanding callbacks complete with errors.
  virtual void Close() = 0;
  // Runs `task` on the connection's executor, never inline: for completions
  // a layer above must not run under its caller's lock. Tasks are dropped
  // unrun once the server has stopped.
  virtual void Post(std::function<void()> task) = 0;
};

// Takes over upgrade requests (the SPDY/WebSocket bridges). Accept runs on a
// blocking-pool thread and may inspect headers to negotiate; Serve runs after
// the 101 has been written and owns the session from then on.
class UpgradeHandler {
 public:
  virtual ~UpgradeHandler() = default;
  virtual UpgradeResponse Accept(const UpgradeRequest& request) = 0;
  virtual void Serve(const UpgradeRequest& request,
                     std::shared_ptr<UpgradedConnection> connection) = 0;
};

// What the server reads and calls. All borrowed; they must outlive Stop().
struct KubeletServerDependencies {
  kube::KubeClient* kube = nullptr;        // TokenReview, SubjectAccessReview
  informer::Informer* pods = nullptr;      // pods bound to this node
  plugin::PluginClient* plugin = nullptr;  // Streams, Stats
  UpgradeHandler* upgrades = nullptr;      // null: upgrades answer 501
};

// The HTTPS server. Start() once, Stop() once (the destructor Stop()s).
// Thread-safe: port() and live_sessions() may be called from any thread.
class KubeletServer {
 public:
  KubeletServer(KubeletServerOptions options,
                KubeletServerDependencies dependencies);
  ~KubeletServer();
  KubeletServer(const KubeletServer&) = delete;
  KubeletServer& operator=(const KubeletServer&) = delete;

  // Loads or generates the serving certificate, loads the client CA, binds,
  // listens and starts the threads. INVALID_ARGUMENT for unusable options or
  // unreadable certificate files (naming the file), UNAVAILABLE when the
  // address cannot be bound. Nothing keeps running after a failure.
  absl::Status Start();

  // Closes the listener and every session (cancelling their plugin streams),
  // waits for them to go away, and joins all threads. Idempotent.
  void Stop();

  // The bound port (useful with port 0); 0 before Start().
  uint16_t port() const;

  // Connections (and upgraded sessions) currently alive.
  size_t live_sessions() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vkhost::kubeletapi

#endif  // VKHOST_HOST_KUBELETAPI_KUBELET_API_H_
