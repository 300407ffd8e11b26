#include "plugins/mock/container_log.h"

#include <thread>

#include "gtest/gtest.h"
#include "plugins/mock/fake_session.h"

namespace vkhost::mock {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

google::protobuf::Timestamp Proto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

// Five lines "line0\n".."line4\n", one second apart from kT0.
std::shared_ptr<ContainerLog> FiveLines() {
  auto log = std::make_shared<ContainerLog>(100);
  for (int i = 0; i < 5; ++i) {
    log->Append(i == 3 ? v1::LogEntry::STREAM_STDERR : v1::LogEntry::STREAM_STDOUT,
                "line" + std::to_string(i) + "\n", kT0 + absl::Seconds(i));
  }
  return log;
}

std::vector<std::string> Lines(const v1::ContainerLogsRequest& request,
                               const ContainerLog& log) {
  CollectingWriter<v1::ContainerLogsResponse> out;
  EXPECT_TRUE(StreamContainerLog(log, request, out).ok());
  std::vector<std::string> lines;
  for (const auto& batch : out.messages()) {
    for (const auto& entry : batch.entries()) lines.push_back(entry.line());
  }
  return lines;
}

TEST(ContainerLogTest, AllLinesWithTimeAndStream) {
  auto log = FiveLines();
  CollectingWriter<v1::ContainerLogsResponse> out;
  ASSERT_TRUE(StreamContainerLog(*log, {}, out).ok());
  std::vector<v1::ContainerLogsResponse> messages = out.messages();
  ASSERT_EQ(messages.size(), 1u);
  const auto& entries = messages[0].entries();
  ASSERT_EQ(entries.size(), 5);
  EXPECT_EQ(entries[0].line(), "line0\n");
  EXPECT_EQ(entries[2].time().seconds(), absl::ToUnixSeconds(kT0) + 2);
  EXPECT_EQ(entries[3].stream(), v1::LogEntry::STREAM_STDERR);
  EXPECT_EQ(entries[4].stream(), v1::LogEntry::STREAM_STDOUT);
}

TEST(ContainerLogTest, TailLines) {
  v1::ContainerLogsRequest request;
  request.set_tail_lines(2);
  EXPECT_EQ(Lines(request, *FiveLines()),
            (std::vector<std::string>{"line3\n", "line4\n"}));
  request.set_tail_lines(0);
  EXPECT_TRUE(Lines(request, *FiveLines()).empty());
  request.set_tail_lines(50);
  EXPECT_EQ(Lines(request, *FiveLines()).size(), 5u);
}

TEST(ContainerLogTest, SinceTimeThenTail) {
  v1::ContainerLogsRequest request;
  *request.mutable_since_time() = Proto(kT0 + absl::Seconds(2));
  EXPECT_EQ(Lines(request, *FiveLines()),
            (std::vector<std::string>{"line2\n", "line3\n", "line4\n"}));
  request.set_tail_lines(1);  // counts after the time filter
  EXPECT_EQ(Lines(request, *FiveLines()),
            (std::vector<std::string>{"line4\n"}));
}

TEST(ContainerLogTest, LimitBytesCutsExactly) {
  v1::ContainerLogsRequest request;
  request.set_limit_bytes(8);
  EXPECT_EQ(Lines(request, *FiveLines()),
            (std::vector<std::string>{"line0\n", "li"}));
}

TEST(ContainerLogTest, SplitsLinesAndKeepsAPartialLast) {
  ContainerLog log(100);
  log.Append(v1::LogEntry::STREAM_STDOUT, "a\nb\n$ ", kT0);
  EXPECT_EQ(Lines({}, log), (std::vector<std::string>{"a\n", "b\n", "$ "}));
}

TEST(ContainerLogTest, RingDropsTheOldest) {
  ContainerLog log(3);
  for (int i = 0; i < 5; ++i) {
    log.Append(v1::LogEntry::STREAM_STDOUT, std::to_string(i) + "\n", kT0);
  }
  EXPECT_EQ(Lines({}, log), (std::vector<std::string>{"2\n", "3\n", "4\n"}));
}

TEST(ContainerLogTest, FollowStreamsUntilClosedAndDrained) {
  auto log = FiveLines();
  v1::ContainerLogsRequest request;
  request.set_follow(true);
  request.set_tail_lines(1);
  std::thread writer([log] {
    absl::SleepFor(absl::Milliseconds(50));
    log->Append(v1::LogEntry::STREAM_STDOUT, "late\n", absl::Now());
    log->Append(v1::LogEntry::STREAM_STDOUT, "last\n", absl::Now());
    log->Close();
  });
  std::vector<std::string> lines = Lines(request, *log);
  writer.join();
  EXPECT_EQ(lines, (std::vector<std::string>{"line4\n", "late\n", "last\n"}));
}

}  // namespace
}  // namespace vkhost::mock
