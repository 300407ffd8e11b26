#include "host/kubeletapi/internal/request_attributes.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::kubeletapi::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

TEST(VerbForMethod, FollowsTheKubeletTable) {
  EXPECT_EQ(VerbForMethod("GET"), "get");
  EXPECT_EQ(VerbForMethod("POST"), "create");
  EXPECT_EQ(VerbForMethod("PUT"), "update");
  EXPECT_EQ(VerbForMethod("PATCH"), "patch");
  EXPECT_EQ(VerbForMethod("DELETE"), "delete");
  EXPECT_EQ(VerbForMethod("HEAD"), "");
  EXPECT_EQ(VerbForMethod("OPTIONS"), "");
  EXPECT_EQ(VerbForMethod("get"), "");  // methods are case-sensitive
}

struct PathCase {
  const char* path;
  std::vector<std::string> subresources;
};

TEST(SubresourcesForPath, MapsEveryKubeletPath) {
  const PathCase cases[] = {
      {"/stats", {"stats"}},
      {"/stats/summary", {"stats"}},
      {"/stats/summary/", {"stats"}},
      {"/metrics", {"metrics"}},
      {"/metrics/resource", {"metrics"}},
      {"/metrics/cadvisor", {"metrics"}},
      {"/logs", {"log"}},
      {"/logs/kubelet.log", {"log"}},
      {"/checkpoint/ns/pod/c", {"checkpoint"}},
      {"/pods", {"pods", "proxy"}},
      {"/pods/", {"pods", "proxy"}},
      {"/runningpods/", {"pods", "proxy"}},
      {"/healthz", {"healthz", "proxy"}},
      {"/healthz/ping", {"healthz", "proxy"}},
      {"/configz", {"configz", "proxy"}},
      {"/statusz", {"statusz", "proxy"}},
      {"/containerLogs/ns/pod/c", {"proxy"}},
      {"/exec/ns/pod/c", {"proxy"}},
      {"/attach/ns/pod/uid/c", {"proxy"}},
      {"/portForward/ns/pod", {"proxy"}},
      {"/run/ns/pod/c", {"proxy"}},
      {"/", {"proxy"}},
      {"", {"proxy"}},
  };
  for (const PathCase& c : cases) {
    EXPECT_THAT(SubresourcesForPath(c.path), ElementsAreArray(c.subresources))
        << c.path;
  }
}

TEST(SubresourcesForPath, PrefixMustEndAtASegmentBoundary) {
  // "/statsfoo" is not under "/stats", "/podsx" not under "/pods".
  EXPECT_THAT(SubresourcesForPath("/statsfoo"), ElementsAre("proxy"));
  EXPECT_THAT(SubresourcesForPath("/podsx"), ElementsAre("proxy"));
  EXPECT_THAT(SubresourcesForPath("/metricsz/x"), ElementsAre("proxy"));
  // /logs is node logs; /containerLogs is not "log".
  EXPECT_THAT(SubresourcesForPath("/containerLogs"), ElementsAre("proxy"));
}

}  // namespace
}  // namespace vkhost::kubeletapi::internal
