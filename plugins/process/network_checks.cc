// TcpConnects and HttpGetSucceeds; see network_checks.h.
#include "plugins/process/network_checks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/ascii.h"
#include "httplib.h"

namespace vkhost::process {

bool TcpConnects(const std::string& host, int port, absl::Duration timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  }
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1) {
      int error = 0;
      socklen_t len = sizeof error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      ok = error == 0;
    }
  }
  close(fd);
  return ok;
}

bool HttpGetSucceeds(const v1::HTTPGetAction& action, const std::string& host,
                     int port, absl::Duration timeout) {
  // Like the kubelet: HTTPS without certificate verification.
  std::unique_ptr<httplib::ClientImpl> client;
  if (absl::AsciiStrToUpper(action.scheme()) == "HTTPS") {
    auto tls = std::make_unique<httplib::SSLClient>(host, port);
    tls->enable_server_certificate_verification(false);
    client = std::move(tls);
  } else {
    client = std::make_unique<httplib::ClientImpl>(host, port);
  }
  const auto micros = absl::ToInt64Microseconds(timeout);
  client->set_connection_timeout(micros / 1000000, micros % 1000000);
  client->set_read_timeout(micros / 1000000, micros % 1000000);
  client->set_write_timeout(micros / 1000000, micros % 1000000);
  httplib::Headers headers;
  for (const auto& [name, value] : action.headers()) headers.emplace(name, value);
  auto result = client->Get(action.path().empty() ? "/" : action.path().c_str(), headers);
  return result && result->status >= 200 && result->status < 400;
}

}  // namespace vkhost::process
