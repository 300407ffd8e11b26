#include "host/kubeletapi/internal/routes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::kubeletapi::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(MatchRoute, FixedPaths) {
  EXPECT_EQ(MatchRoute("/healthz")->kind, RouteKind::kHealthz);
  EXPECT_EQ(MatchRoute("/healthz/ping")->kind, RouteKind::kHealthz);
  EXPECT_EQ(MatchRoute("/pods")->kind, RouteKind::kPods);
  EXPECT_EQ(MatchRoute("/pods/")->kind, RouteKind::kPods);
  EXPECT_EQ(MatchRoute("/stats/summary")->kind, RouteKind::kStatsSummary);
  EXPECT_EQ(MatchRoute("/stats/summary/")->kind, RouteKind::kStatsSummary);
  EXPECT_EQ(MatchRoute("/metrics/resource")->kind, RouteKind::kMetricsResource);
  EXPECT_EQ(MatchRoute("/metrics")->kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/podsx")->kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/pods/extra")->kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/")->kind, RouteKind::kNotFound);
}

TEST(MatchRoute, ContainerLogs) {
  absl::StatusOr<Route> r = MatchRoute("/containerLogs/default/web-0/app");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, RouteKind::kContainerLogs);
  EXPECT_EQ(r->pod_namespace, "default");
  EXPECT_EQ(r->pod_name, "web-0");
  EXPECT_EQ(r->container, "app");
  EXPECT_THAT(MatchRoute("/containerLogs/default/web-0").status().message(),
              HasSubstr("Missing container name"));
  EXPECT_THAT(MatchRoute("/containerLogs/default").status().message(),
              HasSubstr("Missing podID"));
  EXPECT_THAT(MatchRoute("/containerLogs").status().message(),
              HasSubstr("Missing podNamespace"));
  EXPECT_EQ(MatchRoute("/containerLogs/a/b/c/d")->kind, RouteKind::kNotFound);
}

TEST(MatchRoute, ExecWithAndWithoutUid) {
  absl::StatusOr<Route> plain = MatchRoute("/exec/ns/pod/ctr");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->kind, RouteKind::kExec);
  EXPECT_EQ(plain->pod_uid, "");
  EXPECT_EQ(plain->container, "ctr");
  absl::StatusOr<Route> uid = MatchRoute("/attach/ns/pod/1234/ctr");
  ASSERT_TRUE(uid.ok());
  EXPECT_EQ(uid->kind, RouteKind::kAttach);
  EXPECT_EQ(uid->pod_uid, "1234");
  EXPECT_EQ(uid->container, "ctr");
  absl::StatusOr<Route> pf = MatchRoute("/portForward/ns/pod/1234");
  ASSERT_TRUE(pf.ok());
  EXPECT_EQ(pf->kind, RouteKind::kPortForward);
  EXPECT_EQ(pf->pod_uid, "1234");
  EXPECT_EQ(MatchRoute("/run/ns/pod/ctr")->kind, RouteKind::kRun);
  EXPECT_EQ(MatchRoute("/executor/x")->kind, RouteKind::kNotFound);
}

TEST(MatchRoute, DecodesSegmentsAndRejectsBadEscapes) {
  EXPECT_EQ(MatchRoute("/containerLogs/ns/p%2Dq/c")->pod_name, "p-q");
  EXPECT_FALSE(MatchRoute("/containerLogs/ns/p%zz/c").ok());
}

TEST(AllowedMethods, PerRoute) {
  EXPECT_THAT(AllowedMethods(RouteKind::kContainerLogs), ElementsAre("GET"));
  EXPECT_THAT(AllowedMethods(RouteKind::kExec), ElementsAre("GET", "POST"));
  EXPECT_THAT(AllowedMethods(RouteKind::kRun), ElementsAre("POST"));
}

TEST(ParseQuery, DecodesInOrderWithRepeats) {
  absl::StatusOr<QueryParams> q =
      ParseQuery("command=sh&command=-c&command=echo+a%20b&input=1&flag");
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(*q, ElementsAre(Pair("command", "sh"), Pair("command", "-c"),
                              Pair("command", "echo a b"), Pair("input", "1"),
                              Pair("flag", "")));
  EXPECT_FALSE(ParseQuery("a=%4").ok());
  EXPECT_FALSE(ParseQuery("a=%").ok());
}

absl::StatusOr<LogOptions> Parse(absl::string_view query, absl::Time now = absl::Now()) {
  absl::StatusOr<QueryParams> q = ParseQuery(query);
  if (!q.ok()) return q.status();
  return ParseLogOptions(*q, now);
}

TEST(ParseLogOptions, AllOptions) {
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  absl::StatusOr<LogOptions> o = Parse(
      "follow=true&previous=1&timestamps=true&tailLines=10&sinceSeconds=60&"
      "limitBytes=100",
      now);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->follow);
  EXPECT_TRUE(o->previous);
  EXPECT_TRUE(o->timestamps);
  EXPECT_EQ(o->tail_lines, 10);
  EXPECT_EQ(o->since_time, now - absl::Seconds(60));
  EXPECT_EQ(o->limit_bytes, 100);
}

TEST(ParseLogOptions, BoolsFollowGoQueryConversion) {
  EXPECT_FALSE(Parse("follow=false")->follow);
  EXPECT_FALSE(Parse("follow=0")->follow);
  EXPECT_FALSE(Parse("follow=")->follow);
  EXPECT_TRUE(Parse("follow=yes")->follow);
  EXPECT_FALSE(Parse("")->follow);
}

TEST(ParseLogOptions, LegacyTail) {
  EXPECT_EQ(Parse("tail=5")->tail_lines, 5);
  EXPECT_FALSE(Parse("tail=all")->tail_lines.has_value());
  EXPECT_EQ(Parse("tailLines=3&tail=5")->tail_lines, 3);
}

TEST(ParseLogOptions, SinceTime) {
  absl::StatusOr<LogOptions> o = Parse("sinceTime=2024-05-01T12:00:00Z");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->since_time, absl::FromUnixSeconds(1714564800));
}

TEST(ParseLogOptions, RejectsBadValues) {
  for (const char* bad :
       {"tailLines=x", "tailLines=-1", "sinceSeconds=0", "sinceSeconds=abc",
        "limitBytes=0", "limitBytes=-5", "sinceTime=yesterday",
        "sinceSeconds=5&sinceTime=2024-05-01T12:00:00Z", "stream=Stdout"}) {
    absl::StatusOr<LogOptions> o = Parse(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(o.status())) << bad;
  }
  EXPECT_TRUE(Parse("stream=All").ok());
}

TEST(FormatLogTimestamp, AlwaysNineFractionalDigits) {
  EXPECT_EQ(FormatLogTimestamp(absl::FromUnixSeconds(1475713029) +
                               absl::Nanoseconds(669794202)),
            "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(FormatLogTimestamp(absl::FromUnixSeconds(1475713029)),
            "2016-10-06T00:17:09.000000000Z");
}

}  // namespace
}  // namespace vkhost::kubeletapi::internal
