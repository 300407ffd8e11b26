#include "host/resolve/internal/volumes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/resolve/test_objects.h"

namespace vkhost::resolve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::FakeObjectSource;
using testing::FilesOf;
using testing::MinimalPod;
using testing::TestOptions;
using nlohmann::json;

using Files = std::map<std::string, std::pair<std::string, int>>;

class VolumesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pod_ = MinimalPod();
    source_.AddConfigMap("ns", "cfg", {{"app.yaml", "a: 1"}, {"b.txt", "bee"}},
                         {{"blob.bin", "AAEC"}});  // base64 of 00 01 02
    source_.AddConfigMap("ns", "kube-root-ca.crt", {{"ca.crt", "-----CA-----"}});
    source_.AddSecret("ns", "tls", {{"tls.crt", "CERT"}, {"tls.key", "KEY"}});
    source_.AddServiceAccount("ns", "default");
  }

  // Resolves the pod with `volume` as its only volume.
  ResolveResult ResolveWith(const std::string& volume_json) {
    pod_["spec"]["volumes"] = json::array({json::parse(volume_json)});
    return ResolvePod(pod_, source_, options_);
  }

  Files FilesWith(const std::string& volume_json) {
    ResolveResult r = ResolveWith(volume_json);
    EXPECT_TRUE(r.status.ok()) << r.status;
    if (!r.status.ok()) return {};
    return FilesOf(r.resolved.pod.volumes(0));
  }

  json pod_;
  FakeObjectSource source_;
  ResolveOptions options_ = TestOptions();
};

TEST_F(VolumesTest, ConfigMapVolumeHasEveryKeyIncludingBinaryData) {
  ResolveResult r = ResolveWith(
      R"({"name": "config", "configMap": {"name": "cfg", "defaultMode": 288}})");
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& volume = r.resolved.pod.volumes(0);
  EXPECT_EQ(volume.name(), "config");
  EXPECT_EQ(volume.files().kind(), "configMap");
  EXPECT_THAT(FilesOf(volume),
              ElementsAre(Pair("app.yaml", Pair("a: 1", 0440)),
                          Pair("b.txt", Pair("bee", 0440)),
                          Pair("blob.bin", Pair(std::string("\0\1\2", 3), 0440))));
}

TEST_F(VolumesTest, ItemsMapKeysToPathsWithModes) {
  EXPECT_THAT(FilesWith(R"({"name": "config", "configMap": {"name": "cfg",
                 "items": [{"key": "app.yaml", "path": "etc/app/config.yaml", "mode": 256},
                           {"key": "b.txt", "path": "b"}]}})"),
              ElementsAre(Pair("b", Pair("bee", 0644)),
                          Pair("etc/app/config.yaml", Pair("a: 1", 0400))));
}

TEST_F(VolumesTest, MissingConfigMapKeyFailsUnlessOptional) {
  ResolveResult r = ResolveWith(R"({"name": "config", "configMap": {"name": "cfg",
      "items": [{"key": "nope", "path": "x"}]}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(), "configmap references non-existent config key: nope");
  EXPECT_THAT(FilesWith(R"({"name": "config", "configMap": {"name": "cfg", "optional": true,
      "items": [{"key": "nope", "path": "x"}, {"key": "b.txt", "path": "b"}]}})"),
              ElementsAre(Pair("b", Pair("bee", 0644))));
}

TEST_F(VolumesTest, MissingConfigMapKeepsPodContainerCreatingWithFailedMount) {
  ResolveResult r = ResolveWith(R"({"name": "config", "configMap": {"name": "absent"}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(), "configmap \"absent\" not found");
  EXPECT_EQ(r.failure.waiting_reason, "ContainerCreating");
  EXPECT_EQ(r.failure.waiting_message, "");
  EXPECT_EQ(r.failure.event_reason, "FailedMount");
  EXPECT_EQ(r.failure.event_message,
            "MountVolume.SetUp failed for volume \"config\" : configmap "
            "\"absent\" not found");
  EXPECT_EQ(r.failure.volume_name, "config");
}

TEST_F(VolumesTest, OptionalMissingConfigMapOrSecretIsAnEmptyVolume) {
  ResolveResult r = ResolveWith(
      R"({"name": "v", "configMap": {"name": "absent", "optional": true}})");
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.resolved.pod.volumes(0).has_files());
  EXPECT_THAT(FilesOf(r.resolved.pod.volumes(0)), IsEmpty());
  EXPECT_THAT(FilesWith(R"({"name": "v", "secret": {"secretName": "absent", "optional": true}})"),
              IsEmpty());
}

TEST_F(VolumesTest, SecretVolumeIsDecoded) {
  ResolveResult r = ResolveWith(
      R"({"name": "certs", "secret": {"secretName": "tls", "defaultMode": 384}})");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.resolved.pod.volumes(0).files().kind(), "secret");
  EXPECT_THAT(FilesOf(r.resolved.pod.volumes(0)),
              ElementsAre(Pair("tls.crt", Pair("CERT", 0600)),
                          Pair("tls.key", Pair("KEY", 0600))));
}

TEST_F(VolumesTest, SecretErrorsUseKubeletWording) {
  ResolveResult r = ResolveWith(R"({"name": "s", "secret": {"secretName": "tls",
      "items": [{"key": "ca.crt", "path": "ca"}]}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(), "references non-existent secret key: ca.crt");
  r = ResolveWith(R"({"name": "s", "secret": {"secretName": "gone"}})");
  EXPECT_EQ(r.failure.event_message,
            "MountVolume.SetUp failed for volume \"s\" : secret \"gone\" not found");
}

TEST_F(VolumesTest, TransientErrorsAreUnavailable) {
  source_.FailWith(absl::InternalError("connection refused"));
  ResolveResult r = ResolveWith(R"({"name": "config", "configMap": {"name": "cfg"}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.failure.event_reason, "FailedMount");
}

TEST_F(VolumesTest, DownwardApiVolumeFormatsMapsAndResources) {
  pod_["metadata"]["labels"] = {{"app", "web"}, {"tier", "front\"end"}};
  pod_["metadata"]["annotations"] = {{"note", "line1\nline2"}};
  pod_["spec"]["containers"][0]["resources"] = {{"limits", {{"memory", "512Mi"}}}};
  EXPECT_THAT(
      FilesWith(R"({"name": "podinfo", "downwardAPI": {"defaultMode": 420, "items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 256},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "app",
                                             "resource": "limits.memory", "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "app",
                                             "resource": "limits.cpu", "divisor": "1m"}}]}})"),
      ElementsAre(Pair("annotations", Pair("note=\"line1\\nline2\"", 0644)),
                  Pair("app", Pair("web", 0644)),
                  Pair("cpu", Pair("4000", 0644)),
                  Pair("labels", Pair("app=\"web\"\ntier=\"front\\\"end\"", 0644)),
                  Pair("mem", Pair("512", 0644)),
                  Pair("name", Pair("web-0", 0400))));
}

TEST_F(VolumesTest, DownwardApiVolumeRejectsEnvOnlyFieldsAndUnknownContainers) {
  ResolveResult r = ResolveWith(R"({"name": "d", "downwardAPI": {"items": [
      {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}},
      {"path": "x", "resourceFieldRef": {"containerName": "ghost", "resource": "limits.cpu"}}]}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status.message(),
            "[unsupported fieldPath: status.podIP, resourceFieldRef: container "
            "\"ghost\" not found in the pod]");
}

TEST_F(VolumesTest, GoQuoteEscapesLikeGo) {
  EXPECT_EQ(internal::GoQuote("plain"), "\"plain\"");
  EXPECT_EQ(internal::GoQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(internal::GoQuote("\t\x01\x7f"), "\"\\t\\x01\\x7f\"");
  EXPECT_EQ(internal::GoQuote("h\xc3\xa9llo"), "\"h\xc3\xa9llo\"");
  EXPECT_EQ(internal::GoQuote("bad\xff"), "\"bad\\xff\"");
  EXPECT_EQ(internal::GoQuote("\xc2\x85"), "\"\\u0085\"");
}

TEST_F(VolumesTest, EmptyDirHostPathAndOtherKinds) {
  pod_["spec"]["volumes"] = json::parse(R"([
    {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    {"name": "plain", "emptyDir": {}},
    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
    {"name": "data", "persistentVolumeClaim": {"claimName": "pvc-1"}},
    {"name": "bundle", "projected": {"sources": [
       {"clusterTrustBundle": {"signerName": "x", "path": "b.pem"}}]}}])");
  ResolveResult r = ResolvePod(pod_, source_, options_);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& v = r.resolved.pod.volumes();
  ASSERT_EQ(v.size(), 5);
  EXPECT_EQ(v[0].empty_dir().medium(), "Memory");
  EXPECT_EQ(v[0].empty_dir().size_limit(), "64Mi");
  EXPECT_TRUE(v[1].has_empty_dir());
  EXPECT_EQ(v[1].empty_dir().size_limit(), "");
  EXPECT_EQ(v[2].host_path().path(), "/var/log");
  EXPECT_EQ(v[2].host_path().type(), "Directory");
  EXPECT_EQ(v[3].unresolved().kind(), "persistentVolumeClaim");
  EXPECT_EQ(v[4].unresolved().kind(), "projected");
}

TEST_F(VolumesTest, ProjectedTokenVolumeAndRefreshTime) {
  ResolveResult r = ResolveWith(R"({"name": "vault-token", "projected": {
      "defaultMode": 420, "sources": [
        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 7200,
                                 "path": "token"}},
        {"secret": {"name": "tls", "items": [{"key": "tls.crt", "path": "certs/tls.crt"}]}}]}})");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.resolved.pod.volumes(0).files().kind(), "projected");
  EXPECT_THAT(FilesOf(r.resolved.pod.volumes(0)),
              ElementsAre(Pair("certs/tls.crt", Pair("CERT", 0644)),
                          Pair("token", Pair("token:default:vault:7200", 0644))));
  ASSERT_EQ(source_.token_requests.size(), 1u);
  EXPECT_EQ(source_.token_requests[0],
            (TokenRequest{"ns", "default", "vault", 7200, "web-0", "uid-1"}));
  // 80% of two hours after issue.
  EXPECT_EQ(r.resolved.refresh_at, source_.now + absl::Seconds(5760));
}

TEST_F(VolumesTest, TokenDefaultsAndMinimumExpiration) {
  ResolveResult r = ResolveWith(R"({"name": "t", "projected": {"sources": [
      {"serviceAccountToken": {"path": "token"}}]}})");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(source_.token_requests.back().expiration_seconds, 3600);
  EXPECT_EQ(source_.token_requests.back().audience, "");
  EXPECT_EQ(r.resolved.refresh_at, source_.now + absl::Seconds(2880));

  r = ResolveWith(R"({"name": "t", "projected": {"sources": [
      {"serviceAccountToken": {"path": "token", "expirationSeconds": 599}}]}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status.message(), HasSubstr("600"));
}

TEST_F(VolumesTest, EarliestTokenRefreshWins) {
  pod_["spec"]["volumes"] = json::parse(R"([
    {"name": "a", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 7200}}]}},
    {"name": "b", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 600}}]}}])");
  ResolveResult r = ResolvePod(pod_, source_, options_);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.resolved.refresh_at, source_.now + absl::Seconds(480));
}

TEST_F(VolumesTest, NoTokensMeansNoRefresh) {
  ResolveResult r = ResolveWith(R"({"name": "config", "configMap": {"name": "cfg"}})");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.resolved.refresh_at, absl::InfiniteFuture());
}

TEST_F(VolumesTest, TokenRefreshTimeFollowsKubeletRule) {
  const absl::Time exp = absl::FromUnixSeconds(1800000000);
  // Short token: the last 20% of its lifetime.
  EXPECT_EQ(TokenRefreshTime(Token{"t", exp, 3600}), exp - absl::Seconds(720));
  // The API server's one-year token for kube-api-access: 24 h after issue.
  const int64_t year = 365 * 24 * 3600;
  EXPECT_EQ(TokenRefreshTime(Token{"t", exp, year}),
            exp - absl::Seconds(year) + absl::Hours(24));
  // Lifetime unknown: at expiry.
  EXPECT_EQ(TokenRefreshTime(Token{"t", exp, 0}), exp);
}

TEST_F(VolumesTest, ExtendedTokenLifetimeFromServerIsHonoured) {
  source_.OverrideTokenSeconds(365 * 24 * 3600);
  ResolveResult r = ResolveWith(R"({"name": "t", "projected": {"sources": [
      {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}})");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.resolved.refresh_at, source_.now + absl::Hours(24));
}

TEST_F(VolumesTest, TokenFileIsPrivateWithFsGroupOrCommonUser) {
  const char* volume = R"({"name": "t", "projected": {"defaultMode": 420, "sources": [
      {"serviceAccountToken": {"path": "token"}},
      {"configMap": {"name": "kube-root-ca.crt"}}]}})";
  pod_["spec"]["securityContext"] = {{"runAsUser", 1000}};
  Files files = FilesWith(volume);
  EXPECT_EQ(files["token"].second, 0600);
  EXPECT_EQ(files["ca.crt"].second, 0644);

  pod_["spec"]["containers"][0]["securityContext"] = {{"runAsUser", 0}};
  pod_["spec"]["containers"].push_back({{"name", "side"}, {"image", "x"}});
  files = FilesWith(volume);  // users differ: no common owner
  EXPECT_EQ(files["token"].second, 0644);

  // fsGroup: private, then group-readable as the ownership pass leaves it.
  pod_["spec"]["securityContext"] = {{"fsGroup", 2000}};
  files = FilesWith(volume);
  EXPECT_EQ(files["token"].second, 0640);
  EXPECT_EQ(files["ca.crt"].second, 0644);
}

TEST_F(VolumesTest, MissingServiceAccountWaits) {
  pod_["spec"]["serviceAccountName"] = "robot";
  ResolveResult r = ResolveWith(R"({"name": "t", "projected": {"sources": [
      {"serviceAccountToken": {"path": "token"}}]}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(),
            "failed to fetch token: serviceaccounts \"robot\" not found");
  EXPECT_EQ(r.failure.event_reason, "FailedMount");
}

TEST_F(VolumesTest, ProjectedErrorsAreAggregated) {
  ResolveResult r = ResolveWith(R"({"name": "p", "projected": {"sources": [
      {"configMap": {"name": "absent"}},
      {"secret": {"name": "absent-too"}}]}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(),
            "[configmap \"absent\" not found, secret \"absent-too\" not found]");
}

TEST_F(VolumesTest, KubeApiAccessVolume) {
  ResolveResult r = ResolveWith(R"({"name": "kube-api-access-5f65c", "projected": {
      "defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})");
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(FilesOf(r.resolved.pod.volumes(0)),
              ElementsAre(Pair("ca.crt", Pair("-----CA-----", 0644)),
                          Pair("namespace", Pair("ns", 0644)),
                          Pair("token", Pair("token:default::3607", 0644))));
  EXPECT_EQ(r.resolved.refresh_at, source_.now + absl::Seconds(3607 - 721));
}

TEST_F(VolumesTest, InvalidPathsAreClearErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"../escape", "must not contain '..'"},
      {"a/../../b", "must not contain '..'"},
      {"/etc/passwd", "must be a relative path"},
      {"..data", "must not start with '..'"},
      {"", "must not be empty"},
      {"./", "must name a file"},
  };
  for (const auto& [path, why] : cases) {
    json volume = {{"name", "config"},
                   {"configMap", {{"name", "cfg"},
                                  {"items", {{{"key", "b.txt"}, {"path", path}}}}}}};
    ResolveResult r = ResolveWith(volume.dump());
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_THAT(r.status.message(), HasSubstr(why)) << path;
    EXPECT_THAT(r.status.message(), HasSubstr(std::string("\"") + path + "\""));
    EXPECT_EQ(r.failure.event_reason, "FailedMount");
  }
  EXPECT_TRUE(internal::ValidateVolumePath("a..b/c..").ok());
  EXPECT_TRUE(internal::ValidateVolumePath("..").code() ==
              absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(internal::ValidateVolumePath(std::string(256, 'x')).ok());
  EXPECT_TRUE(internal::ValidateVolumePath(std::string(255, 'x')).ok());
  EXPECT_FALSE(internal::ValidateVolumePath(std::string(4097, 'x')).ok());
}

TEST_F(VolumesTest, PathsAreCleanedAndConflictsRejected) {
  EXPECT_EQ(internal::CleanPath("a//b/./c/"), "a/b/c");
  EXPECT_EQ(internal::CleanPath("./x"), "x");
  EXPECT_THAT(FilesWith(R"({"name": "c", "configMap": {"name": "cfg",
      "items": [{"key": "b.txt", "path": "./dir//b"}]}})"),
              ElementsAre(Pair("dir/b", Pair("bee", 0644))));
  ResolveResult r = ResolveWith(R"({"name": "c", "configMap": {"name": "cfg",
      "items": [{"key": "b.txt", "path": "x"}, {"key": "app.yaml", "path": "x/y"}]}})");
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status.message(), HasSubstr("both a file and the directory"));
}

TEST_F(VolumesTest, LaterProjectedSourceWinsForTheSamePath) {
  EXPECT_THAT(FilesWith(R"({"name": "p", "projected": {"sources": [
      {"configMap": {"name": "cfg", "items": [{"key": "b.txt", "path": "f"}]}},
      {"secret": {"name": "tls", "items": [{"key": "tls.key", "path": "f"}]}}]}})"),
              ElementsAre(Pair("f", Pair("KEY", 0644))));
}

}  // namespace
}  // namespace vkhost::resolve
