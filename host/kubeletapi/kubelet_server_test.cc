// KubeletServer over real TLS: a fake API server answers TokenReview and
// SubjectAccessReview and serves the pods the informer caches; an in-process
// gRPC server plays the plugin (Identity, health, Streams.ContainerLogs,
// Stats), reached through a PluginSupervisor in connect mode; requests come
// from cpp-httplib's HTTPS client.
#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "host/informer/informer.h"
#include "host/kube/client.h"
#include "host/kubeletapi/kubelet_api.h"
#include "host/plugin/plugin.h"
#include "host/streambridge/stream_bridge.h"
#include "host/websocket/websocket.h"
#include "nlohmann/json.hpp"

namespace vkhost::kubeletapi {
namespace {

namespace v1 = ::vkhost::provider::v1;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kNode[] = "vnode";

// ---------------------------------------------------------------------------
// Fake API server: TokenReview, SubjectAccessReview, pods list + idle watch.

class FakeApiServer final : public kube::KubeClient {
 public:
  FakeApiServer() {
    pods_ = {Pod("web", "uid-web", kNode), Pod("follower", "uid-follower", kNode),
             Pod("elsewhere", "uid-elsewhere", "other-node")};
  }

  static json Pod(const std::string& name, const std::string& uid,
                  const std::string& node) {
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata",
             {{"name", name}, {"namespace", "default"}, {"uid", uid},
              {"resourceVersion", "1"}}},
            {"spec",
             {{"nodeName", node}, {"containers", json::array({{{"name", "app"}}})}}}};
  }

  // Which subresources `user` may use ("*" = all).
  void Allow(const std::string& user, std::set<std::string> subresources) {
    absl::MutexLock lock(&mu_);
    allowed_[user] = std::move(subresources);
  }

  std::vector<json> reviews() const {
    absl::MutexLock lock(&mu_);
    return sar_specs_;
  }
  int token_reviews() const {
    absl::MutexLock lock(&mu_);
    return token_reviews_;
  }

  absl::StatusOr<json> Create(const kube::Target& target, const json& body,
                              const kube::WriteOptions&) override {
    absl::MutexLock lock(&mu_);
    if (target.resource.plural == "tokenreviews") {
      ++token_reviews_;
      const std::string token = body["spec"]["token"];
      json status = {{"authenticated", false}};
      if (token == "alice-token" || token == "bob-token" || token == "monitor-token") {
        std::string user = token.substr(0, token.find('-'));
        status = {{"authenticated", true},
                  {"user", {{"username", user}, {"uid", user + "-uid"},
                            {"groups", {"system:authenticated"}}}}};
      }
      return json{{"status", status}};
    }
    if (target.resource.plural == "subjectaccessreviews") {
      sar_specs_.push_back(body["spec"]);
      const std::string user = body["spec"]["user"];
      const std::string sub = body["spec"]["resourceAttributes"]["subresource"];
      auto it = allowed_.find(user);
      bool allowed = it != allowed_.end() &&
                     (it->second.count("*") > 0 || it->second.count(sub) > 0);
      return json{{"status", {{"allowed", allowed}}}};
    }
    return absl::UnimplementedError("fake");
  }

  absl::StatusOr<json> List(const kube::Target&, const kube::ListOptions&) override {
    json list = {{"metadata", {{"resourceVersion", "1"}}}, {"items", pods_}};
    return list;
  }

  absl::Status Watch(const kube::Target&, const kube::WatchOptions&,
                     const kube::WatchEventHandler&, kube::WatchCancel* cancel) override {
    bool interrupted = false;
    absl::Mutex mu;
    if (!cancel->Register([&] {
          absl::MutexLock lock(&mu);
          interrupted = true;
        })) {
      return absl::CancelledError("cancelled");
    }
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(&interrupted));
    }
    cancel->Unregister();
    return absl::CancelledError("cancelled");
  }

  absl::StatusOr<json> Get(const kube::Target&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<json> Update(const kube::Target&, const json&,
                              const kube::WriteOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<json> Patch(const kube::Target&, kube::PatchType, const json&,
                             const kube::WriteOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<json> Delete(const kube::Target&, const kube::DeleteOptions&) override {
    return absl::UnimplementedError("fake");
  }

 private:
  std::vector<json> pods_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::set<std::string>> allowed_ ABSL_GUARDED_BY(mu_);
  std::vector<json> sar_specs_ ABSL_GUARDED_BY(mu_);
  int token_reviews_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---------------------------------------------------------------------------
// Fake plugin.

// 2024-05-01T12:00:00Z
constexpr int64_t kLogTime = 1714564800;

class FakePlugin final : public v1::Identity::Service,
                         public v1::Streams::Service,
                         public v1::Stats::Service {
 public:
  explicit FakePlugin(std::vector<v1::Capability> capabilities)
      : capabilities_(std::move(capabilities)) {}

  grpc::Status GetPluginInfo(grpc::ServerContext*, const v1::GetPluginInfoRequest*,
                             v1::GetPluginInfoResponse* response) override {
    response->set_name("fake");
    response->set_version("1");
    return grpc::Status::OK;
  }
  grpc::Status GetCapabilities(grpc::ServerContext*, const v1::GetCapabilitiesRequest*,
                               v1::GetCapabilitiesResponse* response) override {
    for (v1::Capability c : capabilities_) response->add_capabilities(c);
    return grpc::Status::OK;
  }
  grpc::Status Probe(grpc::ServerContext*, const v1::ProbeRequest*,
                     v1::ProbeResponse*) override {
    return grpc::Status::OK;
  }

  // Pod "web": five lines. Pod "follower": two lines, then waits for
  // Release() (or cancellation), then a third line.
  grpc::Status ContainerLogs(grpc::ServerContext* context,
                             const v1::ContainerLogsRequest* request,
                             grpc::ServerWriter<v1::ContainerLogsResponse>* writer) override {
    {
      absl::MutexLock lock(&mu_);
      last_request_ = *request;
    }
    if (request->container() != "app") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such container");
    }
    std::vector<std::string> lines;
    const int count = request->pod().name() == "follower" ? 2 : 5;
    for (int i = 1; i <= count; ++i) lines.push_back(absl::StrCat("line ", i, "\n"));
    size_t first = 0;
    if (request->has_tail_lines() &&
        request->tail_lines() < static_cast<int64_t>(lines.size())) {
      first = lines.size() - request->tail_lines();
    }
    for (size_t i = first; i < lines.size(); ++i) {
      v1::ContainerLogsResponse response;
      v1::LogEntry* entry = response.add_entries();
      entry->mutable_time()->set_seconds(kLogTime + static_cast<int64_t>(i));
      entry->mutable_time()->set_nanos(5);
      entry->set_stream(v1::LogEntry::STREAM_STDOUT);
      entry->set_line(lines[i]);
      if (!writer->Write(response)) return grpc::Status::CANCELLED;
    }
    if (request->pod().name() != "follower" || !request->follow()) {
      return grpc::Status::OK;
    }
    absl::MutexLock lock(&mu_);
    auto released_or_cancelled = [&] { return released_ || context->IsCancelled(); };
    // Polls for cancellation: ServerContext has no wakeup for it here.
    while (!mu_.AwaitWithTimeout(absl::Condition(&released_or_cancelled),
                                 absl::Milliseconds(20))) {
    }
    if (context->IsCancelled()) {
      saw_cancel_ = true;
      return grpc::Status::CANCELLED;
    }
    v1::ContainerLogsResponse response;
    response.add_entries()->set_line("line 3\n");
    writer->Write(response);
    return grpc::Status::OK;
  }

  grpc::Status GetStatsSummary(grpc::ServerContext*, const v1::GetStatsSummaryRequest*,
                               v1::GetStatsSummaryResponse* response) override {
    v1::NodeStats* node = response->mutable_node();
    node->mutable_cpu()->mutable_time()->set_seconds(kLogTime);
    node->mutable_cpu()->set_usage_core_nano_seconds(2'000'000'000);
    node->mutable_memory()->mutable_time()->set_seconds(kLogTime);
    node->mutable_memory()->set_working_set_bytes(4096);
    v1::PodStats* pod = response->add_pods();
    pod->mutable_pod()->set_namespace_("default");
    pod->mutable_pod()->set_name("web");
    v1::ContainerStats* c = pod->add_containers();
    c->set_name("app");
    c->mutable_cpu()->mutable_time()->set_seconds(kLogTime);
    c->mutable_cpu()->set_usage_core_nano_seconds(1'000'000'000);
    c->mutable_memory()->mutable_time()->set_seconds(kLogTime);
    c->mutable_memory()->set_working_set_bytes(2048);
    return grpc::Status::OK;
  }

  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  // `fail ...` writes to stderr and exits 3; anything else prints its argv
  // (comma-joined) on stdout, then "err" on stderr, and exits 0.
  grpc::Status Exec(grpc::ServerContext*,
                    grpc::ServerReaderWriter<v1::ExecResponse, v1::ExecRequest>* stream)
      override {
    v1::ExecRequest first;
    if (!stream->Read(&first) || !first.has_start()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no start frame");
    }
    {
      absl::MutexLock lock(&mu_);
      last_exec_ = first.start();
    }
    const auto& argv = first.start().command();
    const bool fail = !argv.empty() && argv[0] == "fail";
    v1::ExecResponse frame;
    if (!fail) {
      frame.set_stdout("out:" + absl::StrJoin(argv, ",") + "\n");
      stream->Write(frame);
    }
    frame.set_stderr(fail ? "bad input\n" : "err\n");
    stream->Write(frame);
    frame.mutable_exit()->set_exit_code(fail ? 3 : 0);
    stream->Write(frame);
    return grpc::Status::OK;
  }
  v1::ExecStart last_exec() {
    absl::MutexLock lock(&mu_);
    return last_exec_;
  }

  bool released() {
    absl::MutexLock lock(&mu_);
    return released_;
  }
  bool WaitForCancel(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&saw_cancel_), timeout);
  }
  v1::ContainerLogsRequest last_request() {
    absl::MutexLock lock(&mu_);
    return last_request_;
  }

 private:
  const std::vector<v1::Capability> capabilities_;
  absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  bool saw_cancel_ ABSL_GUARDED_BY(mu_) = false;
  v1::ContainerLogsRequest last_request_ ABSL_GUARDED_BY(mu_);
  v1::ExecStart last_exec_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// Test PKI with the openssl command.

std::string MakeTempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "kapi-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr);
  return pattern;
}

void Run(const std::string& command) {
  ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
}

// A CA, a client certificate it signs (CN/O as given) and one from a rogue CA.
struct ClientPki {
  explicit ClientPki(const std::string& dir) : dir(dir) {
    {
      std::ofstream ext(dir + "/client.ext");
      ext << "extendedKeyUsage=clientAuth\n";
    }
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    for (const char* ca : {"ca", "rogue"}) {
      Run(absl::StrCat("openssl req -x509 ", ec, " -keyout ", dir, "/", ca,
                       ".key -out ", dir, "/", ca, ".crt -subj /CN=", ca,
                       " -days 1"));
    }
    auto issue = [&](const std::string& name, const std::string& ca) {
      Run(absl::StrCat("openssl req ", ec, " -keyout ", dir, "/", name,
                       ".key -out ", dir, "/", name, ".csr -subj ",
                       "/O=system:masters/O=team-a/CN=kube-apiserver-kubelet-client"));
      Run(absl::StrCat("openssl x509 -req -in ", dir, "/", name, ".csr -CA ", dir,
                       "/", ca, ".crt -CAkey ", dir, "/", ca,
                       ".key -CAcreateserial -days 1 -extfile ", dir,
                       "/client.ext -out ", dir, "/", name, ".crt"));
    };
    issue("client", "ca");
    issue("intruder", "rogue");
  }
  std::string ca() const { return dir + "/ca.crt"; }
  std::string cert(const std::string& name) const { return dir + "/" + name + ".crt"; }
  std::string key(const std::string& name) const { return dir + "/" + name + ".key"; }
  std::string dir;
};

// ---------------------------------------------------------------------------
// Fixture.

std::vector<v1::Capability> AllCapabilities() {
  return {v1::CAPABILITY_CONTAINER_LOGS, v1::CAPABILITY_STATS};
}

class KubeletServerTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }

  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    client_.reset();
    if (supervisor_) supervisor_->Stop();
    supervisor_.reset();
    if (grpc_server_) grpc_server_->Shutdown(gpr_time_0(GPR_CLOCK_MONOTONIC));
    grpc_server_.reset();
    if (informer_) informer_->Stop();
    informer_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Starts plugin, supervisor, informer and server.
  void StartServer(std::vector<v1::Capability> capabilities = AllCapabilities(),
                   KubeletServerOptions options = {},
                   UpgradeHandler* upgrades = nullptr) {
    plugin_ = std::make_unique<FakePlugin>(std::move(capabilities));
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    const std::string socket = dir_ + "/plugin.sock";
    builder.AddListeningPort("unix://" + socket, grpc::InsecureServerCredentials());
    builder.RegisterService(static_cast<v1::Identity::Service*>(plugin_.get()));
    builder.RegisterService(static_cast<v1::Streams::Service*>(plugin_.get()));
    builder.RegisterService(static_cast<v1::Stats::Service*>(plugin_.get()));
    grpc_server_ = builder.BuildAndStart();
    ASSERT_NE(grpc_server_, nullptr);

    plugin::PluginSupervisor::Options supervisor_options;
    supervisor_options.source.endpoint = "unix://" + socket;
    supervisor_ = std::make_unique<plugin::PluginSupervisor>(supervisor_options);
    ASSERT_TRUE(supervisor_->Start().ok());
    client_ = std::make_unique<plugin::PluginClient>(*supervisor_);

    informer::InformerOptions informer_options;
    informer_options.target = kube::Target{kube::kPods, "", "", ""};
    informer_ = std::make_unique<informer::Informer>(&kube_, informer_options);
    informer_->Start();
    ASSERT_TRUE(informer_->WaitForSync(absl::Seconds(10)));

    options.node_name = kNode;
    options.address = "127.0.0.1";
    options.port = 0;
    options.node_ips = {"127.0.0.1"};
    server_ = std::make_unique<KubeletServer>(
        options, KubeletServerDependencies{&kube_, informer_.get(), client_.get(),
                                           upgrades});
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_NE(server_->port(), 0);
  }

  std::unique_ptr<httplib::SSLClient> Client(const std::string& token = "alice-token") {
    auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port());
    client->enable_server_certificate_verification(false);
    client->set_read_timeout(30, 0);
    if (!token.empty()) client->set_bearer_token_auth(token.c_str());
    return client;
  }

  httplib::Result Get(const std::string& path, const std::string& token = "alice-token") {
    return Client(token)->Get(path.c_str());
  }

  bool WaitForNoSessions() {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (server_->live_sessions() != 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return server_->live_sessions() == 0;
  }

  std::string dir_;
  FakeApiServer kube_;
  std::unique_ptr<FakePlugin> plugin_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<plugin::PluginSupervisor> supervisor_;
  std::unique_ptr<plugin::PluginClient> client_;
  std::unique_ptr<informer::Informer> informer_;
  std::unique_ptr<KubeletServer> server_;
};

json StatusBody(const httplib::Result& result) {
  return json::parse(result->body, nullptr, false);
}

// ---------------------------------------------------------------------------
// Authentication and authorization.

TEST_F(KubeletServerTest, NoCredentialsIs401WithStatus) {
  StartServer();
  auto result = Get("/healthz", "");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
  json status = StatusBody(result);
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["code"], 401);
  EXPECT_EQ(status["reason"], "Unauthorized");
  EXPECT_TRUE(kube_.reviews().empty());
}

TEST_F(KubeletServerTest, RejectedTokenIs401) {
  StartServer();
  auto result = Get("/healthz", "made-up-token");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 401);
}

TEST_F(KubeletServerTest, AnonymousWhenEnabledIsAuthorizedAsAnonymous) {
  KubeletServerOptions options;
  options.anonymous_auth = true;
  StartServer(AllCapabilities(), options);
  auto result = Get("/healthz", "");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 403);
  ASSERT_FALSE(kube_.reviews().empty());
  EXPECT_EQ(kube_.reviews()[0]["user"], "system:anonymous");
  EXPECT_EQ(kube_.reviews()[0]["groups"], json({"system:unauthenticated"}));
}

TEST_F(KubeletServerTest, DeniedIs403WithKubeletMessage) {
  StartServer();
  auto result = Get("/pods", "bob-token");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 403);
  json status = StatusBody(result);
  EXPECT_EQ(status["reason"], "Forbidden");
  EXPECT_EQ(status["message"],
            "Forbidden (user=bob, verb=get, resource=nodes, "
            "subresource(s)=[pods proxy])");
}

TEST_F(KubeletServerTest, ReviewCarriesNodeVerbAndSubresource) {
  StartServer();
  kube_.Allow("alice", {"*"});
  ASSERT_EQ(Get("/stats/summary")->status, 200);
  std::vector<json> reviews = kube_.reviews();
  ASSERT_EQ(reviews.size(), 1u);
  const json& attributes = reviews[0]["resourceAttributes"];
  EXPECT_EQ(attributes["resource"], "nodes");
  EXPECT_EQ(attributes["name"], kNode);
  EXPECT_EQ(attributes["verb"], "get");
  EXPECT_EQ(attributes["subresource"], "stats");
  EXPECT_EQ(reviews[0]["user"], "alice");
  EXPECT_EQ(reviews[0]["uid"], "alice-uid");
}

TEST_F(KubeletServerTest, FineGrainedFallsBackToProxy) {
  StartServer();
  kube_.Allow("monitor", {"proxy"});
  auto result = Get("/healthz", "monitor-token");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  std::vector<json> reviews = kube_.reviews();
  ASSERT_EQ(reviews.size(), 2u);
  EXPECT_EQ(reviews[0]["resourceAttributes"]["subresource"], "healthz");
  EXPECT_EQ(reviews[1]["resourceAttributes"]["subresource"], "proxy");
}

TEST_F(KubeletServerTest, DecisionsAndTokensAreCached) {
  StartServer();
  kube_.Allow("alice", {"*"});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Get("/healthz")->status, 200);
  EXPECT_EQ(kube_.token_reviews(), 1);
  EXPECT_EQ(kube_.reviews().size(), 1u);
}

TEST_F(KubeletServerTest, ClientCertificateAuthenticatesAsCnWithOGroups) {
  ClientPki pki(dir_);
  KubeletServerOptions options;
  options.client_ca_file = pki.ca();
  StartServer(AllCapabilities(), options);
  kube_.Allow("kube-apiserver-kubelet-client", {"*"});

  httplib::SSLClient good("127.0.0.1", server_->port(), pki.cert("client"),
                          pki.key("client"));
  good.enable_server_certificate_verification(false);
  auto result = good.Get("/healthz");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "ok");
  ASSERT_FALSE(kube_.reviews().empty());
  EXPECT_EQ(kube_.reviews()[0]["user"], "kube-apiserver-kubelet-client");
  EXPECT_THAT(kube_.reviews()[0]["groups"].get<std::vector<std::string>>(),
              ::testing::IsSupersetOf({"system:masters", "team-a"}));
  EXPECT_EQ(kube_.token_reviews(), 0);

  httplib::SSLClient rogue("127.0.0.1", server_->port(), pki.cert("intruder"),
                           pki.key("intruder"));
  rogue.enable_server_certificate_verification(false);
  auto refused = rogue.Get("/healthz");
  ASSERT_TRUE(refused) << httplib::to_string(refused.error());
  EXPECT_EQ(refused->status, 401);
}

// ---------------------------------------------------------------------------
// Endpoints.

TEST_F(KubeletServerTest, HealthzAndPods) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto health = Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");

  auto pods = Get("/pods");
  ASSERT_TRUE(pods);
  ASSERT_EQ(pods->status, 200);
  json list = json::parse(pods->body);
  EXPECT_EQ(list["kind"], "PodList");
  EXPECT_EQ(list["apiVersion"], "v1");
  std::set<std::string> names;
  for (const json& pod : list["items"]) names.insert(pod["metadata"]["name"]);
  EXPECT_EQ(names, (std::set<std::string>{"web", "follower"}));
}

TEST_F(KubeletServerTest, UnknownPathAndWrongMethod) {
  StartServer();
  kube_.Allow("alice", {"*"});
  EXPECT_EQ(Get("/nothing/here")->status, 404);
  auto post = Client()->Post("/containerLogs/default/web/app", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET");
}

TEST_F(KubeletServerTest, ContainerLogsPlain) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto result = Get("/containerLogs/default/web/app");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "line 1\nline 2\nline 3\nline 4\nline 5\n");
  EXPECT_EQ(result->get_header_value("Transfer-Encoding"), "chunked");
  v1::ContainerLogsRequest seen = plugin_->last_request();
  EXPECT_EQ(seen.pod().uid(), "uid-web");
  EXPECT_EQ(seen.pod().namespace_(), "default");
  EXPECT_EQ(seen.container(), "app");
  EXPECT_FALSE(seen.follow());
}

TEST_F(KubeletServerTest, ContainerLogsTailAndLegacyTail) {
  StartServer();
  kube_.Allow("alice", {"*"});
  EXPECT_EQ(Get("/containerLogs/default/web/app?tailLines=2")->body,
            "line 4\nline 5\n");
  EXPECT_EQ(Get("/containerLogs/default/web/app?tail=1")->body, "line 5\n");
  EXPECT_EQ(plugin_->last_request().tail_lines(), 1);
}

TEST_F(KubeletServerTest, ContainerLogsTimestampsAndSince) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto result = Get(
      "/containerLogs/default/web/app?timestamps=true&tailLines=1&"
      "sinceTime=2024-05-01T11:00:00Z");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->body, "2024-05-01T12:00:04.000000005Z line 5\n");
  v1::ContainerLogsRequest seen = plugin_->last_request();
  EXPECT_TRUE(seen.timestamps());
  EXPECT_EQ(seen.since_time().seconds(), kLogTime - 3600);
}

TEST_F(KubeletServerTest, ContainerLogsLimitBytesIsExact) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto result = Get("/containerLogs/default/web/app?limitBytes=10");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "line 1\nlin");
  EXPECT_EQ(plugin_->last_request().limit_bytes(), 10);
}

TEST_F(KubeletServerTest, ContainerLogsFollowStreamsBeforeTheEnd) {
  StartServer();
  kube_.Allow("alice", {"*"});
  std::string body;
  bool streamed_before_release = false;
  auto result = Client()->Get(
      "/containerLogs/default/follower/app?follow=true",
      [&](const char* data, size_t length) {
        body.append(data, length);
        if (absl::StrContains(body, "line 2\n") && !plugin_->released()) {
          streamed_before_release = true;
          plugin_->Release();
        }
        return true;
      });
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(streamed_before_release);
  EXPECT_EQ(body, "line 1\nline 2\nline 3\n");
  EXPECT_TRUE(plugin_->last_request().follow());
}

TEST_F(KubeletServerTest, ClientGoingAwayCancelsThePluginStream) {
  StartServer();
  kube_.Allow("alice", {"*"});
  std::string body;
  auto result = Client()->Get("/containerLogs/default/follower/app?follow=1",
                              [&](const char* data, size_t length) {
                                body.append(data, length);
                                return !absl::StrContains(body, "line 2\n");
                              });
  EXPECT_FALSE(result);  // we hung up
  EXPECT_TRUE(plugin_->WaitForCancel(absl::Seconds(20)));
  EXPECT_TRUE(WaitForNoSessions());
}

TEST_F(KubeletServerTest, ContainerLogsErrors) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto no_pod = Get("/containerLogs/default/ghost/app");
  ASSERT_TRUE(no_pod);
  EXPECT_EQ(no_pod->status, 404);
  EXPECT_THAT(no_pod->body, HasSubstr("pod \"ghost\" does not exist"));

  auto no_container = Get("/containerLogs/default/web/sidecar");
  ASSERT_TRUE(no_container);
  EXPECT_EQ(no_container->status, 404);
  EXPECT_THAT(no_container->body,
              HasSubstr("container \"sidecar\" not found in pod \"web\""));

  EXPECT_EQ(Get("/containerLogs/default/web/app?tailLines=-1")->status, 400);
  EXPECT_EQ(Get("/containerLogs/default/web/app?sinceTime=soon")->status, 400);
  EXPECT_EQ(Get("/containerLogs/default/web")->status, 400);

  // previous=true needs a capability the fake plugin lacks.
  auto previous = Get("/containerLogs/default/web/app?previous=true");
  ASSERT_TRUE(previous);
  EXPECT_EQ(previous->status, 501);
  EXPECT_THAT(previous->body, HasSubstr("does not support previous container logs"));
}

TEST_F(KubeletServerTest, MissingCapabilitiesAre501OrScrapeErrors) {
  StartServer({});
  kube_.Allow("alice", {"*"});
  auto logs = Get("/containerLogs/default/web/app");
  ASSERT_TRUE(logs);
  EXPECT_EQ(logs->status, 501);
  EXPECT_THAT(logs->body, HasSubstr("CONTAINER_LOGS"));
  auto summary = Get("/stats/summary");
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->status, 501);
  auto metrics = Get("/metrics/resource");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("\nresource_scrape_error 1\n"));
}

TEST_F(KubeletServerTest, PluginDownIs503) {
  StartServer();
  kube_.Allow("alice", {"*"});
  supervisor_->Stop();  // no current connection any more
  auto summary = Get("/stats/summary");
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->status, 503);
  EXPECT_EQ(Get("/containerLogs/default/web/app")->status, 503);
}

TEST_F(KubeletServerTest, StatsSummaryShape) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto result = Get("/stats/summary");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  json summary = json::parse(result->body);
  EXPECT_EQ(summary["node"]["nodeName"], kNode);
  EXPECT_EQ(summary["node"]["cpu"]["usageCoreNanoSeconds"], 2'000'000'000ULL);
  ASSERT_EQ(summary["pods"].size(), 1u);
  EXPECT_EQ(summary["pods"][0]["podRef"],
            json({{"name", "web"}, {"namespace", "default"}, {"uid", "uid-web"}}));
  EXPECT_EQ(summary["pods"][0]["containers"][0]["memory"]["workingSetBytes"], 2048);
}

TEST_F(KubeletServerTest, ResourceMetricsShape) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto result = Get("/metrics/resource");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  EXPECT_THAT(result->get_header_value("Content-Type"), HasSubstr("text/plain"));
  EXPECT_THAT(result->body, HasSubstr("\nnode_cpu_usage_seconds_total 2 1714564800000\n"));
  EXPECT_THAT(result->body,
              HasSubstr("\ncontainer_memory_working_set_bytes{container=\"app\","
                        "namespace=\"default\",pod=\"web\"} 2048 1714564800000\n"));
  EXPECT_THAT(result->body, HasSubstr("\nresource_scrape_error 0\n"));
}

TEST_F(KubeletServerTest, UpgradeRoutesAre501AfterAuthorization) {
  StartServer();
  auto denied = Client("bob-token")->Post("/exec/default/web/app?command=ls&output=1",
                                          "", "text/plain");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);

  kube_.Allow("alice", {"*"});
  httplib::Headers headers = {{"Connection", "Upgrade"}, {"Upgrade", "SPDY/3.1"},
                              {"X-Stream-Protocol-Version", "v4.channel.k8s.io"}};
  for (const char* path : {"/exec/default/web/app?command=ls&output=1",
                           "/attach/default/web/app?output=1", "/portForward/default/web"}) {
    auto result = Client()->Post(path, headers, "", "text/plain");
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 501) << path;
    json status = StatusBody(result);
    EXPECT_EQ(status["kind"], "Status") << path;
    EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("not implemented yet"));
  }
}

TEST_F(KubeletServerTest, RunAnswersStdoutThenStderr) {
  StartServer({v1::CAPABILITY_EXEC});
  kube_.Allow("alice", {"*"});
  auto result = Client()->Post("/run/default/web/app?cmd=echo%20a%20b", "", "text/plain");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "out:echo,a,b\nerr\n");
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
  v1::ExecStart seen = plugin_->last_exec();
  EXPECT_EQ(seen.pod().uid(), "uid-web");
  EXPECT_EQ(seen.container(), "app");
  EXPECT_FALSE(seen.stdin());
  EXPECT_TRUE(seen.stdout());

  // The {uid} form, and a non-zero exit: 500 with the kubelet's text.
  auto failed =
      Client()->Post("/run/default/web/uid-web/app?cmd=fail%20now", "", "text/plain");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 500);
  EXPECT_EQ(failed->body, "command 'fail now' exited with 3: bad input\n");

  EXPECT_EQ(Get("/run/default/web/app?cmd=ls")->status, 405);  // POST only
}

TEST_F(KubeletServerTest, RunErrorsAreClearAnswers) {
  StartServer({v1::CAPABILITY_EXEC});
  kube_.Allow("alice", {"*"});
  auto no_pod = Client()->Post("/run/default/ghost/app?cmd=ls", "", "text/plain");
  ASSERT_TRUE(no_pod);
  EXPECT_EQ(no_pod->status, 404);
  EXPECT_THAT(no_pod->body, HasSubstr("pod does not exist"));
  auto no_container = Client()->Post("/run/default/web/sidecar?cmd=ls", "", "text/plain");
  ASSERT_TRUE(no_container);
  EXPECT_EQ(no_container->status, 404);
  EXPECT_THAT(no_container->body, HasSubstr("container \"sidecar\" not found"));
  EXPECT_EQ(Client()->Post("/run/default/web/app", "", "text/plain")->status, 400);
}

TEST_F(KubeletServerTest, RunWithoutExecCapabilityIs501) {
  StartServer({v1::CAPABILITY_STATS});
  kube_.Allow("alice", {"*"});
  auto result = Client()->Post("/run/default/web/app?cmd=ls", "", "text/plain");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 501);
  EXPECT_THAT(result->body, HasSubstr("does not support running commands"));
}

// Upgrade seam: answers 101 and echoes what it reads until the peer closes.
class EchoUpgradeHandler final : public UpgradeHandler {
 public:
  UpgradeResponse Accept(const UpgradeRequest& request) override {
    absl::MutexLock lock(&mu_);
    accepted_ = request;
    return {101, {{"Connection", "Upgrade"}, {"Upgrade", "echo"}}, ""};
  }
  void Serve(const UpgradeRequest&,
             std::shared_ptr<UpgradedConnection> connection) override {
    Pump(std::move(connection));
  }
  UpgradeRequest accepted() {
    absl::MutexLock lock(&mu_);
    return accepted_;
  }

 private:
  static void Pump(std::shared_ptr<UpgradedConnection> connection) {
    connection->Read([connection](absl::Status status, std::string_view data) {
      if (!status.ok()) return;  // dropping the last reference ends it
      connection->Write(std::string(data), [connection](absl::Status written) {
        if (written.ok()) Pump(connection);
      });
    });
  }

  absl::Mutex mu_;
  UpgradeRequest accepted_ ABSL_GUARDED_BY(mu_);
};

// Sends `request` over TLS to 127.0.0.1:port, then reads until `until`
// appears in what came back (or the connection ends).
std::string RawTlsExchange(uint16_t port, const std::string& request,
                           const std::string& until) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  BIO* bio = BIO_new_ssl_connect(ctx);
  BIO_set_conn_hostname(bio, absl::StrCat("127.0.0.1:", port).c_str());
  std::string received;
  if (BIO_do_connect(bio) == 1 &&
      BIO_write(bio, request.data(), static_cast<int>(request.size())) ==
          static_cast<int>(request.size())) {
    char buffer[4096];
    while (!absl::StrContains(received, until)) {
      int n = BIO_read(bio, buffer, sizeof(buffer));
      if (n <= 0) break;
      received.append(buffer, n);
    }
  }
  BIO_free_all(bio);
  SSL_CTX_free(ctx);
  return received;
}

TEST_F(KubeletServerTest, UpgradeHandsTheConnectionToTheHandler) {
  EchoUpgradeHandler echo;
  StartServer(AllCapabilities(), {}, &echo);
  kube_.Allow("alice", {"*"});
  // The bytes after the header arrive before the 101: the handler must see
  // them first.
  const std::string request =
      "POST /exec/default/web/app?command=sh&command=-c&output=1 HTTP/1.1\r\n"
      "Host: x\r\nAuthorization: Bearer alice-token\r\n"
      "Connection: Upgrade\r\nUpgrade: echo\r\n\r\n"
      "early bytes|";
  std::string answer = RawTlsExchange(server_->port(), request, "early bytes|");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 101 Switching Protocols\r\n"));
  EXPECT_THAT(answer, HasSubstr("early bytes|"));
  UpgradeRequest seen = echo.accepted();
  EXPECT_EQ(seen.route, "exec");
  EXPECT_EQ(seen.pod_uid, "uid-web");
  EXPECT_EQ(seen.container, "app");
  EXPECT_EQ(seen.user.name, "alice");
  ASSERT_EQ(seen.query.size(), 3u);
  EXPECT_EQ(seen.query[1].second, "-c");
  EXPECT_TRUE(WaitForNoSessions());

  // A wrong pod UID in the path is 404 before the handler is asked.
  std::string wrong = RawTlsExchange(
      server_->port(),
      "POST /exec/default/web/not-the-uid/app?output=1 HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer alice-token\r\nConnection: Upgrade\r\n"
      "Upgrade: echo\r\nContent-Length: 0\r\n\r\n",
      "\r\n\r\n");
  EXPECT_THAT(wrong, HasSubstr("HTTP/1.1 404"));
}

TEST_F(KubeletServerTest, UpgradeOfUnknownContainerIs404) {
  EchoUpgradeHandler echo;
  StartServer(AllCapabilities(), {}, &echo);
  kube_.Allow("alice", {"*"});
  std::string answer = RawTlsExchange(
      server_->port(),
      "GET /exec/default/web/sidecar?command=ls&output=1 HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer alice-token\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\nContent-Length: 0\r\n\r\n",
      "\r\n\r\n");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 404"));
}

TEST_F(KubeletServerTest, IdleUpgradedConnectionIsClosed) {
  EchoUpgradeHandler echo;
  KubeletServerOptions options;
  options.streaming_connection_idle_timeout = absl::Milliseconds(300);
  StartServer(AllCapabilities(), options, &echo);
  kube_.Allow("alice", {"*"});
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  BIO* bio = BIO_new_ssl_connect(ctx);
  BIO_set_conn_hostname(bio, absl::StrCat("127.0.0.1:", server_->port()).c_str());
  ASSERT_EQ(BIO_do_connect(bio), 1);
  const std::string request =
      "POST /exec/default/web/app?command=sh&output=1 HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer alice-token\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
  ASSERT_EQ(BIO_write(bio, request.data(), static_cast<int>(request.size())),
            static_cast<int>(request.size()));
  std::string received;
  char buffer[4096];
  while (!absl::StrContains(received, "\r\n\r\n")) {
    int n = BIO_read(bio, buffer, sizeof(buffer));
    ASSERT_GT(n, 0);
    received.append(buffer, n);
  }
  EXPECT_THAT(received, HasSubstr("101 Switching Protocols"));
  // The client stays connected and silent: the server gives up on it.
  EXPECT_TRUE(WaitForNoSessions()) << server_->live_sessions() << " sessions left";
  EXPECT_LE(BIO_read(bio, buffer, sizeof(buffer)), 0);  // closed by the server
  BIO_free_all(bio);
  SSL_CTX_free(ctx);
}

// ---------------------------------------------------------------------------
// The real StreamBridge behind the server, over WebSocket.

// Forwards to a StreamBridge made once the fixture's plugin client exists.
class BridgeHandler final : public UpgradeHandler {
 public:
  void Use(plugin::PluginClient& client) {
    bridge_ = std::make_unique<streambridge::StreamBridge>(client);
  }
  UpgradeResponse Accept(const UpgradeRequest& request) override {
    return bridge_->Accept(request);
  }
  void Serve(const UpgradeRequest& request,
             std::shared_ptr<UpgradedConnection> connection) override {
    bridge_->Serve(request, std::move(connection));
  }

 private:
  std::unique_ptr<streambridge::StreamBridge> bridge_;
};

struct WebSocketAnswer {
  std::string head;  // status line and headers
  std::vector<websocket::Message> messages;  // up to and with the close frame
};

// Upgrades `path` to WebSocket with `protocol`, sends `frames` (already
// encoded, masked), and reads until the server's close frame (or EOF).
WebSocketAnswer WebSocketExchange(uint16_t port, const std::string& path,
                                  const std::string& protocol,
                                  const std::string& frames = "") {
  const std::string request = absl::StrCat(
      "GET ", path, " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\n"
      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: ",
      protocol, "\r\n\r\n", frames);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  BIO* bio = BIO_new_ssl_connect(ctx);
  BIO_set_conn_hostname(bio, absl::StrCat("127.0.0.1:", port).c_str());
  WebSocketAnswer answer;
  std::string received;
  websocket::FrameParser parser({.require_masked = false});
  bool closed = false;
  if (BIO_do_connect(bio) == 1 &&
      BIO_write(bio, request.data(), static_cast<int>(request.size())) ==
          static_cast<int>(request.size())) {
    char buffer[4096];
    while (!closed) {
      int n = BIO_read(bio, buffer, sizeof(buffer));
      if (n <= 0) break;
      received.append(buffer, n);
      if (answer.head.empty()) {
        size_t end = received.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        answer.head = received.substr(0, end + 4);
        received.erase(0, end + 4);
        if (!absl::StrContains(answer.head, " 101 ")) break;
      }
      parser.Feed(received);
      received.clear();
      for (;;) {
        absl::StatusOr<std::optional<websocket::Message>> next = parser.Next();
        if (!next.ok() || !next->has_value()) break;
        answer.messages.push_back(**next);
        if (answer.messages.back().opcode == websocket::Opcode::kClose) closed = true;
      }
    }
    if (closed) {
      const std::string bye = websocket::EncodeRawFrame(
          websocket::Opcode::kClose, std::string("\x03\xe8", 2), true,
          std::array<uint8_t, 4>{9, 8, 7, 6});
      BIO_write(bio, bye.data(), static_cast<int>(bye.size()));
    }
  }
  BIO_free_all(bio);
  SSL_CTX_free(ctx);
  return answer;
}

std::string ClientChannelFrame(uint8_t channel, const std::string& data) {
  return websocket::EncodeRawFrame(websocket::Opcode::kBinary,
                                   std::string(1, static_cast<char>(channel)) + data, true,
                                   std::array<uint8_t, 4>{1, 2, 3, 4});
}

TEST_F(KubeletServerTest, WebSocketExecCarriesOutputAndStatus) {
  BridgeHandler bridge;
  StartServer({v1::CAPABILITY_EXEC}, {}, &bridge);
  bridge.Use(*client_);
  kube_.Allow("alice", {"*"});
  WebSocketAnswer answer = WebSocketExchange(
      server_->port(), "/exec/default/web/app?command=greet&command=x&output=1&error=1",
      "v5.channel.k8s.io");
  EXPECT_THAT(answer.head, HasSubstr("HTTP/1.1 101"));
  EXPECT_THAT(answer.head, HasSubstr("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  EXPECT_THAT(answer.head, HasSubstr("Sec-WebSocket-Protocol: v5.channel.k8s.io"));
  std::vector<std::string> payloads;
  for (const websocket::Message& m : answer.messages) payloads.push_back(m.payload);
  ASSERT_EQ(payloads.size(), 5u) << absl::StrJoin(payloads, " | ");
  EXPECT_EQ(payloads[0], "\x01");  // ready
  EXPECT_EQ(payloads[1], "\x01" "out:greet,x\n");
  EXPECT_EQ(payloads[2], "\x02" "err\n");
  EXPECT_EQ(payloads[3], "\x03{\"metadata\":{},\"status\":\"Success\"}");
  EXPECT_EQ(answer.messages[4].opcode, websocket::Opcode::kClose);
  EXPECT_EQ(answer.messages[4].close_code, websocket::kCloseNormal);
  EXPECT_EQ(plugin_->last_exec().container(), "app");

  // A non-zero exit: NonZeroExitCode with the code as its cause.
  WebSocketAnswer failed = WebSocketExchange(
      server_->port(), "/exec/default/web/app?command=fail&output=1&error=1",
      "v4.channel.k8s.io", ClientChannelFrame(websocket::kResize, "ignored"));
  ASSERT_GE(failed.messages.size(), 2u);
  const std::string status = failed.messages[failed.messages.size() - 2].payload;
  ASSERT_FALSE(status.empty());
  EXPECT_EQ(status[0], websocket::kError);
  json parsed = json::parse(status.substr(1), nullptr, false);
  EXPECT_EQ(parsed["reason"], "NonZeroExitCode");
  EXPECT_EQ(parsed["details"]["causes"][0]["message"], "3");
  server_->Stop();
  EXPECT_EQ(server_->live_sessions(), 0u);
}

TEST_F(KubeletServerTest, WebSocketRefusalsAreHttpAnswers) {
  BridgeHandler bridge;
  StartServer({v1::CAPABILITY_STATS}, {}, &bridge);
  bridge.Use(*client_);
  kube_.Allow("alice", {"*"});
  // The plugin lacks exec and port-forward: 501 naming the capability.
  WebSocketAnswer exec = WebSocketExchange(
      server_->port(), "/exec/default/web/app?command=ls&output=1", "v5.channel.k8s.io");
  EXPECT_THAT(exec.head, HasSubstr("HTTP/1.1 501"));
  WebSocketAnswer forward = WebSocketExchange(
      server_->port(), "/portForward/default/web?port=80", "v4.channel.k8s.io");
  EXPECT_THAT(forward.head, HasSubstr("HTTP/1.1 501"));
  // No subprotocol in common, and no port: 400.
  WebSocketAnswer foreign = WebSocketExchange(
      server_->port(), "/exec/default/web/app?command=ls&output=1", "chat.example.com");
  EXPECT_THAT(foreign.head, HasSubstr("HTTP/1.1 400"));
  WebSocketAnswer portless =
      WebSocketExchange(server_->port(), "/portForward/default/web", "v4.channel.k8s.io");
  EXPECT_THAT(portless.head, HasSubstr("HTTP/1.1 400"));
  server_->Stop();
}

// ---------------------------------------------------------------------------
// Resource hygiene.

TEST_F(KubeletServerTest, ManyConnectionsLeaveNoSessions) {
  StartServer();
  kube_.Allow("alice", {"*"});
  for (int i = 0; i < 100; ++i) {
    auto client = Client();
    auto result = client->Get("/healthz");
    ASSERT_TRUE(result) << i;
    ASSERT_EQ(result->status, 200);
    if (i % 10 == 0) {
      ASSERT_EQ(client->Get("/containerLogs/default/web/app?tailLines=1")->body,
                "line 5\n");
    }
  }
  // Connections dropped without a request, and mid-TLS-handshake.
  for (int i = 0; i < 20; ++i) {
    httplib::Client plain("127.0.0.1", server_->port());
    plain.set_read_timeout(1, 0);
    plain.Get("/healthz");  // not TLS: the handshake fails
  }
  EXPECT_TRUE(WaitForNoSessions()) << server_->live_sessions() << " sessions left";
}

TEST_F(KubeletServerTest, StopClosesOpenSessions) {
  StartServer();
  kube_.Allow("alice", {"*"});
  auto keep_alive = Client();
  keep_alive->set_keep_alive(true);  // the connection stays open after the GET
  ASSERT_EQ(keep_alive->Get("/healthz")->status, 200);
  EXPECT_GE(server_->live_sessions(), 1u);
  server_->Stop();
  EXPECT_EQ(server_->live_sessions(), 0u);
}

TEST(KubeletServerStart, RefusesBadOptions) {
  KubeletServerOptions options;
  options.node_name = kNode;
  options.address = "127.0.0.1";
  options.port = 0;
  options.tls_cert_file = "/nonexistent/cert.pem";
  options.tls_private_key_file = "/nonexistent/key.pem";
  KubeletServer server(options, {});
  absl::Status status = server.Start();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/cert.pem"));

  options.tls_cert_file.clear();
  options.tls_private_key_file.clear();
  options.address = "not-an-ip";
  KubeletServer bad_address(options, {});
  EXPECT_TRUE(absl::IsInvalidArgument(bad_address.Start()));
}

}  // namespace
}  // namespace vkhost::kubeletapi
