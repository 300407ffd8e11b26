#include "plugins/process/network_checks.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "httplib.h"

namespace vkhost::process {
namespace {

// An HTTP server on a free loopback port for the length of a test.
class LocalServer {
 public:
  LocalServer() {
    server_.Get("/ok", [](const httplib::Request& request, httplib::Response& response) {
      response.status = request.get_header_value("X-Probe") == "yes" ? 200 : 403;
    });
    server_.Get("/redirect", [](const httplib::Request&, httplib::Response& response) {
      response.status = 302;
    });
    server_.Get("/broken", [](const httplib::Request&, httplib::Response& response) {
      response.status = 500;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

v1::HTTPGetAction Get(const std::string& path, bool with_header) {
  v1::HTTPGetAction action;
  action.set_path(path);
  if (with_header) (*action.mutable_headers())["X-Probe"] = "yes";
  return action;
}

TEST(NetworkChecksTest, TcpConnectsOnlyToAListeningPort) {
  LocalServer server;
  EXPECT_TRUE(TcpConnects("127.0.0.1", server.port(), absl::Seconds(5)));
  // Not an IPv4 address: loopback is used, as for an empty host.
  EXPECT_TRUE(TcpConnects("localhost", server.port(), absl::Seconds(5)));
  // Port 1 (tcpmux) has no listener on a test machine.
  EXPECT_FALSE(TcpConnects("127.0.0.1", 1, absl::Seconds(5)));
}

TEST(NetworkChecksTest, HttpGetSucceedsOn2xxAnd3xxWithTheActionsHeaders) {
  LocalServer server;
  const auto timeout = absl::Seconds(5);
  EXPECT_TRUE(HttpGetSucceeds(Get("/ok", true), "127.0.0.1", server.port(), timeout));
  EXPECT_FALSE(HttpGetSucceeds(Get("/ok", false), "127.0.0.1", server.port(), timeout));
  EXPECT_TRUE(HttpGetSucceeds(Get("/redirect", false), "127.0.0.1", server.port(), timeout));
  EXPECT_FALSE(HttpGetSucceeds(Get("/broken", false), "127.0.0.1", server.port(), timeout));
  EXPECT_FALSE(HttpGetSucceeds(Get("/ok", true), "127.0.0.1", 1, timeout));
}

}  // namespace
}  // namespace vkhost::process
