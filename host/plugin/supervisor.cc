// PluginSupervisor: first connect, probes, restart with backoff.

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "host/plugin/plugin.h"

namespace vkhost::plugin {
namespace {

// What the supervisor thread, Stop() and the connections' exit callbacks
// share. Exit callbacks hold it by shared_ptr because a connection can
// outlive the supervisor while a caller still holds it.
struct SupervisorCore {
  absl::Mutex mu;
  absl::CondVar wake;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::shared_ptr<PluginConnection> current ABSL_GUARDED_BY(mu);
  absl::Status last_error ABSL_GUARDED_BY(mu) =
      absl::UnavailableError("the plugin supervisor has not started");
  uint64_t generation ABSL_GUARDED_BY(mu) = 0;
  // The newest generation whose process has exited.
  uint64_t exited_generation ABSL_GUARDED_BY(mu) = 0;
  // The probe RPC in flight, cancelled by Stop().
  grpc::ClientContext* inflight ABSL_GUARDED_BY(mu) = nullptr;
  // The last Identity.Probe answer (or its error) and the generation it was
  // for, so others need not probe too (PluginSupervisor::LastProbe).
  std::optional<absl::StatusOr<v1::ProbeResponse>> last_probe ABSL_GUARDED_BY(mu);
  uint64_t last_probe_generation ABSL_GUARDED_BY(mu) = 0;
};

std::string Quoted(const std::string& name) { return "\"" + name + "\""; }

absl::Status WithPrefix(const std::string& prefix, const absl::Status& status) {
  return absl::Status(status.code(), prefix + std::string(status.message()));
}

}  // namespace

struct PluginSupervisor::State {
  explicit State(Options o) : options(std::move(o)) {}

  const Options options;
  absl::Mutex listeners_mu;
  std::vector<ConnectListener> listeners ABSL_GUARDED_BY(listeners_mu);
  const std::shared_ptr<SupervisorCore> core =
      std::make_shared<SupervisorCore>();

  // Serialises Start() and Stop().
  absl::Mutex lifecycle_mu;
  bool started ABSL_GUARDED_BY(lifecycle_mu) = false;
  std::thread thread;  // The supervisor thread; guarded by lifecycle_mu.

  bool launch_mode() const { return !options.source.command.empty(); }

  uint64_t Install(const std::shared_ptr<PluginConnection>& connection);
  void Run();
  std::optional<std::string> WatchUntilLost(
      const std::shared_ptr<PluginConnection>& connection, uint64_t generation);
  absl::Status ProbeOnce(const PluginConnection& connection, uint64_t generation,
                         bool* ready);
  grpc::Status CallCancellable(grpc::ClientContext& ctx,
                               const std::function<grpc::Status()>& call);
  bool SleepUnlessStopped(absl::Duration duration);
};

uint64_t PluginSupervisor::State::Install(
    const std::shared_ptr<PluginConnection>& connection) {
  uint64_t generation;
  {
    absl::MutexLock lock(&core->mu);
    generation = ++core->generation;
    core->current = connection;
    core->last_error = absl::OkStatus();
  }
  connection->SetExitCallback([core = core, generation] {
    absl::MutexLock lock(&core->mu);
    core->exited_generation = std::max(core->exited_generation, generation);
    core->wake.SignalAll();
  });
  const PluginIdentity& id = connection->identity();
  VKLOG(INFO) << "plugin " << Quoted(id.name) << " " << id.version
              << " connected (generation " << generation << ", protocol v"
              << id.protocol_major << ", " << id.address
              << (connection->pid() ? absl::StrCat(", pid ", connection->pid())
                                    : "")
              << ")";
  std::vector<ConnectListener> to_call;
  {
    absl::MutexLock lock(&listeners_mu);
    to_call = listeners;
  }
  for (const ConnectListener& listener : to_call) listener(id, generation);
  return generation;
}

bool PluginSupervisor::State::SleepUnlessStopped(absl::Duration duration) {
  absl::MutexLock lock(&core->mu);
  absl::Time deadline = absl::Now() + duration;
  while (!core->stopping) {
    if (core->wake.WaitWithDeadline(&core->mu, deadline)) break;
  }
  return core->stopping;
}

grpc::Status PluginSupervisor::State::CallCancellable(
    grpc::ClientContext& ctx, const std::function<grpc::Status()>& call) {
  {
    absl::MutexLock lock(&core->mu);
    if (core->stopping) return grpc::Status(grpc::StatusCode::CANCELLED, "stopping");
    core->inflight = &ctx;
  }
  grpc::Status status = call();
  absl::MutexLock lock(&core->mu);
  core->inflight = nullptr;
  return status;
}

absl::Status PluginSupervisor::State::ProbeOnce(
    const PluginConnection& connection, uint64_t generation, bool* ready) {
  auto deadline = [this] {
    return absl::ToChronoTime(absl::Now() + options.deadlines.identity);
  };
  const std::string& name = connection.identity().name;
  {
    auto stub = v1::Identity::NewStub(connection.channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    v1::ProbeResponse response;
    grpc::Status s = CallCancellable(
        ctx, [&] { return stub->Probe(&ctx, {}, &response); });
    {
      absl::MutexLock lock(&core->mu);
      core->last_probe_generation = generation;
      if (s.ok()) {
        core->last_probe = response;
      } else {
        core->last_probe = WithPrefix("Identity.Probe: ", FromGrpc(s));
      }
    }
    if (!s.ok()) return WithPrefix("Identity.Probe: ", FromGrpc(s));
    if (response.ready() != *ready) {
      if (response.ready()) {
        VKLOG(INFO) << "plugin " << Quoted(name) << " is ready";
      } else {
        VKLOG(WARNING) << "plugin " << Quoted(name)
                       << " is not ready: " << response.message();
      }
      *ready = response.ready();
    }
  }
  auto stub = grpc::health::v1::Health::NewStub(connection.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline());
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s =
      CallCancellable(ctx, [&] { return stub->Check(&ctx, request, &response); });
  if (!s.ok()) return WithPrefix("grpc.health.v1.Health/Check: ", FromGrpc(s));
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(
        "grpc.health.v1.Health/Check: ",
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
            response.status())));
  }
  return absl::OkStatus();
}

std::optional<std::string> PluginSupervisor::State::WatchUntilLost(
    const std::shared_ptr<PluginConnection>& connection, uint64_t generation) {
  int failures = 0;
  bool ready = true;
  while (true) {
    {
      absl::MutexLock lock(&core->mu);
      absl::Time deadline = absl::Now() + options.probe_interval;
      while (!core->stopping && core->exited_generation < generation) {
        if (core->wake.WaitWithDeadline(&core->mu, deadline)) break;
      }
      if (core->stopping) return std::nullopt;
      if (core->exited_generation >= generation) {
        return "exited: " + connection->exit_description();
      }
    }
    absl::Status probe = ProbeOnce(*connection, generation, &ready);
    if (probe.ok()) {
      failures = 0;
      continue;
    }
    {
      absl::MutexLock lock(&core->mu);
      if (core->stopping) return std::nullopt;
    }
    ++failures;
    VKLOG(WARNING) << "plugin " << Quoted(connection->identity().name)
                   << " failed a health probe (" << failures << " of "
                   << options.probe_failure_threshold << "): " << probe;
    if (failures >= options.probe_failure_threshold) {
      return absl::StrCat("failed ", failures, " health probes in a row (last: ",
                          probe.message(), ")");
    }
  }
}

void PluginSupervisor::State::Run() {
  std::shared_ptr<PluginConnection> connection;
  uint64_t generation;
  {
    absl::MutexLock lock(&core->mu);
    connection = core->current;
    generation = core->generation;
  }
  const char* verb = launch_mode() ? "restarting" : "reconnecting";
  absl::Duration backoff = options.initial_backoff;
  int attempt = 1;  // Start() made the first.
  absl::Time connected_at = absl::Now();
  while (true) {
    std::optional<std::string> lost = WatchUntilLost(connection, generation);
    if (!lost.has_value()) return;
    std::string name = connection->identity().name;
    {
      absl::MutexLock lock(&core->mu);
      core->current.reset();
      core->last_error =
          absl::UnavailableError(absl::StrCat("plugin ", Quoted(name), " ", *lost));
    }
    connection.reset();  // Stops the process unless a caller still holds it.
    if (absl::Now() - connected_at >= options.stable_after) {
      backoff = options.initial_backoff;
      attempt = 1;
    }
    std::string reason = *lost;
    while (true) {
      ++attempt;
      VKLOG(WARNING) << "plugin " << Quoted(name) << " " << reason << "; "
                     << verb << " in " << absl::FormatDuration(backoff)
                     << " (attempt " << attempt << ")";
      if (SleepUnlessStopped(backoff)) return;
      backoff = std::min(backoff * 2, options.max_backoff);
      absl::StatusOr<std::unique_ptr<PluginConnection>> opened =
          PluginConnection::Open(options.source);
      if (opened.ok()) {
        {
          absl::MutexLock lock(&core->mu);
          if (core->stopping) return;
        }
        connection = *std::move(opened);
        generation = Install(connection);
        connected_at = absl::Now();
        break;
      }
      {
        absl::MutexLock lock(&core->mu);
        core->last_error = opened.status();
      }
      reason = absl::StrCat("could not be started: ", opened.status().message());
    }
  }
}

PluginSupervisor::PluginSupervisor(Options options)
    : state_(std::make_unique<State>(std::move(options))) {}

PluginSupervisor::~PluginSupervisor() { Stop(); }

void PluginSupervisor::AddConnectListener(ConnectListener listener) {
  absl::MutexLock lock(&state_->listeners_mu);
  state_->listeners.push_back(std::move(listener));
}

absl::Status PluginSupervisor::Start() {
  absl::MutexLock lock(&state_->lifecycle_mu);
  if (state_->started) {
    return absl::FailedPreconditionError("the plugin supervisor was started already");
  }
  {
    absl::MutexLock core_lock(&state_->core->mu);
    if (state_->core->stopping) {
      return absl::FailedPreconditionError("the plugin supervisor was stopped");
    }
  }
  absl::StatusOr<std::unique_ptr<PluginConnection>> opened =
      PluginConnection::Open(state_->options.source);
  if (!opened.ok()) {
    absl::MutexLock core_lock(&state_->core->mu);
    state_->core->last_error = opened.status();
    return opened.status();
  }
  state_->started = true;
  state_->Install(*std::move(opened));
  state_->thread = std::thread([state = state_.get()] { state->Run(); });
  return absl::OkStatus();
}

void PluginSupervisor::Stop() {
  absl::MutexLock lock(&state_->lifecycle_mu);
  {
    absl::MutexLock core_lock(&state_->core->mu);
    state_->core->stopping = true;
    state_->core->wake.SignalAll();
    if (state_->core->inflight != nullptr) state_->core->inflight->TryCancel();
  }
  if (state_->thread.joinable()) state_->thread.join();
  std::shared_ptr<PluginConnection> last;
  {
    absl::MutexLock core_lock(&state_->core->mu);
    last = std::move(state_->core->current);
    state_->core->current.reset();
    state_->core->last_error =
        absl::UnavailableError("the plugin supervisor has stopped");
  }
  if (last != nullptr && state_->started) {
    VKLOG(INFO) << "stopping plugin " << Quoted(last->identity().name);
  }
  last.reset();
}

absl::StatusOr<std::shared_ptr<PluginConnection>> PluginSupervisor::Current()
    const {
  absl::MutexLock lock(&state_->core->mu);
  if (state_->core->current != nullptr) return state_->core->current;
  return absl::UnavailableError(absl::StrCat(
      "no plugin connected: ", state_->core->last_error.message()));
}

std::optional<absl::StatusOr<v1::ProbeResponse>> PluginSupervisor::LastProbe() const {
  absl::MutexLock lock(&state_->core->mu);
  const SupervisorCore& core = *state_->core;
  if (core.current == nullptr || core.last_probe_generation != core.generation) {
    return std::nullopt;
  }
  return core.last_probe;
}

uint64_t PluginSupervisor::generation() const {
  absl::MutexLock lock(&state_->core->mu);
  return state_->core->generation;
}

const Deadlines& PluginSupervisor::deadlines() const {
  return state_->options.deadlines;
}

}  // namespace vkhost::plugin
