#include "host/streambridge/internal/port_forward.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::streambridge::internal {
namespace {

using ::testing::HasSubstr;
using spdy::StreamType;

spdy::PortForwardStream Stream(StreamType type, uint16_t port, std::string request_id) {
  spdy::PortForwardStream stream;
  stream.type = type;
  stream.port = port;
  stream.request_id = std::move(request_id);
  return stream;
}

TEST(PortForwardNegotiationTest, AcceptsItsProtocolAmongOthers) {
  EXPECT_TRUE(NegotiatePortForwardProtocol(
                  {{"X-Stream-Protocol-Version", "v4.channel.k8s.io, portforward.k8s.io"}})
                  .ok());
  EXPECT_TRUE(
      NegotiatePortForwardProtocol({{"x-stream-protocol-version", "portforward.k8s.io"}})
          .ok());
}

TEST(PortForwardNegotiationTest, LegacyClientWithoutProtocolIsAccepted) {
  EXPECT_TRUE(NegotiatePortForwardProtocol({{"Upgrade", "SPDY/3.1"}}).ok());
}

TEST(PortForwardNegotiationTest, OnlyForeignProtocolsAreRefused) {
  absl::Status status =
      NegotiatePortForwardProtocol({{"X-Stream-Protocol-Version", "v4.channel.k8s.io"}});
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr("portforward.k8s.io"));
  EXPECT_THAT(status.message(), HasSubstr("v4.channel.k8s.io"));
}

TEST(PairKeyTest, RequestIdPairsTheStreams) {
  EXPECT_EQ(PairKey(1, Stream(StreamType::kError, 80, "0")), "0");
  EXPECT_EQ(PairKey(3, Stream(StreamType::kData, 80, "0")), "0");
}

TEST(PairKeyTest, LegacyClientsPairErrorThenDataByStreamId) {
  EXPECT_EQ(PairKey(5, Stream(StreamType::kError, 80, "")), "5");
  EXPECT_EQ(PairKey(7, Stream(StreamType::kData, 80, "")), "5");
}

TEST(AddToPairTest, PairCompletesWithOneStreamOfEachType) {
  StreamPair pair;
  ASSERT_TRUE(AddToPair(pair, "1", 3, Stream(StreamType::kData, 8080, "1")).ok());
  EXPECT_FALSE(pair.complete());
  ASSERT_TRUE(AddToPair(pair, "1", 1, Stream(StreamType::kError, 8080, "1")).ok());
  EXPECT_TRUE(pair.complete());
  EXPECT_EQ(pair.port, 8080);
  EXPECT_EQ(pair.data_stream, 3u);
  EXPECT_EQ(pair.error_stream, 1u);
}

TEST(AddToPairTest, SecondStreamOfATypeIsRefusedAndChangesNothing) {
  StreamPair pair;
  ASSERT_TRUE(AddToPair(pair, "7", 1, Stream(StreamType::kError, 80, "7")).ok());
  absl::Status status = AddToPair(pair, "7", 3, Stream(StreamType::kError, 80, "7"));
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            "error processing stream for request 7: error stream already assigned");
  EXPECT_EQ(pair.error_stream, 1u);
  EXPECT_FALSE(pair.data_stream.has_value());
}

TEST(AddToPairTest, PartnerWithAnotherPortIsRefused) {
  StreamPair pair;
  ASSERT_TRUE(AddToPair(pair, "2", 1, Stream(StreamType::kError, 80, "2")).ok());
  EXPECT_FALSE(AddToPair(pair, "2", 3, Stream(StreamType::kData, 81, "2")).ok());
  EXPECT_FALSE(pair.complete());
  EXPECT_EQ(pair.port, 80);
}

TEST(ForwardErrorTextTest, NamesPortPodAndCause) {
  EXPECT_EQ(ForwardErrorText(8080, "uid-1", "connection refused"),
            "error forwarding port 8080 to pod uid-1, uid : connection refused");
}

TEST(ParsePortForwardPortsTest, RepeatedAndCommaSeparatedInOrder) {
  absl::StatusOr<std::vector<uint16_t>> ports =
      ParsePortForwardPorts({{"port", "8080,9090"}, {"other", "1"}, {"port", "53"}});
  ASSERT_TRUE(ports.ok()) << ports.status();
  EXPECT_EQ(*ports, (std::vector<uint16_t>{8080, 9090, 53}));
}

TEST(ParsePortForwardPortsTest, MissingOrBadPortsAreRefused) {
  for (const HeaderList& query :
       std::vector<HeaderList>{{}, {{"port", "0"}}, {{"port", "65536"}}, {{"port", "http"}},
                               {{"port", "80,"}}, {{"port", "-1"}}}) {
    absl::StatusOr<std::vector<uint16_t>> ports = ParsePortForwardPorts(query);
    EXPECT_EQ(ports.status().code(), absl::StatusCode::kInvalidArgument)
        << (query.empty() ? "(none)" : query[0].second);
  }
  HeaderList many;
  for (int i = 1; i <= 129; ++i) many.emplace_back("port", std::to_string(i));
  EXPECT_FALSE(ParsePortForwardPorts(many).ok());
}

}  // namespace
}  // namespace vkhost::streambridge::internal
