#include "host/podstatus/pod_status.h"

#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::podstatus {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);  // 2027-01-15T08:00:00Z
const StatusContext kContext{"192.0.2.10", kNow};

json Pod(const std::string& restart_policy = "Always") {
  return json::parse(R"({
    "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
    "spec": {"restartPolicy": ")" + restart_policy + R"(",
             "containers": [{"name": "app", "image": "nginx"},
                            {"name": "side", "image": "busybox"}]},
    "status": {"phase": "Pending", "qosClass": "BestEffort"}
  })");
}

v1::ContainerStatus Running(const std::string& name, bool ready) {
  v1::ContainerStatus s;
  s.set_name(name);
  s.mutable_state()->mutable_running()->mutable_started_at()->set_seconds(1799999990);
  s.set_ready(ready);
  s.set_started(true);
  s.set_container_id("mock://" + name);
  return s;
}

v1::ContainerStatus Terminated(const std::string& name, int exit_code) {
  v1::ContainerStatus s;
  s.set_name(name);
  auto* t = s.mutable_state()->mutable_terminated();
  t->set_exit_code(exit_code);
  t->set_reason(exit_code == 0 ? "Completed" : "Error");
  return s;
}

json ConditionOf(const json& status, const std::string& type) {
  for (const auto& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  return nullptr;
}

TEST(PhaseTest, FollowsKubeletRules) {
  json spec = Pod("Never")["spec"];
  auto run = [](const char* n) {
    return json{{"name", n}, {"state", {{"running", json::object()}}}};
  };
  auto term = [](const char* n, int code) {
    return json{{"name", n}, {"state", {{"terminated", {{"exitCode", code}}}}}};
  };
  auto wait = [](const char* n) {
    return json{{"name", n}, {"state", {{"waiting", {{"reason", "ContainerCreating"}}}}}};
  };
  EXPECT_EQ(Phase(spec, json::array({wait("app"), run("side")}), false), "Pending");
  EXPECT_EQ(Phase(spec, json::array({run("app"), run("side")}), false), "Running");
  EXPECT_EQ(Phase(spec, json::array({run("app")}), false), "Pending");  // side unknown
  EXPECT_EQ(Phase(spec, json::array({term("app", 0), term("side", 0)}), false), "Succeeded");
  EXPECT_EQ(Phase(spec, json::array({term("app", 0), term("side", 1)}), false), "Failed");
  EXPECT_EQ(Phase(spec, json::array({term("app", 0), run("side")}), false), "Running");

  spec["restartPolicy"] = "Always";
  EXPECT_EQ(Phase(spec, json::array({term("app", 0), term("side", 1)}), false), "Running");
  EXPECT_EQ(Phase(spec, json::array({term("app", 0), term("side", 1)}), true), "Failed");
  spec["restartPolicy"] = "OnFailure";
  EXPECT_EQ(Phase(spec, json::array({term("app", 0), term("side", 1)}), false), "Running");
  EXPECT_EQ(Phase(spec, json::array({term("app", 0), term("side", 0)}), false), "Succeeded");
}

TEST(PhaseTest, InitContainers) {
  json spec = Pod("Never")["spec"];
  spec["initContainers"] = json::array({{{"name", "init"}}});
  auto term = [](const char* n, int code) {
    return json{{"name", n}, {"state", {{"terminated", {{"exitCode", code}}}}}};
  };
  auto wait = [](const char* n) {
    return json{{"name", n}, {"state", {{"waiting", {{"reason", "PodInitializing"}}}}}};
  };
  EXPECT_EQ(Phase(spec, json::array({wait("init"), wait("app"), wait("side")}), false),
            "Pending");
  EXPECT_EQ(Phase(spec, json::array({term("init", 2), wait("app"), wait("side")}), false),
            "Failed");
  spec["restartPolicy"] = "OnFailure";
  EXPECT_EQ(Phase(spec, json::array({term("init", 2), wait("app"), wait("side")}), false),
            "Pending");
}

TEST(FromReportTest, RunningReadyPod) {
  v1::PodStatus report;
  report.add_pod_ips("10.250.0.7");
  *report.add_container_statuses() = Running("app", true);
  *report.add_container_statuses() = Running("side", true);
  json status = FromReport(Pod(), report, kContext);

  EXPECT_EQ(status["phase"], "Running");
  EXPECT_EQ(status["podIP"], "10.250.0.7");
  EXPECT_EQ(status["podIPs"], json::parse(R"([{"ip":"10.250.0.7"}])"));
  EXPECT_EQ(status["hostIP"], "192.0.2.10");
  EXPECT_EQ(status["startTime"], "2027-01-15T08:00:00Z");
  ASSERT_EQ(status["containerStatuses"].size(), 2u);
  EXPECT_EQ(status["containerStatuses"][0]["name"], "app");
  EXPECT_EQ(status["containerStatuses"][0]["image"], "nginx");
  EXPECT_EQ(status["containerStatuses"][0]["containerID"], "mock://app");
  EXPECT_TRUE(status["containerStatuses"][0]["state"].contains("running"));
  for (const char* type :
       {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    EXPECT_EQ(ConditionOf(status, type)["status"], "True") << type;
  }
}

TEST(FromReportTest, MissingAndUnreadyContainers) {
  v1::PodStatus report;
  *report.add_container_statuses() = Running("app", false);
  json status = FromReport(Pod(), report, kContext);

  EXPECT_EQ(status["phase"], "Pending");
  EXPECT_EQ(status["containerStatuses"][1]["state"]["waiting"]["reason"], "ContainerCreating");
  json ready = ConditionOf(status, "Ready");
  EXPECT_EQ(ready["status"], "False");
  EXPECT_EQ(ready["reason"], "ContainersNotReady");
  EXPECT_EQ(ready["message"], "containers with unready status: [app side]");
}

TEST(FromReportTest, FailedUnderNeverAndTerminalPhaseSticks) {
  v1::PodStatus report;
  *report.add_container_statuses() = Terminated("app", 1);
  *report.add_container_statuses() = Terminated("side", 0);
  json pod = Pod("Never");
  json status = FromReport(pod, report, kContext);
  EXPECT_EQ(status["phase"], "Failed");
  EXPECT_EQ(ConditionOf(status, "Ready")["reason"], "PodCompleted");
  EXPECT_EQ(status["containerStatuses"][0]["state"]["terminated"]["exitCode"], 1);

  pod["status"] = status;
  *report.mutable_container_statuses(0) = Running("app", true);
  EXPECT_EQ(FromReport(pod, report, kContext)["phase"], "Failed");
}

TEST(FromReportTest, KeepsTransitionTimesAndForeignConditions) {
  json pod = Pod();
  pod["status"]["conditions"] = json::parse(R"([
    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
    {"type": "example.com/Gate", "status": "True", "lastTransitionTime": "2026-01-02T00:00:00Z"}
  ])");
  pod["spec"]["readinessGates"] = json::parse(R"([{"conditionType": "example.com/Gate"}])");
  v1::PodStatus report;
  *report.add_container_statuses() = Running("app", true);
  *report.add_container_statuses() = Running("side", true);
  json status = FromReport(pod, report, kContext);

  EXPECT_EQ(ConditionOf(status, "Ready")["lastTransitionTime"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(ConditionOf(status, "ContainersReady")["lastTransitionTime"],
            "2027-01-15T08:00:00Z");
  EXPECT_EQ(ConditionOf(status, "example.com/Gate")["lastTransitionTime"],
            "2026-01-02T00:00:00Z");

  pod["status"]["conditions"][1]["status"] = "False";
  status = FromReport(pod, report, kContext);
  EXPECT_EQ(ConditionOf(status, "Ready")["reason"], "ReadinessGatesNotReady");
}

TEST(FromReportTest, ReportedPhaseAndReasonWin) {
  v1::PodStatus report;
  report.set_phase(v1::POD_PHASE_FAILED);
  report.set_reason("DeadlineExceeded");
  report.set_message("Pod was active on the node longer than the specified deadline");
  *report.add_container_statuses() = Running("app", true);
  json status = FromReport(Pod(), report, kContext);
  EXPECT_EQ(status["phase"], "Failed");
  EXPECT_EQ(status["reason"], "DeadlineExceeded");
}

TEST(RejectedTest, FailsWithReason) {
  json status = Rejected(Pod(), "ProviderFailed", "unknown image \"nginx\"", kContext);
  EXPECT_EQ(status["phase"], "Failed");
  EXPECT_EQ(status["reason"], "ProviderFailed");
  EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("unknown image"));
  EXPECT_EQ(ConditionOf(status, "PodReadyToStartContainers")["status"], "False");
}

TEST(WaitingTest, PendingWithContainerReason) {
  json status = Waiting(Pod(), "CreateContainerConfigError",
                        "configmap \"cfg\" not found", kContext);
  EXPECT_EQ(status["phase"], "Pending");
  EXPECT_EQ(status["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CreateContainerConfigError");
  EXPECT_EQ(status["containerStatuses"][0]["state"]["waiting"]["message"],
            "configmap \"cfg\" not found");
}

TEST(DiffersTest, IgnoresOmitEmptyNoiseButSeesChanges) {
  v1::PodStatus report;
  *report.add_container_statuses() = Running("app", true);
  json pod = Pod();
  json status = FromReport(pod, report, kContext);
  // The API server's echo drops empty and false values and adds fields we
  // never write.
  json echo = status;
  echo["qosClass"] = "BestEffort";
  for (auto& c : echo["conditions"]) c.erase("lastProbeTime");
  echo["containerStatuses"][1].erase("started");
  EXPECT_FALSE(Differs(echo, status));

  pod["status"] = echo;
  *report.mutable_container_statuses(0) = Running("app", false);
  EXPECT_TRUE(Differs(echo, FromReport(pod, report, kContext)));
}

}  // namespace
}  // namespace vkhost::podstatus
