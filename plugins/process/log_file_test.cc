#include "plugins/process/log_file.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "gtest/gtest.h"

namespace vkhost::process {
namespace {

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/vkhost-process-log-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

const absl::Time kT0 = absl::FromUnixNanos(1'700'000'000'123'456'789);

TEST(LogLineTest, RoundTripsFullAndPartialLines) {
  for (const char* text : {"hello world\n", "no newline", "\n", "a b  c\n"}) {
    LogLine line{kT0, v1::LogEntry::STREAM_STDERR, text};
    auto parsed = ParseLogLine(FormatLogLine(line).substr(0, FormatLogLine(line).size() - 1));
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(parsed->time, kT0);
    EXPECT_EQ(parsed->stream, v1::LogEntry::STREAM_STDERR);
    EXPECT_EQ(parsed->text, text);
  }
  EXPECT_FALSE(ParseLogLine("garbage").has_value());
  EXPECT_FALSE(ParseLogLine("2024-01-01T00:00:00.000000000Z stdin F x").has_value());
}

TEST_F(LogFileTest, SplitsWritesIntoLines) {
  ContainerLogWriter writer(path_, 1 << 20);
  ASSERT_TRUE(writer.Write(v1::LogEntry::STREAM_STDOUT, "one\ntwo\nthr", kT0).ok());
  std::vector<LogLine> lines = ReadLogLines(path_);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "one\n");
  EXPECT_EQ(lines[2].text, "thr");
}

TEST_F(LogFileTest, RotatesAtTheSizeLimitKeepingOneOldFile) {
  ContainerLogWriter writer(path_, 4096);
  const std::string line(100, 'x');
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(writer.Write(v1::LogEntry::STREAM_STDOUT,
                             std::to_string(i) + " " + line + "\n", kT0).ok());
  }
  EXPECT_TRUE(std::filesystem::exists(path_ + ".1"));
  EXPECT_LE(std::filesystem::file_size(path_), 4096u + 200);
  std::vector<LogLine> lines = ReadLogLines(path_);
  ASSERT_FALSE(lines.empty());
  EXPECT_LT(lines.size(), 200u);  // the oldest are gone
  EXPECT_EQ(lines.back().text, "199 " + line + "\n");
}

TEST_F(LogFileTest, FiltersSinceThenTailThenBytes) {
  std::vector<LogLine> lines;
  for (int i = 0; i < 10; ++i) {
    lines.push_back(LogLine{kT0 + absl::Seconds(i), v1::LogEntry::STREAM_STDOUT,
                            "line" + std::to_string(i) + "\n"});
  }
  v1::ContainerLogsRequest request;
  request.mutable_since_time()->set_seconds(absl::ToUnixSeconds(kT0 + absl::Seconds(5)));
  request.set_tail_lines(3);
  std::vector<LogLine> out = FilterLogLines(lines, request);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].text, "line7\n");
  request.set_limit_bytes(7);
  out = FilterLogLines(lines, request);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "line7\n");
}

TEST_F(LogFileTest, FollowerSeesAppendedLinesAcrossRotation) {
  ContainerLogWriter writer(path_, 4096);
  ASSERT_TRUE(writer.Write(v1::LogEntry::STREAM_STDOUT, "before\n", kT0).ok());
  LogFollower follower(path_, /*from_end=*/true);
  EXPECT_TRUE(follower.Poll().empty());
  int seen = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(writer.Write(v1::LogEntry::STREAM_STDOUT,
                             std::to_string(i) + std::string(80, 'y') + "\n", kT0).ok());
    seen += static_cast<int>(follower.Poll().size());
  }
  EXPECT_EQ(seen, 100);
}

}  // namespace
}  // namespace vkhost::process
