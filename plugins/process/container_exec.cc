// ContainerExec; see container_exec.h.
#include "plugins/process/container_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "plugins/process/shim.h"

namespace vkhost::process {
namespace {

constexpr char kDefaultPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int CodeFromStatus(int status) {
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace

ChildProcess::~ChildProcess() {
  if (!exit_code_) {
    Kill();
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (tty_) {
    if (stdout_fd_ >= 0) close(stdout_fd_);
    return;
  }
  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void ChildProcess::CloseStdin() {
  if (stdin_fd_ < 0) return;
  if (tty_) {
    const char eof = 0x04;
    ssize_t ignored = write(stdin_fd_, &eof, 1);
    (void)ignored;
    return;
  }
  close(stdin_fd_);
  stdin_fd_ = -1;
}

void ChildProcess::Resize(uint32_t width, uint32_t height) {
  if (!tty_ || stdout_fd_ < 0) return;
  winsize size{};
  size.ws_col = static_cast<unsigned short>(width);
  size.ws_row = static_cast<unsigned short>(height);
  ioctl(stdout_fd_, TIOCSWINSZ, &size);
}

std::optional<int> ChildProcess::TryWait() {
  if (exit_code_) return exit_code_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) exit_code_ = CodeFromStatus(status);
  return exit_code_;
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  // The group may outlive its leader (background children): kill it too.
  kill(-pid_, SIGKILL);
  if (!exit_code_) kill(pid_, SIGKILL);
}

int ExitCodeForSpawnError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound ? 127 : 126;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> SpawnInContainer(
    const ExecTarget& target, const std::vector<std::string>& argv, bool tty,
    bool with_stdin) {
  if (argv.empty()) return absl::InvalidArgumentError("no command given");
  std::string path_env = kDefaultPath;
  for (const std::string& entry : target.env) {
    if (absl::StartsWith(entry, "PATH=")) path_env = entry.substr(5);
  }
  int lookup_error = 0;
  std::string program = LookPath(argv[0], path_env, target.root, &lookup_error);
  if (lookup_error == ENOENT) {
    return absl::NotFoundError(absl::StrCat(
        "exec: \"", argv[0], "\": executable file not found in $PATH"));
  }
  if (lookup_error != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("exec: \"", argv[0], "\": ", strerror(lookup_error)));
  }
  int ns_fd = -1;
  if (target.mount_ns_pid > 0) {
    ns_fd = open(absl::StrCat("/proc/", target.mount_ns_pid, "/ns/mnt").c_str(),
                 O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot enter the container's mount namespace: ", strerror(errno)));
    }
  }
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess());
  child->tty_ = tty;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, slave = -1;
  int master = -1;
  if (tty) {
    if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) {
      if (ns_fd >= 0) close(ns_fd);
      return absl::UnavailableError(absl::StrCat("openpty: ", strerror(errno)));
    }
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
  } else {
    if ((with_stdin && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 ||
        pipe2(err, O_CLOEXEC) != 0) {
      if (ns_fd >= 0) close(ns_fd);
      return absl::UnavailableError(absl::StrCat("pipe: ", strerror(errno)));
    }
  }
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("pipe: ", strerror(errno)));
  }
  std::vector<std::string> args = argv;
  std::vector<std::string> env = target.env;
  std::vector<char*> c_argv = CStrings(args);
  std::vector<char*> c_env = CStrings(env);
  const std::string workdir = target.working_dir.empty() ? "/" : target.working_dir;
  const int dev_null = with_stdin || tty ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);

  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here to execve.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int step = 0;
    if (tty) {
      setsid();
      ioctl(slave, TIOCSCTTY, 0);
      dup2(slave, 0);
      dup2(slave, 1);
      dup2(slave, 2);
    } else {
      setpgid(0, 0);
      dup2(with_stdin ? in[0] : dev_null, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
    }
    if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNS) != 0) step = errno;
    if (step == 0 && target.root != "/" &&
        (chroot(target.root.c_str()) != 0 || chdir("/") != 0)) {
      step = errno;
    }
    if (step == 0 && chdir(workdir.c_str()) != 0) step = errno;
    if (step == 0 && target.run_as_user) {
      gid_t group = target.run_as_group.value_or(0);
      if (setgroups(target.run_as_group ? 1 : 0, &group) != 0) step = errno;
    }
    if (step == 0 && target.run_as_group && setgid(*target.run_as_group) != 0) {
      step = errno;
    }
    if (step == 0 && target.run_as_user && setuid(*target.run_as_user) != 0) {
      step = errno;
    }
    if (step == 0) {
      execve(program.c_str(), c_argv.data(), c_env.data());
      step = errno;
    }
    ssize_t ignored = write(exec_error[1], &step, sizeof step);
    (void)ignored;
    _exit(127);
  }
  close(exec_error[1]);
  if (ns_fd >= 0) close(ns_fd);
  if (dev_null >= 0) close(dev_null);
  for (int fd : {in[0], out[1], err[1], slave}) {
    if (fd >= 0) close(fd);
  }
  if (pid < 0) {
    close(exec_error[0]);
    for (int fd : {in[1], out[0], err[0], master}) {
      if (fd >= 0) close(fd);
    }
    return absl::UnavailableError(absl::StrCat("fork: ", strerror(errno)));
  }
  child->pid_ = pid;
  if (tty) {
    child->stdin_fd_ = child->stdout_fd_ = master;
  } else {
    child->stdin_fd_ = in[1];
    child->stdout_fd_ = out[0];
    child->stderr_fd_ = err[0];
  }
  int child_errno = 0;
  ssize_t got;
  do {
    got = read(exec_error[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  close(exec_error[0]);
  if (got == sizeof child_errno) {
    int status = 0;
    waitpid(pid, &status, 0);
    child->exit_code_ = CodeFromStatus(status);
    std::string message = absl::StrCat("cannot run \"", argv[0], "\" in ",
                                       workdir, ": ", strerror(child_errno));
    if (child_errno == ENOENT) return absl::NotFoundError(message);
    return absl::FailedPreconditionError(message);
  }
  return child;
}

RunResult RunToCompletion(const ExecTarget& target,
                          const std::vector<std::string>& argv,
                          absl::Duration timeout,
                          const std::function<bool()>& stop) {
  RunResult result;
  auto child = SpawnInContainer(target, argv, /*tty=*/false, /*with_stdin=*/false);
  if (!child.ok()) {
    result.exit_code = ExitCodeForSpawnError(child.status());
    result.output = std::string(child.status().message());
    return result;
  }
  ChildProcess& process = **child;
  const absl::Time deadline = absl::Now() + timeout;
  auto running = [&] { return absl::Now() < deadline && !(stop && stop()); };
  int open_fds = 2;
  char buffer[4096];
  std::vector<pollfd> fds = {{process.stdout_fd(), POLLIN, 0},
                             {process.stderr_fd(), POLLIN, 0}};
  while (open_fds > 0 && running()) {
    poll(fds.data(), fds.size(), 50);
    for (pollfd& p : fds) {
      if (p.fd < 0 || p.revents == 0) continue;
      ssize_t n = read(p.fd, buffer, sizeof buffer);
      if (n > 0) {
        if (result.output.size() < 65536) result.output.append(buffer, n);
      } else {
        p.fd = -1;
        --open_fds;
      }
    }
    if (process.TryWait() && open_fds > 0) {
      // Exited; a background child may still hold the pipes: stop waiting.
      break;
    }
  }
  while (!process.TryWait() && running()) absl::SleepFor(absl::Milliseconds(10));
  if (!process.TryWait()) {
    result.timed_out = true;
    process.Kill();
    result.exit_code = 137;
    return result;
  }
  process.Kill();
  result.exit_code = *process.TryWait();
  return result;
}

}  // namespace vkhost::process
