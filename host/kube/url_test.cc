#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "host/kube/client.h"
#include "host/kube/internal/url.h"

namespace vkhost::kube {
namespace {

using ::testing::HasSubstr;

struct PathCase {
  Target target;
  std::string want;
};

TEST(ResourcePathTest, BuildsCoreGroupAndNamedGroupPaths) {
  const PathCase cases[] = {
      {{kPods, "", "", ""}, "/api/v1/pods"},
      {{kPods, "default", "", ""}, "/api/v1/namespaces/default/pods"},
      {{kPods, "ns", "web-0", "status"}, "/api/v1/namespaces/ns/pods/web-0/status"},
      {{kNodes, "", "vk", ""}, "/api/v1/nodes/vk"},
      {{kNodes, "", "vk", "status"}, "/api/v1/nodes/vk/status"},
      {{kLeases, "kube-node-lease", "vk", ""},
       "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vk"},
      {{kServiceAccounts, "ns", "default", "token"},
       "/api/v1/namespaces/ns/serviceaccounts/default/token"},
      {{kEvents, "ns", "", ""}, "/apis/events.k8s.io/v1/namespaces/ns/events"},
      {{kCoreEvents, "ns", "", ""}, "/api/v1/namespaces/ns/events"},
      {{kTokenReviews, "", "", ""}, "/apis/authentication.k8s.io/v1/tokenreviews"},
      {{kSubjectAccessReviews, "", "", ""},
       "/apis/authorization.k8s.io/v1/subjectaccessreviews"},
      {{kConfigMaps, "a", "b", ""}, "/api/v1/namespaces/a/configmaps/b"},
      {{kSecrets, "a", "b", ""}, "/api/v1/namespaces/a/secrets/b"},
      {{kServices, "a", "", ""}, "/api/v1/namespaces/a/services"},
      {{kNamespaces, "", "a", ""}, "/api/v1/namespaces/a"},
  };
  for (const PathCase& c : cases) {
    absl::StatusOr<std::string> path = ResourcePath(c.target);
    ASSERT_TRUE(path.ok()) << c.want << ": " << path.status();
    EXPECT_EQ(*path, c.want);
  }
}

TEST(ResourcePathTest, RejectsWhatCannotBeAUrlPathOrScope) {
  const Target bad[] = {
      {kNodes, "ns", "vk", ""},          // namespace on a cluster-scoped kind
      {kPods, "ns", "", "status"},       // subresource without a name
      {kPods, "ns", "a/b", ""},          // traversal
      {kPods, "..", "a", ""},
      {kPods, "ns", "a b", ""},
      {kPods, "ns", "a?x=1", ""},
      {Resource{"", "", "pods", true}, "ns", "a", ""},
  };
  for (const Target& t : bad) {
    EXPECT_EQ(ResourcePath(t).status().code(), absl::StatusCode::kInvalidArgument)
        << t.ns << "/" << t.name << "/" << t.subresource;
  }
}

TEST(LookupResourceTest, FindsByPluralAndGroup) {
  absl::StatusOr<Resource> lease = LookupResource("leases.coordination.k8s.io");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->group, "coordination.k8s.io");
  ASSERT_TRUE(LookupResource("pods").ok());
  EXPECT_EQ(LookupResource("events.events.k8s.io")->group, "events.k8s.io");
  EXPECT_EQ(LookupResource("events")->group, "");
  EXPECT_TRUE(absl::IsNotFound(LookupResource("leases").status()));
}

TEST(ServerUrlTest, ParsesHostsPortsAndPrefixes) {
  auto a = internal::ParseServerUrl("https://127.0.0.1:6443");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->https);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6443);
  EXPECT_EQ(a->base_path, "");
  EXPECT_EQ(a->host_header, "127.0.0.1:6443");

  auto b = internal::ParseServerUrl("https://[fd00::1]:443/k8s/clusters/c1/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "fd00::1");
  EXPECT_EQ(b->port, 443);
  EXPECT_EQ(b->base_path, "/k8s/clusters/c1");
  EXPECT_EQ(b->host_header, "[fd00::1]:443");

  auto c = internal::ParseServerUrl("http://api.example");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->https);
  EXPECT_EQ(c->port, 80);

  auto d = internal::ParseServerUrl("https://kubernetes.default.svc");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 443);
}

TEST(ServerUrlTest, RejectsMalformedUrls) {
  for (const char* url : {"127.0.0.1:6443", "ftp://x", "https://", "https://:443",
                          "https://h:0", "https://h:99999", "https://h:x",
                          "https://[::1", "https://[::1]x", "https://u:p@h",
                          "https://h/p?q=1"}) {
    auto parsed = internal::ParseServerUrl(url);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(parsed.status().message(), HasSubstr(url));
  }
}

TEST(QueryTest, EncodesSelectorsAndSkipsEmptyValues) {
  ListOptions list;
  list.label_selector = "app in (a,b),tier!=x";
  list.field_selector = "spec.nodeName=vk";
  list.limit = 500;
  list.continue_token = "abc+/=";
  EXPECT_EQ(internal::ListQuery(list),
            "?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Dx"
            "&fieldSelector=spec.nodeName%3Dvk&limit=500&continue=abc%2B%2F%3D");
  EXPECT_EQ(internal::ListQuery({}), "");

  WatchOptions watch;
  watch.resource_version = "123";
  watch.timeout_seconds = 300;
  EXPECT_EQ(internal::WatchQuery(watch),
            "?watch=true&allowWatchBookmarks=true&resourceVersion=123&timeoutSeconds=300");

  WriteOptions write;
  write.field_manager = "vkhost";
  write.force = true;
  EXPECT_EQ(internal::WriteQuery(write, /*apply=*/true), "?fieldManager=vkhost&force=true");
  EXPECT_EQ(internal::WriteQuery(write, /*apply=*/false), "?fieldManager=vkhost");
}

TEST(QueryTest, DeleteOptionsCarryGraceAndPreconditions) {
  DeleteOptions options;
  options.grace_period_seconds = 0;
  options.precondition_uid = "u-1";
  nlohmann::json body = internal::DeleteOptionsBody(options);
  EXPECT_EQ(body["gracePeriodSeconds"], 0);
  EXPECT_EQ(body["preconditions"]["uid"], "u-1");
  EXPECT_EQ(body["kind"], "DeleteOptions");
  EXPECT_FALSE(body.contains("propagationPolicy"));
  EXPECT_FALSE(internal::DeleteOptionsBody({}).contains("gracePeriodSeconds"));
}

}  // namespace
}  // namespace vkhost::kube
