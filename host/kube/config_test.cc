#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "host/kube/client.h"
#include "host/kube/internal/token_source.h"
#include "host/kube/internal/yaml_to_json.h"

namespace vkhost::kube {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A unique directory per test, removed afterwards (tests run in parallel).
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "vkhost-kube-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << content;
    return p.string();
  }

 private:
  fs::path path_;
};

// A self-signed certificate and its key, PEM, made fresh so that no key
// material lives in the repository.
struct Pem {
  std::string cert;
  std::string key;
};

Pem MakeSelfSigned() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x509(X509_new(), X509_free);
  X509_set_version(x509.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x509.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x509.get()), 3600);
  X509_set_pubkey(x509.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x509.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("vkhost-test"), -1, -1, 0);
  X509_set_issuer_name(x509.get(), name);
  X509_sign(x509.get(), key.get(), EVP_sha256());
  auto to_string = [](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    write(bio.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(size));
  };
  Pem pem;
  pem.cert = to_string([&](BIO* b) { PEM_write_bio_X509(b, x509.get()); });
  pem.key = to_string([&](BIO* b) {
    PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return pem;
}

constexpr char kTwoContexts[] = R"(apiVersion: v1
kind: Config
preferences: {}
current-context: dev   # a comment
clusters:
- name: dev-cluster
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
- name: prod-cluster
  cluster:
    server: "https://[fd00::10]:443"
    certificate-authority-data: CA_DATA
    tls-server-name: kubernetes.default
- name: lab-cluster
  cluster:
    server: https://lab:6443
    insecure-skip-tls-verify: true
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user}
- name: prod
  context:
    cluster: prod-cluster
    user: prod-user
    namespace: payments
- name: lab
  context:
    cluster: lab-cluster
    user: lab-user
users:
- name: dev-user
  user:
    client-certificate: pki/client.crt
    client-key: /ABSOLUTE/client.key
- name: prod-user
  user:
    client-certificate-data: CERT_DATA
    client-key-data: KEY_DATA
- name: lab-user
  user:
    tokenFile: tokens/lab
)";

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pem_ = MakeSelfSigned();
    dir_.Write("pki/ca.crt", pem_.cert);
    dir_.Write("pki/client.crt", pem_.cert);
    absolute_key_ = dir_.Write("elsewhere/client.key", pem_.key);
    dir_.Write("tokens/lab", "lab-token\n");
    std::string text = absl::StrReplaceAll(
        kTwoContexts, {{"CA_DATA", absl::Base64Escape(pem_.cert)},
                       {"CERT_DATA", absl::Base64Escape(pem_.cert)},
                       {"KEY_DATA", absl::Base64Escape(pem_.key)},
                       {"/ABSOLUTE/client.key", absolute_key_}});
    path_ = dir_.Write("conf/../kubeconfig", text);
  }

  TempDir dir_;
  Pem pem_;
  std::string absolute_key_;
  std::string path_;
};

TEST_F(KubeconfigTest, CurrentContextReadsFilesRelativeToTheKubeconfig) {
  absl::StatusOr<RestConfig> config = LoadKubeconfig(path_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://127.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, pem_.cert);
  EXPECT_EQ(config->client_cert_pem, pem_.cert);
  EXPECT_EQ(config->client_key_pem, pem_.key);
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->default_namespace, "default");
  EXPECT_THAT(config->source, HasSubstr("context \"dev\""));
}

TEST_F(KubeconfigTest, ExplicitContextWithInlineDataAndNamespace) {
  absl::StatusOr<RestConfig> config = LoadKubeconfig(path_, "prod");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00::10]:443");
  EXPECT_EQ(config->ca_pem, pem_.cert);
  EXPECT_EQ(config->client_key_pem, pem_.key);
  EXPECT_EQ(config->tls_server_name, "kubernetes.default");
  EXPECT_EQ(config->default_namespace, "payments");
}

TEST_F(KubeconfigTest, InsecureClusterWithRelativeTokenFile) {
  absl::StatusOr<RestConfig> config = LoadKubeconfig(path_, "lab");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->token_file, (dir_.path() / "tokens/lab").string());
  EXPECT_TRUE(config->ca_pem.empty());
}

TEST_F(KubeconfigTest, ErrorsNameTheFileAndTheEntry) {
  absl::Status missing_context = LoadKubeconfig(path_, "nope").status();
  EXPECT_TRUE(absl::IsNotFound(missing_context));
  EXPECT_THAT(missing_context.message(), HasSubstr("\"nope\""));
  EXPECT_THAT(missing_context.message(), HasSubstr(path_));

  EXPECT_TRUE(absl::IsNotFound(
      LoadKubeconfig((dir_.path() / "absent").string()).status()));

  const std::string no_current = dir_.Write("nocurrent", "apiVersion: v1\nclusters: []\n");
  EXPECT_THAT(LoadKubeconfig(no_current).status().message(), HasSubstr("--context"));

  const std::string garbled = dir_.Write("garbled", "clusters: [\n  - {name: x\n");
  absl::Status g = LoadKubeconfig(garbled).status();
  EXPECT_EQ(g.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.message(), HasSubstr("line"));
}

TEST(KubeconfigErrorsTest, RejectsCredentialsVkhostCannotUse) {
  TempDir dir;
  auto write = [&](const std::string& user_body) {
    return dir.Write("config-" + std::to_string(user_body.size()),
                     "current-context: c\n"
                     "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                     "clusters: [{name: k, cluster: {server: 'https://h:1'}}]\n"
                     "users:\n- name: u\n  user:\n" +
                         user_body);
  };
  absl::Status exec =
      LoadKubeconfig(write("    exec: {command: aws, apiVersion: v1}\n")).status();
  EXPECT_EQ(exec.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(exec.message(), HasSubstr("exec"));

  absl::Status bad_b64 =
      LoadKubeconfig(write("    client-certificate-data: '!!!'\n    client-key-data: a\n"))
          .status();
  EXPECT_THAT(bad_b64.message(), HasSubstr("base64"));

  absl::Status half = LoadKubeconfig(write("    client-certificate-data: YWJj\n")).status();
  EXPECT_THAT(half.message(), HasSubstr("not both"));

  absl::StatusOr<RestConfig> token = LoadKubeconfig(write("    token: abc\n"));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->token, "abc");
}

TEST(KubeconfigErrorsTest, AcceptsJson) {
  TempDir dir;
  const std::string path = dir.Write(
      "config.json",
      R"({"current-context":"c","contexts":[{"name":"c","context":{"cluster":"k"}}],
          "clusters":[{"name":"k","cluster":{"server":"http://127.0.0.1:8080"}}]})");
  absl::StatusOr<RestConfig> config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "http://127.0.0.1:8080");
  EXPECT_TRUE(config->token.empty());
}

TEST(YamlToJsonTest, ConvertsScalarsAndRejectsAliasBombs) {
  auto doc = internal::YamlToJson("a: true\nb: 'true'\nc: ~\nd: [x, 'y']\ne: 12\n");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ((*doc)["a"], true);
  EXPECT_EQ((*doc)["b"], "true");
  EXPECT_TRUE((*doc)["c"].is_null());
  EXPECT_EQ((*doc)["d"][1], "y");
  EXPECT_EQ((*doc)["e"], "12");
  EXPECT_TRUE(internal::YamlToJson("")->is_object());

  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'j'; ++level) {
    const char prev = static_cast<char>(level - 1);
    bomb += absl::StrCat(std::string(1, level), ": &", std::string(1, level), " [*", std::string(1, prev),
                         ", *", std::string(1, prev), ", *", std::string(1, prev), ", *",
                         std::string(1, prev), ", *", std::string(1, prev), ", *",
                         std::string(1, prev), ", *", std::string(1, prev), ", *",
                         std::string(1, prev), ", *", std::string(1, prev), ", *",
                         std::string(1, prev), "]\n");
  }
  EXPECT_EQ(internal::YamlToJson(bomb).status().code(), absl::StatusCode::kInvalidArgument);
}

class InClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("token", "  sa-token\n");
    dir_.Write("ca.crt", MakeSelfSigned().cert);
    dir_.Write("namespace", "vk-system");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  }
  void TearDown() override {
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
  }
  TempDir dir_;
};

TEST_F(InClusterTest, ReadsTheServiceAccount) {
  absl::StatusOr<RestConfig> config = LoadInClusterConfig(dir_.path().string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token_file, (dir_.path() / "token").string());
  EXPECT_FALSE(config->ca_pem.empty());
  EXPECT_EQ(config->default_namespace, "vk-system");
}

TEST_F(InClusterTest, BracketsIpv6Hosts) {
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  absl::StatusOr<RestConfig> config = LoadInClusterConfig(dir_.path().string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
}

TEST_F(InClusterTest, FailsOutsideAClusterOrWithoutFiles) {
  unsetenv("KUBERNETES_SERVICE_PORT");
  EXPECT_EQ(LoadInClusterConfig(dir_.path().string()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  std::filesystem::remove(dir_.path() / "token");
  absl::Status s = LoadInClusterConfig(dir_.path().string()).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("token"));
}

TEST_F(InClusterTest, ResolveOrderPrefersFlagThenKubeconfigVariable) {
  const std::string a = dir_.Write(
      "a", "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
           "clusters: [{name: k, cluster: {server: 'https://a:1'}}]\n");
  const std::string b = dir_.Write(
      "b", "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
           "clusters: [{name: k, cluster: {server: 'https://b:1'}}]\n");
  setenv("KUBECONFIG", (":" + b + ":" + a).c_str(), 1);
  EXPECT_EQ(ResolveRestConfig(a, "")->server, "https://a:1");
  EXPECT_EQ(ResolveRestConfig("", "")->server, "https://b:1");
  unsetenv("KUBECONFIG");
  // In-cluster variables are set by the fixture, so it tries the default
  // service-account directory, which this machine does not have.
  absl::Status in_cluster = ResolveRestConfig("", "").status();
  EXPECT_THAT(in_cluster.message(), HasSubstr("in-cluster service account"));
}

TEST(TokenSourceTest, RereadsTheFileAtMostOncePerPeriod) {
  TempDir dir;
  const std::string file = dir.Write("token", "first\n");
  absl::Time now = absl::FromUnixSeconds(100);
  internal::TokenSource tokens("static", file, absl::Minutes(1), [&] { return now; });
  ASSERT_TRUE(tokens.Init().ok());
  EXPECT_EQ(tokens.Token(), "first");  // the file wins over the static token
  dir.Write("token", "second");
  now += absl::Seconds(59);
  EXPECT_EQ(tokens.Token(), "first");
  now += absl::Seconds(2);
  EXPECT_EQ(tokens.Token(), "second");
  std::filesystem::remove(file);  // mid-rotation: keep the last good token
  now += absl::Minutes(2);
  EXPECT_EQ(tokens.Token(), "second");
}

TEST(TokenSourceTest, InitFailsOnMissingOrEmptyFile) {
  TempDir dir;
  internal::TokenSource missing("", (dir.path() / "none").string());
  EXPECT_TRUE(absl::IsNotFound(missing.Init()));
  internal::TokenSource empty("", dir.Write("empty", " \n"));
  EXPECT_EQ(empty.Init().code(), absl::StatusCode::kInvalidArgument);
  internal::TokenSource fixed("abc", "");
  EXPECT_TRUE(fixed.Init().ok());
  EXPECT_EQ(fixed.Token(), "abc");
}

TEST(NewKubeClientTest, ValidatesUrlCertificatesAndTokenFile) {
  TempDir dir;
  const Pem pem = MakeSelfSigned();
  RestConfig good;
  good.server = "https://127.0.0.1:1";
  good.ca_pem = pem.cert;
  good.client_cert_pem = pem.cert;
  good.client_key_pem = pem.key;
  good.source = "test config";
  EXPECT_TRUE(NewKubeClient(good).ok());

  RestConfig bad_url = good;
  bad_url.server = "127.0.0.1:6443";
  absl::Status s = NewKubeClient(bad_url).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("test config"));

  RestConfig bad_ca = good;
  bad_ca.ca_pem = "not pem";
  EXPECT_EQ(NewKubeClient(bad_ca).status().code(), absl::StatusCode::kInvalidArgument);

  RestConfig bad_key = good;
  bad_key.client_key_pem = "garbage";
  EXPECT_EQ(NewKubeClient(bad_key).status().code(), absl::StatusCode::kInvalidArgument);

  RestConfig no_token = good;
  no_token.token_file = (dir.path() / "missing").string();
  EXPECT_TRUE(absl::IsNotFound(NewKubeClient(no_token).status()));
}

TEST(NewKubeClientTest, ConnectionFailuresAreUnavailable) {
  RestConfig config;
  config.server = "http://127.0.0.1:1";  // nothing listens on port 1
  absl::StatusOr<std::unique_ptr<KubeClient>> client = NewKubeClient(config);
  ASSERT_TRUE(client.ok());
  absl::Status s = (*client)->Get({kNodes, "", "vk", ""}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("/api/v1/nodes/vk"));
}

}  // namespace
}  // namespace vkhost::kube
