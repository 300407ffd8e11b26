// The pure parts of starting a plugin server, kept apart from Serve() so they
// can be tested without processes: the launch-mode checks and handshake line
// of spec.md §2.1, the private socket directory, and the connect-mode
// `--listen` address syntax of §2.2.
#ifndef VKHOST_SDK_SRC_LAUNCH_H_
#define VKHOST_SDK_SRC_LAUNCH_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vkhost::sdk::internal {

inline constexpr char kMagicCookieEnv[] = "VKHOST_PLUGIN_MAGIC_COOKIE";
inline constexpr char kMagicCookieValue[] =
    "vkhost-provider-plugin-7c1e4a0f9d2b";
inline constexpr char kProtocolVersionsEnv[] = "VKHOST_PLUGIN_PROTOCOL_VERSIONS";
inline constexpr char kSocketDirEnv[] = "VKHOST_PLUGIN_SOCKET_DIR";
inline constexpr int kHandshakeCoreVersion = 1;

// FAILED_PRECONDITION with the message to print on stderr unless `cookie`
// (the env value, nullptr when unset) is the magic cookie.
absl::Status CheckMagicCookie(const char* cookie);

// The highest protocol major in both `host_versions` (the env value, a comma
// list; nullptr when unset) and `ours`. FAILED_PRECONDITION naming both lists
// when there is none or the host's list is malformed.
absl::StatusOr<int> ChooseProtocol(const char* host_versions,
                                   const std::vector<int>& ours);

// "VKHOST|1|<protocol>|unix|<socket_path>|grpc\n".
std::string HandshakeLine(int protocol, absl::string_view socket_path);

// Creates a fresh 0700 directory for the socket under `socket_dir_env` if
// set and non-empty, else `tmpdir_env`, else /tmp. Returns its absolute path.
absl::StatusOr<std::string> MakePrivateSocketDir(const char* socket_dir_env,
                                                 const char* tmpdir_env);

// A parsed --listen value.
struct ListenAddress {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string path;     // kUnix: absolute socket path
  std::string host_port;  // kTcp: "host:port" as gRPC takes it
  // The address in gRPC syntax ("unix:/path" or "host:port").
  std::string GrpcAddress() const;
};

// Accepts "unix:///abs/path" and "tcp://host:port" (host may be a name, an
// IPv4 address, [IPv6] or empty for all interfaces). INVALID_ARGUMENT with
// the accepted forms otherwise.
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view listen);

// Removes a stale socket file at `path` left by an earlier run. OK when there
// is nothing; FAILED_PRECONDITION when `path` exists and is not a socket.
absl::Status RemoveStaleSocket(const std::string& path);

}  // namespace vkhost::sdk::internal

#endif  // VKHOST_SDK_SRC_LAUNCH_H_
