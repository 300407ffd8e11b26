#include "common/json/omit_empty.h"

#include "gtest/gtest.h"

namespace vkhost::apijson {
namespace {

using nlohmann::json;

TEST(OmitEmptyTest, DropsGoZeroValuesRecursively) {
  json in = json::parse(R"({"a": "", "b": 0, "c": false, "d": null, "e": {}, "f": [],
                           "g": {"h": "", "i": 1}, "j": [{"k": ""}, 2]})");
  EXPECT_EQ(OmitEmpty(in), json::parse(R"({"g": {"i": 1}, "j": [{}, 2]})"));
}

TEST(OmitEmptyTest, EqualityIgnoresEmptiesButNotValues) {
  EXPECT_TRUE(EqualOmittingEmpty(json::parse(R"({"x": 1, "y": ""})"),
                                 json::parse(R"({"x": 1})")));
  EXPECT_FALSE(EqualOmittingEmpty(json::parse(R"({"x": 1})"), json::parse(R"({"x": 2})")));
  EXPECT_FALSE(EqualOmittingEmpty(json::parse(R"([1, 2])"), json::parse(R"([2, 1])")));
}

}  // namespace
}  // namespace vkhost::apijson
