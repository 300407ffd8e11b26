#include "host/streambridge/internal/remote_command.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vkhost::streambridge::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Outcome Exited(int32_t code, std::string message = "") {
  Outcome outcome;
  outcome.exit_code = code;
  outcome.exit_message = std::move(message);
  return outcome;
}

Outcome Failed(absl::Status error) {
  Outcome outcome;
  outcome.error = std::move(error);
  return outcome;
}

RemoteCommandOptions Streams(bool in, bool out, bool err, bool tty) {
  RemoteCommandOptions options;
  options.stdin = in;
  options.stdout = out;
  options.stderr = err;
  options.tty = tty;
  return options;
}

TEST(RemoteCommandOptions, ReadsFlagsAndCommand) {
  auto options = ParseRemoteCommandOptions(
      {{"command", "sh"}, {"command", "-c"}, {"command", "exit 3"},
       {"input", "1"}, {"output", "1"}, {"error", "1"}},
      /*is_exec=*/true);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->stdin && options->stdout && options->stderr);
  EXPECT_FALSE(options->tty);
  EXPECT_THAT(options->command, ElementsAre("sh", "-c", "exit 3"));
}

TEST(RemoteCommandOptions, TtyTurnsStderrOffAndOnlyOneEnables) {
  auto options = ParseRemoteCommandOptions(
      {{"command", "sh"}, {"output", "1"}, {"error", "1"}, {"tty", "1"}, {"input", "true"}},
      true);
  ASSERT_TRUE(options.ok());
  EXPECT_TRUE(options->tty);
  EXPECT_FALSE(options->stderr);
  EXPECT_FALSE(options->stdin);  // only "1" enables, as in the kubelet
}

TEST(RemoteCommandOptions, RefusesNoStreamsAndExecWithoutCommand) {
  EXPECT_THAT(ParseRemoteCommandOptions({{"command", "ls"}}, true).status().message(),
              HasSubstr("at least 1 of stdin, stdout, stderr"));
  EXPECT_FALSE(ParseRemoteCommandOptions({{"output", "1"}}, true).ok());
  EXPECT_TRUE(ParseRemoteCommandOptions({{"output", "1"}}, /*is_exec=*/false).ok());
}

TEST(Negotiation, PicksTheClientsFirstKnownProtocol) {
  Negotiation n = NegotiateProtocol({{"x-stream-protocol-version", "v9.channel.k8s.io"},
                                     {"X-Stream-Protocol-Version", "v4.channel.k8s.io"},
                                     {"X-Stream-Protocol-Version", "v5.channel.k8s.io"}});
  ASSERT_TRUE(n.protocol.has_value());
  EXPECT_EQ(*n.protocol, Protocol::kV4);
  Negotiation joined =
      NegotiateProtocol({{"X-Stream-Protocol-Version", "v3.channel.k8s.io, channel.k8s.io"}});
  EXPECT_EQ(joined.protocol, Protocol::kV3);
}

TEST(Negotiation, MissingIs400AndNoOverlapIs403WithOurList) {
  EXPECT_EQ(NegotiateProtocol({}).http_status, 400);
  Negotiation n = NegotiateProtocol({{"X-Stream-Protocol-Version", "portforward.k8s.io"}});
  EXPECT_FALSE(n.protocol.has_value());
  EXPECT_EQ(n.http_status, 403);
  EXPECT_EQ(n.headers.size(), 5u);
  EXPECT_THAT(n.headers.front(),
              Pair("X-Accepted-Stream-Protocol-Versions", "v5.channel.k8s.io"));
  EXPECT_THAT(n.body, HasSubstr("unable to negotiate protocol"));
}

TEST(ExpectedStreams, CountsErrorRequestedAndResizeFromV3) {
  RemoteCommandOptions o = Streams(true, true, false, true);
  EXPECT_EQ(ExpectedStreamCount(o, Protocol::kV4), 4);  // error stdin stdout resize
  EXPECT_EQ(ExpectedStreamCount(o, Protocol::kV2), 3);
  EXPECT_FALSE(StreamWanted(o, Protocol::kV4, spdy::StreamType::kStderr));
  RemoteCommandOptions plain = Streams(false, true, false, false);
  EXPECT_EQ(ExpectedStreamCount(plain, Protocol::kV4), 2);
}

TEST(ErrorStream, V4SuccessAndNonZeroExitAsTheKubeletWritesThem) {
  EXPECT_EQ(ErrorStreamPayload(Protocol::kV4, Exited(0), {"true"}),
            R"({"metadata":{},"status":"Success"})");
  const std::string failed =
      ErrorStreamPayload(Protocol::kV5, Exited(3), {"sh", "-c", "exit 3"});
  EXPECT_EQ(failed,
            R"({"metadata":{},"status":"Failure","message":"command terminated with )"
            R"(non-zero exit code: error executing command [sh -c exit 3], exit code 3",)"
            R"("reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode",)"
            R"("message":"3"}]}})");
}

TEST(ErrorStream, V4ErrorsAndOutOfRangeCodes) {
  auto internal = nlohmann::json::parse(ErrorStreamPayload(
      Protocol::kV4, Failed(absl::NotFoundError("no container x")), {}));
  EXPECT_EQ(internal["reason"], "InternalError");
  EXPECT_EQ(internal["code"], 500);
  EXPECT_THAT(internal["message"].get<std::string>(), HasSubstr("no container x"));
  auto huge = nlohmann::json::parse(
      ErrorStreamPayload(Protocol::kV4, Exited(300), {"x"}));
  EXPECT_EQ(huge["status"], "Failure");
  EXPECT_FALSE(huge.contains("details"));  // client-go would reject code 300
}

TEST(ErrorStream, OldProtocolsWriteTextOnlyOnFailure) {
  EXPECT_EQ(ErrorStreamPayload(Protocol::kV3, Exited(0), {"true"}), "");
  EXPECT_THAT(ErrorStreamPayload(Protocol::kV2, Exited(2, "boom"), {}),
              "command terminated with non-zero exit code: boom");
  EXPECT_EQ(ErrorStreamPayload(Protocol::kV1, Failed(absl::UnavailableError("down")), {}),
            "down");
}

}  // namespace
}  // namespace vkhost::streambridge::internal
