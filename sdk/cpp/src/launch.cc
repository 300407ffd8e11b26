// Launch-mode and connect-mode helpers; see launch.h.
#include "launch.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vkhost::sdk::internal {

absl::Status CheckMagicCookie(const char* cookie) {
  if (cookie != nullptr && std::strcmp(cookie, kMagicCookieValue) == 0) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "This program is a vkhost provider plugin. It is meant to be started "
      "by vkhost (which sets ",
      kMagicCookieEnv,
      "), or run as a server with --listen unix:///path/plugin.sock or "
      "--listen tcp://host:port for vkhost to connect to."));
}

absl::StatusOr<int> ChooseProtocol(const char* host_versions,
                                   const std::vector<int>& ours) {
  std::string host_list = host_versions == nullptr ? "" : host_versions;
  auto mismatch = [&] {
    return absl::FailedPreconditionError(absl::StrCat(
        "no protocol version in common: vkhost offers \"", host_list, "\" (",
        kProtocolVersionsEnv, "), this plugin speaks \"",
        absl::StrJoin(ours, ","), "\""));
  };
  int best = -1;
  for (absl::string_view item :
       absl::StrSplit(host_list, ',', absl::SkipWhitespace())) {
    int version = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(item), &version)) {
      return mismatch();
    }
    if (std::find(ours.begin(), ours.end(), version) != ours.end()) {
      best = std::max(best, version);
    }
  }
  if (best < 0) return mismatch();
  return best;
}

std::string HandshakeLine(int protocol, absl::string_view socket_path) {
  return absl::StrCat("VKHOST|", kHandshakeCoreVersion, "|", protocol,
                      "|unix|", socket_path, "|grpc\n");
}

absl::StatusOr<std::string> MakePrivateSocketDir(const char* socket_dir_env,
                                                 const char* tmpdir_env) {
  std::string parent = "/tmp";
  if (socket_dir_env != nullptr && *socket_dir_env != '\0') {
    parent = socket_dir_env;
  } else if (tmpdir_env != nullptr && *tmpdir_env != '\0') {
    parent = tmpdir_env;
  }
  if (parent.front() != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) {
      return absl::InternalError(absl::StrCat(
          "cannot resolve socket directory ", parent, ": ", strerror(errno)));
    }
    parent = absl::StrCat(cwd, "/", parent);
  }
  std::string path = absl::StrCat(absl::StripSuffix(parent, "/"),
                                  "/vkhost-plugin-XXXXXX");
  // mkdtemp creates the directory with mode 0700.
  if (mkdtemp(path.data()) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create a private socket directory in ", parent,
                     ": ", strerror(errno)));
  }
  return path;
}

std::string ListenAddress::GrpcAddress() const {
  return kind == Kind::kUnix ? absl::StrCat("unix:", path) : host_port;
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view listen) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad --listen \"", listen, "\": ", why,
        "; use unix:///absolute/path.sock or tcp://host:port"));
  };
  ListenAddress address;
  absl::string_view rest = listen;
  if (absl::ConsumePrefix(&rest, "unix://")) {
    if (rest.empty() || rest.front() != '/') {
      return invalid("the socket path must be absolute");
    }
    address.kind = ListenAddress::Kind::kUnix;
    address.path = std::string(rest);
    return address;
  }
  if (absl::ConsumePrefix(&rest, "tcp://")) {
    size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return invalid("missing port");
    absl::string_view host = rest.substr(0, colon);
    int port = 0;
    if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return invalid("the port must be a number from 0 to 65535");
    }
    if (host.find(':') != absl::string_view::npos &&
        !(host.front() == '[' && host.back() == ']')) {
      return invalid("write IPv6 addresses in brackets");
    }
    address.kind = ListenAddress::Kind::kTcp;
    address.host_port = absl::StrCat(host.empty() ? "0.0.0.0" : host, ":",
                                     port);
    return address;
  }
  return invalid("unknown scheme");
}

absl::Status RemoveStaleSocket(const std::string& path) {
  struct stat info;
  if (lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot inspect ", path, ": ", strerror(errno)));
  }
  if (!S_ISSOCK(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " exists and is not a socket; refusing to replace it"));
  }
  if (unlink(path.c_str()) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot remove stale socket ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace vkhost::sdk::internal
