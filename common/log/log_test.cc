#include "common/log/log.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::log {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetSinkForTest([this](const std::string& line) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(line);
    });
  }
  void TearDown() override {
    SetSinkForTest(nullptr);
    SetLevel(Level::kInfo);
  }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

TEST_F(LogTest, LineHasKlogShape) {
  VKLOG(WARNING) << "plugin " << 42 << " exited";
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_THAT(Lines()[0],
              MatchesRegex("W[0-9]{4} [0-9:.]+ [0-9]+ log_test.cc:[0-9]+\\] "
                           "plugin 42 exited\n"));
}

TEST_F(LogTest, LevelThresholdDropsLowerLevels) {
  SetLevel(Level::kWarning);
  VKLOG(INFO) << "dropped";
  VKLOG(DEBUG) << "dropped";
  VKLOG(ERROR) << "kept";
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_THAT(Lines()[0], EndsWith("kept\n"));
}

TEST_F(LogTest, DroppedLinesDoNotEvaluateArguments) {
  SetLevel(Level::kError);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  VKLOG(INFO) << count();
  EXPECT_EQ(evaluated, 0);
}

TEST_F(LogTest, ConcurrentLinesStayWhole) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) VKLOG(INFO) << "thread " << t << " line " << i;
    });
  }
  for (auto& th : threads) th.join();
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 400u);
  for (const auto& line : lines) EXPECT_THAT(line, MatchesRegex(".*thread [0-3] line [0-9]+\n"));
}

TEST(ParseLevelTest, AcceptsNamesInAnyCase) {
  Level level = Level::kInfo;
  ASSERT_TRUE(ParseLevel("DEBUG", &level).ok());
  EXPECT_EQ(level, Level::kDebug);
  ASSERT_TRUE(ParseLevel("warn", &level).ok());
  EXPECT_EQ(level, Level::kWarning);
  absl::Status bad = ParseLevel("loud", &level);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("loud"));
}

}  // namespace
}  // namespace vkhost::log
