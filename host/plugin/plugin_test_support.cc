#include "host/plugin/plugin_test_support.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"

namespace vkhost::plugin::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base && *base ? base : "/tmp") + "/vkhost-plugin-test-XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  path_ = made ? made : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::WriteScript(const std::string& name,
                                 const std::string& body) const {
  std::string file = path_ + "/" + name;
  std::ofstream(file) << "#!/bin/bash\n" << body << "\n";
  ::chmod(file.c_str(), 0755);
  return file;
}

std::string TempDir::ReadFile(const std::string& name) const {
  std::ifstream in(path_ + "/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class FakePluginServer::Services {
 public:
  Services(FakePluginServer* owner, Options options)
      : identity(owner, options), node(owner), stats(owner), health(owner) {}

  class Identity : public v1::Identity::Service {
   public:
    Identity(FakePluginServer* owner, Options options)
        : owner_(owner), options_(std::move(options)) {}
    grpc::Status GetPluginInfo(grpc::ServerContext*,
                               const v1::GetPluginInfoRequest*,
                               v1::GetPluginInfoResponse* response) override {
      response->set_name(options_.name);
      response->set_version("9.9.9");
      (*response->mutable_manifest())["backend"] = "in-process";
      return grpc::Status::OK;
    }
    grpc::Status GetCapabilities(grpc::ServerContext*,
                                 const v1::GetCapabilitiesRequest*,
                                 v1::GetCapabilitiesResponse* response) override {
      for (int c : options_.capabilities) {
        response->add_capabilities(static_cast<v1::Capability>(c));
      }
      return grpc::Status::OK;
    }
    grpc::Status Probe(grpc::ServerContext*, const v1::ProbeRequest*,
                       v1::ProbeResponse* response) override {
      response->set_ready(owner_->serving_);
      return grpc::Status::OK;
    }

   private:
    FakePluginServer* owner_;
    Options options_;
  };

  class Node : public v1::Node::Service {
   public:
    explicit Node(FakePluginServer* owner) : owner_(owner) {}
    grpc::Status GetNode(grpc::ServerContext*, const v1::GetNodeRequest*,
                         v1::NodeStatus* response) override {
      ++owner_->node_calls_;
      (*response->mutable_capacity())["cpu"] = "4";
      return grpc::Status::OK;
    }

   private:
    FakePluginServer* owner_;
  };

  class Stats : public v1::Stats::Service {
   public:
    explicit Stats(FakePluginServer* owner) : owner_(owner) {}
    grpc::Status GetStatsSummary(grpc::ServerContext*,
                                 const v1::GetStatsSummaryRequest*,
                                 v1::GetStatsSummaryResponse*) override {
      ++owner_->stats_calls_;
      return grpc::Status::OK;
    }

   private:
    FakePluginServer* owner_;
  };

  class Health : public grpc::health::v1::Health::Service {
   public:
    explicit Health(FakePluginServer* owner) : owner_(owner) {}
    grpc::Status Check(grpc::ServerContext*,
                       const grpc::health::v1::HealthCheckRequest*,
                       grpc::health::v1::HealthCheckResponse* response) override {
      response->set_status(
          owner_->serving_ ? grpc::health::v1::HealthCheckResponse::SERVING
                           : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
      return grpc::Status::OK;
    }

   private:
    FakePluginServer* owner_;
  };

  Identity identity;
  Node node;
  Stats stats;
  Health health;
};

FakePluginServer::FakePluginServer(const std::string& socket_path,
                                   Options options)
    : socket_path_(socket_path), address_("unix://" + socket_path) {
  Serve(address_, grpc::InsecureServerCredentials(), std::move(options),
        nullptr);
}

FakePluginServer::FakePluginServer(
    Options options, std::shared_ptr<grpc::ServerCredentials> credentials) {
  int port = 0;
  Serve("127.0.0.1:0", std::move(credentials), std::move(options), &port);
  address_ = "tcp://127.0.0.1:" + std::to_string(port);
}

void FakePluginServer::Serve(const std::string& listen,
                             std::shared_ptr<grpc::ServerCredentials> credentials,
                             Options options, int* port) {
  bool serve_identity = options.serve_identity;
  services_ = std::make_unique<Services>(this, std::move(options));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, std::move(credentials), port);
  if (serve_identity) builder.RegisterService(&services_->identity);
  builder.RegisterService(&services_->node);
  builder.RegisterService(&services_->stats);
  builder.RegisterService(&services_->health);
  server_ = builder.BuildAndStart();
}

FakePluginServer::~FakePluginServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::string FakePluginServer::HandshakeLine() const {
  return "VKHOST|1|1|unix|" + socket_path_ + "|grpc";
}

std::string WriteHandshakingPlugin(const TempDir& dir, const std::string& name,
                                   const FakePluginServer& server) {
  return dir.WriteScript(name, "echo '" + server.HandshakeLine() +
                                   "'\necho 'fake plugin ready' >&2\n"
                                   "exec cat >/dev/null");
}

bool MakeTestPki(const TempDir& dir, TestPki* pki) {
  const std::string d = dir.path();
  std::string script = dir.WriteScript("make-pki.sh", R"sh(set -e
cd "$(dirname "$0")"
exec 2>pki.log
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
  -days 1 -subj /CN=vkhost-test-ca
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -keyout $who.key -out $who.csr \
    -subj /CN=vkhost-test-$who
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > $who.ext
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out $who.pem -days 1 -extfile $who.ext
done)sh");
  if (std::system(script.c_str()) != 0) return false;
  *pki = {d + "/ca.pem", d + "/server.pem", d + "/server.key",
          d + "/client.pem", d + "/client.key"};
  return true;
}

bool ProcessExists(int pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace vkhost::plugin::testing
