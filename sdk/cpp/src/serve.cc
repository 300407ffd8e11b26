// Serve(): runs the gRPC server for a Provider in launch or connect mode and
// stops it cleanly on SIGTERM, SIGINT or (launch mode) end-of-file on stdin.
//
// Stop requests are noticed by the thread that called Serve(), which blocks
// in poll(2) on a self-pipe written by the signal handler and on stdin; no
// extra thread is involved and the handler does nothing but write(2).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags/command_line.h"
#include "common/log/log.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "launch.h"
#include "services.h"
#include "vkhost/sdk/provider.h"

ABSL_FLAG(std::string, listen, "",
          "Connect mode: serve on unix:///abs/path.sock or tcp://host:port "
          "instead of being launched by vkhost.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "Connect mode: PEM certificate chain to serve TLS with.");
ABSL_FLAG(std::string, tls_key_file, "",
          "Connect mode: PEM private key of --tls-cert-file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "Connect mode: PEM CA bundle; when set, clients must present a "
          "certificate it signed (mutual TLS).");
ABSL_FLAG(std::string, log_level, "info",
          "Lowest level logged to stderr: debug, info, warning or error.");

namespace vkhost::sdk {
namespace {

using internal::ListenAddress;

// Write end of the self-pipe, for the signal handler only.
std::atomic<int> g_stop_pipe_fd{-1};

extern "C" void OnStopSignal(int signal_number) {
  int saved_errno = errno;
  unsigned char byte = static_cast<unsigned char>(signal_number);
  int fd = g_stop_pipe_fd.load();
  if (fd >= 0) {
    [[maybe_unused]] ssize_t ignored = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

// Installs SIGTERM/SIGINT handlers for its lifetime and waits for a stop
// request. One per process at a time; used by the thread in Serve().
class StopWaiter {
 public:
  StopWaiter() {
    if (pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
      fds_[0] = fds_[1] = -1;
      return;
    }
    g_stop_pipe_fd.store(fds_[1]);
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, &old_term_);
    sigaction(SIGINT, &action, &old_int_);
  }
  ~StopWaiter() {
    if (fds_[0] < 0) return;
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    g_stop_pipe_fd.store(-1);
    close(fds_[0]);
    close(fds_[1]);
  }
  StopWaiter(const StopWaiter&) = delete;
  StopWaiter& operator=(const StopWaiter&) = delete;

  absl::Status status() const {
    return fds_[0] >= 0 ? absl::OkStatus()
                        : absl::InternalError(absl::StrCat(
                              "cannot create the stop pipe: ", strerror(errno)));
  }

  // Blocks until a signal arrives or, with `watch_stdin`, stdin reaches
  // end-of-file. Returns why, for the log.
  std::string Wait(bool watch_stdin) {
    for (;;) {
      pollfd fds[2] = {{fds_[0], POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
      int count = watch_stdin ? 2 : 1;
      if (poll(fds, count, -1) < 0) {
        if (errno == EINTR) continue;
        return absl::StrCat("poll failed: ", strerror(errno));
      }
      if (fds[0].revents & POLLIN) {
        unsigned char signal_number = 0;
        if (read(fds_[0], &signal_number, 1) == 1) {
          return absl::StrCat("received ", strsignal(signal_number));
        }
      }
      if (watch_stdin && fds[1].revents != 0) {
        char buffer[4096];
        ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
        if (n == 0) return "stdin closed: vkhost went away";
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
          VKLOG(WARNING) << "cannot read stdin (" << strerror(errno)
                         << "); no longer watching it for vkhost's exit";
          watch_stdin = false;
        }
        // Data on stdin is not part of the protocol; ignore it.
      }
    }
  }

 private:
  int fds_[2] = {-1, -1};
  struct sigaction old_term_ {};
  struct sigaction old_int_ {};
};

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " ", path));
  }
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const ServeOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca-file needs --tls-cert-file and --tls-key-file");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls-cert-file and --tls-key-file");
  }
  auto cert = ReadFile(options.tls_cert_file, "TLS certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(options.tls_key_file, "TLS key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_file.empty()) {
    auto ca = ReadFile(options.tls_client_ca_file, "client CA bundle");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// Where and how to listen, decided before the server starts.
struct Endpoint {
  bool launch_mode = false;
  int protocol = 1;
  std::string socket_dir;   // launch mode: our private directory
  std::string socket_path;  // unix sockets: the file to remove on exit
  std::string grpc_address;
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

absl::StatusOr<Endpoint> PrepareLaunchEndpoint(const ServeOptions& options) {
  Endpoint endpoint;
  endpoint.launch_mode = true;
  absl::Status cookie =
      internal::CheckMagicCookie(std::getenv(internal::kMagicCookieEnv));
  if (!cookie.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cookie.message()).c_str());
    return cookie;
  }
  auto protocol = internal::ChooseProtocol(
      std::getenv(internal::kProtocolVersionsEnv), options.protocols);
  if (!protocol.ok()) {
    std::fprintf(stderr, "%s\n",
                 std::string(protocol.status().message()).c_str());
    return protocol.status();
  }
  endpoint.protocol = *protocol;
  auto dir = internal::MakePrivateSocketDir(
      std::getenv(internal::kSocketDirEnv), std::getenv("TMPDIR"));
  if (!dir.ok()) return dir.status();
  endpoint.socket_dir = *dir;
  endpoint.socket_path = *dir + "/plugin.sock";
  endpoint.grpc_address = "unix:" + endpoint.socket_path;
  endpoint.credentials = grpc::InsecureServerCredentials();
  return endpoint;
}

absl::StatusOr<Endpoint> PrepareConnectEndpoint(const ServeOptions& options) {
  Endpoint endpoint;
  auto address = internal::ParseListenAddress(options.listen);
  if (!address.ok()) return address.status();
  if (address->kind == ListenAddress::Kind::kUnix) {
    absl::Status removed = internal::RemoveStaleSocket(address->path);
    if (!removed.ok()) return removed;
    endpoint.socket_path = address->path;
  }
  endpoint.grpc_address = address->GrpcAddress();
  auto credentials = MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();
  endpoint.credentials = *credentials;
  return endpoint;
}

void RemoveSocketFiles(const Endpoint& endpoint) {
  if (!endpoint.socket_path.empty()) unlink(endpoint.socket_path.c_str());
  if (!endpoint.socket_dir.empty()) rmdir(endpoint.socket_dir.c_str());
}

}  // namespace

std::vector<char*> ParseCommandLine(int argc, char* argv[]) {
  return flags::ParseCommandLine(argc, argv);
}

ServeOptions ServeOptionsFromFlags() {
  ServeOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  return options;
}

absl::Status Serve(Provider& provider, const ServeOptions& options) {
  auto endpoint = options.listen.empty() ? PrepareLaunchEndpoint(options)
                                         : PrepareConnectEndpoint(options);
  if (!endpoint.ok()) return endpoint.status();

  StopWaiter stop;
  if (!stop.status().ok()) {
    RemoveSocketFiles(*endpoint);
    return stop.status();
  }
  internal::ProviderServices services(provider);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  int port = 0;
  builder.AddListeningPort(endpoint->grpc_address, endpoint->credentials,
                           &port);
  services.RegisterWith(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  // gRPC reports the bound port for TCP only.
  bool bound = server != nullptr &&
               (!endpoint->socket_path.empty() || port != 0);
  if (!bound) {
    if (server != nullptr) server->Shutdown();
    RemoveSocketFiles(*endpoint);
    return absl::UnavailableError(absl::StrCat(
        "cannot serve gRPC on ", endpoint->grpc_address,
        " (address in use, bad address, or no permission)"));
  }

  if (endpoint->launch_mode) {
    std::string line =
        internal::HandshakeLine(endpoint->protocol, endpoint->socket_path);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    VKLOG(INFO) << "serving protocol v" << endpoint->protocol << " on "
                << endpoint->socket_path;
  } else {
    VKLOG(INFO) << "serving on " << endpoint->grpc_address
                << (endpoint->socket_path.empty()
                        ? absl::StrCat(" (port ", port, ")")
                        : std::string());
  }

  std::string reason = stop.Wait(/*watch_stdin=*/endpoint->launch_mode);
  VKLOG(INFO) << "shutting down: " << reason;
  services.BeginShutdown();
  if (auto* health = server->GetHealthCheckService()) health->Shutdown();
  server->Shutdown(absl::ToChronoTime(absl::Now() + options.shutdown_grace));
  server->Wait();
  server.reset();
  RemoveSocketFiles(*endpoint);
  return absl::OkStatus();
}

int ServeMain(Provider& provider) {
  log::Level level;
  absl::Status parsed = log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level);
  if (!parsed.ok()) {
    std::fprintf(stderr, "--log-level: %s\n",
                 std::string(parsed.message()).c_str());
    return 1;
  }
  log::SetLevel(level);
  absl::Status status = Serve(provider, ServeOptionsFromFlags());
  if (!status.ok()) {
    VKLOG(ERROR) << "plugin stopped: " << status;
    return 1;
  }
  return 0;
}

}  // namespace vkhost::sdk
