#include "host/plugin/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vkhost::plugin::internal {
namespace {

// Lines longer than this are logged in pieces rather than buffered forever.
constexpr size_t kMaxLine = 64 * 1024;
// How long readers may keep draining after the child is gone.
constexpr absl::Duration kDrainAfterExit = absl::Seconds(2);
// Signals whose disposition the child gets back to default: the host blocks
// SIGTERM/SIGINT and gRPC ignores SIGPIPE, and both would be inherited.
constexpr int kDefaultedSignals[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP,
                                     SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};

// Owns one file descriptor until released.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(other.Release()) {}
  Fd& operator=(Fd&& other) noexcept {
    Reset();
    fd_ = other.Release();
    return *this;
  }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

absl::Status ErrnoError(const std::string& what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

// A close-on-exec pipe whose ends are both above stdio, so dup2 onto 0..2 in
// the child never meets an end that already sits there.
absl::Status MakePipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  Fd ends[2] = {Fd(fds[0]), Fd(fds[1])};
  for (Fd& end : ends) {
    if (end.get() > STDERR_FILENO) continue;
    int high = ::fcntl(end.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (high < 0) return ErrnoError("fcntl(F_DUPFD_CLOEXEC)", errno);
    end = Fd(high);
  }
  *read_end = std::move(ends[0]);
  *write_end = std::move(ends[1]);
  return absl::OkStatus();
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// posix_spawn attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

void ConfigureSpawn(SpawnSetup& setup, int in_fd, int out_fd, int err_fd) {
  sigset_t empty;
  sigemptyset(&empty);
  sigset_t defaulted;
  sigemptyset(&defaulted);
  for (int sig : kDefaultedSignals) sigaddset(&defaulted, sig);
  // Own process group: a Ctrl-C on the host's terminal reaches the host,
  // which then stops the plugin in order.
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setsigmask(&setup.attr, &empty);
  posix_spawnattr_setsigdefault(&setup.attr, &defaulted);
  posix_spawnattr_setpgroup(&setup.attr, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, in_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, err_fd, STDERR_FILENO);
  // Other threads may have opened descriptors without O_CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, STDERR_FILENO + 1);
}

}  // namespace

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::sigdescr_np(sig);
    return absl::StrCat("killed by signal ", sig, name ? " (" : "",
                        name ? name : "", name ? ")" : "",
                        WCOREDUMP(status) ? ", core dumped" : "");
  }
  return absl::StrCat("ended with wait status ", status);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::vector<std::string>& env,
    Callbacks callbacks) {
  if (argv.empty() || argv[0].empty()) {
    return absl::InvalidArgumentError("empty plugin command");
  }
  Fd in_read, in_write, out_read, out_write, err_read, err_write;
  for (auto [r, w] : {std::pair{&in_read, &in_write}, {&out_read, &out_write},
                      {&err_read, &err_write}}) {
    if (absl::Status s = MakePipe(r, w); !s.ok()) return s;
  }
  SpawnSetup setup;
  ConfigureSpawn(setup, in_read.get(), out_write.get(), err_write.get());
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  pid_t pid = 0;
  int err = ::posix_spawnp(&pid, c_argv[0], &setup.actions, &setup.attr,
                           c_argv.data(), c_env.data());
  if (err != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot start plugin \"", argv[0], "\": ", std::strerror(err)));
  }
  std::unique_ptr<ChildProcess> child(
      new ChildProcess(pid, in_write.Release(), std::move(callbacks)));
  child->StartThreads(out_read.Release(), err_read.Release());
  return child;
}

ChildProcess::ChildProcess(pid_t pid, int stdin_fd, Callbacks callbacks)
    : pid_(pid), callbacks_(std::move(callbacks)), stdin_fd_(stdin_fd) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void ChildProcess::StartThreads(int stdout_fd, int stderr_fd) {
  {
    absl::MutexLock lock(&mu_);
    readers_running_ = 2;
  }
  reaper_ = std::thread([this] { Reap(); });
  readers_.emplace_back([this, stdout_fd] {
    ReadLines(stdout_fd, callbacks_.on_stdout_line, callbacks_.on_stdout_closed);
  });
  readers_.emplace_back([this, stderr_fd] {
    ReadLines(stderr_fd, callbacks_.on_stderr_line, callbacks_.on_stderr_closed);
  });
}

ChildProcess::~ChildProcess() {
  Stop(kDefaultStopGrace);
  {
    absl::MutexLock lock(&mu_);
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return readers_running_ == 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&drained), kDrainAfterExit);
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  for (std::thread& t : readers_) t.join();
  reaper_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ChildProcess::Reap() {
  siginfo_t info;
  // WNOWAIT leaves a zombie, so the pid stays ours until we reap it below
  // under mu_, where Signal() checks exited_.
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT);
  } while (rc != 0 && errno == EINTR);
  int wait_errno = rc != 0 ? errno : 0;
  ExitInfo exit;
  exit.pid = pid_;
  {
    absl::MutexLock lock(&mu_);
    int status = 0;
    pid_t reaped;
    do {
      reaped = ::waitpid(pid_, &status, 0);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == pid_) {
      exit.description = DescribeWaitStatus(status);
      if (WIFEXITED(status)) exit.exit_code = WEXITSTATUS(status);
    } else {
      exit.description = absl::StrCat("vanished (cannot wait for it: ",
                                 std::strerror(wait_errno ? wait_errno : errno),
                                 ")");
    }
    exited_ = true;
    exit_description_ = exit.description;
  }
  if (callbacks_.on_exit) callbacks_.on_exit(exit);
}

void ChildProcess::ReadLines(
    int fd, const std::function<void(const std::string&)>& on_line,
    const std::function<void()>& on_closed) {
  Fd owned(fd);
  std::string pending;
  auto emit = [&](std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (on_line) on_line(line);
  };
  char buf[8192];
  bool woken = false;
  while (true) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, wake_fd_ >= 0 ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (wake_fd_ >= 0 && (fds[1].revents & POLLIN)) {
      woken = true;
      break;
    }
    ssize_t got = ::read(fd, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    pending.append(buf, static_cast<size_t>(got));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      emit(pending.substr(start, nl - start));
    }
    pending.erase(0, start);
    if (pending.size() >= kMaxLine) emit(std::exchange(pending, {}));
  }
  if (!pending.empty() && !woken) emit(pending);
  if (on_closed) on_closed();
  absl::MutexLock lock(&mu_);
  --readers_running_;
}

bool ChildProcess::Exited() const {
  absl::MutexLock lock(&mu_);
  return exited_;
}

std::string ChildProcess::exit_description() const {
  absl::MutexLock lock(&mu_);
  return exit_description_;
}

bool ChildProcess::WaitForExit(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&exited_), timeout);
}

void ChildProcess::Signal(int sig) {
  absl::MutexLock lock(&mu_);
  if (!exited_) ::kill(pid_, sig);
}

void ChildProcess::Stop(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
  if (WaitForExit(absl::ZeroDuration())) return;
  Signal(SIGTERM);
  if (WaitForExit(grace)) return;
  Signal(SIGKILL);
  WaitForExit(absl::InfiniteDuration());
}

}  // namespace vkhost::plugin::internal
