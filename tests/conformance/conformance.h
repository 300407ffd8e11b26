// tests/conformance: vkhost-conformance, the protocol checker for any plugin.
//
// In the spirit of csi-sanity, it takes a plugin (its command, which it
// launches like the host does, or the endpoint of a running one), calls it the
// way the host would and checks every MUST of spec.md that is visible from
// outside: the launch handshake, idempotency, error codes, status shapes, the
// WatchPodStatus protocol and the stream framing. Each check is one row of a
// table (name, capability it needs, function); checks whose capability the
// plugin does not list are skipped. It prints one PASS / FAIL / SKIP line per
// check and a summary, and always deletes the pods it created.
//
// This header is shared by the suite's files: runner.cc (flags, the loop,
// cleanup), context.cc (what checks share), subprocess.cc (processes the
// suite starts itself), and the check tables in identity_checks.cc,
// pod_checks.cc, stream_checks.cc and handshake_checks.cc.
#ifndef VKHOST_TESTS_CONFORMANCE_CONFORMANCE_H_
#define VKHOST_TESTS_CONFORMANCE_CONFORMANCE_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "host/plugin/plugin.h"
#include "vkhost/provider/v1/identity.grpc.pb.h"
#include "vkhost/provider/v1/node.grpc.pb.h"
#include "vkhost/provider/v1/pods.grpc.pb.h"
#include "vkhost/provider/v1/stats.grpc.pb.h"
#include "vkhost/provider/v1/streams.grpc.pb.h"

namespace vkhost::conformance {

namespace v1 = ::vkhost::provider::v1;

// What to check and with which workload. The workload defaults fit the mock
// plugin; a real backend may need another image or commands.
struct Options {
  // Exactly one of the two: launch mode (a shell-like command line) or
  // connect mode ("unix:///path", "tcp://host:port").
  std::string plugin_command;
  std::string endpoint;
  // Connect mode over TCP: mutual TLS.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;

  std::string image = "vkhost.io/conformance:1";
  // The containers' main process; must keep running.
  std::vector<std::string> container_command = {"sleep", "3600"};
  // Exec'd; must print `exec_echo_output` on stdout and exit 0.
  std::vector<std::string> exec_echo_command = {"echo", "vkhost-conformance"};
  std::string exec_echo_output = "vkhost-conformance";
  // Exec'd; must exit with `exit_code`.
  std::vector<std::string> exit_code_command = {"sh", "-c", "exit 3"};
  int exit_code = 3;
  // Exec'd; must copy stdin to stdout until end-of-file.
  std::vector<std::string> stdin_command = {"cat"};
  // A TCP port in the pod that echoes what it receives; 0 skips the
  // port-forward data check.
  int port_forward_port = 0;
  // How long pods get to reach Running, be forgotten after deletion, or
  // streams to deliver what a check waits for.
  absl::Duration timeout = absl::Seconds(60);
  // Only checks whose name matches (std::regex, searched) run.
  std::string run_regex;
  bool list = false;
  std::string log_level = "warning";
};

// The verdict of one check.
struct Outcome {
  enum class Kind { kPass, kFail, kSkip };
  Kind kind = Kind::kPass;
  std::string reason;

  static Outcome Pass() { return {}; }
  static Outcome Fail(std::string why) { return {Kind::kFail, std::move(why)}; }
  static Outcome Skip(std::string why) { return {Kind::kSkip, std::move(why)}; }
  // Pass for OK, Fail with the status message otherwise: for check bodies
  // written as absl::Status-returning steps.
  static Outcome FromStatus(const absl::Status& status);
};

// Ends a check with a failure when a step (an absl::Status expression)
// fails.
#define CONFORMANCE_RETURN_IF_ERROR(expr)                                 \
  do {                                                                    \
    if (::absl::Status step_status_ = (expr); !step_status_.ok()) {       \
      return ::vkhost::conformance::Outcome::FromStatus(step_status_);    \
    }                                                                     \
  } while (false)

// A gRPC status for a report line: "NOT_FOUND (\"pod abc is unknown\")",
// or just the code name when there is no message.
std::string Describe(const grpc::Status& status);
// Pass when `status` has `want`, otherwise a failure naming the call, the
// expected and the actual code.
absl::Status ExpectCode(const std::string& call, const grpc::Status& status,
                        grpc::StatusCode want);

// A child process the suite starts itself, with pipes on stdin, stdout and
// stderr, for the handshake rules that PluginConnection hides (spec.md §2.1)
// and for tests that drive other binaries.
//
// Runs in its own process group; destroying it kills that group with SIGKILL
// if it still runs, reaps it and joins the pipe readers. Thread-safe.
class Subprocess {
 public:
  // Starts `argv` (argv[0] looked up in PATH) with the suite's environment
  // minus every VKHOST_PLUGIN_* variable, plus `env` ("K=V" entries).
  // FAILED_PRECONDITION with errno text when it cannot be spawned.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv,
      const std::vector<std::string>& env);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  int pid() const { return pid_; }
  // The first stdout line without its '\n', once one is complete; nullopt
  // when stdout ended or `timeout` passed first.
  std::optional<std::string> FirstStdoutLine(absl::Duration timeout);
  // Everything read so far.
  std::string Stdout() const;
  std::string Stderr() const;
  // Closes our end of the child's stdin (it reads end-of-file).
  void CloseStdin();
  // Sends `signal` to the child itself; false if it is gone.
  bool Signal(int signal);
  // The raw wait status once it exited within `timeout`, else nullopt.
  std::optional<int> WaitForExit(absl::Duration timeout);
  // Waits for exit and for both output pipes to reach end-of-file, so
  // Stdout()/Stderr() are complete. False on timeout.
  bool WaitForOutput(absl::Duration timeout);

 private:
  Subprocess() = default;
  // Appends what `fd` yields to `sink` until end-of-file or stopping_,
  // then sets `ended`. Runs on a reader thread.
  void ReadPipe(int fd, std::string* sink, bool* ended);

  int pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  mutable absl::Mutex mu_;
  std::string stdout_ ABSL_GUARDED_BY(mu_);
  std::string stderr_ ABSL_GUARDED_BY(mu_);
  bool stdout_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool stderr_ended_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<int> wait_status_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread stdout_reader_;
  std::thread stderr_reader_;
};

// "exited with status 1", "killed by signal 9".
std::string DescribeWaitStatus(int wait_status);

// Reads a server stream on a background thread so a check can wait for
// particular messages while it calls other RPCs. Destroying it cancels the
// call and joins the thread. Thread-safe.
template <typename Response>
class BackgroundReader {
 public:
  using Predicate = std::function<bool(const Response&)>;

  // `open` starts the call on the given context (e.g. a lambda calling
  // stub.WatchPodStatus(ctx, request)).
  explicit BackgroundReader(
      std::function<std::unique_ptr<grpc::ClientReader<Response>>(
          grpc::ClientContext*)> open)
      : reader_(open(&context_)), thread_([this] { Run(); }) {}

  ~BackgroundReader() {
    context_.TryCancel();
    thread_.join();
  }
  BackgroundReader(const BackgroundReader&) = delete;
  BackgroundReader& operator=(const BackgroundReader&) = delete;

  // Index of the first message at or after `from` that satisfies `pred`,
  // waiting up to `timeout`; nullopt on timeout or when the stream ended
  // without one.
  std::optional<size_t> WaitFor(const Predicate& pred, absl::Duration timeout,
                                size_t from = 0) {
    absl::MutexLock lock(&mu_);
    size_t scanned = from;
    std::optional<size_t> found;
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (; scanned < received_.size(); ++scanned) {
        if (pred(received_[scanned])) {
          found = scanned;
          return true;
        }
      }
      return ended_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    return found;
  }

  // Copies of everything received so far.
  std::vector<Response> Received() const {
    absl::MutexLock lock(&mu_);
    return received_;
  }

  // The stream's final status once it ended by itself, else nullopt.
  std::optional<grpc::Status> EndStatus() const {
    absl::MutexLock lock(&mu_);
    if (!ended_) return std::nullopt;
    return end_status_;
  }

 private:
  void Run() {
    Response message;
    while (reader_->Read(&message)) {
      absl::MutexLock lock(&mu_);
      received_.push_back(message);
    }
    grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    end_status_ = std::move(status);
    ended_ = true;
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<Response>> reader_;
  mutable absl::Mutex mu_;
  std::vector<Response> received_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // Last: starts after everything it uses exists.
};

// What the checks share: the options, the connection to the plugin with a
// stub per service, and the pods created so far (for the final cleanup).
// Checks run one at a time on the runner's thread; not thread-safe.
class Context {
 public:
  Context(Options options, std::unique_ptr<plugin::PluginConnection> connection);
  ~Context();

  const Options& options() const { return options_; }
  bool launch_mode() const { return !options_.plugin_command.empty(); }
  // Launch mode: the plugin's argv.
  const std::vector<std::string>& plugin_argv() const { return plugin_argv_; }
  const plugin::PluginIdentity& identity() const;
  bool Has(v1::Capability capability) const;

  v1::Identity::Stub& identity_stub() { return *identity_; }
  v1::Pods::Stub& pods() { return *pods_; }
  v1::Streams::Stub& streams() { return *streams_; }
  v1::Node::Stub& node() { return *node_; }
  v1::Stats::Stub& stats() { return *stats_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }

  // A context for a unary call with the spec.md §8 pod deadline (30 s).
  static std::unique_ptr<grpc::ClientContext> Unary(
      absl::Duration deadline = absl::Seconds(30));

  // The check running now; names the pods it creates.
  void set_current_check(const std::string& name) { current_check_ = name; }

  // A new pod spec with a fresh UID and the name
  // vkhost-conformance-<check>-<random>, one container "main" running the
  // long-running command. Not created yet, but remembered for cleanup.
  v1::Pod NewPod();
  // A pod made by NewPod() whose containers are `names`, in that order.
  v1::Pod NewPodWithContainers(const std::vector<std::string>& names);

  // CreatePod with `pod`; the RPC's status.
  grpc::Status CreatePod(const v1::Pod& pod);
  grpc::Status DeletePod(const v1::PodRef& ref,
                         std::optional<int64_t> grace_period_seconds);
  absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef& ref,
                                             grpc::Status* rpc = nullptr);
  absl::StatusOr<std::vector<v1::PodStatus>> ListPods();

  // Creates a pod (NewPod()) and waits until all its containers run.
  // The error says what was last seen.
  absl::StatusOr<v1::Pod> StartRunningPod();
  // Polls GetPodStatus until every container of `pod` runs.
  absl::Status WaitForRunning(const v1::Pod& pod);
  // Polls until GetPodStatus says NOT_FOUND and ListPods omits the pod.
  absl::Status WaitForForgotten(const v1::PodRef& ref);

  // Deletes every pod created through this context (grace 0) and waits until
  // ListPods omits them all. The error names the pods left behind.
  absl::Status CleanUp();

 private:
  Options options_;
  std::vector<std::string> plugin_argv_;
  std::unique_ptr<plugin::PluginConnection> connection_;
  std::unique_ptr<v1::Identity::Stub> identity_;
  std::unique_ptr<v1::Pods::Stub> pods_;
  std::unique_ptr<v1::Streams::Stub> streams_;
  std::unique_ptr<v1::Node::Stub> node_;
  std::unique_ptr<v1::Stats::Stub> stats_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::string current_check_;
  std::vector<v1::PodRef> created_;
};

// "pod abc (vkhost-conformance/vkhost-conformance-x-1234)".
std::string DescribePod(const v1::PodRef& ref);
v1::PodRef RefOf(const v1::Pod& pod);

// One row of the check table.
struct Check {
  // "<group>.<what>", e.g. "pods.delete-unknown-ok"; what --run matches.
  const char* name;
  // The capability the plugin must list, CAPABILITY_UNSPECIFIED for none.
  v1::Capability capability;
  // Needs launch mode: the suite starts the plugin itself.
  bool launch_only;
  Outcome (*run)(Context& context);
};

// The tables, in the order they run.
const std::vector<Check>& IdentityChecks();
const std::vector<Check>& PodChecks();
const std::vector<Check>& StreamChecks();
const std::vector<Check>& HandshakeChecks();

// The whole program: parses `argv`, runs the selected checks, prints the
// report on stdout and returns the exit status (0 all passed, 1 a check
// failed or the plugin could not be reached, 2 usage error).
int RunConformance(int argc, char** argv);

}  // namespace vkhost::conformance

#endif  // VKHOST_TESTS_CONFORMANCE_CONFORMANCE_H_
