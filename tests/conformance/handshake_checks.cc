// Checks of the launch-mode handshake (spec.md §2.1). The suite starts the
// plugin's command itself with chosen environments and watches its stdout,
// stderr, exit status and socket directory.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/conformance/conformance.h"

namespace vkhost::conformance {
namespace {

namespace fs = std::filesystem;

// spec.md §2.1 gives a plugin 5 s to exit; the slack covers process
// scheduling on a loaded machine, not the plugin.
constexpr absl::Duration kExitLimit = absl::Seconds(5);
constexpr absl::Duration kSlack = absl::Seconds(1);
// The host's default handshake timeout.
constexpr absl::Duration kHandshakeTimeout = absl::Seconds(10);

// A private directory for one check's plugin sockets, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (fs::temp_directory_path() / "vkhost-conformance-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The launch environment a check gives the plugin.
struct HandshakeEnv {
  std::string socket_dir;  // empty: the plugin's default
  std::string protocols = "1";
  std::optional<std::string> cookie = plugin::kMagicCookieValue;

  std::vector<std::string> Entries() const {
    std::vector<std::string> env;
    if (cookie.has_value()) {
      env.push_back(absl::StrCat(plugin::kMagicCookieEnv, "=", *cookie));
    }
    env.push_back(absl::StrCat(plugin::kProtocolVersionsEnv, "=", protocols));
    if (!socket_dir.empty()) {
      env.push_back(absl::StrCat(plugin::kSocketDirEnv, "=", socket_dir));
    }
    return env;
  }
};

// The parts of "VKHOST|<core>|<major>|unix|<socket path>|grpc".
struct HandshakeLine {
  std::string core, major, network, address, protocol;
};

absl::StatusOr<HandshakeLine> ParseHandshake(const std::string& line) {
  static const std::regex kLine(
      R"(^VKHOST\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)$)");
  std::smatch m;
  if (!std::regex_match(line, m, kLine)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "first stdout line \"", line,
        "\" is not VKHOST|<core>|<major>|unix|<socket path>|grpc"));
  }
  return HandshakeLine{m[1], m[2], m[3], m[4], m[5]};
}

// A plugin started by the check, and its handshake.
struct Started {
  std::unique_ptr<Subprocess> process;
  HandshakeLine handshake;
};

std::string StderrHint(const Subprocess& process) {
  std::string err = process.Stderr();
  if (err.size() > 600) err = "..." + err.substr(err.size() - 600);
  return err.empty() ? "" : absl::StrCat("; stderr: ", err);
}

absl::StatusOr<Started> StartWithHandshake(Context& c, const HandshakeEnv& env) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(c.plugin_argv(), env.Entries());
  if (!process.ok()) return process.status();
  std::optional<std::string> line =
      (*process)->FirstStdoutLine(kHandshakeTimeout);
  if (!line.has_value()) {
    std::optional<int> exited = (*process)->WaitForExit(absl::ZeroDuration());
    return absl::FailedPreconditionError(absl::StrCat(
        "no handshake line within ", absl::FormatDuration(kHandshakeTimeout),
        exited.has_value() ? " (" + DescribeWaitStatus(*exited) + ")" : "",
        StderrHint(**process)));
  }
  absl::StatusOr<HandshakeLine> handshake = ParseHandshake(*line);
  if (!handshake.ok()) return handshake.status();
  return Started{*std::move(process), *handshake};
}

// Refusals (§2.1 rules 1 and 2): status 1, no handshake line, a message on
// stderr that contains `stderr_mentions`.
absl::Status ExpectRefusal(Context& c, const HandshakeEnv& env,
                           const std::string& stderr_mentions) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(c.plugin_argv(), env.Entries());
  if (!process.ok()) return process.status();
  Subprocess& p = **process;
  if (!p.WaitForOutput(kHandshakeTimeout)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the plugin kept running for ", absl::FormatDuration(kHandshakeTimeout),
        " (want exit status 1); stdout: \"", p.Stdout(), "\"", StderrHint(p)));
  }
  const int status = *p.WaitForExit(absl::ZeroDuration());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the plugin ", DescribeWaitStatus(status), ", want exit status 1",
        StderrHint(p)));
  }
  if (absl::StrContains(p.Stdout(), "VKHOST|")) {
    return absl::FailedPreconditionError(
        "the plugin printed a handshake line while refusing: \"" + p.Stdout() +
        "\"");
  }
  if (p.Stderr().empty()) {
    return absl::FailedPreconditionError("the plugin said nothing on stderr");
  }
  if (!absl::StrContains(p.Stderr(), stderr_mentions)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stderr does not mention \"", stderr_mentions, "\": ", p.Stderr()));
  }
  return absl::OkStatus();
}

Outcome LineFormat(Context& c) {
  ScratchDir dir;
  absl::StatusOr<Started> started = StartWithHandshake(c, {dir.path()});
  CONFORMANCE_RETURN_IF_ERROR(started.status());
  const HandshakeLine& h = started->handshake;
  const struct {
    const char* part;
    const std::string& got;
    const char* want;
  } kParts[] = {
      {"core version", h.core, "1"},
      {"protocol major (1 was offered)", h.major, "1"},
      {"network", h.network, "unix"},
      {"protocol", h.protocol, "grpc"},
  };
  for (const auto& part : kParts) {
    if (part.got != part.want) {
      return Outcome::Fail(absl::StrCat(part.part, " is \"", part.got,
                                        "\", want ", part.want));
    }
  }
  if (!absl::StartsWith(h.address, "/")) {
    return Outcome::Fail("socket path \"" + h.address + "\" is not absolute");
  }
  struct stat st {};
  if (::stat(h.address.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return Outcome::Fail("no unix socket at " + h.address +
                         " after the handshake");
  }
  return Outcome::Pass();
}

Outcome SocketDirPrivate(Context& c) {
  ScratchDir dir;
  absl::StatusOr<Started> started = StartWithHandshake(c, {dir.path()});
  CONFORMANCE_RETURN_IF_ERROR(started.status());
  const fs::path socket_dir = fs::path(started->handshake.address).parent_path();
  std::error_code error;
  if (fs::equivalent(socket_dir, dir.path(), error)) {
    return Outcome::Fail(absl::StrCat("the socket sits directly in ",
                                      plugin::kSocketDirEnv,
                                      "; want a new private directory inside it"));
  }
  if (!fs::equivalent(socket_dir.parent_path(), dir.path(), error)) {
    return Outcome::Fail(absl::StrCat("socket directory ", socket_dir.string(),
                                      " is not inside ", plugin::kSocketDirEnv,
                                      "=", dir.path()));
  }
  struct stat st {};
  if (::stat(socket_dir.c_str(), &st) != 0) {
    return Outcome::Fail("cannot stat " + socket_dir.string());
  }
  if ((st.st_mode & 07777) != 0700 || st.st_uid != ::geteuid()) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return Outcome::Fail(absl::StrCat("socket directory ", socket_dir.string(),
                                      " has mode ", mode, " and owner ",
                                      st.st_uid, ", want 0700 and ",
                                      ::geteuid()));
  }
  return Outcome::Pass();
}

Outcome HighestSharedVersion(Context& c) {
  ScratchDir dir;
  // Neither the first, the last nor the largest offer is shared.
  absl::StatusOr<Started> started =
      StartWithHandshake(c, {dir.path(), "99,1,98"});
  CONFORMANCE_RETURN_IF_ERROR(started.status());
  if (started->handshake.major != "1") {
    return Outcome::Fail("chose protocol major \"" + started->handshake.major +
                         "\" from an offer of 99,1,98; only 1 exists");
  }
  return Outcome::Pass();
}

Outcome RefusesMissingCookie(Context& c) {
  return Outcome::FromStatus(ExpectRefusal(c, {"", "1", std::nullopt}, "vkhost"));
}

Outcome RefusesWrongCookie(Context& c) {
  return Outcome::FromStatus(
      ExpectRefusal(c, {"", "1", "not-the-vkhost-cookie"}, "vkhost"));
}

Outcome RefusesUnsharedVersion(Context& c) {
  return Outcome::FromStatus(ExpectRefusal(c, {"", "99"}, "99"));
}

// Sends `signal` after the handshake: exit status 0 within 5 s, socket and
// its directory removed (§2.1 rule 7).
Outcome CleanExitOn(Context& c, int signal) {
  ScratchDir dir;
  absl::StatusOr<Started> started = StartWithHandshake(c, {dir.path()});
  CONFORMANCE_RETURN_IF_ERROR(started.status());
  Subprocess& p = *started->process;
  p.Signal(signal);
  std::optional<int> status = p.WaitForExit(kExitLimit + kSlack);
  if (!status.has_value()) {
    return Outcome::Fail(absl::StrCat("still running ",
                                      absl::FormatDuration(kExitLimit),
                                      " after ", strsignal(signal)));
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return Outcome::Fail(absl::StrCat(DescribeWaitStatus(*status), " on ",
                                      strsignal(signal), ", want status 0",
                                      StderrHint(p)));
  }
  const fs::path socket = started->handshake.address;
  std::error_code error;
  if (fs::exists(socket, error)) {
    return Outcome::Fail("socket " + socket.string() + " left behind");
  }
  if (fs::exists(socket.parent_path(), error)) {
    return Outcome::Fail("socket directory " + socket.parent_path().string() +
                         " left behind");
  }
  return Outcome::Pass();
}

Outcome SigtermCleanExit(Context& c) { return CleanExitOn(c, SIGTERM); }
Outcome SigintCleanExit(Context& c) { return CleanExitOn(c, SIGINT); }

Outcome StdinEofExit(Context& c) {
  ScratchDir dir;
  absl::StatusOr<Started> started = StartWithHandshake(c, {dir.path()});
  CONFORMANCE_RETURN_IF_ERROR(started.status());
  started->process->CloseStdin();
  if (!started->process->WaitForExit(kExitLimit + kSlack).has_value()) {
    return Outcome::Fail(absl::StrCat(
        "still running ", absl::FormatDuration(kExitLimit),
        " after its stdin reached end-of-file (the host went away)"));
  }
  return Outcome::Pass();
}

}  // namespace

const std::vector<Check>& HandshakeChecks() {
  constexpr v1::Capability kNone = v1::CAPABILITY_UNSPECIFIED;
  static const std::vector<Check> kChecks = {
      {"handshake.line-format", kNone, true, LineFormat},
      {"handshake.socket-dir-private", kNone, true, SocketDirPrivate},
      {"handshake.highest-shared-version", kNone, true, HighestSharedVersion},
      {"handshake.refuses-missing-cookie", kNone, true, RefusesMissingCookie},
      {"handshake.refuses-wrong-cookie", kNone, true, RefusesWrongCookie},
      {"handshake.refuses-unshared-version", kNone, true,
       RefusesUnsharedVersion},
      {"handshake.sigterm-clean-exit", kNone, true, SigtermCleanExit},
      {"handshake.sigint-clean-exit", kNone, true, SigintCleanExit},
      {"handshake.stdin-eof-exit", kNone, true, StdinEofExit},
  };
  return kChecks;
}

}  // namespace vkhost::conformance
