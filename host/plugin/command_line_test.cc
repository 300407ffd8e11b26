#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/plugin/plugin.h"

namespace vkhost::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct SplitCase {
  const char* line;
  std::vector<std::string> argv;
};

void PrintTo(const SplitCase& c, std::ostream* os) { *os << c.line; }

class SplitCommandLineTest : public ::testing::TestWithParam<SplitCase> {};

TEST_P(SplitCommandLineTest, SplitsLikeAShell) {
  absl::StatusOr<std::vector<std::string>> argv =
      SplitCommandLine(GetParam().line);
  ASSERT_TRUE(argv.ok()) << argv.status();
  EXPECT_EQ(*argv, GetParam().argv);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SplitCommandLineTest,
    ::testing::Values(
        SplitCase{"plugin", {"plugin"}},
        SplitCase{"  ./bin/mock   --a  b\t-c\n", {"./bin/mock", "--a", "b", "-c"}},
        SplitCase{"cmd 'a b' \"c d\"", {"cmd", "a b", "c d"}},
        SplitCase{"cmd 'it''s' x", {"cmd", "its", "x"}},
        SplitCase{"cmd a\\ b \\'q\\'", {"cmd", "a b", "'q'"}},
        SplitCase{"cmd \"say \\\"hi\\\" \\\\ \\n\"", {"cmd", "say \"hi\" \\ \\n"}},
        SplitCase{"cmd 'no \\escape \"here\"'", {"cmd", "no \\escape \"here\""}},
        SplitCase{"cmd '' \"\" x", {"cmd", "", "", "x"}},
        SplitCase{"cmd --flag='a b'c", {"cmd", "--flag=a bc"}}));

TEST(SplitCommandLineErrorTest, EmptyCommandIsRejected) {
  for (const char* line : {"", "   ", "\t\n"}) {
    absl::StatusOr<std::vector<std::string>> argv = SplitCommandLine(line);
    ASSERT_FALSE(argv.ok()) << line;
    EXPECT_EQ(argv.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(argv.status().message(), HasSubstr("empty plugin command"));
  }
}

TEST(SplitCommandLineErrorTest, UnterminatedQuotesAndTrailingBackslash) {
  struct Bad {
    const char* line;
    const char* says;
  };
  for (const Bad& bad : {Bad{"cmd 'open", "unterminated single quote"},
                         Bad{"cmd \"open \\\"", "unterminated double quote"},
                         Bad{"cmd arg\\", "trailing backslash"}}) {
    absl::StatusOr<std::vector<std::string>> argv = SplitCommandLine(bad.line);
    ASSERT_FALSE(argv.ok()) << bad.line;
    EXPECT_EQ(argv.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(argv.status().message(), HasSubstr(bad.says));
    EXPECT_THAT(argv.status().message(), HasSubstr(bad.line));
  }
}

TEST(CapabilityNameTest, StripsPrefixAndNamesUnknownValues) {
  EXPECT_EQ(CapabilityName(v1::CAPABILITY_WATCH_POD_STATUS), "WATCH_POD_STATUS");
  EXPECT_EQ(CapabilityName(v1::CAPABILITY_STATS), "STATS");
  EXPECT_THAT(CapabilityName(static_cast<v1::Capability>(99)), HasSubstr("99"));
}

TEST(FromGrpcTest, KeepsCodeAndMessage) {
  EXPECT_TRUE(FromGrpc(grpc::Status::OK).ok());
  absl::Status s =
      FromGrpc(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "full"));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "full");
  EXPECT_EQ(FromGrpc(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")).code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace vkhost::plugin
