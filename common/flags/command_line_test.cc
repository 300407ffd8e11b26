#include "common/flags/command_line.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::flags {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(RepeatedFlagValuesTest, EverySpellingInOrderUpToTheSeparator) {
  std::vector<std::string> args = {"prog", "--image=a=/", "-image", "b=/x", "--image",
                                   "c=/y",  "--images=no", "--", "--image=after"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  EXPECT_THAT(RepeatedFlagValues(static_cast<int>(argv.size()), argv.data(), "image"),
              ElementsAre("a=/", "b=/x", "c=/y"));
}

TEST(RepeatedFlagValuesTest, AFlagWithoutItsValueAtTheEndGivesNothing) {
  std::vector<std::string> args = {"prog", "--image"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  EXPECT_THAT(RepeatedFlagValues(static_cast<int>(argv.size()), argv.data(), "image"),
              IsEmpty());
}

}  // namespace
}  // namespace vkhost::flags
