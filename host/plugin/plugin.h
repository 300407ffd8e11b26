// host/plugin: how the host reaches its provider plugin.
//
// The rest of vkhost never sees a process, a socket or a handshake: it asks a
// PluginSupervisor for the current PluginConnection and calls the plugin
// through a PluginClient, which applies the per-RPC deadlines of spec.md §8
// and turns gRPC errors into absl::Status. The supervisor launches the plugin
// executable (launch mode) or dials an endpoint (connect mode), negotiates the
// protocol version and capabilities, probes health, restarts a dead plugin
// with exponential backoff and tells its listeners after every (re)connect so
// they can resync.
#ifndef VKHOST_HOST_PLUGIN_PLUGIN_H_
#define VKHOST_HOST_PLUGIN_PLUGIN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "vkhost/provider/v1/identity.grpc.pb.h"
#include "vkhost/provider/v1/node.grpc.pb.h"
#include "vkhost/provider/v1/pods.grpc.pb.h"
#include "vkhost/provider/v1/stats.grpc.pb.h"
#include "vkhost/provider/v1/streams.grpc.pb.h"

namespace vkhost::plugin {

namespace v1 = ::vkhost::provider::v1;

// The launch-mode handshake constants of spec.md §2.1.
inline constexpr char kMagicCookieEnv[] = "VKHOST_PLUGIN_MAGIC_COOKIE";
inline constexpr char kMagicCookieValue[] = "vkhost-provider-plugin-7c1e4a0f9d2b";
inline constexpr char kProtocolVersionsEnv[] = "VKHOST_PLUGIN_PROTOCOL_VERSIONS";
inline constexpr char kSocketDirEnv[] = "VKHOST_PLUGIN_SOCKET_DIR";
inline constexpr int kCoreVersion = 1;
// Protocol majors this host speaks, highest first.
inline constexpr int kSupportedProtocols[] = {1};

// Where the plugin comes from: exactly one of `command` (launch mode) and
// `endpoint` (connect mode) is set.
struct PluginSource {
  // Launch mode: argv of the plugin, argv[0] looked up in PATH when it has
  // no '/'.
  std::vector<std::string> command;
  // Connect mode: "unix:///abs/path" or "tcp://host:port".
  std::string endpoint;
  // Connect mode over TCP: mutual TLS files. All empty means plaintext
  // (refused unless the host is loopback).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Launch mode: how long the plugin has to print its handshake line, and
  // then to accept the connection. Connect mode: how long the endpoint has
  // to accept the connection.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Launch mode: parent of the plugin's private socket directory; empty
  // means the plugin's default.
  std::string socket_dir;
  // Launch mode: the protocol majors offered, highest first. Tests override
  // it to provoke a version mismatch.
  std::vector<int> offered_protocols = {std::begin(kSupportedProtocols),
                                        std::end(kSupportedProtocols)};
  // Launch mode: extra environment entries "K=V" for the plugin. The
  // plugin inherits the host's environment otherwise.
  std::vector<std::string> extra_env;
};

// Parses a shell-like command line ("cmd --flag 'a b'") into argv: words
// split on blanks, single and double quotes and backslash escapes honoured.
// INVALID_ARGUMENT for an unterminated quote or an empty command.
absl::StatusOr<std::vector<std::string>> SplitCommandLine(
    const std::string& line);

// What the host learnt about a connected plugin.
struct PluginIdentity {
  std::string name;
  std::string version;
  std::map<std::string, std::string> manifest;
  int protocol_major = 0;
  // The address the channel uses, e.g. "unix:///tmp/vkhost-plugin-X/plugin.sock".
  std::string address;
  // Only the capabilities this host knows.
  std::set<v1::Capability> capabilities;

  bool Has(v1::Capability c) const { return capabilities.count(c) > 0; }
};

// Human-readable capability name without prefix, e.g. "WATCH_POD_STATUS".
std::string CapabilityName(v1::Capability c);

// One established connection to a plugin: for launch mode the child process
// (its stdin pipe, stdout/stderr readers that log with the plugin's name),
// and the gRPC channel with its negotiated identity.
//
// Thread-safe: every method may be called from any thread. Destroying it
// closes the channel and, in launch mode, stops the process: closes its
// stdin, sends SIGTERM, then SIGKILL after 5 s, and reaps it. The plugin runs
// in its own process group, so a terminal's Ctrl-C reaches only the host.
class PluginConnection {
 public:
  // Starts the plugin of `source.command`, reads its handshake, dials it and
  // negotiates. Failure is a status whose message says what went wrong and,
  // when the process printed anything on stderr, ends with its last lines:
  //   INVALID_ARGUMENT: empty command;
  //   FAILED_PRECONDITION: the executable cannot be started; wrong handshake
  //     (bad line, core or protocol version not offered, network other than
  //     unix, not grpc); the plugin exited with status 1 before its
  //     handshake, which is how it refuses the cookie or the versions
  //     (spec.md §2.1); it does not speak v1 or has an empty name;
  //   DEADLINE_EXCEEDED: no handshake within the timeout;
  //   UNAVAILABLE: the plugin exited otherwise before its handshake, or its
  //     socket cannot be dialed, or an Identity call failed.
  // Nothing keeps running after a failure.
  static absl::StatusOr<std::unique_ptr<PluginConnection>> Launch(
      const PluginSource& source);

  // Dials `source.endpoint` and negotiates. UNAVAILABLE when nothing
  // answers within `source.handshake_timeout`, FAILED_PRECONDITION when the
  // peer does not speak v1 or a TLS file cannot be read, INVALID_ARGUMENT for
  // a malformed endpoint or plaintext TCP to a non-loopback host.
  static absl::StatusOr<std::unique_ptr<PluginConnection>> Dial(
      const PluginSource& source);

  // Launch or Dial, whichever `source` asks for.
  static absl::StatusOr<std::unique_ptr<PluginConnection>> Open(
      const PluginSource& source);

  ~PluginConnection();
  PluginConnection(const PluginConnection&) = delete;
  PluginConnection& operator=(const PluginConnection&) = delete;

  const PluginIdentity& identity() const;
  std::shared_ptr<grpc::Channel> channel() const;

  // Launch mode: the child's pid, or 0 in connect mode.
  int pid() const;

  // Launch mode: true once the process has exited; `exit_description`
  // then says how ("exited with status 2", "killed by signal 9").
  // Connect mode: always false.
  bool Exited() const;
  std::string exit_description() const;

  // Blocks until the process exits or `timeout` passes; true if it exited.
  // Connect mode: waits out the timeout and returns false.
  bool WaitForExit(absl::Duration timeout) const;

  // The last lines the plugin wrote to stderr (at most ~4 KiB).
  std::string StderrTail() const;

  // Launch mode: runs `callback` once when the process exits, on an internal
  // thread (or at once on the caller's thread if it has already exited), so
  // a watcher notices an exit without polling. Replaces an earlier callback.
  // The callback must not block and must not destroy this connection.
  // Connect mode: never called.
  void SetExitCallback(std::function<void()> callback);

 private:
  struct State;
  explicit PluginConnection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Per-RPC deadlines (spec.md §8).
struct Deadlines {
  absl::Duration identity = absl::Seconds(5);
  absl::Duration node = absl::Seconds(10);
  absl::Duration stats = absl::Seconds(10);
  absl::Duration pods = absl::Seconds(30);
};

// Keeps one plugin available for the life of the host.
//
// Start() connects once and fails if that first attempt fails, so an operator
// sees a broken plugin at once. After that a background thread probes the
// plugin (Identity.Probe and grpc.health.v1 Check) every `probe_interval`;
// when the process exits, or `probe_failure_threshold` probes fail in a row,
// it logs why, drops the connection and reconnects with exponential backoff
// (initial_backoff doubling up to max_backoff, reset after the plugin stayed
// up for `stable_after`). Each successful (re)connect calls every listener.
//
// Thread-safe. Listeners run on the thread that calls Start() for the first
// connect and on the supervisor's thread afterwards; they must not block for
// long and must not call Start() or Stop().
//
// A process exit is noticed at once (not at the next probe). Dropping a
// connection stops a launched plugin as soon as no caller holds it any more
// (PluginClient holds it only for one call; stream owners should let go when
// the generation changes).
class PluginSupervisor {
 public:
  struct Options {
    PluginSource source;
    Deadlines deadlines;
    absl::Duration probe_interval = absl::Seconds(10);
    int probe_failure_threshold = 3;
    absl::Duration initial_backoff = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(60);
    absl::Duration stable_after = absl::Seconds(120);
  };

  // Called after every successful connect; `generation` counts connects
  // from 1. The host resyncs its pods when it changes.
  using ConnectListener =
      std::function<void(const PluginIdentity& identity, uint64_t generation)>;

  explicit PluginSupervisor(Options options);
  ~PluginSupervisor();  // Stop()s.
  PluginSupervisor(const PluginSupervisor&) = delete;
  PluginSupervisor& operator=(const PluginSupervisor&) = delete;

  // Registers a listener for every later connect. Listeners added before
  // Start() also see the first one; any thread, any time.
  void AddConnectListener(ConnectListener listener);

  // Connects for the first time and starts supervising. The error of the
  // first attempt is returned as is and nothing keeps running.
  absl::Status Start();

  // Stops supervising and closes the connection (stopping a launched plugin:
  // SIGTERM, SIGKILL after 5 s). Wakes the supervisor thread and joins it; a
  // restart in progress finishes first (at most the handshake timeout).
  // Idempotent.
  void Stop();

  // The current connection, or UNAVAILABLE (with the last error) while the
  // plugin is down and being restarted.
  absl::StatusOr<std::shared_ptr<PluginConnection>> Current() const;

  // The current connection's last Identity.Probe answer, or the error that
  // probe got; nullopt while no plugin is connected or before the first
  // probe of this connection (one probe_interval after the connect). Lets
  // others read readiness without probing the plugin themselves.
  std::optional<absl::StatusOr<v1::ProbeResponse>> LastProbe() const;

  // Number of successful connects so far.
  uint64_t generation() const;

  const Deadlines& deadlines() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Typed calls to the current plugin with the supervisor's deadlines. Unary
// calls return the plugin's answer or its gRPC error as an absl::Status with
// the same code; UNAVAILABLE while no plugin is connected; UNIMPLEMENTED
// without calling when the plugin lacks the capability the RPC needs.
//
// Thread-safe; holds a borrowed supervisor that must outlive it.
class PluginClient {
 public:
  explicit PluginClient(const PluginSupervisor& supervisor);

  absl::StatusOr<v1::ProbeResponse> Probe();
  absl::StatusOr<v1::NodeStatus> GetNode(const std::string& node_name);
  absl::Status CreatePod(const v1::Pod& pod);
  absl::Status UpdatePod(const v1::Pod& pod);
  absl::Status DeletePod(const v1::PodRef& pod,
                         std::optional<int64_t> grace_period_seconds);
  absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef& pod);
  absl::StatusOr<std::vector<v1::PodStatus>> ListPods();
  absl::StatusOr<v1::GetStatsSummaryResponse> GetStatsSummary();

  // For streaming RPCs the caller drives the generated stub itself; this
  // returns the connection (so it stays alive while the stream runs) or
  // UNAVAILABLE / UNIMPLEMENTED as above.
  absl::StatusOr<std::shared_ptr<PluginConnection>> ConnectionFor(
      v1::Capability needed);

 private:
  const PluginSupervisor& supervisor_;
};

// Maps a gRPC status to an absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace vkhost::plugin

#endif  // VKHOST_HOST_PLUGIN_PLUGIN_H_
