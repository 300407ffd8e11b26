// Subprocess: spawning with posix_spawn (safe in a process with gRPC
// threads, unlike fork), pipe readers that poll so they can be stopped even
// when a grandchild keeps a pipe open.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/conformance/conformance.h"

extern char** environ;

namespace vkhost::conformance {
namespace {

// Owns the fds of one pipe until they are handed over.
struct Pipe {
  int read = -1;
  int write = -1;
  ~Pipe() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
  }
  int TakeRead() { return std::exchange(read, -1); }
  int TakeWrite() { return std::exchange(write, -1); }
};

absl::Status MakePipe(Pipe& pipe) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  pipe.read = fds[0];
  pipe.write = fds[1];
  return absl::OkStatus();
}

// The suite's environment without the handshake variables, which each
// check sets itself, plus `extra`.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!absl::StartsWith(*entry, "VKHOST_PLUGIN_")) env.emplace_back(*entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  }
  return absl::StrCat("ended with wait status ", wait_status);
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  Pipe in, out, err;
  for (Pipe* pipe : {&in, &out, &err}) {
    if (absl::Status status = MakePipe(*pipe); !status.ok()) return status;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // Own process group, so cleanup can kill whatever the child started.
  posix_spawnattr_setpgroup(&attributes, 0);
  // Default signal dispositions: the suite's own (e.g. SIGPIPE ignored by
  // gRPC) must not leak into the plugin under test.
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attributes, &all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP |
                                            POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> args = argv;
  std::vector<std::string> environment = ChildEnvironment(env);
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(environment);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, c_args[0], &actions, &attributes,
                                c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  }

  std::unique_ptr<Subprocess> process(new Subprocess());
  process->pid_ = pid;
  process->stdin_fd_ = in.TakeWrite();
  process->stdout_fd_ = out.TakeRead();
  process->stderr_fd_ = err.TakeRead();
  Subprocess* self = process.get();
  process->stdout_reader_ = std::thread([self] {
    self->ReadPipe(self->stdout_fd_, &self->stdout_, &self->stdout_ended_);
  });
  process->stderr_reader_ = std::thread([self] {
    self->ReadPipe(self->stderr_fd_, &self->stderr_, &self->stderr_ended_);
  });
  return process;
}

Subprocess::~Subprocess() {
  // The group outlives its leader while anything the child started runs, and
  // its id cannot be reused meanwhile, so this reaches only our processes.
  ::kill(-pid_, SIGKILL);
  WaitForExit(absl::Seconds(10));
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  stdout_reader_.join();
  stderr_reader_.join();
  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void Subprocess::ReadPipe(int fd, std::string* sink, bool* ended) {
  char buffer[4096];
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    absl::MutexLock lock(&mu_);
    sink->append(buffer, static_cast<size_t>(n));
  }
  absl::MutexLock lock(&mu_);
  *ended = true;
}

std::optional<std::string> Subprocess::FirstStdoutLine(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto line_or_end = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stdout_.find('\n') != std::string::npos || stdout_ended_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&line_or_end), timeout);
  const size_t newline = stdout_.find('\n');
  if (newline == std::string::npos) return std::nullopt;
  return stdout_.substr(0, newline);
}

std::string Subprocess::Stdout() const {
  absl::MutexLock lock(&mu_);
  return stdout_;
}

std::string Subprocess::Stderr() const {
  absl::MutexLock lock(&mu_);
  return stderr_;
}

void Subprocess::CloseStdin() {
  if (stdin_fd_ >= 0) {
    ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

bool Subprocess::Signal(int signal) {
  {
    absl::MutexLock lock(&mu_);
    if (wait_status_.has_value()) return false;
  }
  return ::kill(pid_, signal) == 0;
}

std::optional<int> Subprocess::WaitForExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (wait_status_.has_value()) return wait_status_;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        wait_status_ = status;
        return wait_status_;
      }
    }
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

bool Subprocess::WaitForOutput(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  if (!WaitForExit(timeout).has_value()) return false;
  absl::MutexLock lock(&mu_);
  auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stdout_ended_ && stderr_ended_;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&drained), deadline);
}

}  // namespace vkhost::conformance
