// ProcessProvider; see process_provider.h.
#include "plugins/process/process_provider.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "google/protobuf/util/time_util.h"
#include "plugins/process/container_exec.h"
#include "plugins/process/log_file.h"
#include "plugins/process/process_tree.h"
#include "plugins/process/shim.h"

namespace vkhost::process {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(100);
constexpr size_t kLogBatch = 256;
// Node pressure thresholds, the kubelet's default hard eviction ones.
constexpr uint64_t kMemoryAvailableMin = 100ull << 20;
constexpr double kDiskAvailableMinFraction = 0.10;
constexpr double kPidsUsedMaxFraction = 0.90;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

v1::LogEntry ToEntry(const LogLine& line) {
  v1::LogEntry entry;
  *entry.mutable_time() = ToProto(line.time);
  entry.set_stream(line.stream);
  entry.set_line(line.text);
  return entry;
}

// Sends `lines` in batches; false once the host is gone.
bool SendLines(const std::vector<LogLine>& lines,
               sdk::StreamWriter<v1::ContainerLogsResponse>& out) {
  v1::ContainerLogsResponse batch;
  for (const LogLine& line : lines) {
    *batch.add_entries() = ToEntry(line);
    if (static_cast<size_t>(batch.entries_size()) >= kLogBatch) {
      if (!out.Write(batch)) return false;
      batch.Clear();
    }
  }
  return batch.entries_size() == 0 || out.Write(batch);
}

bool WriteWithPoll(int fd, absl::string_view data, const std::atomic<bool>& done) {
  while (!data.empty() && !done) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 100);
    } else {
      return false;
    }
  }
  return data.empty();
}

int ConnectLoopback(int port, std::string* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = strerror(errno);
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string ProbeMountNamespace() {
  pid_t pid = fork();
  if (pid < 0) return absl::StrCat("fork: ", strerror(errno));
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0) _exit(1);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(2);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return WIFEXITED(status) && WEXITSTATUS(status) == 1
             ? "unshare(CLONE_NEWNS) is not permitted (needs CAP_SYS_ADMIN)"
             : "mounts cannot be made private in a new mount namespace";
}

std::string PrepareCgroupParent(std::string* why_not) {
  const std::string root = "/sys/fs/cgroup";
  if (access((root + "/cgroup.controllers").c_str(), R_OK) != 0) {
    *why_not = "no cgroup v2 unified hierarchy at /sys/fs/cgroup";
    return "";
  }
  if (access((root + "/cgroup.subtree_control").c_str(), W_OK) != 0) {
    *why_not = "/sys/fs/cgroup is not writable";
    return "";
  }
  const std::string parent = root + "/vkhost-process";
  mkdir(parent.c_str(), 0755);
  std::ofstream(root + "/cgroup.subtree_control") << "+memory +cpu";
  std::ofstream control(parent + "/cgroup.subtree_control");
  control << "+memory +cpu";
  control.flush();
  if (!control || access((parent + "/cgroup.procs").c_str(), W_OK) != 0) {
    *why_not = "cannot enable the memory and cpu controllers under " + parent;
    return "";
  }
  return parent;
}

absl::StatusOr<std::unique_ptr<ProcessProvider>> ProcessProvider::Create(
    ProcessConfig config) {
  if (config.state_dir.empty()) {
    return absl::FailedPreconditionError("--state-dir is required");
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return absl::FailedPreconditionError("cannot resolve /proc/self/exe");
  config.runtime.self_exe = std::string(self, static_cast<size_t>(n));

  std::string no_mount_ns = config.mount_namespaces == "off"
                                ? "disabled by --mount-namespaces=off"
                                : ProbeMountNamespace();
  config.runtime.mount_namespace = no_mount_ns.empty();
  VKLOG(INFO) << "isolation: every container runs in its own session and process group; "
              << (no_mount_ns.empty()
                      ? "mount namespaces: yes (volumes are bind-mounted at their mount paths)"
                      : "mount namespaces: no (" + no_mount_ns +
                            "; volumes stay under <state-dir>/pods/<uid>/volumes, "
                            "exported as VKHOST_VOLUME_<NAME>)")
              << "; PID, user and network namespaces: not used (pods share the host's "
                 "processes view, users and network)";
  std::string no_cgroup;
  config.runtime.cgroup_parent = PrepareCgroupParent(&no_cgroup);
  if (!config.runtime.cgroup_parent.empty()) {
    VKLOG(INFO) << "resource limits: cgroup v2 under " << config.runtime.cgroup_parent
                << " (memory.max from limits.memory)";
  } else {
    VKLOG(INFO) << "resource limits: setrlimit(RLIMIT_DATA) from limits.memory; cpu limits "
                   "are not enforced (" << no_cgroup << ")";
  }
  auto provider = std::unique_ptr<ProcessProvider>(new ProcessProvider(std::move(config)));
  if (absl::Status s = provider->store_.Init(); !s.ok()) return s;
  {
    absl::MutexLock lock(&provider->mu_);
    for (PodStateStore::Loaded& loaded : provider->store_.LoadAll()) {
      std::string uid = loaded.spec.uid();
      auto runtime = PodRuntime::Adopt(std::move(loaded), provider->Deps());
      provider->pods_[uid] = std::shared_ptr<PodRuntime>(std::move(runtime));
    }
    for (auto& [uid, pod] : provider->pods_) pod->Start();
  }
  provider->janitor_ = std::thread([p = provider.get()] { p->Janitor(); });
  return provider;
}

ProcessProvider::ProcessProvider(ProcessConfig config)
    : config_(std::move(config)), store_(config_.state_dir) {}

ProcessProvider::~ProcessProvider() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (janitor_.joinable()) janitor_.join();
  absl::flat_hash_map<std::string, std::shared_ptr<PodRuntime>> pods;
  {
    absl::MutexLock lock(&mu_);
    pods.swap(pods_);
  }
  pods.clear();  // joins the pod threads; workloads keep running
}

PodRuntime::Deps ProcessProvider::Deps() {
  return PodRuntime::Deps{config_.images, config_.runtime, store_, pod_status_feed(), ports_};
}

void ProcessProvider::Janitor() {
  absl::MutexLock lock(&mu_);
  auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Milliseconds(500))) {
    std::vector<std::shared_ptr<PodRuntime>> gone;
    for (auto it = pods_.begin(); it != pods_.end();) {
      if (it->second->Forgotten()) {
        gone.push_back(it->second);
        pods_.erase(it++);
      } else {
        ++it;
      }
    }
    mu_.Unlock();
    gone.clear();  // joins their (finished) threads outside the lock
    mu_.Lock();
  }
}

absl::StatusOr<std::shared_ptr<PodRuntime>> ProcessProvider::Find(const std::string& uid) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end() || it->second->Forgotten()) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, " is unknown to the process plugin"));
  }
  return it->second;
}

v1::GetPluginInfoResponse ProcessProvider::PluginInfo() {
  v1::GetPluginInfoResponse info;
  info.set_name("process");
  info.set_version(VKHOST_VERSION);
  auto& manifest = *info.mutable_manifest();
  manifest["backend"] = "local processes";
  manifest["state_dir"] = config_.state_dir;
  manifest["images"] = absl::StrJoin(config_.images.Describe(), ",");
  manifest["mount_namespaces"] = config_.runtime.mount_namespace ? "yes" : "no";
  manifest["resource_limits"] =
      config_.runtime.cgroup_parent.empty() ? "rlimit" : "cgroup-v2";
  return info;
}

std::vector<v1::Capability> ProcessProvider::Capabilities() {
  return {v1::CAPABILITY_WATCH_POD_STATUS, v1::CAPABILITY_UPDATE_POD,
          v1::CAPABILITY_NODE_INFO,        v1::CAPABILITY_WATCH_NODE,
          v1::CAPABILITY_CONTAINER_LOGS,   v1::CAPABILITY_CONTAINER_LOGS_PREVIOUS,
          v1::CAPABILITY_EXEC,             v1::CAPABILITY_ATTACH,
          v1::CAPABILITY_PORT_FORWARD,     v1::CAPABILITY_STATS};
}

v1::NodeStatus ProcessProvider::NodeStatus() const {
  v1::NodeStatus node;
  const MemoryInfo memory = ReadMemoryInfo();
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  for (auto* resources : {node.mutable_capacity(), node.mutable_allocatable()}) {
    (*resources)["cpu"] = absl::StrCat(cpus);
    (*resources)["memory"] = absl::StrCat(memory.total_bytes / 1024, "Ki");
    (*resources)["pods"] = absl::StrCat(config_.max_pods);
  }
  auto condition = [&](const char* type, bool on, const char* reason_on,
                       const char* reason_off, const std::string& message) {
    v1::NodeCondition* c = node.add_conditions();
    c->set_type(type);
    c->set_status(on ? v1::CONDITION_STATUS_TRUE : v1::CONDITION_STATUS_FALSE);
    c->set_reason(on ? reason_on : reason_off);
    c->set_message(message);
  };
  condition("Ready", true, "ProcessPluginReady", "", "the process plugin runs pods");
  const bool memory_pressure = memory.available_bytes < kMemoryAvailableMin;
  condition("MemoryPressure", memory_pressure, "NodeHasInsufficientMemory",
            "NodeHasSufficientMemory",
            absl::StrCat(memory.available_bytes >> 20, " MiB available (threshold ",
                         kMemoryAvailableMin >> 20, " MiB)"));
  struct statvfs fs;
  double free_fraction = 1;
  if (statvfs(config_.state_dir.c_str(), &fs) == 0 && fs.f_blocks > 0) {
    free_fraction = static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks);
  }
  condition("DiskPressure", free_fraction < kDiskAvailableMinFraction, "NodeHasDiskPressure",
            "NodeHasNoDiskPressure",
            absl::StrCat(static_cast<int>(free_fraction * 100),
                         "% of the state dir's filesystem is free (threshold 10%)"));
  uint64_t pids = 0, pid_max = 1;
  ReadPidCounts(&pids, &pid_max);
  condition("PIDPressure",
            static_cast<double>(pids) > kPidsUsedMaxFraction * static_cast<double>(pid_max),
            "NodeHasInsufficientPID", "NodeHasSufficientPID",
            absl::StrCat(pids, " of ", pid_max, " process ids in use"));
  v1::NodeSystemInfo* info = node.mutable_system_info();
  info->set_operating_system("linux");
  utsname uts;
  if (uname(&uts) == 0) {
    info->set_kernel_version(uts.release);
    std::string machine = uts.machine;
    info->set_architecture(machine == "x86_64" ? "amd64"
                           : machine == "aarch64" ? "arm64"
                                                  : machine);
  }
  info->set_os_image("local processes (vkhost process plugin)");
  info->set_container_runtime_version(absl::StrCat("process://", VKHOST_VERSION));
  (*node.mutable_labels())["vkhost.io/backend"] = "process";
  return node;
}

absl::StatusOr<v1::NodeStatus> ProcessProvider::GetNode(const v1::GetNodeRequest&) {
  return NodeStatus();
}

absl::Status ProcessProvider::WatchNode(const v1::WatchNodeRequest&,
                                        sdk::StreamWriter<v1::NodeStatus>& out) {
  std::string last;
  absl::Time next = absl::InfinitePast();
  while (!out.IsCancelled()) {
    if (absl::Now() >= next) {
      v1::NodeStatus node = NodeStatus();
      // Figures that drift all the time (free memory in the messages) must
      // not cause an update each time: compare what a scheduler reads.
      v1::NodeStatus key = node;
      for (auto& c : *key.mutable_conditions()) c.clear_message();
      std::string serialized = key.SerializeAsString();
      if (serialized != last) {
        if (!out.Write(node)) return absl::OkStatus();
        last = std::move(serialized);
      }
      next = absl::Now() + absl::Seconds(10);
    }
    absl::SleepFor(kPollInterval * 5);
  }
  return absl::OkStatus();
}

absl::Status ProcessProvider::CreatePod(const v1::Pod& pod) {
  if (pod.uid().empty()) return absl::InvalidArgumentError("the pod has no UID");
  if (pod.containers_size() == 0) {
    return absl::InvalidArgumentError("the pod has no containers");
  }
  absl::MutexLock lock(&mu_);
  if (pods_.contains(pod.uid())) return absl::OkStatus();
  if (pods_.size() >= static_cast<size_t>(config_.max_pods)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the process plugin runs its maximum of ", config_.max_pods, " pods (--pods)"));
  }
  auto runtime = PodRuntime::Create(pod, Deps());
  if (!runtime.ok()) {
    VKLOG(INFO) << "refusing pod " << pod.namespace_() << "/" << pod.name() << ": "
                << runtime.status().message();
    return runtime.status();
  }
  std::shared_ptr<PodRuntime> shared(std::move(*runtime));
  shared->Start();
  pods_[pod.uid()] = std::move(shared);
  VKLOG(INFO) << "created pod " << pod.namespace_() << "/" << pod.name() << " (" << pod.uid()
              << ")";
  return absl::OkStatus();
}

absl::Status ProcessProvider::UpdatePod(const v1::Pod& pod) {
  if (pod.uid().empty()) return absl::InvalidArgumentError("the pod has no UID");
  auto runtime = Find(pod.uid());
  if (!runtime.ok()) return runtime.status();
  return (*runtime)->Update(pod);
}

absl::Status ProcessProvider::DeletePod(const v1::PodRef& pod,
                                        std::optional<int64_t> grace_period_seconds) {
  if (pod.uid().empty()) return absl::InvalidArgumentError("the pod has no UID");
  auto runtime = Find(pod.uid());
  if (!runtime.ok()) return absl::OkStatus();
  (*runtime)->Delete(grace_period_seconds);
  return absl::OkStatus();
}

absl::StatusOr<v1::PodStatus> ProcessProvider::GetPodStatus(const v1::PodRef& pod) {
  auto runtime = Find(pod.uid());
  if (!runtime.ok()) return runtime.status();
  return (*runtime)->Status();
}

absl::StatusOr<std::vector<v1::PodStatus>> ProcessProvider::ListPods() {
  std::vector<std::shared_ptr<PodRuntime>> pods;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [uid, pod] : pods_) pods.push_back(pod);
  }
  std::vector<v1::PodStatus> statuses;
  for (const auto& pod : pods) {
    if (!pod->Forgotten()) statuses.push_back(pod->Status());
  }
  return statuses;
}

absl::Status ProcessProvider::ContainerLogs(
    const v1::ContainerLogsRequest& request,
    sdk::StreamWriter<v1::ContainerLogsResponse>& out) {
  auto runtime = Find(request.pod().uid());
  if (!runtime.ok()) return runtime.status();
  auto instance = (*runtime)->Instance(request.container(), request.previous());
  if (!instance.ok()) return instance.status();
  const std::string log = instance->dir + "/log";
  if (!request.follow() || !instance->active) {
    SendLines(FilterLogLines(ReadLogLines(log), request), out);
    return absl::OkStatus();
  }
  LogFollower follower(log, /*from_end=*/false);
  std::vector<LogLine> first = FilterLogLines(follower.Poll(), request);
  int64_t budget = request.has_limit_bytes() ? request.limit_bytes() : INT64_MAX;
  for (const LogLine& line : first) budget -= static_cast<int64_t>(line.text.size());
  if (!SendLines(first, out)) return absl::OkStatus();
  v1::ContainerLogsRequest since_only;
  *since_only.mutable_since_time() = request.since_time();
  bool exited = false;
  while (budget > 0 && !out.IsCancelled()) {
    // Seen the exit before this read: what follows is the drained rest.
    bool drained = exited;
    exited = exited || ReadExitRecord(instance->dir).has_value();
    std::vector<LogLine> lines = follower.Poll();
    if (request.has_since_time()) lines = FilterLogLines(std::move(lines), since_only);
    for (const LogLine& line : lines) budget -= static_cast<int64_t>(line.text.size());
    if (!SendLines(lines, out)) return absl::OkStatus();
    if (drained && lines.empty()) break;
    if (lines.empty()) absl::SleepFor(kPollInterval);
  }
  return absl::OkStatus();
}

namespace {

// Feeds the exec session's input frames to `child` until `done` is set or
// the host ends its side (a cancel kills the command).
void PumpExecInput(sdk::ProcessSession& session, ChildProcess& child, bool tty,
                   const std::atomic<bool>& done, std::atomic<bool>& cancelled) {
  using Kind = sdk::ProcessSession::Input::Kind;
  while (!done) {
    auto frame = session.ReadUntil(absl::Now() + kPollInterval);
    if (!frame) continue;
    switch (frame->kind) {
      case Kind::kStdin:
        if (child.stdin_fd() >= 0) WriteWithPoll(child.stdin_fd(), frame->data, done);
        break;
      case Kind::kResize:
        child.Resize(frame->size.width(), frame->size.height());
        break;
      case Kind::kStdinClosed:
        child.CloseStdin();
        break;
      case Kind::kEnded:
        if (session.IsCancelled()) {
          cancelled = true;
          child.Kill();
        } else if (!tty) {
          child.CloseStdin();
        }
        return;
    }
  }
}

// Copies the command's output to the session until it is drained (at most
// 1 s after the command exited: a background child may hold the pipes),
// then waits for the exit. Returns the exit code.
int PumpExecOutput(sdk::ProcessSession& session, ChildProcess& child,
                   std::atomic<bool>& cancelled) {
  std::vector<pollfd> fds;
  for (int fd : {child.stdout_fd(), child.stderr_fd()}) {
    if (fd >= 0) fds.push_back(pollfd{fd, POLLIN, 0});
  }
  auto stop = [&] {
    cancelled = true;
    child.Kill();
  };
  absl::Time drain_until = absl::InfiniteFuture();
  char buffer[32768];
  size_t open_fds = fds.size();
  while (open_fds > 0 && absl::Now() < drain_until) {
    poll(fds.data(), fds.size(), 100);
    for (pollfd& p : fds) {
      if (p.fd < 0 || p.revents == 0) continue;
      ssize_t n = read(p.fd, buffer, sizeof buffer);
      if (n > 0) {
        absl::string_view data(buffer, static_cast<size_t>(n));
        bool ok = p.fd == child.stderr_fd() ? session.WriteStderr(data)
                                            : session.WriteStdout(data);
        if (!ok) stop();
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        p.fd = -1;
        --open_fds;
      }
    }
    if (session.IsCancelled()) stop();
    if (child.TryWait() && drain_until == absl::InfiniteFuture()) {
      drain_until = absl::Now() + absl::Seconds(1);
    }
  }
  while (!child.TryWait()) {
    if (session.IsCancelled()) stop();
    absl::SleepFor(absl::Milliseconds(5));
  }
  child.Kill();  // leftovers of its process group
  return *child.TryWait();
}

}  // namespace

absl::StatusOr<v1::ExitStatus> ProcessProvider::Exec(const v1::ExecStart& start,
                                                     sdk::ProcessSession& session) {
  auto runtime = Find(start.pod().uid());
  if (!runtime.ok()) return runtime.status();
  auto target = (*runtime)->ExecTargetOf(start.container());
  if (!target.ok()) return target.status();
  std::vector<std::string> argv(start.command().begin(), start.command().end());
  v1::ExitStatus exit;
  auto spawned = SpawnInContainer(*target, argv, start.tty(), start.stdin());
  if (!spawned.ok()) {
    exit.set_exit_code(ExitCodeForSpawnError(spawned.status()));
    exit.set_message(std::string(spawned.status().message()));
    return exit;
  }
  ChildProcess& child = **spawned;
  if (start.tty() && start.has_terminal_size()) {
    child.Resize(start.terminal_size().width(), start.terminal_size().height());
  }
  if (child.stdin_fd() >= 0) {
    fcntl(child.stdin_fd(), F_SETFL, fcntl(child.stdin_fd(), F_GETFL) | O_NONBLOCK);
  }
  std::atomic<bool> done{false};
  std::atomic<bool> cancelled{false};
  std::thread input([&] { PumpExecInput(session, child, start.tty(), done, cancelled); });
  exit.set_exit_code(PumpExecOutput(session, child, cancelled));
  done = true;
  input.join();
  if (cancelled) exit.set_message("the client went away; the command was killed");
  return exit;
}

absl::StatusOr<v1::ExitStatus> ProcessProvider::Attach(const v1::AttachStart& start,
                                                       sdk::ProcessSession& session) {
  using Kind = sdk::ProcessSession::Input::Kind;
  auto runtime = Find(start.pod().uid());
  if (!runtime.ok()) return runtime.status();
  auto instance = (*runtime)->Instance(start.container(), false);
  if (!instance.ok()) return instance.status();
  if (!instance->active) {
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", start.container(), "\" is not running"));
  }
  // Requests to the shim (shim.h): terminal size and end of stdin.
  auto control = [&](const std::string& request) {
    int fd = open((instance->dir + "/control").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    const std::string line = request + "\n";
    ssize_t ignored = write(fd, line.data(), line.size());
    (void)ignored;
    close(fd);
  };
  auto resize = [&](const v1::TerminalSize& size) {
    control(absl::StrCat("resize ", size.width(), " ", size.height()));
  };
  int stdin_fd = -1;
  if (start.stdin() && instance->stdin) {
    stdin_fd = open((instance->dir + "/stdin").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  }
  // A stdinOnce container's stdin ends with its first attach session.
  auto end_stdin = [&] {
    if (stdin_fd < 0) return;
    close(stdin_fd);
    stdin_fd = -1;
    if (instance->stdin_once) control("close-stdin");
  };
  if (start.tty() && start.has_terminal_size()) resize(start.terminal_size());
  std::atomic<bool> never{false};
  LogFollower follower(instance->dir + "/log", /*from_end=*/true);
  v1::ExitStatus result;
  for (;;) {
    bool detached = false;
    for (const LogLine& line : follower.Poll()) {
      bool ok = line.stream == v1::LogEntry::STREAM_STDERR ? session.WriteStderr(line.text)
                                                            : session.WriteStdout(line.text);
      detached |= !ok;
    }
    if (detached || session.IsCancelled()) break;  // the process keeps running
    if (auto exit = ReadExitRecord(instance->dir)) {
      for (const LogLine& line : follower.Poll()) session.WriteStdout(line.text);
      result.set_exit_code(exit->exit_code);
      break;
    }
    if (stdin_fd < 0) {
      absl::SleepFor(kPollInterval);
      continue;
    }
    auto frame = session.ReadUntil(absl::Now() + kPollInterval);
    if (!frame) continue;
    switch (frame->kind) {
      case Kind::kStdin:
        WriteWithPoll(stdin_fd, frame->data, never);
        break;
      case Kind::kResize:
        resize(frame->size);
        break;
      case Kind::kStdinClosed:
      case Kind::kEnded:
        end_stdin();
        break;
    }
  }
  end_stdin();
  return result;
}

absl::Status ProcessProvider::PortForward(const v1::PortForwardStart& start,
                                          sdk::PortForwardSession& session) {
  using Kind = sdk::PortForwardSession::Input::Kind;
  auto runtime = Find(start.pod().uid());
  if (!runtime.ok()) return runtime.status();
  if (start.port() <= 0 || start.port() > 65535) {
    session.WriteError(absl::StrCat("port ", start.port(), " is not a TCP port"));
    return absl::OkStatus();
  }
  const int host_port = (*runtime)->HostPort(start.port());
  std::string error;
  int fd = ConnectLoopback(host_port, &error);
  if (fd < 0) {
    session.WriteError(absl::StrCat("cannot connect to port ", start.port(),
                                    " of the pod (127.0.0.1:", host_port, "): ", error));
    return absl::OkStatus();
  }
  std::atomic<bool> pod_closed{false};
  std::thread from_pod([&] {
    char buffer[32768];
    while (!session.IsCancelled()) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) == 0) continue;
      ssize_t n = read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      if (!session.Write(absl::string_view(buffer, static_cast<size_t>(n)))) break;
    }
    pod_closed = true;
  });
  for (;;) {
    // Polls so that a pod closing the connection ends the RPC (and the
    // client's connection) without waiting for the client to close first.
    std::optional<sdk::PortForwardSession::Input> next =
        session.ReadUntil(absl::Now() + absl::Milliseconds(100));
    if (!next) {
      if (!pod_closed) continue;
      shutdown(fd, SHUT_RDWR);
      break;
    }
    sdk::PortForwardSession::Input& input = *next;
    if (input.kind == Kind::kData) {
      if (!WriteWithPoll(fd, input.data, pod_closed)) {
        shutdown(fd, SHUT_RDWR);
        break;
      }
      continue;
    }
    if (input.kind == Kind::kCloseWrite) {
      shutdown(fd, SHUT_WR);
    } else {
      shutdown(fd, SHUT_RDWR);
    }
    break;
  }
  from_pod.join();
  close(fd);
  return absl::OkStatus();
}

absl::StatusOr<v1::GetStatsSummaryResponse> ProcessProvider::GetStatsSummary() {
  v1::GetStatsSummaryResponse response;
  const auto now = ToProto(absl::Now());
  v1::NodeStats* node = response.mutable_node();
  *node->mutable_start_time() = ToProto(started_);
  *node->mutable_cpu()->mutable_time() = now;
  node->mutable_cpu()->set_usage_core_nano_seconds(MachineCpuNanos());
  const MemoryInfo memory = ReadMemoryInfo();
  *node->mutable_memory()->mutable_time() = now;
  node->mutable_memory()->set_available_bytes(memory.available_bytes);
  node->mutable_memory()->set_usage_bytes(memory.total_bytes - memory.available_bytes);
  node->mutable_memory()->set_working_set_bytes(memory.total_bytes - memory.available_bytes);
  struct statvfs fs;
  if (statvfs(config_.state_dir.c_str(), &fs) == 0) {
    *node->mutable_fs()->mutable_time() = now;
    node->mutable_fs()->set_capacity_bytes(fs.f_blocks * fs.f_frsize);
    node->mutable_fs()->set_available_bytes(fs.f_bavail * fs.f_frsize);
    node->mutable_fs()->set_used_bytes((fs.f_blocks - fs.f_bfree) * fs.f_frsize);
  }
  std::vector<std::shared_ptr<PodRuntime>> pods;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [uid, pod] : pods_) pods.push_back(pod);
  }
  for (const auto& pod : pods) {
    if (!pod->Forgotten()) *response.add_pods() = pod->Stats();
  }
  return response;
}

}  // namespace vkhost::process
