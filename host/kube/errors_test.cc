#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "host/kube/client.h"

namespace vkhost::kube {
namespace {

using ::testing::HasSubstr;

std::string StatusBody(int code, const std::string& reason, const std::string& message) {
  return nlohmann::json{{"kind", "Status"},   {"apiVersion", "v1"},
                        {"status", "Failure"}, {"message", message},
                        {"reason", reason},    {"code", code}}
      .dump();
}

struct MappingCase {
  int http;
  std::string reason;
  absl::StatusCode want;
};

TEST(StatusFromResponseTest, MapsHttpCodesAndReasons) {
  const MappingCase cases[] = {
      {400, "BadRequest", absl::StatusCode::kInvalidArgument},
      {401, "Unauthorized", absl::StatusCode::kUnauthenticated},
      {403, "Forbidden", absl::StatusCode::kPermissionDenied},
      {404, "NotFound", absl::StatusCode::kNotFound},
      {405, "MethodNotAllowed", absl::StatusCode::kUnimplemented},
      {409, "AlreadyExists", absl::StatusCode::kAlreadyExists},
      {409, "Conflict", absl::StatusCode::kAborted},
      {410, "Expired", absl::StatusCode::kOutOfRange},
      {422, "Invalid", absl::StatusCode::kInvalidArgument},
      {429, "TooManyRequests", absl::StatusCode::kUnavailable},
      {500, "InternalError", absl::StatusCode::kUnavailable},
      {503, "ServiceUnavailable", absl::StatusCode::kUnavailable},
      {504, "Timeout", absl::StatusCode::kUnavailable},
      {418, "", absl::StatusCode::kUnknown},
  };
  for (const MappingCase& c : cases) {
    absl::Status s = StatusFromResponse("GET", "/api/v1/x", c.http,
                                        StatusBody(c.http, c.reason, "why it failed"));
    EXPECT_EQ(s.code(), c.want) << c.http << " " << c.reason;
    EXPECT_EQ(HttpCode(s), c.http);
    EXPECT_EQ(KubeReason(s), c.reason);
    EXPECT_THAT(s.message(), HasSubstr("why it failed"));
    EXPECT_THAT(s.message(), HasSubstr("GET /api/v1/x"));
  }
}

TEST(StatusFromResponseTest, PredicatesTellCasesApart) {
  absl::Status conflict = StatusFromResponse(
      "PUT", "/p", 409, StatusBody(409, "Conflict", "the object has been modified"));
  absl::Status exists = StatusFromResponse(
      "POST", "/p", 409, StatusBody(409, "AlreadyExists", "already exists"));
  absl::Status gone = StatusFromResponse(
      "GET", "/p", 410, StatusBody(410, "Expired", "too old resource version"));
  absl::Status missing = StatusFromResponse("GET", "/p", 404, StatusBody(404, "NotFound", "x"));
  absl::Status busy = StatusFromResponse("GET", "/p", 429, "");

  EXPECT_TRUE(IsConflict(conflict));
  EXPECT_FALSE(absl::IsAlreadyExists(conflict));
  EXPECT_TRUE(absl::IsAlreadyExists(exists));
  EXPECT_FALSE(IsConflict(exists));
  EXPECT_TRUE(IsGone(gone));
  EXPECT_FALSE(IsGone(conflict));
  EXPECT_TRUE(absl::IsNotFound(missing));
  EXPECT_TRUE(IsTransient(busy));
  EXPECT_FALSE(IsTransient(missing));
  EXPECT_TRUE(IsTransient(absl::UnavailableError("connection refused")));
  EXPECT_EQ(HttpCode(absl::UnavailableError("connection refused")), 0);
}

TEST(StatusFromResponseTest, QuotesBodiesThatAreNotStatus) {
  absl::Status s = StatusFromResponse("GET", "/p", 502, "<html>bad gateway</html>");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("<html>bad gateway</html>"));
  absl::Status empty = StatusFromResponse("GET", "/p", 503, "");
  EXPECT_THAT(empty.message(), HasSubstr("empty body"));
  std::string huge(100000, 'x');
  EXPECT_LT(StatusFromResponse("GET", "/p", 500, huge).message().size(), 1000u);
  // A Status with fields of the wrong type must not throw.
  absl::Status odd = StatusFromResponse("GET", "/p", 404,
                                        R"({"kind":"Status","reason":5,"message":[]})");
  EXPECT_EQ(odd.code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vkhost::kube
