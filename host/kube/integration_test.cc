// host/kube and host/informer against a real kube-apiserver (DESIGN.md §6):
// tests/e2e/cluster.py starts etcd and kube-apiserver from the binaries that
// tests/controlplane/build.sh built; every test shares that one control plane
// and works in its own namespace.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "host/informer/informer.h"
#include "host/kube/client.h"

namespace vkhost::kube {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Resource kRoles{"rbac.authorization.k8s.io", "v1", "roles", true};
const Resource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings", true};

std::string SourceDir() {
  const char* dir = std::getenv("VKHOST_SOURCE_DIR");
  return dir ? dir : ".";
}

// Runs a shell command; returns its exit status and stdout+stderr.
std::pair<int, std::string> Shell(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// `python3 tests/e2e/cluster.py up` as a child process, stopped with SIGTERM.
class ControlPlaneProcess {
 public:
  absl::Status Start() {
    const std::string script = (fs::path(SourceDir()) / "tests/e2e/cluster.py").string();
    if (!fs::exists(script)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the control-plane harness ", script, " is missing (set VKHOST_SOURCE_DIR)"));
    }
    auto [rc, bin_dir] = Shell(absl::StrCat("python3 ", script, " bin-dir"));
    if (rc != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no control-plane binaries: ", bin_dir,
          "\nrun scripts/setup or tests/controlplane/build.sh to build them"));
    }
    kubectl_ = (fs::path(std::string(absl::StripAsciiWhitespace(bin_dir))) / "kubectl").string();

    int out[2];
    if (pipe(out) != 0) return absl::InternalError("pipe failed");
    pid_ = fork();
    if (pid_ < 0) return absl::InternalError("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the test
      dup2(out[1], STDOUT_FILENO);
      dup2(out[1], STDERR_FILENO);  // its few lines of diagnostics, for our errors
      close(out[0]);
      close(out[1]);
      execlp("python3", "python3", script.c_str(), "up", "--no-controllers",
             static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    stdout_fd_ = out[0];
    return ReadKubeconfigPath();
  }

  ~ControlPlaneProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }

  const std::string& kubeconfig() const { return kubeconfig_; }
  const std::string& kubectl() const { return kubectl_; }

 private:
  absl::Status ReadKubeconfigPath() {
    constexpr char kPrefix[] = "export KUBECONFIG=";
    std::string seen;
    const absl::Time deadline = absl::Now() + absl::Minutes(4);
    while (absl::Now() < deadline) {
      pollfd p{stdout_fd_, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      char buffer[1024];
      const ssize_t n = read(stdout_fd_, buffer, sizeof buffer);
      if (n <= 0) break;  // the harness exited; its stderr says why
      seen.append(buffer, static_cast<size_t>(n));
      const size_t at = seen.find(kPrefix);
      const size_t eol = at == std::string::npos ? at : seen.find('\n', at);
      if (eol != std::string::npos) {
        kubeconfig_ = seen.substr(at + sizeof kPrefix - 1, eol - at - (sizeof kPrefix - 1));
        return absl::OkStatus();
      }
    }
    constexpr size_t kTail = 3000;
    return absl::UnavailableError(absl::StrCat(
        "the control plane did not come up; the harness said:\n",
        seen.size() > kTail ? seen.substr(seen.size() - kTail) : seen));
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string kubeconfig_;
  std::string kubectl_;
};

ControlPlaneProcess* g_control_plane = nullptr;
absl::Status* g_start_status = nullptr;

class ControlPlaneEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    process_ = std::make_unique<ControlPlaneProcess>();
    status_ = process_->Start();
    g_control_plane = process_.get();
    g_start_status = &status_;
  }
  void TearDown() override {
    g_control_plane = nullptr;
    process_.reset();
  }

 private:
  std::unique_ptr<ControlPlaneProcess> process_;
  absl::Status status_;
};

class KubeIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(g_start_status != nullptr && g_start_status->ok())
        << (g_start_status ? g_start_status->ToString() : "no environment");
    absl::StatusOr<RestConfig> config = LoadKubeconfig(g_control_plane->kubeconfig());
    ASSERT_TRUE(config.ok()) << config.status();
    admin_config_ = *config;
    absl::StatusOr<std::unique_ptr<KubeClient>> client = NewKubeClient(admin_config_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);

    absl::BitGen random;
    ns_ = absl::StrCat("it-", absl::Uniform<uint32_t>(random));
    auto created = client_->Create({kNamespaces, "", "", ""},
                                   {{"metadata", {{"name", ns_}}}}, {});
    ASSERT_TRUE(created.ok()) << created.status();
  }

  void TearDown() override {
    if (client_ && !ns_.empty()) (void)client_->Delete({kNamespaces, "", ns_, ""}, {});
  }

  Target Cm(const std::string& name = "") const { return {kConfigMaps, ns_, name, ""}; }

  absl::StatusOr<nlohmann::json> CreateCm(const std::string& name, const std::string& value) {
    return client_->Create(Cm(), {{"metadata", {{"name", name}}}, {"data", {{"v", value}}}},
                           {});
  }

  std::string Kubectl(const std::string& args) {
    auto [rc, out] = Shell(absl::StrCat("KUBECONFIG=", g_control_plane->kubeconfig(), " ",
                                        g_control_plane->kubectl(), " ", args));
    EXPECT_EQ(rc, 0) << "kubectl " << args << ": " << out;
    return std::string(absl::StripAsciiWhitespace(out));
  }

  // A kubeconfig for the same server authenticating with `token` (inline or,
  // with use_file, through tokenFile).
  std::string TokenKubeconfig(const std::string& token, bool use_file) {
    const fs::path dir = fs::path(g_control_plane->kubeconfig()).parent_path();
    const std::string stem = absl::StrCat(ns_, use_file ? "-file" : "-inline");
    std::string user = absl::StrCat("    token: ", token, "\n");
    if (use_file) {
      std::ofstream(dir / (stem + ".token")) << token << "\n";
      user = absl::StrCat("    tokenFile: ", stem, ".token\n");  // relative path
    }
    const fs::path path = dir / (stem + ".kubeconfig");
    std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: sa\n"
                        << "clusters:\n- name: c\n  cluster:\n    server: "
                        << admin_config_.server << "\n    certificate-authority-data: "
                        << absl::Base64Escape(admin_config_.ca_pem) << "\n"
                        << "users:\n- name: sa\n  user:\n"
                        << user << "contexts:\n- name: sa\n  context: {cluster: c, user: sa}\n";
    return path.string();
  }

  RestConfig admin_config_;
  std::unique_ptr<KubeClient> client_;
  std::string ns_;
};

TEST_F(KubeIntegrationTest, ConfigMapLifecycleAndErrorCodes) {
  absl::StatusOr<nlohmann::json> created = CreateCm("one", "1");
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string uid = (*created)["metadata"]["uid"];

  absl::Status again = CreateCm("one", "1").status();
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_EQ(HttpCode(again), 409);

  absl::StatusOr<nlohmann::json> got = client_->Get(Cm("one"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)["data"]["v"], "1");

  (*got)["data"]["v"] = "2";
  absl::StatusOr<nlohmann::json> updated = client_->Update(Cm("one"), *got, {});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((*updated)["data"]["v"], "2");

  auto merged = client_->Patch(Cm("one"), PatchType::kMerge, {{"data", {{"m", "x"}}}}, {});
  ASSERT_TRUE(merged.ok()) << merged.status();
  auto strategic = client_->Patch(Cm("one"), PatchType::kStrategicMerge,
                                  {{"metadata", {{"labels", {{"a", "b"}}}}}}, {});
  ASSERT_TRUE(strategic.ok()) << strategic.status();
  auto json_patch = client_->Patch(
      Cm("one"), PatchType::kJson,
      nlohmann::json::array({{{"op", "replace"}, {"path", "/data/v"}, {"value", "3"}}}), {});
  ASSERT_TRUE(json_patch.ok()) << json_patch.status();
  WriteOptions apply;
  apply.field_manager = "vkhost-test";
  apply.force = true;
  auto applied = client_->Patch(Cm("one"), PatchType::kApply,
                                {{"apiVersion", "v1"},
                                 {"kind", "ConfigMap"},
                                 {"metadata", {{"name", "one"}, {"namespace", ns_}}},
                                 {"data", {{"applied", "yes"}}}},
                                apply);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ((*applied)["data"]["v"], "3");
  EXPECT_EQ((*applied)["data"]["m"], "x");
  EXPECT_EQ((*applied)["data"]["applied"], "yes");
  EXPECT_EQ((*applied)["metadata"]["labels"]["a"], "b");

  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "00000000-0000-0000-0000-000000000000";
  absl::Status precondition = client_->Delete(Cm("one"), wrong_uid).status();
  EXPECT_TRUE(IsConflict(precondition)) << precondition;

  DeleteOptions right_uid;
  right_uid.precondition_uid = uid;
  right_uid.grace_period_seconds = 0;
  ASSERT_TRUE(client_->Delete(Cm("one"), right_uid).ok());
  absl::Status missing = client_->Get(Cm("one")).status();
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_THAT(missing.message(), HasSubstr("\"one\" not found"));
  EXPECT_TRUE(absl::IsNotFound(client_->Delete(Cm("one"), {}).status()));

  absl::Status invalid = CreateCm("Not_A_Valid_Name", "x").status();
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument) << invalid;
}

TEST_F(KubeIntegrationTest, StaleUpdateConflictsAndTheRetryHelperRecovers) {
  ASSERT_TRUE(CreateCm("c", "0").ok());
  absl::StatusOr<nlohmann::json> stale = client_->Get(Cm("c"));
  ASSERT_TRUE(stale.ok());
  ASSERT_TRUE(client_->Patch(Cm("c"), PatchType::kMerge, {{"data", {{"v", "1"}}}}, {}).ok());
  (*stale)["data"]["v"] = "stale";
  absl::Status conflict = client_->Update(Cm("c"), *stale, {}).status();
  EXPECT_TRUE(IsConflict(conflict)) << conflict;
  EXPECT_EQ(conflict.code(), absl::StatusCode::kAborted);

  int attempts = 0;
  absl::StatusOr<nlohmann::json> result = UpdateWithRetry(
      *client_, Cm("c"), [&](nlohmann::json& cm) {
        if (++attempts == 1) {
          // Another writer gets in between our read and our write.
          EXPECT_TRUE(client_->Patch(Cm("c"), PatchType::kMerge,
                                     {{"data", {{"other", "x"}}}}, {})
                          .ok());
        }
        cm["data"]["v"] = "mine";
        return absl::OkStatus();
      });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ((*result)["data"]["v"], "mine");
  EXPECT_EQ((*result)["data"]["other"], "x");
}

TEST_F(KubeIntegrationTest, ListPagesThroughContinueTokens) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(CreateCm(absl::StrCat("p", i), "x").ok());
  ListOptions options;
  options.limit = 2;
  int pages = 0;
  std::vector<std::string> names;
  ASSERT_TRUE(ListAllPages(*client_, Cm(), options, [&](nlohmann::json&& page) {
                ++pages;
                for (const auto& item : page["items"]) names.push_back(item["metadata"]["name"]);
                return absl::OkStatus();
              }).ok());
  EXPECT_GE(pages, 3);
  EXPECT_THAT(names, testing::IsSupersetOf({"p0", "p1", "p2", "p3", "p4"}));
}

// Records informer callbacks as "add a=1", "update a 1->2", "delete a".
class CallLog {
 public:
  informer::InformerHandlers Handlers() {
    auto value = [](const informer::ObjectPtr& o) -> std::string {
      const auto& data = (*o)["data"];
      return data.is_object() && data.contains("v") ? data["v"].get<std::string>() : "";
    };
    auto name = [](const informer::ObjectPtr& o) -> std::string {
      return (*o)["metadata"]["name"];
    };
    return {[=, this](const informer::ObjectPtr& o) {
              Add(absl::StrCat("add ", name(o), "=", value(o)));
            },
            [=, this](const informer::ObjectPtr& old, const informer::ObjectPtr& now) {
              Add(absl::StrCat("update ", name(now), " ", value(old), "->", value(now)));
            },
            [=, this](const informer::ObjectPtr& o) { Add(absl::StrCat("delete ", name(o))); }};
  }
  std::vector<std::string> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return calls_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return calls_;
  }

 private:
  void Add(std::string call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_;
};

TEST_F(KubeIntegrationTest, InformerSeesAddUpdateDeleteInOrder) {
  ASSERT_TRUE(CreateCm("before", "0").ok());
  informer::InformerOptions options;
  options.target = Cm();
  options.page_size = 1;
  informer::Informer informer(client_.get(), options);
  CallLog log;
  informer.AddHandlers(log.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(60)));
  ASSERT_NE(informer.Get(ns_, "before"), nullptr);
  EXPECT_FALSE((*informer.Get(ns_, "before"))["metadata"].contains("managedFields"));

  ASSERT_TRUE(CreateCm("x", "1").ok());
  ASSERT_TRUE(client_->Patch(Cm("x"), PatchType::kMerge, {{"data", {{"v", "2"}}}}, {}).ok());
  ASSERT_TRUE(client_->Delete(Cm("x"), {}).ok());
  ASSERT_TRUE(client_->Delete(Cm("before"), {}).ok());
  EXPECT_THAT(log.WaitFor(5), ElementsAre("add before=0", "add x=1", "update x 1->2",
                                          "delete x", "delete before"));
  EXPECT_EQ(informer.Size(), 0u);
  informer.Stop();
}

TEST_F(KubeIntegrationTest, WatchesSurviveTheServerClosingThem) {
  // A raw watch the server ends after one second returns OK by itself.
  WatchOptions short_watch;
  short_watch.timeout_seconds = 1;
  WatchCancel unused;
  EXPECT_TRUE(client_->Watch(Cm(), short_watch, [](WatchEvent&&) { return true; }, &unused).ok());

  // An informer whose watches the server ends every 1-2 s keeps up.
  informer::InformerOptions options;
  options.target = Cm();
  options.min_watch_timeout = absl::Seconds(1);
  informer::Informer informer(client_.get(), options);
  CallLog log;
  informer.AddHandlers(log.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(absl::Seconds(60)));
  std::vector<std::string> want;
  for (int i = 0; i < 4; ++i) {
    absl::SleepFor(absl::Milliseconds(1500));  // let a watch or two expire
    ASSERT_TRUE(CreateCm(absl::StrCat("w", i), "v").ok());
    want.push_back(absl::StrCat("add w", i, "=v"));
  }
  EXPECT_EQ(log.WaitFor(4), want);
  informer.Stop();
}

// (A 410 from the real server needs etcd compaction, which a fresh control
// plane has not done yet; the relist path is covered by informer_test.)
TEST_F(KubeIntegrationTest, CancelStopsAnIdleWatch) {
  ASSERT_TRUE(CreateCm("seen", "1").ok());
  WatchCancel cancel;
  absl::Notification streaming;
  absl::Status watch_status;
  std::thread watcher([&] {
    watch_status = client_->Watch(Cm(), {},
                                  [&](WatchEvent&& e) {
                                    // Without a resourceVersion the server
                                    // first replays what exists.
                                    if (e.type == WatchEventType::kAdded) streaming.Notify();
                                    return true;
                                  },
                                  &cancel);
  });
  ASSERT_TRUE(streaming.WaitForNotificationWithTimeout(absl::Seconds(60)));
  cancel.Cancel();  // hangs (and the test times out) if the watch cannot be interrupted
  watcher.join();
  EXPECT_TRUE(absl::IsCancelled(watch_status)) << watch_status;
}

TEST_F(KubeIntegrationTest, ServiceAccountTokensAuthenticateAndRbacApplies) {
  ASSERT_TRUE(client_->Create({kServiceAccounts, ns_, "", ""},
                              {{"metadata", {{"name", "robot"}}}}, {})
                  .ok());
  ASSERT_TRUE(CreateCm("secret-ish", "1").ok());

  // TokenRequest through our own client (serviceaccounts/robot/token).
  absl::StatusOr<nlohmann::json> token_request =
      client_->Create({kServiceAccounts, ns_, "robot", "token"},
                      {{"apiVersion", "authentication.k8s.io/v1"},
                       {"kind", "TokenRequest"},
                       {"spec", {{"expirationSeconds", 600}}}},
                      {});
  ASSERT_TRUE(token_request.ok()) << token_request.status();
  const std::string api_token = (*token_request)["status"]["token"];
  ASSERT_FALSE(api_token.empty());

  // And one from kubectl, as an operator would.
  const std::string kubectl_token = Kubectl(absl::StrCat("create token robot -n ", ns_));
  ASSERT_FALSE(kubectl_token.empty());

  for (const auto& [token, use_file] :
       {std::pair{kubectl_token, false}, std::pair{api_token, true}}) {
    absl::StatusOr<RestConfig> config = LoadKubeconfig(TokenKubeconfig(token, use_file));
    ASSERT_TRUE(config.ok()) << config.status();
    absl::StatusOr<std::unique_ptr<KubeClient>> robot = NewKubeClient(*config);
    ASSERT_TRUE(robot.ok()) << robot.status();
    absl::Status denied = (*robot)->Get(Cm("secret-ish")).status();
    EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied) << denied;
    EXPECT_THAT(denied.message(), HasSubstr("system:serviceaccount:" + ns_ + ":robot"));
  }

  ASSERT_TRUE(client_->Create({kRoles, ns_, "", ""},
                              {{"metadata", {{"name", "read-cm"}}},
                               {"rules",
                                {{{"apiGroups", {""}},
                                  {"resources", {"configmaps"}},
                                  {"verbs", {"get", "list", "watch"}}}}}},
                              {})
                  .ok());
  ASSERT_TRUE(client_->Create({kRoleBindings, ns_, "", ""},
                              {{"metadata", {{"name", "robot-reads"}}},
                               {"roleRef",
                                {{"apiGroup", "rbac.authorization.k8s.io"},
                                 {"kind", "Role"},
                                 {"name", "read-cm"}}},
                               {"subjects",
                                {{{"kind", "ServiceAccount"},
                                  {"name", "robot"},
                                  {"namespace", ns_}}}}},
                              {})
                  .ok());
  absl::StatusOr<RestConfig> config = LoadKubeconfig(TokenKubeconfig(kubectl_token, false));
  ASSERT_TRUE(config.ok());
  absl::StatusOr<std::unique_ptr<KubeClient>> robot = NewKubeClient(*config);
  ASSERT_TRUE(robot.ok());
  absl::StatusOr<nlohmann::json> allowed = (*robot)->Get(Cm("secret-ish"));
  for (int i = 0; i < 100 && !allowed.ok(); ++i) {  // RBAC caches settle quickly
    absl::SleepFor(absl::Milliseconds(100));
    allowed = (*robot)->Get(Cm("secret-ish"));
  }
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(absl::StatusCode::kPermissionDenied,
            (*robot)->Delete(Cm("secret-ish"), {}).status().code());

  absl::StatusOr<RestConfig> bogus = LoadKubeconfig(TokenKubeconfig("not-a-token", false));
  ASSERT_TRUE(bogus.ok());
  absl::Status unauthenticated =
      (*NewKubeClient(*bogus))->Get(Cm("secret-ish")).status();
  EXPECT_EQ(unauthenticated.code(), absl::StatusCode::kUnauthenticated) << unauthenticated;
}

TEST_F(KubeIntegrationTest, ServerCertificateIsVerifiedByNameOrSkippedOnRequest) {
  ASSERT_TRUE(CreateCm("tls", "1").ok());
  auto get_with = [&](const std::function<void(RestConfig&)>& change) {
    RestConfig config = admin_config_;
    change(config);
    absl::StatusOr<std::unique_ptr<KubeClient>> client = NewKubeClient(config);
    if (!client.ok()) return client.status();
    return (*client)->Get(Cm("tls")).status();
  };
  const std::string port = admin_config_.server.substr(admin_config_.server.rfind(':') + 1);
  EXPECT_TRUE(get_with([&](RestConfig& c) { c.server = "https://localhost:" + port; }).ok());
  EXPECT_TRUE(get_with([](RestConfig& c) { c.tls_server_name = "kubernetes.default"; }).ok());

  absl::Status wrong_name = get_with([](RestConfig& c) { c.tls_server_name = "wrong.example"; });
  EXPECT_EQ(wrong_name.code(), absl::StatusCode::kUnavailable) << wrong_name;
  EXPECT_THAT(wrong_name.message(), HasSubstr("not valid for \"wrong.example\""));

  absl::Status wrong_ca = get_with([&](RestConfig& c) {
    c.ca_pem = c.client_cert_pem;  // a certificate, but not the server's CA
  });
  EXPECT_EQ(wrong_ca.code(), absl::StatusCode::kUnavailable) << wrong_ca;
  EXPECT_THAT(wrong_ca.message(), HasSubstr("certificate"));

  EXPECT_TRUE(get_with([](RestConfig& c) {
                c.ca_pem.clear();
                c.insecure_skip_tls_verify = true;
              }).ok());
}

TEST_F(KubeIntegrationTest, LeasesEventsAndPodStatusSubresource) {
  const Target lease{kLeases, ns_, "vk", ""};
  auto created = client_->Create({kLeases, ns_, "", ""},
                                 {{"metadata", {{"name", "vk"}}},
                                  {"spec", {{"holderIdentity", "vk"}, {"leaseDurationSeconds", 40}}}},
                                 {});
  ASSERT_TRUE(created.ok()) << created.status();
  auto renewed = UpdateWithRetry(*client_, lease, [](nlohmann::json& l) {
    l["spec"]["renewTime"] = "2030-01-01T00:00:00.000000Z";
    return absl::OkStatus();
  });
  ASSERT_TRUE(renewed.ok()) << renewed.status();

  auto event = client_->Create(
      {kEvents, ns_, "", ""},
      {{"metadata", {{"name", "e1"}}},
       {"eventTime", "2030-01-01T00:00:00.000000Z"},
       {"reportingController", "vkhost.dev/test"},
       {"reportingInstance", "vk"},
       {"action", "Testing"},
       {"reason", "Tested"},
       {"type", "Normal"},
       {"regarding", {{"kind", "Lease"}, {"name", "vk"}, {"namespace", ns_}}}},
      {});
  ASSERT_TRUE(event.ok()) << event.status();

  // No controller-manager runs, so nobody creates the default ServiceAccount.
  ASSERT_TRUE(client_->Create({kServiceAccounts, ns_, "", ""},
                              {{"metadata", {{"name", "default"}}}}, {})
                  .ok());
  auto pod = client_->Create(
      {kPods, ns_, "", ""},
      {{"metadata", {{"name", "p"}}},
       {"spec", {{"containers", {{{"name", "c"}, {"image", "example.invalid/none"}}}}}}},
      {});
  ASSERT_TRUE(pod.ok()) << pod.status();
  auto status = PatchWithRetry(*client_, {kPods, ns_, "p", "status"}, PatchType::kStrategicMerge,
                               {{"status", {{"message", "from vkhost"}}}});
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ((*status)["status"]["message"], "from vkhost");
}

}  // namespace
}  // namespace vkhost::kube

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new vkhost::kube::ControlPlaneEnvironment);
  return RUN_ALL_TESTS();
}
