// The container shim; see shim.h.
#include "plugins/process/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "plugins/process/log_file.h"
#include "plugins/process/process_tree.h"
#include "plugins/process/whole_file.h"

namespace vkhost::process {
namespace {

using nlohmann::json;

// mkdir -p; appends the directories it created to `created`.
bool MakeDirs(const std::string& path, std::vector<std::string>* created) {
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&prefix, "/", part);
    if (mkdir(prefix.c_str(), 0755) == 0) {
      created->push_back(prefix);
    } else if (errno != EEXIST) {
      return false;
    }
  }
  return true;
}

std::string JoinRoot(const std::string& root, const std::string& path) {
  if (root == "/" || root.empty()) return path;
  return root + (path.empty() || path[0] != '/' ? "/" : "") + path;
}

// Sets up the container's mount namespace. Returns an error message.
std::string SetUpMounts(const std::string& dir, const LaunchSpec& spec) {
  if (!spec.mount_namespace || spec.mounts.empty()) return "";
  if (unshare(CLONE_NEWNS) != 0) {
    return absl::StrCat("unshare(CLONE_NEWNS): ", strerror(errno));
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return absl::StrCat("making / private: ", strerror(errno));
  }
  std::vector<std::string> created;
  std::string problems;
  for (const BindMount& m : spec.mounts) {
    const std::string target = JoinRoot(spec.root, m.target);
    struct stat st;
    bool source_is_dir = stat(m.source.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    std::string parent = target.substr(0, target.rfind('/'));
    if (!MakeDirs(source_is_dir ? target : parent, &created)) {
      absl::StrAppend(&problems, "cannot create mount point ", target, ": ",
                      strerror(errno), "; ");
      continue;
    }
    if (!source_is_dir && access(target.c_str(), F_OK) != 0) {
      int fd = open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd >= 0) close(fd);
      created.push_back(target);
    }
    if (mount(m.source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC,
              nullptr) != 0) {
      absl::StrAppend(&problems, "bind mount ", m.source, " at ", target, ": ",
                      strerror(errno), "; ");
      continue;
    }
    if (m.read_only) {
      mount(nullptr, target.c_str(), nullptr,
            MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, nullptr);
    }
  }
  // The plugin removes these (if still empty) when the pod goes away.
  std::string list;
  for (const std::string& path : created) absl::StrAppend(&list, path, "\n");
  // Best effort: without the list, the plugin only leaves mount points behind.
  WriteFileAtomic(dir + "/mountpoints", list).IgnoreError();
  return problems;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Kills every live descendant of the shim: the container's whole process
// tree. One pass; the caller reaps and repeats while processes remain.
void KillContainerTree() {
  for (pid_t pid : Descendants(getpid())) kill(pid, SIGKILL);
}

struct Streams {
  int out = -1, err = -1;   // read ends (tty: out = master, err unused)
  int in = -1;              // write end to the workload's stdin (tty: master)
  int stdin_fifo = -1, control_fifo = -1;
};

}  // namespace

std::string EncodeLaunchSpec(const LaunchSpec& spec) {
  json mounts = json::array();
  for (const BindMount& m : spec.mounts) {
    mounts.push_back({{"source", m.source}, {"target", m.target},
                      {"read_only", m.read_only}});
  }
  json j = {{"argv", spec.argv},
            {"env", spec.env},
            {"working_dir", spec.working_dir},
            {"root", spec.root},
            {"tty", spec.tty},
            {"stdin", spec.stdin},
            {"mount_namespace", spec.mount_namespace},
            {"mounts", mounts},
            {"log_max_bytes", spec.log_max_bytes},
            {"memory_limit_bytes", spec.memory_limit_bytes},
            {"cgroup_dir", spec.cgroup_dir}};
  if (spec.run_as_user) j["run_as_user"] = *spec.run_as_user;
  if (spec.run_as_group) j["run_as_group"] = *spec.run_as_group;
  return j.dump();
}

absl::StatusOr<LaunchSpec> DecodeLaunchSpec(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError("launch.json is not a JSON object");
  }
  LaunchSpec spec;
  spec.argv = j.value("argv", std::vector<std::string>{});
  spec.env = j.value("env", std::vector<std::string>{});
  spec.working_dir = j.value("working_dir", "");
  spec.root = j.value("root", "/");
  spec.tty = j.value("tty", false);
  spec.stdin = j.value("stdin", false);
  spec.mount_namespace = j.value("mount_namespace", false);
  for (const json& m : j.value("mounts", json::array())) {
    if (!m.is_object()) continue;
    spec.mounts.push_back(BindMount{m.value("source", ""), m.value("target", ""),
                                    m.value("read_only", false)});
  }
  spec.log_max_bytes = j.value("log_max_bytes", int64_t{10 << 20});
  spec.memory_limit_bytes = j.value("memory_limit_bytes", int64_t{0});
  spec.cgroup_dir = j.value("cgroup_dir", "");
  if (j.contains("run_as_user")) spec.run_as_user = j.value("run_as_user", 0u);
  if (j.contains("run_as_group")) spec.run_as_group = j.value("run_as_group", 0u);
  if (spec.argv.empty()) {
    return absl::InvalidArgumentError("launch.json has no argv");
  }
  return spec;
}

std::optional<WorkloadPid> ReadWorkloadPid(const std::string& dir) {
  json j = json::parse(ReadWholeFile(dir + "/pid.json"), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  WorkloadPid pid;
  pid.pid = j.value("pid", 0);
  pid.start_ticks = j.value("start_ticks", uint64_t{0});
  if (pid.pid <= 0) return std::nullopt;
  return pid;
}

std::optional<ExitRecord> ReadExitRecord(const std::string& dir) {
  json j = json::parse(ReadWholeFile(dir + "/exit.json"), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  ExitRecord record;
  record.exit_code = j.value("exit_code", 0);
  record.signal = j.value("signal", 0);
  record.reason = j.value("reason", "");
  record.message = j.value("message", "");
  record.finished_at = absl::FromUnixNanos(j.value("finished_at_ns", int64_t{0}));
  return record;
}

bool WriteExitRecord(const std::string& dir, const ExitRecord& record) {
  json j = {{"exit_code", record.exit_code},
            {"signal", record.signal},
            {"reason", record.reason},
            {"message", record.message},
            {"finished_at_ns", absl::ToUnixNanos(record.finished_at)}};
  return WriteFileAtomic(dir + "/exit.json", j.dump()).ok();
}

std::string LookPath(const std::string& file, const std::string& path_env,
                     const std::string& root, int* error) {
  *error = 0;
  if (file.find('/') != std::string::npos) {
    if (access(JoinRoot(root, file).c_str(), X_OK) != 0) *error = errno;
    return file;
  }
  int best = ENOENT;
  for (absl::string_view dir : absl::StrSplit(path_env, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", file);
    const std::string on_host = JoinRoot(root, candidate);
    struct stat st;
    if (stat(on_host.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    if (access(on_host.c_str(), X_OK) == 0) return candidate;
    best = EACCES;
  }
  *error = best;
  return file;
}

namespace {

// The workload's ends of its streams.
struct ChildFds {
  int in = -1, out = -1, err = -1, tty = -1;
};

// Opens the pipes (or the pty) between the shim and the workload, and the
// stdin and control FIFOs attach writes to. An error message on failure.
std::string OpenStreams(const std::string& dir, const LaunchSpec& spec, Streams* s,
                        ChildFds* child) {
  if (spec.tty) {
    int master = -1;
    if (openpty(&master, &child->tty, nullptr, nullptr, nullptr) != 0) {
      return absl::StrCat("openpty: ", strerror(errno));
    }
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(child->tty, F_SETFD, FD_CLOEXEC);
    s->out = s->in = master;
  } else {
    int out[2], err[2], in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
        (spec.stdin && pipe2(in, O_CLOEXEC) != 0)) {
      return absl::StrCat("pipe: ", strerror(errno));
    }
    s->out = out[0];
    child->out = out[1];
    s->err = err[0];
    child->err = err[1];
    s->in = in[1];
    child->in = spec.stdin ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  if (spec.tty || spec.stdin) {
    const std::string control = dir + "/control";
    mkfifo(control.c_str(), 0600);
    s->control_fifo = open(control.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  }
  if (spec.stdin) {
    // Opened read-write so the shim never sees end-of-file between two
    // attach sessions.
    const std::string fifo = dir + "/stdin";
    mkfifo(fifo.c_str(), 0600);
    s->stdin_fifo = open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  }
  return "";
}

// In the forked child: turns into the workload, or writes the errno of the
// step that failed to `error_fd` and exits.
[[noreturn]] void BecomeWorkload(const LaunchSpec& spec, const std::string& program,
                                 const ChildFds& fds, char** argv, char** env,
                                 int error_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  if (spec.tty) {
    setsid();
    ioctl(fds.tty, TIOCSCTTY, 0);
    for (int target : {0, 1, 2}) dup2(fds.tty, target);
  } else {
    setpgid(0, 0);
    dup2(fds.in, 0);
    dup2(fds.out, 1);
    dup2(fds.err, 2);
  }
  if (spec.memory_limit_bytes > 0 && spec.cgroup_dir.empty()) {
    rlimit limit{static_cast<rlim_t>(spec.memory_limit_bytes),
                 static_cast<rlim_t>(spec.memory_limit_bytes)};
    setrlimit(RLIMIT_DATA, &limit);
  }
  const std::string workdir = spec.working_dir.empty() ? "/" : spec.working_dir;
  int failed = 0;
  if (spec.root != "/" && (chroot(spec.root.c_str()) != 0 || chdir("/") != 0)) failed = errno;
  if (failed == 0 && chdir(workdir.c_str()) != 0) failed = errno;
  // Dropping to another user also drops root's supplementary groups.
  if (failed == 0 && spec.run_as_user) {
    gid_t group = spec.run_as_group.value_or(0);
    if (setgroups(spec.run_as_group ? 1 : 0, &group) != 0) failed = errno;
  }
  if (failed == 0 && spec.run_as_group && setgid(*spec.run_as_group) != 0) failed = errno;
  if (failed == 0 && spec.run_as_user && setuid(*spec.run_as_user) != 0) failed = errno;
  if (failed == 0) {
    execve(program.c_str(), argv, env);
    failed = errno;
  }
  ssize_t ignored = write(error_fd, &failed, sizeof failed);
  (void)ignored;
  _exit(127);
}

// Applies requests from the control FIFO, one per line: "resize W H" (the
// terminal's size) and "close-stdin" (the workload sees end-of-file; with a
// tty, an end-of-file character).
void ApplyControl(absl::string_view requests, bool tty, Streams& s) {
  for (absl::string_view line : absl::StrSplit(requests, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    unsigned width = 0, height = 0;
    if (words.size() == 3 && words[0] == "resize" && tty && s.in >= 0 &&
        absl::SimpleAtoi(words[1], &width) && absl::SimpleAtoi(words[2], &height)) {
      winsize size{};
      size.ws_col = static_cast<unsigned short>(width);
      size.ws_row = static_cast<unsigned short>(height);
      ioctl(s.in, TIOCSWINSZ, &size);
    } else if (words.size() == 1 && words[0] == "close-stdin" && s.in >= 0) {
      if (tty) {
        WriteAll(s.in, "\x04");
      } else {
        close(s.in);
        s.in = -1;
      }
    }
  }
}

// Relays output to the log and attach input to the workload, forwards the
// plugin's signals, and returns the workload's wait status once it ended and
// its output is drained (at most 2 s after the end: a process that escaped
// the tree may hold the pipes).
int RelayUntilExit(pid_t pid, int signal_fd, bool tty, Streams& s,
                   ContainerLogWriter& log) {
  std::optional<int> wait_status;
  absl::Time drain_deadline = absl::InfiniteFuture();
  char buffer[65536];
  for (;;) {
    std::vector<pollfd> fds;
    for (int fd : {signal_fd, s.out, s.err}) {
      if (fd >= 0) fds.push_back(pollfd{fd, POLLIN, 0});
    }
    for (int fd : {s.stdin_fifo, s.control_fifo}) {
      if (fd >= 0 && !wait_status) fds.push_back(pollfd{fd, POLLIN, 0});
    }
    if (wait_status && ((s.out < 0 && s.err < 0) || absl::Now() >= drain_deadline)) {
      return *wait_status;
    }
    poll(fds.data(), fds.size(), wait_status ? 100 : 1000);
    bool kill_tree = false;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == signal_fd) {
        signalfd_siginfo info;
        while (read(signal_fd, &info, sizeof info) == sizeof info) {
          if (info.ssi_signo == SIGTERM) kill(-pid, SIGTERM);
          if (info.ssi_signo == SIGUSR1) kill_tree = true;
        }
        continue;
      }
      ssize_t n = read(p.fd, buffer, sizeof buffer);
      absl::string_view data(buffer, n > 0 ? static_cast<size_t>(n) : 0);
      if (p.fd == s.out || p.fd == s.err) {
        if (n > 0) {
          (void)log.Write(p.fd == s.err ? v1::LogEntry::STREAM_STDERR
                                        : v1::LogEntry::STREAM_STDOUT,
                          data, absl::Now());
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          int& fd = p.fd == s.out ? s.out : s.err;
          if (fd != s.in) close(fd);
          fd = -1;
        }
      } else if (p.fd == s.stdin_fifo && n > 0 && s.in >= 0) {
        WriteAll(s.in, data);
      } else if (p.fd == s.control_fifo && n > 0) {
        ApplyControl(data, tty, s);
      }
    }
    int status = 0;
    pid_t reaped;
    while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
      if (reaped == pid && !wait_status) {
        wait_status = status;
        drain_deadline = absl::Now() + absl::Seconds(2);
      }
    }
    // The container ends with its main process, as with a PID namespace:
    // whatever it left behind goes too (re-checked every round, as a dying
    // tree may still fork).
    if (kill_tree || wait_status) KillContainerTree();
  }
}

}  // namespace

int RunShim(const std::string& dir) {
  signal(SIGPIPE, SIG_IGN);
  auto fail_start = [&](int code, const std::string& message) {
    ContainerLogWriter log(dir + "/log", 1 << 20);
    (void)log.Write(v1::LogEntry::STREAM_STDERR,
                    "vkhost-process-plugin: " + message + "\n", absl::Now());
    ExitRecord record;
    record.exit_code = code;
    record.reason = "StartError";
    record.message = message;
    record.finished_at = absl::Now();
    WriteExitRecord(dir, record);
    return 0;
  };
  absl::StatusOr<LaunchSpec> spec = DecodeLaunchSpec(ReadWholeFile(dir + "/launch.json"));
  if (!spec.ok()) return fail_start(128, std::string(spec.status().message()));

  // Orphans of the container become the shim's children, so the whole tree
  // stays findable.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t signals;
  sigemptyset(&signals);
  for (int signo : {SIGTERM, SIGUSR1, SIGCHLD}) sigaddset(&signals, signo);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);

  if (std::string problem = SetUpMounts(dir, *spec); !problem.empty()) {
    return fail_start(128, "setting up volumes: " + problem);
  }
  if (!spec->cgroup_dir.empty()) {
    mkdir(spec->cgroup_dir.c_str(), 0755);
    if (spec->memory_limit_bytes > 0) {
      std::ofstream(spec->cgroup_dir + "/memory.max") << spec->memory_limit_bytes;
    }
  }
  std::string path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& entry : spec->env) {
    if (absl::StartsWith(entry, "PATH=")) path_env = entry.substr(5);
  }
  int lookup_error = 0;
  const std::string program = LookPath(spec->argv[0], path_env, spec->root, &lookup_error);
  if (lookup_error != 0) {
    return fail_start(lookup_error == ENOENT ? 127 : 126,
                      absl::StrCat("cannot run \"", spec->argv[0], "\": ",
                                   strerror(lookup_error), " (looked up in PATH=",
                                   path_env, ")"));
  }
  Streams s;
  ChildFds child;
  if (std::string problem = OpenStreams(dir, *spec, &s, &child); !problem.empty()) {
    return fail_start(128, problem);
  }
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    return fail_start(128, absl::StrCat("pipe: ", strerror(errno)));
  }
  std::vector<std::string> argv = spec->argv;
  std::vector<std::string> env = spec->env;
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  const pid_t pid = fork();
  if (pid < 0) return fail_start(128, absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    BecomeWorkload(*spec, program, child, c_argv.data(), c_env.data(), exec_error[1]);
  }
  close(exec_error[1]);
  for (int fd : {child.in, child.out, child.err, child.tty}) {
    if (fd >= 0) close(fd);
  }
  if (!spec->cgroup_dir.empty()) {
    std::ofstream(spec->cgroup_dir + "/cgroup.procs") << pid;
  }
  int child_errno = 0;
  ssize_t got;
  do {
    got = read(exec_error[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  close(exec_error[0]);
  if (got == sizeof child_errno) {
    waitpid(pid, nullptr, 0);
    return fail_start(child_errno == ENOENT ? 127 : 126,
                      absl::StrCat("cannot start \"", spec->argv[0], "\" in ",
                                   spec->working_dir.empty() ? "/" : spec->working_dir,
                                   ": ", strerror(child_errno)));
  }
  WriteFileAtomic(
      dir + "/pid.json",
      json{{"pid", pid}, {"start_ticks", ProcessStartTicks(pid).value_or(0)}}.dump())
      .IgnoreError();

  ContainerLogWriter log(dir + "/log", spec->log_max_bytes);
  const int status = RelayUntilExit(pid, signal_fd, spec->tty, s, log);
  ExitRecord record;
  if (WIFSIGNALED(status)) {
    record.signal = WTERMSIG(status);
    record.exit_code = 128 + WTERMSIG(status);
  } else {
    record.exit_code = WEXITSTATUS(status);
  }
  record.reason = record.exit_code == 0 ? "Completed" : "Error";
  record.finished_at = absl::Now();
  WriteExitRecord(dir, record);
  unlink((dir + "/stdin").c_str());
  unlink((dir + "/control").c_str());
  if (!spec->cgroup_dir.empty()) rmdir(spec->cgroup_dir.c_str());
  return 0;
}

}  // namespace vkhost::process
