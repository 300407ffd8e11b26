// PodRuntime; see pod_runtime.h for the lifecycle it implements.
#include "plugins/process/pod_runtime.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "google/protobuf/util/time_util.h"
#include "plugins/process/network_checks.h"
#include "plugins/process/process_tree.h"
#include "plugins/process/shim.h"
#include "plugins/process/whole_file.h"

namespace vkhost::process {
namespace {

constexpr int64_t kDefaultGraceSeconds = 30;
constexpr char kDefaultPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(t));
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// VKHOST_VOLUME_<NAME>: upper case, '-' and '.' become '_'.
std::string EnvName(absl::string_view prefix, absl::string_view name) {
  std::string out = absl::StrCat(prefix, absl::AsciiStrToUpper(name));
  for (char& ch : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return out;
}

bool SafeRelative(absl::string_view path) {
  if (path.empty() || path[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return false;
  }
  return true;
}

// Memory limit in bytes from a Kubernetes quantity; 0 when absent or
// unparsable.
int64_t ParseQuantityBytes(absl::string_view text) {
  static const std::pair<const char*, double> kSuffixes[] = {
      {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0},
      {"Ti", 1099511627776.0}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6},
      {"G", 1e9}, {"T", 1e12}, {"m", 1e-3}};
  double factor = 1;
  for (const auto& [suffix, value] : kSuffixes) {
    if (absl::EndsWith(text, suffix)) {
      factor = value;
      text.remove_suffix(strlen(suffix));
      break;
    }
  }
  double number = 0;
  if (!absl::SimpleAtod(text, &number) || number <= 0) return 0;
  return static_cast<int64_t>(number * factor);
}

bool KillShim(pid_t shim, uint64_t ticks, int signal) {
  if (!ProcessAlive(shim, ticks)) return false;
  return kill(shim, signal) == 0;
}

}  // namespace

// ------------------------------------------------------------ PortAllocator

int PortAllocator::Allocate() {
  absl::MutexLock lock(&mu_);
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof addr;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    if (port != 0 && used_.insert(port).second) return port;
  }
  return 0;
}

void PortAllocator::Reserve(int port) {
  absl::MutexLock lock(&mu_);
  used_.insert(port);
}

void PortAllocator::Release(int port) {
  absl::MutexLock lock(&mu_);
  used_.erase(port);
}

// ------------------------------------------------------------- the runtime

struct PodRuntime::Container {
  ContainerRecord rec;
  v1::Container spec;
  bool init = false;
  bool sidecar = false;
  ImageTarget image;
  std::vector<std::string> argv;
  std::vector<BindMount> mounts;
  std::vector<std::string> extra_env;  // VKHOST_* for this container
  BackoffClock backoff{absl::Seconds(10)};
  std::optional<ProbeTracker> liveness, readiness, startup;
  absl::Time kill_at = absl::InfiniteFuture();  // forced kill of a stopping instance
  bool stopping = false;
  absl::Time next_kill_signal = absl::InfinitePast();

  bool waiting() const { return rec.status.state().has_waiting(); }
};

struct PodRuntime::ProbeJob {
  std::string container;
  int instance = 0;
  enum Kind { kLiveness, kReadiness, kStartup } kind = kLiveness;
  v1::ContainerProbe probe;
  ExecTarget target;
  absl::Duration timeout;
};

struct PodRuntime::HookJob {
  std::string container;
  int instance = 0;
  bool post_start = false;
  v1::LifecycleHandler handler;
  ExecTarget target;
};

absl::Status WriteVolumeFiles(const std::string& dir, const v1::FilesVolume& files) {
  std::set<std::string> keep;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  for (const v1::VolumeFile& file : files.files()) {
    if (!SafeRelative(file.path())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "volume file path \"", file.path(), "\" is absolute or contains \"..\""));
    }
    const std::string path = absl::StrCat(dir, "/", file.path());
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path(), error);
    if (absl::Status s = WriteFileAtomic(path, file.content()); !s.ok()) return s;
    chmod(path.c_str(), file.mode() == 0 ? 0644 : static_cast<mode_t>(file.mode() & 07777));
    keep.insert(path);
  }
  std::vector<std::string> stale;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir, error)) {
    if (entry.is_regular_file() && !keep.contains(entry.path().string())) {
      stale.push_back(entry.path().string());
    }
  }
  for (const std::string& path : stale) std::filesystem::remove(path, error);
  return absl::OkStatus();
}

namespace {

// Resolves image and argv of one container: INVALID_ARGUMENT when this
// backend can never run it.
absl::Status ResolveContainer(const ImageMap& images, PodRuntime::Container& c);

}  // namespace

absl::StatusOr<std::unique_ptr<PodRuntime>> PodRuntime::Create(const v1::Pod& pod,
                                                                Deps deps) {
  if (pod.containers_size() == 0) {
    return absl::InvalidArgumentError("the pod has no containers");
  }
  // Check everything before touching the disk.
  std::map<std::string, std::string> volume_dirs;
  const std::string pod_dir = deps.store.PodDir(pod.uid());
  for (const v1::Volume& volume : pod.volumes()) {
    if (volume.name().empty() || !SafeRelative(volume.name()) ||
        absl::StrContains(volume.name(), "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("volume name \"", volume.name(), "\" is not a plain name"));
    }
    switch (volume.source_case()) {
      case v1::Volume::kHostPath:
        volume_dirs[volume.name()] = volume.host_path().path();
        break;
      case v1::Volume::kFiles:
      case v1::Volume::kEmptyDir:
        volume_dirs[volume.name()] = absl::StrCat(pod_dir, "/volumes/", volume.name());
        break;
      case v1::Volume::kUnresolved:
        return absl::InvalidArgumentError(absl::StrCat(
            "volume \"", volume.name(), "\" is a ", volume.unresolved().kind(),
            " volume, which the process plugin cannot provide (it supports "
            "configMap, secret, projected, downwardAPI, emptyDir and hostPath)"));
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("volume \"", volume.name(), "\" has no source"));
    }
  }
  auto runtime = std::unique_ptr<PodRuntime>(new PodRuntime(pod, PodRecord{}, deps));
  absl::MutexLock lock(&runtime->mu_);
  for (auto& c : runtime->containers_) {
    if (absl::Status s = ResolveContainer(deps.images, *c); !s.ok()) return s;
    for (const v1::VolumeMount& mount : c->spec.volume_mounts()) {
      auto it = volume_dirs.find(mount.name());
      if (it == volume_dirs.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("container \"", c->spec.name(), "\" mounts volume \"",
                         mount.name(), "\", which the pod does not define"));
      }
    }
  }
  // Ports: one host port per declared containerPort.
  PodRecord& record = runtime->record_;
  record.uid = pod.uid();
  record.start_time = absl::Now();
  for (const auto& c : runtime->containers_) {
    for (const v1::ContainerPort& port : c->spec.ports()) {
      if (port.container_port() <= 0 || record.ports.contains(port.container_port())) {
        continue;
      }
      int host_port = port.host_port() > 0 ? port.host_port() : deps.ports.Allocate();
      if (host_port == 0) {
        return absl::ResourceExhaustedError("no free host port for the pod's ports");
      }
      if (port.host_port() > 0) deps.ports.Reserve(host_port);
      record.ports[port.container_port()] = host_port;
    }
  }
  if (absl::Status s = deps.store.SaveSpec(pod); !s.ok()) return s;
  for (const v1::Volume& volume : pod.volumes()) {
    const std::string& dir = volume_dirs[volume.name()];
    if (volume.has_files()) {
      if (absl::Status s = WriteVolumeFiles(dir, volume.files()); !s.ok()) {
        deps.store.Remove(pod.uid());
        return s;
      }
    } else if (volume.has_empty_dir()) {
      std::error_code error;
      std::filesystem::create_directories(dir, error);
      chmod(dir.c_str(), 0777);
    }
  }
  runtime->SaveAndPublish();
  return runtime;
}

std::unique_ptr<PodRuntime> PodRuntime::Adopt(PodStateStore::Loaded loaded, Deps deps) {
  auto runtime = std::unique_ptr<PodRuntime>(
      new PodRuntime(loaded.spec, std::move(loaded.record), deps));
  absl::MutexLock lock(&runtime->mu_);
  for (auto& c : runtime->containers_) {
    if (absl::Status s = ResolveContainer(deps.images, *c); !s.ok()) {
      VKLOG(WARNING) << "pod " << runtime->uid_ << ": " << s.message()
                     << "; its running instances are kept but will not restart";
    }
  }
  for (const auto& [container_port, host_port] : runtime->record_.ports) {
    deps.ports.Reserve(host_port);
  }
  int adopted = 0;
  for (auto& c : runtime->containers_) {
    if (c->rec.active) ++adopted;
    if (c->rec.active && c->rec.status.state().has_running()) {
      // Probes start over; readiness is re-established by the next probe.
      absl::Time started = FromProto(c->rec.status.state().running().started_at());
      if (c->spec.has_liveness_probe()) {
        c->liveness.emplace(TimingOf(c->spec.liveness_probe()), true, started);
      }
      // Keep the last verdict so a plugin restart does not flap readiness.
      if (c->spec.has_readiness_probe()) {
        c->readiness.emplace(TimingOf(c->spec.readiness_probe()), c->rec.status.ready(),
                             absl::Now());
      }
      if (c->spec.has_startup_probe() && !c->rec.status.started()) {
        c->startup.emplace(TimingOf(c->spec.startup_probe()), false, started);
      }
    }
  }
  VKLOG(INFO) << "adopted pod " << loaded.spec.namespace_() << "/" << loaded.spec.name()
              << " (" << runtime->uid_ << ") with " << adopted
              << " running container instance(s)";
  return runtime;
}

PodRuntime::PodRuntime(v1::Pod spec, PodRecord record, Deps deps)
    : uid_(spec.uid()), deps_(deps), spec_(std::move(spec)), record_(std::move(record)) {
  auto add = [&](const v1::Container& container_spec, bool init,
                 std::vector<ContainerRecord>& records) {
    auto c = std::make_unique<Container>();
    c->spec = container_spec;
    c->init = init;
    c->sidecar = init && container_spec.restart_policy() == v1::RESTART_POLICY_ALWAYS;
    c->backoff = BackoffClock(deps_.config.restart_backoff);
    auto it = std::find_if(records.begin(), records.end(), [&](const ContainerRecord& r) {
      return r.name == container_spec.name();
    });
    if (it != records.end()) {
      c->rec = *it;
    } else {
      c->rec.name = container_spec.name();
      c->rec.status.set_name(container_spec.name());
      auto* waiting = c->rec.status.mutable_state()->mutable_waiting();
      waiting->set_reason(init || spec_.init_containers_size() == 0 ? "ContainerCreating"
                                                                      : "PodInitializing");
    }
    c->rec.status.set_image(container_spec.image());
    c->backoff.Restore(c->rec.backoff_consecutive);
    for (const v1::VolumeMount& mount : container_spec.volume_mounts()) {
      for (const v1::Volume& volume : spec_.volumes()) {
        if (volume.name() != mount.name()) continue;
        std::string source = volume.has_host_path()
                                 ? volume.host_path().path()
                                 : absl::StrCat(deps_.store.PodDir(uid_), "/volumes/",
                                                volume.name());
        if (!mount.sub_path().empty() && SafeRelative(mount.sub_path())) {
          absl::StrAppend(&source, "/", mount.sub_path());
        }
        c->mounts.push_back(BindMount{source, mount.mount_path(), mount.read_only()});
      }
    }
    containers_.push_back(std::move(c));
  };
  for (const auto& c : spec_.init_containers()) add(c, true, record_.init);
  for (const auto& c : spec_.containers()) add(c, false, record_.app);
}

namespace {

absl::Status ResolveContainer(const ImageMap& images, PodRuntime::Container& c) {
  absl::StatusOr<ImageTarget> image = images.Resolve(c.spec.image());
  if (!image.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "container \"", c.spec.name(), "\": ", image.status().message()));
  }
  c.image = *image;
  c.argv.clear();
  if (c.spec.command_size() > 0) {
    c.argv.assign(c.spec.command().begin(), c.spec.command().end());
  } else if (!image->entrypoint.empty()) {
    c.argv = image->entrypoint;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "container \"", c.spec.name(), "\" has no command, and image \"",
        c.spec.image(), "\" has no entrypoint in the process plugin's image map "
        "(set `command`, or give the image one with --image NAME=ROOT:ENTRYPOINT)"));
  }
  c.argv.insert(c.argv.end(), c.spec.args().begin(), c.spec.args().end());
  return absl::OkStatus();
}

}  // namespace

PodRuntime::~PodRuntime() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PodRuntime::Start() { thread_ = std::thread([this] { Run(); }); }

void PodRuntime::Run() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || wake_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), deps_.config.tick);
      if (stop_ || forgotten_) return;
      wake_ = false;
    }
    Step();
  }
}

void PodRuntime::Step() {
  std::vector<ProbeJob> probes;
  std::vector<HookJob> hooks;
  absl::Time hook_deadline = absl::InfiniteFuture();
  bool term_hooks = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    bool changed = false;
    for (auto& c : containers_) {
      if (c->rec.active) changed |= CheckExit(*c, now);
    }
    if (record_.terminating) {
      changed |= TerminationStep(now, &hooks);
      term_hooks = !hooks.empty();
      hook_deadline = record_.kill_at;
    } else {
      changed |= CheckDeadline(now);
      changed |= EnforceKills(now);
      if (!record_.deadline_exceeded) {
        changed |= StartDue(now, &hooks);
        CollectProbes(now, &probes);
      }
    }
    if (changed) SaveAndPublish();
    if (forgotten_) return;
  }
  if (!hooks.empty()) {
    RunHooks(hooks, hook_deadline);
    if (term_hooks) {
      absl::MutexLock lock(&mu_);
      wake_ = true;
    }
  }
  for (const ProbeJob& job : probes) {
    bool success = false;
    const v1::ContainerProbe& p = job.probe;
    if (p.has_exec()) {
      std::vector<std::string> argv(p.exec().command().begin(), p.exec().command().end());
      success = RunToCompletion(job.target, argv, job.timeout, [this] {
                  absl::MutexLock lock(&mu_);
                  return stop_;
                }).exit_code == 0;
    } else if (p.has_http_get()) {
      success = HttpGetSucceeds(p.http_get(),
                                p.http_get().host().empty() ? "127.0.0.1" : p.http_get().host(),
                                HostPort(p.http_get().port()), job.timeout);
    } else if (p.has_tcp_socket()) {
      success = TcpConnects(p.tcp_socket().host().empty() ? "127.0.0.1" : p.tcp_socket().host(),
                            HostPort(p.tcp_socket().port()), job.timeout);
    } else if (p.has_grpc()) {
      // No gRPC health client here: the port accepting counts as serving.
      success = TcpConnects("127.0.0.1", HostPort(p.grpc().port()), job.timeout);
    }
    absl::MutexLock lock(&mu_);
    if (stop_) return;  // cut short by shutdown: not a verdict
    if (ApplyProbe(job, success, absl::Now())) SaveAndPublish();
  }
}

bool PodRuntime::CheckExit(Container& c, absl::Time now) {
  const std::string dir = deps_.store.InstanceDir(uid_, c.rec.name, c.rec.instance);
  std::optional<ExitRecord> exit = ReadExitRecord(dir);
  if (!exit) {
    if (ProcessAlive(c.rec.shim_pid, c.rec.shim_start_ticks)) return false;
    exit = ReadExitRecord(dir);  // it may have written it just before ending
  }
  waitpid(c.rec.shim_pid, nullptr, WNOHANG);  // reap when it is our child
  if (!exit) {
    exit = ExitRecord{};
    exit->exit_code = 137;
    exit->reason = "Error";
    exit->message = absl::StrCat("the container's shim (pid ", c.rec.shim_pid,
                                 ") ended without recording an exit code");
    exit->finished_at = now;
    // Whatever it left behind must not run on unsupervised.
    if (auto workload = ReadWorkloadPid(dir);
        workload && ProcessAlive(workload->pid, workload->start_ticks)) {
      KillTree(workload->pid);
    }
  }
  OnExit(c, *exit, now);
  return true;
}

void PodRuntime::OnExit(Container& c, const ExitRecord& exit, absl::Time now) {
  c.rec.active = false;
  c.stopping = false;
  c.kill_at = absl::InfiniteFuture();
  c.next_kill_signal = absl::InfinitePast();
  c.liveness.reset();
  c.readiness.reset();
  c.startup.reset();
  v1::ContainerState terminated_state;
  auto* terminated = terminated_state.mutable_terminated();
  terminated->set_exit_code(exit.exit_code);
  terminated->set_signal(exit.signal);
  terminated->set_reason(exit.reason.empty() ? (exit.exit_code == 0 ? "Completed" : "Error")
                                             : exit.reason);
  terminated->set_message(exit.message);
  absl::Time started = now;
  if (c.rec.status.state().has_running()) {
    *terminated->mutable_started_at() = c.rec.status.state().running().started_at();
    started = FromProto(c.rec.status.state().running().started_at());
  }
  *terminated->mutable_finished_at() = ToProto(exit.finished_at);
  terminated->set_container_id(c.rec.status.container_id());
  v1::ContainerStatus& status = *&c.rec.status;
  status.set_ready(false);
  status.set_started(false);
  const v1::RestartPolicy policy =
      EffectiveRestartPolicy(spec_.restart_policy(), c.init, c.sidecar);
  if (!record_.terminating && !record_.deadline_exceeded &&
      ShouldRestart(policy, exit.exit_code)) {
    absl::Duration delay = c.backoff.NextDelay(started, exit.finished_at);
    c.rec.backoff_consecutive = c.backoff.consecutive();
    c.rec.next_start = now + delay;
    *status.mutable_last_state() = terminated_state;
    auto* waiting = status.mutable_state()->mutable_waiting();
    waiting->set_reason("CrashLoopBackOff");
    waiting->set_message(absl::StrCat("back-off ", absl::FormatDuration(delay),
                                      " restarting failed container=", c.rec.name,
                                      " pod=", spec_.name(), "_", spec_.namespace_(),
                                      "(", uid_, ")"));
    VKLOG(INFO) << "pod " << spec_.namespace_() << "/" << spec_.name() << " container "
                << c.rec.name << " exited with " << exit.exit_code << "; restarting in "
                << absl::FormatDuration(delay);
    return;
  }
  *status.mutable_state() = terminated_state;
  if (c.init && !c.sidecar && exit.exit_code == 0 && !record_.terminating) {
    ++record_.next_init;
  }
}

bool PodRuntime::StartDue(absl::Time now, std::vector<HookJob>* hooks) {
  bool changed = false;
  auto due = [&](const Container& c) {
    if (c.rec.active) return false;
    if (c.rec.instance == 0) return true;
    return c.waiting() && c.rec.status.state().waiting().reason() == "CrashLoopBackOff" &&
           now >= c.rec.next_start;
  };
  size_t init_index = 0;
  for (auto& c : containers_) {
    if (!c->init) continue;
    // Sidecars before the current init container keep running.
    if (init_index < record_.next_init && c->sidecar && due(*c)) {
      changed |= StartInstance(*c, now, hooks);
    }
    ++init_index;
  }
  const size_t init_count = static_cast<size_t>(spec_.init_containers_size());
  while (record_.next_init < init_count) {
    Container& c = *containers_[record_.next_init];
    if (c.sidecar && c.rec.instance > 0) {
      ++record_.next_init;  // a started sidecar lets the next one go
      changed = true;
      continue;
    }
    if (due(c)) changed |= StartInstance(c, now, hooks);
    if (c.sidecar && c.rec.active) {
      ++record_.next_init;
      changed = true;
      continue;
    }
    return changed;
  }
  for (auto& c : containers_) {
    if (!c->init && due(*c)) changed |= StartInstance(*c, now, hooks);
  }
  return changed;
}

bool PodRuntime::StartInstance(Container& c, absl::Time now, std::vector<HookJob>* hooks) {
  if (c.argv.empty()) return false;  // unresolvable after an image map change
  const int instance = c.rec.instance + 1;
  const std::string dir = deps_.store.InstanceDir(uid_, c.rec.name, instance);
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  std::filesystem::create_directories(dir, error);
  LaunchSpec launch;
  launch.argv = c.argv;
  ExecTarget target = TargetOf(c);
  launch.env = target.env;
  launch.working_dir = c.spec.working_dir();
  launch.root = c.image.root;
  launch.tty = c.spec.tty();
  launch.stdin = c.spec.stdin();
  launch.mount_namespace = deps_.config.mount_namespace;
  launch.mounts = c.mounts;
  launch.log_max_bytes = deps_.config.log_max_bytes;
  launch.run_as_user = target.run_as_user;
  launch.run_as_group = target.run_as_group;
  if (auto it = c.spec.resources().limits().find("memory");
      it != c.spec.resources().limits().end()) {
    launch.memory_limit_bytes = ParseQuantityBytes(it->second);
  }
  if (!deps_.config.cgroup_parent.empty()) {
    launch.cgroup_dir = absl::StrCat(deps_.config.cgroup_parent, "/", uid_, "-", c.rec.name,
                                     "-", instance);
  }
  if (absl::Status s = WriteFileAtomic(dir + "/launch.json", EncodeLaunchSpec(launch));
      !s.ok()) {
    VKLOG(WARNING) << "pod " << uid_ << " container " << c.rec.name << ": " << s.message();
    return false;
  }
  // Everything the child needs is prepared before fork (the plugin is
  // multi-threaded).
  std::string exe = deps_.config.self_exe;
  std::string shim_word = "shim";
  std::string arg0 = "vkhost-process-shim";
  std::string dir_arg = dir;
  char* argv[] = {arg0.data(), shim_word.data(), dir_arg.data(), nullptr};
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  int log_fd = open((dir + "/shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    // Never hold the plugin's stdio: the host watches those pipes.
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(log_fd >= 0 ? log_fd : null_fd, 2);
    close_range(3, ~0U, 0);
    execv(exe.c_str(), argv);
    _exit(127);
  }
  if (null_fd >= 0) close(null_fd);
  if (log_fd >= 0) close(log_fd);
  if (pid < 0) {
    VKLOG(WARNING) << "pod " << uid_ << " container " << c.rec.name
                   << ": fork: " << strerror(errno);
    return false;
  }
  c.rec.instance = instance;
  c.rec.active = true;
  c.rec.shim_pid = pid;
  c.rec.shim_start_ticks = ProcessStartTicks(pid).value_or(0);
  v1::ContainerStatus& status = c.rec.status;
  if (instance > 1) status.set_restart_count(status.restart_count() + 1);
  status.set_container_id(absl::StrCat("process://", uid_, "/", c.rec.name, "/", instance));
  status.set_image_id(absl::StrCat("process://", c.image.root));
  *status.mutable_state()->mutable_running()->mutable_started_at() = ToProto(now);
  if (c.spec.has_startup_probe()) c.startup.emplace(TimingOf(c.spec.startup_probe()), false, now);
  if (c.spec.has_liveness_probe()) {
    c.liveness.emplace(TimingOf(c.spec.liveness_probe()), true, now);
  }
  if (c.spec.has_readiness_probe()) {
    c.readiness.emplace(TimingOf(c.spec.readiness_probe()), false, now);
  }
  status.set_started(!c.startup.has_value());
  status.set_ready(status.started() && !c.readiness.has_value());
  // Keep the current and the previous instance only.
  if (instance > 2) {
    std::filesystem::remove_all(deps_.store.InstanceDir(uid_, c.rec.name, instance - 2), error);
  }
  if (c.spec.has_post_start()) {
    hooks->push_back(HookJob{c.rec.name, instance, true, c.spec.post_start(), target});
  }
  VKLOG(DEBUG) << "pod " << uid_ << " container " << c.rec.name << " instance " << instance
               << " started (shim pid " << pid << ")";
  return true;
}

void PodRuntime::CollectProbes(absl::Time now, std::vector<ProbeJob>* jobs) {
  for (auto& c : containers_) {
    if (!c->rec.active || c->stopping) continue;
    auto add = [&](std::optional<ProbeTracker>& tracker, const v1::ContainerProbe& probe,
                   ProbeJob::Kind kind) {
      if (!tracker || !tracker->Due(now)) return;
      jobs->push_back(ProbeJob{c->rec.name, c->rec.instance, kind, probe, TargetOf(*c),
                               tracker->timing().timeout});
    };
    if (c->startup && !c->startup->ok()) {
      add(c->startup, c->spec.startup_probe(), ProbeJob::kStartup);
      continue;
    }
    add(c->liveness, c->spec.liveness_probe(), ProbeJob::kLiveness);
    add(c->readiness, c->spec.readiness_probe(), ProbeJob::kReadiness);
  }
}

bool PodRuntime::ApplyProbe(const ProbeJob& job, bool success, absl::Time now) {
  Container* c = Find(job.container);
  if (c == nullptr || !c->rec.active || c->rec.instance != job.instance || c->stopping) {
    return false;
  }
  v1::ContainerStatus& status = c->rec.status;
  const absl::Duration grace = absl::Seconds(
      job.probe.has_termination_grace_period_seconds()
          ? job.probe.termination_grace_period_seconds()
          : (spec_.has_termination_grace_period_seconds()
                 ? spec_.termination_grace_period_seconds()
                 : kDefaultGraceSeconds));
  switch (job.kind) {
    case ProbeJob::kStartup:
      c->startup->Record(success, now);
      if (c->startup->ok()) {
        status.set_started(true);
        status.set_ready(!c->readiness.has_value());
        if (c->liveness) *c->liveness = ProbeTracker(c->liveness->timing(), true, now);
        return true;
      }
      if (c->startup->failed()) {
        VKLOG(INFO) << "pod " << uid_ << " container " << c->rec.name
                    << " failed its startup probe; restarting it";
        StopInstance(*c, grace, now);
        return true;
      }
      return false;
    case ProbeJob::kLiveness:
      c->liveness->Record(success, now);
      if (!c->liveness->ok()) {
        VKLOG(INFO) << "pod " << uid_ << " container " << c->rec.name
                    << " failed its liveness probe; restarting it";
        StopInstance(*c, grace, now);
        return true;
      }
      return false;
    case ProbeJob::kReadiness:
      if (c->readiness->Record(success, now)) {
        status.set_ready(c->readiness->ok() && status.started());
        return true;
      }
      return false;
  }
  return false;
}

void PodRuntime::StopInstance(Container& c, absl::Duration grace, absl::Time now) {
  if (!c.rec.active) return;
  c.stopping = true;
  c.kill_at = std::min(c.kill_at, now + grace);
  KillShim(c.rec.shim_pid, c.rec.shim_start_ticks, grace <= absl::ZeroDuration() ? SIGUSR1 : SIGTERM);
}

bool PodRuntime::CheckDeadline(absl::Time now) {
  if (record_.deadline_exceeded || !spec_.has_active_deadline_seconds() ||
      now < record_.start_time + absl::Seconds(spec_.active_deadline_seconds())) {
    return false;
  }
  VKLOG(INFO) << "pod " << spec_.namespace_() << "/" << spec_.name()
              << " exceeded its activeDeadlineSeconds; stopping it";
  record_.deadline_exceeded = true;
  const absl::Duration grace = absl::Seconds(spec_.has_termination_grace_period_seconds()
                                                 ? spec_.termination_grace_period_seconds()
                                                 : kDefaultGraceSeconds);
  for (auto& c : containers_) {
    if (c->rec.active) {
      StopInstance(*c, grace, now);
    } else if (c->waiting()) {
      auto* terminated = c->rec.status.mutable_state()->mutable_terminated();
      terminated->set_exit_code(137);
      terminated->set_reason("DeadlineExceeded");
      *terminated->mutable_finished_at() = ToProto(now);
    }
  }
  return true;
}

bool PodRuntime::EnforceKills(absl::Time now) {
  for (auto& c : containers_) {
    if (c->rec.active && now >= c->kill_at && now >= c->next_kill_signal) {
      // Once a second is enough: the shim kills the whole tree each time.
      c->next_kill_signal = now + absl::Seconds(1);
      if (!KillShim(c->rec.shim_pid, c->rec.shim_start_ticks, SIGUSR1)) {
        const std::string dir = deps_.store.InstanceDir(uid_, c->rec.name, c->rec.instance);
        if (auto w = ReadWorkloadPid(dir); w && ProcessAlive(w->pid, w->start_ticks)) {
          KillTree(w->pid);
        }
      }
    }
  }
  return false;
}

bool PodRuntime::TerminationStep(absl::Time now, std::vector<HookJob>* hooks) {
  bool any_active = false;
  for (auto& c : containers_) any_active |= c->rec.active;
  if (any_active && !stop_signals_sent_) {
    if (now < record_.kill_at) {
      for (auto& c : containers_) {
        if (c->rec.active && c->spec.has_pre_stop()) {
          hooks->push_back(
              HookJob{c->rec.name, c->rec.instance, false, c->spec.pre_stop(), TargetOf(*c)});
        }
      }
      if (!hooks->empty()) {
        // Hooks run first (outside the lock); the next step signals.
        stop_signals_sent_ = true;
        for (auto& c : containers_) c->kill_at = std::min(c->kill_at, record_.kill_at);
        return false;
      }
    }
    stop_signals_sent_ = true;
    for (auto& c : containers_) {
      if (c->rec.active) StopInstance(*c, record_.kill_at - now, now);
    }
    return false;
  }
  if (any_active) {
    for (auto& c : containers_) {
      if (c->rec.active && !c->stopping) StopInstance(*c, record_.kill_at - now, now);
      c->kill_at = std::min(c->kill_at, record_.kill_at);
    }
    EnforceKills(now);
    return false;
  }
  for (auto& c : containers_) {
    if (!c->rec.status.state().has_terminated()) {
      auto* terminated = c->rec.status.mutable_state()->mutable_terminated();
      terminated->set_exit_code(0);
      terminated->set_reason("Completed");
      terminated->set_message("the pod was deleted before this container ran again");
      *terminated->mutable_finished_at() = ToProto(now);
      c->rec.status.set_ready(false);
      c->rec.status.set_started(false);
    }
  }
  Forget();
  return false;
}

void PodRuntime::Forget() {
  deps_.feed.Publish(BuildStatus());
  // Mount points the shims created on the host for bind mounts.
  std::vector<std::string> created;
  for (auto& c : containers_) {
    for (int i = std::max(1, c->rec.instance - 1); i <= c->rec.instance; ++i) {
      std::string list =
          ReadWholeFile(deps_.store.InstanceDir(uid_, c->rec.name, i) + "/mountpoints");
      for (absl::string_view path : absl::StrSplit(list, '\n', absl::SkipEmpty())) {
        created.emplace_back(path);
      }
    }
  }
  std::sort(created.rbegin(), created.rend());  // deepest first
  for (const std::string& path : created) {
    if (rmdir(path.c_str()) != 0 && errno == ENOTDIR) {
      struct stat st;
      if (stat(path.c_str(), &st) == 0 && st.st_size == 0) unlink(path.c_str());
    }
  }
  for (const auto& [container_port, host_port] : record_.ports) {
    deps_.ports.Release(host_port);
  }
  deps_.store.Remove(uid_);
  v1::PodRef ref;
  ref.set_uid(uid_);
  ref.set_namespace_(spec_.namespace_());
  ref.set_name(spec_.name());
  deps_.feed.PublishDeleted(ref);
  forgotten_ = true;
  VKLOG(INFO) << "pod " << spec_.namespace_() << "/" << spec_.name() << " (" << uid_
              << ") terminated and forgotten";
}

void PodRuntime::RunHooks(const std::vector<HookJob>& hooks, absl::Time deadline) {
  // The plugin shutting down does not wait for hooks (they run again, or
  // not, after the restart).
  auto stopping = [this] {
    absl::MutexLock lock(&mu_);
    return stop_;
  };
  for (const HookJob& hook : hooks) {
    if (stopping()) return;
    absl::Duration budget = std::min(absl::Seconds(30), deadline - absl::Now());
    if (budget <= absl::ZeroDuration()) budget = absl::Seconds(1);
    bool ok = true;
    std::string detail;
    const v1::LifecycleHandler& h = hook.handler;
    if (h.has_exec()) {
      std::vector<std::string> argv(h.exec().command().begin(), h.exec().command().end());
      RunResult result = RunToCompletion(hook.target, argv, budget, stopping);
      ok = result.exit_code == 0;
      detail = result.output;
    } else if (h.has_http_get()) {
      ok = HttpGetSucceeds(h.http_get(),
                           h.http_get().host().empty() ? "127.0.0.1" : h.http_get().host(),
                           HostPort(h.http_get().port()), budget);
    } else if (h.has_tcp_socket()) {
      ok = TcpConnects("127.0.0.1", HostPort(h.tcp_socket().port()), budget);
    } else if (h.has_sleep()) {
      const absl::Time until = absl::Now() + std::min(budget, absl::Seconds(h.sleep().seconds()));
      while (absl::Now() < until && !stopping()) absl::SleepFor(absl::Milliseconds(50));
    }
    if (ok || !hook.post_start || stopping()) continue;
    VKLOG(INFO) << "pod " << uid_ << " container " << hook.container
                << ": postStart hook failed; killing the container. " << detail;
    absl::MutexLock lock(&mu_);
    Container* c = Find(hook.container);
    if (c != nullptr && c->rec.active && c->rec.instance == hook.instance) {
      StopInstance(*c, absl::ZeroDuration(), absl::Now());
    }
  }
}

ExecTarget PodRuntime::TargetOf(const Container& c) const {
  ExecTarget target;
  std::map<std::string, std::string> seen;
  std::vector<std::string> order;
  auto set = [&](const std::string& name, const std::string& value) {
    if (!seen.contains(name)) order.push_back(name);
    seen[name] = value;
  };
  for (const v1::EnvVar& var : c.spec.env()) set(var.name(), var.value());
  auto set_default = [&](const std::string& name, const std::string& value) {
    if (!seen.contains(name)) set(name, value);
  };
  set_default("PATH", kDefaultPath);
  set_default("HOSTNAME", spec_.hostname().empty() ? spec_.name() : spec_.hostname());
  set_default("HOME", "/root");
  if (c.spec.tty()) set_default("TERM", "xterm");
  const std::string pod_dir = deps_.store.PodDir(uid_);
  set("VKHOST_POD_DIR", pod_dir);
  for (const v1::VolumeMount& mount : c.spec.volume_mounts()) {
    for (const v1::Volume& volume : spec_.volumes()) {
      if (volume.name() != mount.name()) continue;
      std::string dir = volume.has_host_path()
                            ? volume.host_path().path()
                            : absl::StrCat(pod_dir, "/volumes/", volume.name());
      set(EnvName("VKHOST_VOLUME_", volume.name()), dir);
    }
  }
  for (const auto& [container_port, host_port] : record_.ports) {
    set(absl::StrCat("VKHOST_PORT_", container_port), absl::StrCat(host_port));
  }
  for (const std::string& name : order) target.env.push_back(name + "=" + seen[name]);
  target.working_dir = c.spec.working_dir();
  target.root = c.image.root.empty() ? "/" : c.image.root;
  if (deps_.config.mount_namespace && !c.mounts.empty() && c.rec.active) {
    target.mount_ns_pid = c.rec.shim_pid;
  }
  const auto& pod_sc = spec_.security_context();
  const auto& sc = c.spec.security_context();
  if (sc.has_run_as_user()) {
    target.run_as_user = static_cast<uint32_t>(sc.run_as_user());
  } else if (pod_sc.has_run_as_user()) {
    target.run_as_user = static_cast<uint32_t>(pod_sc.run_as_user());
  }
  if (sc.has_run_as_group()) {
    target.run_as_group = static_cast<uint32_t>(sc.run_as_group());
  } else if (pod_sc.has_run_as_group()) {
    target.run_as_group = static_cast<uint32_t>(pod_sc.run_as_group());
  }
  return target;
}

PodRuntime::Container* PodRuntime::Find(const std::string& name) const {
  for (const auto& c : containers_) {
    if (c->rec.name == name) return c.get();
  }
  return nullptr;
}

v1::PodStatus PodRuntime::BuildStatus() const {
  v1::PodStatus status;
  status.mutable_pod()->set_uid(uid_);
  status.mutable_pod()->set_namespace_(spec_.namespace_());
  status.mutable_pod()->set_name(spec_.name());
  status.add_pod_ips(spec_.host_ip().empty() ? deps_.config.pod_ip : spec_.host_ip());
  *status.mutable_start_time() = ToProto(record_.start_time);
  if (record_.deadline_exceeded) {
    status.set_phase(v1::POD_PHASE_FAILED);
    status.set_reason("DeadlineExceeded");
    status.set_message(absl::StrCat("Pod was active on the node longer than the specified "
                                    "deadline (activeDeadlineSeconds ",
                                    spec_.active_deadline_seconds(), ")"));
  }
  const bool init_done =
      record_.next_init >= static_cast<size_t>(spec_.init_containers_size());
  for (const auto& c : containers_) {
    v1::ContainerStatus* out =
        c->init ? status.add_init_container_statuses() : status.add_container_statuses();
    *out = c->rec.status;
    if (!c->init && !init_done && c->rec.instance == 0 && out->state().has_waiting()) {
      out->mutable_state()->mutable_waiting()->set_reason("PodInitializing");
    }
    if (!c->init && init_done && c->rec.instance == 0 && out->state().has_waiting()) {
      out->mutable_state()->mutable_waiting()->set_reason("ContainerCreating");
    }
  }
  return status;
}

void PodRuntime::SaveAndPublish() {
  record_.init.clear();
  record_.app.clear();
  for (const auto& c : containers_) (c->init ? record_.init : record_.app).push_back(c->rec);
  if (!forgotten_) {
    if (absl::Status s = deps_.store.SaveRecord(record_); !s.ok()) {
      VKLOG(WARNING) << "pod " << uid_ << ": cannot save its state: " << s.message();
    }
  }
  v1::PodStatus status = BuildStatus();
  std::string serialized = status.SerializeAsString();
  if (serialized == last_published_) return;
  last_published_ = std::move(serialized);
  deps_.feed.Publish(status);
}

void PodRuntime::Delete(std::optional<int64_t> grace_period_seconds) {
  absl::MutexLock lock(&mu_);
  int64_t grace = grace_period_seconds.value_or(
      spec_.has_termination_grace_period_seconds() ? spec_.termination_grace_period_seconds()
                                                   : kDefaultGraceSeconds);
  const absl::Time kill_at = absl::Now() + absl::Seconds(std::max<int64_t>(0, grace));
  if (!record_.terminating) {
    record_.terminating = true;
    record_.kill_at = kill_at;
  } else {
    record_.kill_at = std::min(record_.kill_at, kill_at);
  }
  if (absl::Status s = deps_.store.SaveRecord(record_); !s.ok()) {
    VKLOG(WARNING) << "pod " << uid_ << ": cannot save its state: " << s.message();
  }
  wake_ = true;
}

absl::Status PodRuntime::Update(const v1::Pod& pod) {
  absl::MutexLock lock(&mu_);
  *spec_.mutable_labels() = pod.labels();
  *spec_.mutable_annotations() = pod.annotations();
  if (pod.has_active_deadline_seconds()) {
    spec_.set_active_deadline_seconds(pod.active_deadline_seconds());
  }
  wake_ = true;
  for (const v1::Volume& volume : pod.volumes()) {
    if (!volume.has_files()) continue;
    for (const v1::Volume& mine : spec_.volumes()) {
      if (mine.name() != volume.name() || !mine.has_files()) continue;
      absl::Status s = WriteVolumeFiles(
          absl::StrCat(deps_.store.PodDir(uid_), "/volumes/", volume.name()), volume.files());
      if (!s.ok()) return s;
    }
  }
  v1::Pod saved = spec_;
  for (v1::Volume& volume : *saved.mutable_volumes()) {
    for (const v1::Volume& update : pod.volumes()) {
      if (update.name() == volume.name() && update.has_files() && volume.has_files()) {
        *volume.mutable_files() = update.files();
      }
    }
  }
  spec_ = saved;
  return deps_.store.SaveSpec(spec_);
}

v1::PodStatus PodRuntime::Status() const {
  absl::MutexLock lock(&mu_);
  return BuildStatus();
}

bool PodRuntime::Forgotten() const {
  absl::MutexLock lock(&mu_);
  return forgotten_;
}

absl::StatusOr<PodRuntime::InstanceRef> PodRuntime::Instance(const std::string& container,
                                                             bool previous) const {
  absl::MutexLock lock(&mu_);
  Container* c = Find(container);
  if (c == nullptr) {
    return absl::NotFoundError(absl::StrCat("container \"", container,
                                            "\" is not in pod ", spec_.namespace_(), "/",
                                            spec_.name()));
  }
  int instance = previous ? c->rec.instance - 1 : c->rec.instance;
  if (instance <= 0) {
    if (previous) {
      return absl::NotFoundError(absl::StrCat("container \"", container,
                                              "\" has no previous instance"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", container, "\" has not started yet"));
  }
  InstanceRef ref;
  ref.dir = deps_.store.InstanceDir(uid_, c->rec.name, instance);
  ref.active = !previous && c->rec.active;
  ref.stdin = c->spec.stdin();
  ref.stdin_once = c->spec.stdin_once();
  ref.tty = c->spec.tty();
  return ref;
}

absl::StatusOr<ExecTarget> PodRuntime::ExecTargetOf(const std::string& container) const {
  absl::MutexLock lock(&mu_);
  Container* c = Find(container);
  if (c == nullptr) {
    return absl::NotFoundError(absl::StrCat("container \"", container,
                                            "\" is not in pod ", spec_.namespace_(), "/",
                                            spec_.name()));
  }
  if (!c->rec.active || !c->rec.status.state().has_running()) {
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", container, "\" is not running"));
  }
  return TargetOf(*c);
}

int PodRuntime::HostPort(int port) const {
  absl::MutexLock lock(&mu_);
  auto it = record_.ports.find(port);
  return it == record_.ports.end() ? port : it->second;
}

v1::PodStats PodRuntime::Stats() const {
  absl::MutexLock lock(&mu_);
  v1::PodStats stats;
  stats.mutable_pod()->set_uid(uid_);
  stats.mutable_pod()->set_namespace_(spec_.namespace_());
  stats.mutable_pod()->set_name(spec_.name());
  *stats.mutable_start_time() = ToProto(record_.start_time);
  const auto now = ToProto(absl::Now());
  uint64_t cpu = 0, rss = 0;
  for (const auto& c : containers_) {
    if (!c->rec.active) continue;
    auto workload =
        ReadWorkloadPid(deps_.store.InstanceDir(uid_, c->rec.name, c->rec.instance));
    if (!workload || !ProcessAlive(workload->pid, workload->start_ticks)) continue;
    TreeUsage usage = UsageOfTree(workload->pid);
    v1::ContainerStats* cs = stats.add_containers();
    const absl::Time sampled = absl::Now();
    CpuSample& last = cpu_samples_[c->rec.status.container_id()];
    if (last.time != absl::Time() && sampled > last.time && usage.cpu_nanos >= last.nanos) {
      cs->mutable_cpu()->set_usage_nano_cores(static_cast<uint64_t>(
          static_cast<double>(usage.cpu_nanos - last.nanos) /
          absl::ToDoubleSeconds(sampled - last.time)));
    }
    last = CpuSample{sampled, usage.cpu_nanos};
    cs->set_name(c->rec.name);
    *cs->mutable_start_time() = c->rec.status.state().running().started_at();
    *cs->mutable_cpu()->mutable_time() = now;
    cs->mutable_cpu()->set_usage_core_nano_seconds(usage.cpu_nanos);
    *cs->mutable_memory()->mutable_time() = now;
    cs->mutable_memory()->set_rss_bytes(usage.rss_bytes);
    cs->mutable_memory()->set_working_set_bytes(usage.rss_bytes);
    cs->mutable_memory()->set_usage_bytes(usage.rss_bytes);
    cpu += usage.cpu_nanos;
    rss += usage.rss_bytes;
  }
  // Forget samples of instances that ended.
  for (auto it = cpu_samples_.begin(); it != cpu_samples_.end();) {
    bool current = false;
    for (const auto& c : containers_) {
      current |= c->rec.active && c->rec.status.container_id() == it->first;
    }
    it = current ? std::next(it) : cpu_samples_.erase(it);
  }
  *stats.mutable_cpu()->mutable_time() = now;
  stats.mutable_cpu()->set_usage_core_nano_seconds(cpu);
  *stats.mutable_memory()->mutable_time() = now;
  stats.mutable_memory()->set_rss_bytes(rss);
  stats.mutable_memory()->set_working_set_bytes(rss);
  stats.mutable_memory()->set_usage_bytes(rss);
  return stats;
}

}  // namespace vkhost::process
