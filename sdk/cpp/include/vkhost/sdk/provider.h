// vkhost C++ SDK: write a provider plugin by implementing one class.
//
// A plugin is a process that runs pods on some backend for vkhost (see
// proto/vkhost/provider/v1/spec.md). With this SDK a plugin author subclasses
// `Provider`, overrides the operations the backend supports (every method not
// overridden answers UNIMPLEMENTED), lists the matching capabilities, and calls
// `Serve()`. The SDK does the rest: the launch-mode handshake or connect-mode
// listening, gRPC plumbing and stream framing, grpc.health.v1, the
// WatchPodStatus snapshot/SYNCED/changes protocol fed from `PodStatusFeed`,
// and clean shutdown on SIGTERM, SIGINT or when the host goes away.
//
// Errors are absl::Status values; their codes become the RPC's gRPC code, so
// return absl::NotFoundError for an unknown pod and so on, as spec.md §7 says.
//
// Threading: the SDK calls Provider methods concurrently from gRPC threads,
// several at once and while streams are open. Implementations must be
// thread-safe.
#ifndef VKHOST_SDK_PROVIDER_H_
#define VKHOST_SDK_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "vkhost/provider/v1/identity.pb.h"
#include "vkhost/provider/v1/node.pb.h"
#include "vkhost/provider/v1/pods.pb.h"
#include "vkhost/provider/v1/stats.pb.h"
#include "vkhost/provider/v1/streams.pb.h"

namespace vkhost::sdk {

namespace v1 = ::vkhost::provider::v1;

// Where pod status changes go so the SDK can serve WatchPodStatus.
//
// Publish every status change of a pod (the whole status) and PublishDeleted
// when the plugin forgets a pod after DeletePod. Each open WatchPodStatus
// stream receives them in order per pod; a slow stream gets the latest status
// of each pod rather than every intermediate one, so memory stays bounded.
// Thread-safe; cheap when no stream is open.
class PodStatusFeed {
 public:
  PodStatusFeed();
  ~PodStatusFeed();
  PodStatusFeed(const PodStatusFeed&) = delete;
  PodStatusFeed& operator=(const PodStatusFeed&) = delete;

  void Publish(const v1::PodStatus& status);
  void PublishDeleted(const v1::PodRef& pod);

  // One reader of the feed: the SDK's WatchPodStatus handler, or a test.
  // Holds the events published since Subscribe(), at most one per pod (the
  // latest; a DELETED event carries the pod's last unsent status if any),
  // oldest pod first. Used by one thread at a time; may outlive the feed.
  class Subscription {
   public:
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    // The next event (TYPE_STATUS or TYPE_DELETED), or nullopt when none
    // arrived by `deadline`.
    std::optional<v1::WatchPodStatusResponse> NextUntil(absl::Time deadline);

   private:
    friend class PodStatusFeed;
    struct Queue;
    struct Hub;
    Subscription(std::shared_ptr<Hub> hub, std::shared_ptr<Queue> queue);
    std::shared_ptr<Hub> hub_;
    std::shared_ptr<Queue> queue_;
  };
  // Events published from now on go to the returned subscription.
  std::unique_ptr<Subscription> Subscribe();

 private:
  std::shared_ptr<Subscription::Hub> hub_;
};

// A server stream the provider writes to (WatchNode, ContainerLogs).
// Write returns false once the host has gone away or cancelled; stop then.
template <typename Message>
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool Write(const Message& message) = 0;
  virtual bool IsCancelled() const = 0;
};

// One exec or attach session. Input is read by one thread at a time, output
// written by one thread at a time; reading and writing may happen
// concurrently on two threads.
class ProcessSession {
 public:
  struct Input {
    enum class Kind { kStdin, kResize, kStdinClosed, kEnded };
    Kind kind = Kind::kEnded;
    std::string data;          // kStdin
    v1::TerminalSize size;     // kResize
  };
  virtual ~ProcessSession() = default;
  // Blocks for the next frame from the host. kEnded once the host closed its
  // side or cancelled; no more input follows (later calls return kEnded at
  // once).
  Input Read() { return *ReadUntil(absl::InfiniteFuture()); }
  // Like Read, but gives up at `deadline` and returns nullopt, so a provider
  // can wait for input and for its own timers on one thread.
  virtual std::optional<Input> ReadUntil(absl::Time deadline) = 0;
  // False once the host is gone.
  virtual bool WriteStdout(absl::string_view data) = 0;
  virtual bool WriteStderr(absl::string_view data) = 0;
  virtual bool IsCancelled() const = 0;
};

// One port-forward connection.
class PortForwardSession {
 public:
  struct Input {
    enum class Kind { kData, kCloseWrite, kEnded };
    Kind kind = Kind::kEnded;
    std::string data;  // kData
  };
  virtual ~PortForwardSession() = default;
  // Blocks for the next frame from the host; kEnded once the host closed
  // its side or cancelled (later calls return kEnded at once).
  Input Read() { return *ReadUntil(absl::InfiniteFuture()); }
  // Like Read, but gives up at `deadline` and returns nullopt, so a provider
  // can notice that the pod closed the connection and end the RPC without
  // waiting for the host (spec.md §6, item 4).
  virtual std::optional<Input> ReadUntil(absl::Time deadline) = 0;
  virtual bool Write(absl::string_view data) = 0;
  // Reports a failed connection to the host; return OK from PortForward
  // afterwards.
  virtual bool WriteError(absl::string_view message) = 0;
  virtual bool IsCancelled() const = 0;
};

// The provider interface. Method comments name the RPC and its contract;
// spec.md is the full text.
class Provider {
 public:
  virtual ~Provider() = default;

  // --- Identity (mandatory) ---
  // Name (a DNS-1123 label) and version; must not fail.
  virtual v1::GetPluginInfoResponse PluginInfo() = 0;
  // The optional features implemented. Must be constant for the process.
  // List CAPABILITY_WATCH_POD_STATUS only if the provider publishes to
  // pod_status_feed().
  virtual std::vector<v1::Capability> Capabilities() = 0;
  // Readiness of the backend. Default: ready.
  virtual absl::StatusOr<v1::ProbeResponse> Probe();

  // --- Node ---
  virtual absl::StatusOr<v1::NodeStatus> GetNode(
      const v1::GetNodeRequest& request);
  // Write the current NodeStatus, then one per change, until Write fails.
  // Return when the stream should end (OK) or on error.
  virtual absl::Status WatchNode(const v1::WatchNodeRequest& request,
                                 StreamWriter<v1::NodeStatus>& out);

  // --- Pods (CreatePod, DeletePod, GetPodStatus, ListPods mandatory) ---
  virtual absl::Status CreatePod(const v1::Pod& pod);
  virtual absl::Status UpdatePod(const v1::Pod& pod);
  virtual absl::Status DeletePod(const v1::PodRef& pod,
                                 std::optional<int64_t> grace_period_seconds);
  virtual absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef& pod);
  virtual absl::StatusOr<std::vector<v1::PodStatus>> ListPods();

  // --- Streams ---
  // Write entries until done (OK) or Write fails.
  virtual absl::Status ContainerLogs(const v1::ContainerLogsRequest& request,
                                     StreamWriter<v1::ContainerLogsResponse>& out);
  // Run the command; return its exit status (the SDK sends it as the last
  // frame) or an error status before the process started (NOT_FOUND, ...).
  virtual absl::StatusOr<v1::ExitStatus> Exec(const v1::ExecStart& start,
                                              ProcessSession& session);
  virtual absl::StatusOr<v1::ExitStatus> Attach(const v1::AttachStart& start,
                                                ProcessSession& session);
  virtual absl::Status PortForward(const v1::PortForwardStart& start,
                                   PortForwardSession& session);

  // --- Stats ---
  virtual absl::StatusOr<v1::GetStatsSummaryResponse> GetStatsSummary();

  // Publish status changes here to get WatchPodStatus for free.
  PodStatusFeed& pod_status_feed() { return feed_; }

 private:
  PodStatusFeed feed_;
};

// How to serve. Empty `listen` means launch mode (started by vkhost, spec.md
// §2.1); otherwise connect mode on "unix:///path" or "tcp://host:port".
struct ServeOptions {
  std::string listen;
  // Connect mode over TCP: serve TLS with this certificate and key, and
  // require client certificates signed by `tls_client_ca_file` when set.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Largest message accepted from the host (spec.md §9).
  int max_receive_message_bytes = 64 << 20;
  // Time open streams get to finish on shutdown before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(2);
  // Protocol majors this plugin speaks (only 1 exists).
  std::vector<int> protocols = {1};
};

// absl::ParseCommandLine that also accepts dashed flag names: the SDK's and
// a plugin's flags are defined with underscores (tls_cert_file) and may be
// given as --tls-cert-file. Rewrites the names in `argv` in place and returns
// the positional arguments. Exits like absl on a bad flag.
std::vector<char*> ParseCommandLine(int argc, char* argv[]);

// Reads the SDK's standard flags (--listen, --tls-cert-file, --tls-key-file,
// --tls-client-ca-file, --log-level). Call after absl::ParseCommandLine.
ServeOptions ServeOptionsFromFlags();

// Serves `provider` until SIGTERM/SIGINT, stdin end-of-file (launch mode), or
// a fatal error. Returns OK on a clean shutdown; FAILED_PRECONDITION when
// started outside vkhost without --listen (missing magic cookie) or when no
// protocol version is shared with the host, after printing why to stderr;
// other errors when the socket cannot be created or served.
absl::Status Serve(Provider& provider, const ServeOptions& options);

// A main() body for after absl::ParseCommandLine: applies --log-level, serves
// with ServeOptionsFromFlags(), logs the outcome and returns the exit status
// (0 on clean shutdown, 1 otherwise).
int ServeMain(Provider& provider);

}  // namespace vkhost::sdk

#endif  // VKHOST_SDK_PROVIDER_H_
