#include "host/resolve/internal/quantity.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::resolve::internal {
namespace {

struct Case {
  const char* text;
  int64_t value;
  int64_t milli;
};

TEST(QuantityTest, ParsesEverySuffixFormAndRoundsUp) {
  const Case cases[] = {
      {"0", 0, 0},
      {"1", 1, 1000},
      {"500m", 1, 500},          // half a unit rounds up to 1
      {"1500m", 2, 1500},
      {"0.1m", 1, 1},            // a tenth of a milli rounds up to 1 milli
      {"1.5", 2, 1500},
      {".5", 1, 500},
      {"2.", 2, 2000},
      {"+3", 3, 3000},
      {"1k", 1000, 1000000},
      {"1M", 1000000, 1000000000},
      {"1Ki", 1024, 1024000},
      {"1Mi", 1048576, 1048576000},
      {"1Gi", 1073741824, 1073741824000},
      {"1.5Gi", 1610612736, 1610612736000},
      {"100Mi", 104857600, 104857600000},
      {"2e3", 2000, 2000000},
      {"2E3", 2000, 2000000},
      {"5e-3", 1, 5},
      {"1E", 1000000000000000000, std::numeric_limits<int64_t>::max()},
      {"1Ei", 1152921504606846976, std::numeric_limits<int64_t>::max()},
      {"10n", 1, 1},
      {"250u", 1, 1},
      {"0.000", 0, 0},
      {"100000000000000000000000000000000000000000000000000m",
       std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max()},
      {"-1", -1, -1000},
      {"-0.5", 0, -500},        // towards +infinity
  };
  for (const Case& c : cases) {
    auto q = Quantity::Parse(c.text);
    ASSERT_TRUE(q.ok()) << c.text << ": " << q.status();
    EXPECT_EQ(q->Value(), c.value) << c.text;
    EXPECT_EQ(q->MilliValue(), c.milli) << c.text;
  }
}

TEST(QuantityTest, ZeroInAnyUnitIsZero) {
  for (const char* text : {"0", "0Gi", "0m", "0.0", "-0", "0e5"}) {
    auto q = Quantity::Parse(text);
    ASSERT_TRUE(q.ok()) << text;
    EXPECT_TRUE(q->IsZero()) << text;
  }
  EXPECT_FALSE(Quantity::Parse("1n")->IsZero());
  EXPECT_TRUE(Quantity().IsZero());
}

TEST(QuantityTest, RejectsMalformedText) {
  for (const char* text : {"", "abc", "Gi", "1Kb", "1.2.3", "1e", "e3", "1 ",
                           " 1", "1e 3", "1e3.5", "--1", "1gi", "0x10",
                           "1e100000"}) {
    auto q = Quantity::Parse(text);
    EXPECT_FALSE(q.ok()) << text;
    if (!q.ok()) {
      EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(q.status().message(), ::testing::HasSubstr("invalid quantity"));
    }
  }
}

TEST(QuantityTest, HugeExponentsSaturate) {
  EXPECT_EQ(Quantity::Parse("1e100")->Value(),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Quantity::Parse("-1e100")->Value(),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(Quantity::Parse("1e-100")->Value(), 1);
  EXPECT_EQ(Quantity::Parse("1e-100")->MilliValue(), 1);
}

}  // namespace
}  // namespace vkhost::resolve::internal
