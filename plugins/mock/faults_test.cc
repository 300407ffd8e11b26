#include "plugins/mock/faults.h"

#include "gtest/gtest.h"

namespace vkhost::mock {
namespace {

TEST(ParseFaultRuleTest, Valid) {
  auto rule = ParseFaultRule("CreatePod:UNAVAILABLE:0.5");
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_EQ(rule->rpc, "CreatePod");
  EXPECT_EQ(rule->code, absl::StatusCode::kUnavailable);
  EXPECT_DOUBLE_EQ(rule->probability, 0.5);

  auto numeric = ParseFaultRule("ListPods:8");
  ASSERT_TRUE(numeric.ok());
  EXPECT_EQ(numeric->code, absl::StatusCode::kResourceExhausted);
  EXPECT_DOUBLE_EQ(numeric->probability, 1.0);
  EXPECT_EQ(ParseFaultRule("Exec:resource_exhausted")->code,
            absl::StatusCode::kResourceExhausted);
}

TEST(ParseFaultRuleTest, Invalid) {
  for (const char* bad :
       {"CreatePod", "CreatePod:", "Nope:UNAVAILABLE", "CreatePod:OK",
        "CreatePod:BOGUS", "CreatePod:UNAVAILABLE:2", "CreatePod:14:0",
        "CreatePod:14:x", "a:b:c:d"}) {
    EXPECT_EQ(ParseFaultRule(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(FaultInjectorTest, FailsOnlyTheNamedRpc) {
  FaultConfig config;
  config.fail = {"CreatePod:UNAVAILABLE", "GetNode:NOT_FOUND:1"};
  auto faults = FaultInjector::Create(config);
  ASSERT_TRUE(faults.ok());
  absl::Status failed = (*faults)->Before("CreatePod", true);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find("injected"), absl::string_view::npos);
  EXPECT_EQ((*faults)->Before("GetNode", true).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE((*faults)->Before("DeletePod", true).ok());
}

TEST(FaultInjectorTest, RejectsUnknownCrashOnRpc) {
  FaultConfig config;
  config.crash_on = "Reboot";
  EXPECT_EQ(FaultInjector::Create(config).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FaultInjectorDeathTest, CrashOnAborts) {
  FaultConfig config;
  config.crash_on = "ListPods";
  auto faults = FaultInjector::Create(config);
  ASSERT_TRUE(faults.ok());
  EXPECT_DEATH((void)(*faults)->Before("ListPods", true), "crash-on");
}

}  // namespace
}  // namespace vkhost::mock
