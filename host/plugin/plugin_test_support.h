// Test support for host/plugin tests: temp dirs, fake plugin executables
// (bash scripts) and an in-process gRPC server that plays a plugin.
#ifndef VKHOST_HOST_PLUGIN_PLUGIN_TEST_SUPPORT_H_
#define VKHOST_HOST_PLUGIN_PLUGIN_TEST_SUPPORT_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "host/plugin/plugin.h"

namespace vkhost::plugin::testing {

// A fresh directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

  // Writes an executable bash script `name` with `body` and returns its path.
  std::string WriteScript(const std::string& name, const std::string& body) const;
  // The file's contents, or "" when it does not exist.
  std::string ReadFile(const std::string& name) const;

 private:
  std::string path_;
};

// Serves Identity, Node, Stats and grpc.health.v1.Health on a unix socket,
// like a plugin would. Thread-safe.
class FakePluginServer {
 public:
  struct Options {
    std::string name = "fake";
    std::vector<int> capabilities;  // Raw values, so tests can send unknown ones.
    bool serve_identity = true;
  };

  // Listens on a unix socket.
  FakePluginServer(const std::string& socket_path, Options options);
  // Listens on a free loopback TCP port with `credentials`.
  FakePluginServer(Options options,
                   std::shared_ptr<grpc::ServerCredentials> credentials);
  ~FakePluginServer();

  std::string socket_path() const { return socket_path_; }
  // The URL vkhost dials: unix:///path or tcp://127.0.0.1:port.
  std::string address() const { return address_; }
  // The handshake line a launched plugin would print for this server.
  std::string HandshakeLine() const;

  void SetServing(bool serving) { serving_ = serving; }
  int node_calls() const { return node_calls_; }
  int stats_calls() const { return stats_calls_; }

 private:
  class Services;
  void Serve(const std::string& listen,
             std::shared_ptr<grpc::ServerCredentials> credentials,
             Options options, int* port);
  std::string socket_path_;
  std::string address_;
  std::atomic<bool> serving_{true};
  std::atomic<int> node_calls_{0};
  std::atomic<int> stats_calls_{0};
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
};

// A launch-mode fake plugin for `server`: prints the server's handshake line
// and waits for end-of-file on stdin, like a real plugin.
std::string WriteHandshakingPlugin(const TempDir& dir, const std::string& name,
                                   const FakePluginServer& server);

// Files of a test PKI made with the openssl command: a CA, a server
// certificate for 127.0.0.1 and a client certificate, all signed by the CA.
struct TestPki {
  std::string ca, server_cert, server_key, client_cert, client_key;
};
// Writes them into `dir`; false (with the reason logged) if openssl failed.
bool MakeTestPki(const TempDir& dir, TestPki* pki);

// True if a process with this pid exists (zombies count as gone once reaped).
bool ProcessExists(int pid);

}  // namespace vkhost::plugin::testing

#endif  // VKHOST_HOST_PLUGIN_PLUGIN_TEST_SUPPORT_H_
