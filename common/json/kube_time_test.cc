#include "common/json/kube_time.h"

#include "gtest/gtest.h"

namespace vkhost::apijson {
namespace {

TEST(KubeTimeTest, FormatsTheApiServersThreePrecisions) {
  absl::Time t = absl::FromUnixSeconds(1800000000) + absl::Nanoseconds(123456789);
  EXPECT_EQ(KubeTime(t), "2027-01-15T08:00:00Z");
  EXPECT_EQ(KubeMicroTime(t), "2027-01-15T08:00:00.123456Z");
  EXPECT_EQ(KubeNanoTime(t), "2027-01-15T08:00:00.123456789Z");
  // Fixed width: trailing zeros stay, as RFC3339Nano writers differ here.
  EXPECT_EQ(KubeNanoTime(absl::FromUnixSeconds(1800000000)),
            "2027-01-15T08:00:00.000000000Z");
}

}  // namespace
}  // namespace vkhost::apijson
