#include "host/pods/internal/decide.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::pods::internal {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

json Pod() {
  return json::parse(R"({
    "metadata": {"name": "web", "namespace": "ns", "uid": "u1",
                 "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "nginx:1"}],
             "restartPolicy": "Always"},
    "status": {"phase": "Pending"}
  })");
}

json Deleting(int64_t grace) {
  json pod = Pod();
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  pod["metadata"]["deletionGracePeriodSeconds"] = grace;
  return pod;
}

v1::PodStatus Report(const char* state) {
  v1::PodStatus report;
  report.mutable_pod()->set_uid("u1");
  v1::ContainerStatus* c = report.add_container_statuses();
  c->set_name("app");
  if (std::string(state) == "running") c->mutable_state()->mutable_running();
  if (std::string(state) == "terminated") c->mutable_state()->mutable_terminated();
  if (std::string(state) == "waiting") {
    c->mutable_state()->mutable_waiting()->set_reason("ContainerCreating");
  }
  return report;
}

TEST(DecideTest, NewPodIsCreated) {
  json pod = Pod();
  Plan plan = Decide(&pod, PodFacts{}, true, kNow);
  EXPECT_EQ(plan.plugin, PluginStep::kCreate);
  EXPECT_FALSE(plan.write_status);
  EXPECT_FALSE(plan.delete_api_object);
}

TEST(DecideTest, RunningPodSyncsStatusOnly) {
  json pod = Pod();
  v1::PodStatus report = Report("running");
  PodFacts facts;
  facts.in_plugin = true;
  facts.report = &report;
  facts.sent_fingerprint = UpdateFingerprint(pod);
  Plan plan = Decide(&pod, facts, true, kNow);
  Plan expected;
  expected.write_status = true;
  EXPECT_EQ(plan, expected);
}

TEST(DecideTest, InPluginWithoutReportWritesNothing) {
  json pod = Pod();
  PodFacts facts;
  facts.in_plugin = true;
  facts.sent_fingerprint = UpdateFingerprint(pod);
  EXPECT_EQ(Decide(&pod, facts, true, kNow), Plan{});
}

TEST(DecideTest, ChangedLabelsAreForwardedOnlyWithUpdateCapability) {
  json pod = Pod();
  PodFacts facts;
  facts.in_plugin = true;
  facts.sent_fingerprint = UpdateFingerprint(pod);
  pod["metadata"]["labels"]["tier"] = "front";
  EXPECT_EQ(Decide(&pod, facts, true, kNow).plugin, PluginStep::kUpdate);
  EXPECT_EQ(Decide(&pod, facts, false, kNow).plugin, PluginStep::kNone);
}

TEST(DecideTest, ImageAndDeadlineChangesAreForwarded) {
  json pod = Pod();
  PodFacts facts;
  facts.in_plugin = true;
  facts.sent_fingerprint = UpdateFingerprint(pod);
  json image = pod;
  image["spec"]["containers"][0]["image"] = "nginx:2";
  EXPECT_EQ(Decide(&image, facts, true, kNow).plugin, PluginStep::kUpdate);
  json deadline = pod;
  deadline["spec"]["activeDeadlineSeconds"] = 30;
  EXPECT_EQ(Decide(&deadline, facts, true, kNow).plugin, PluginStep::kUpdate);
  json status_only = pod;
  status_only["status"]["phase"] = "Running";
  status_only["metadata"]["resourceVersion"] = "99";
  EXPECT_EQ(Decide(&status_only, facts, true, kNow).plugin, PluginStep::kNone);
}

TEST(DecideTest, DueRefreshSendsAnUpdate) {
  json pod = Pod();
  PodFacts facts;
  facts.in_plugin = true;
  facts.sent_fingerprint = UpdateFingerprint(pod);
  facts.refresh_at = kNow + absl::Seconds(1);
  EXPECT_EQ(Decide(&pod, facts, true, kNow).plugin, PluginStep::kNone);
  facts.refresh_at = kNow;
  EXPECT_EQ(Decide(&pod, facts, true, kNow).plugin, PluginStep::kUpdate);
}

TEST(DecideTest, AdoptedPodIsResentOnlyWithResolvedVolumes) {
  json pod = Pod();
  PodFacts facts;
  facts.in_plugin = true;  // listed by the plugin, never sent by this process
  Plan plain = Decide(&pod, facts, true, kNow);
  EXPECT_TRUE(plain.adopt);
  EXPECT_EQ(plain.plugin, PluginStep::kNone);
  pod["spec"]["volumes"] = json::parse(R"([{"name": "t", "projected": {"sources": []}}])");
  Plan with_volumes = Decide(&pod, facts, true, kNow);
  EXPECT_TRUE(with_volumes.adopt);
  EXPECT_EQ(with_volumes.plugin, PluginStep::kUpdate);
}

TEST(DecideTest, DeletionSendsDeletePodOnceWithTheGracePeriod) {
  json pod = Deleting(30);
  v1::PodStatus report = Report("running");
  PodFacts facts;
  facts.in_plugin = true;
  facts.report = &report;
  Plan first = Decide(&pod, facts, true, kNow);
  EXPECT_EQ(first.plugin, PluginStep::kDelete);
  EXPECT_EQ(first.grace_period_seconds, 30);
  EXPECT_TRUE(first.write_status);
  EXPECT_FALSE(first.delete_api_object);

  facts.delete_sent = true;
  Plan later = Decide(&pod, facts, true, kNow);
  EXPECT_EQ(later.plugin, PluginStep::kNone);
  EXPECT_FALSE(later.delete_api_object);
}

TEST(DecideTest, DeletedPodLeavesTheApiWhenThePluginIsDone) {
  json pod = Deleting(30);
  PodFacts facts;
  facts.in_plugin = true;
  facts.delete_sent = true;
  v1::PodStatus terminated = Report("terminated");
  facts.report = &terminated;
  EXPECT_TRUE(Decide(&pod, facts, true, kNow).delete_api_object);

  PodFacts forgotten;  // DELETED event or NOT_FOUND: no longer in the plugin
  forgotten.delete_sent = true;
  Plan plan = Decide(&pod, forgotten, true, kNow);
  EXPECT_TRUE(plan.delete_api_object);
  EXPECT_EQ(plan.plugin, PluginStep::kNone);
}

TEST(DecideTest, DeletedPodNeverCreatedGoesStraightAway) {
  json pod = Deleting(30);
  Plan plan = Decide(&pod, PodFacts{}, true, kNow);
  EXPECT_EQ(plan.plugin, PluginStep::kNone);
  EXPECT_TRUE(plan.delete_api_object);
}

TEST(DecideTest, DeletionWithoutGracePeriodLeavesItToThePlugin) {
  json pod = Pod();
  pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  PodFacts facts;
  facts.in_plugin = true;
  Plan plan = Decide(&pod, facts, true, kNow);
  EXPECT_EQ(plan.plugin, PluginStep::kDelete);
  EXPECT_EQ(plan.grace_period_seconds, std::nullopt);
}

TEST(DecideTest, PodGoneFromTheApiIsAnOrphan) {
  PodFacts facts;
  facts.in_plugin = true;
  Plan plan = Decide(nullptr, facts, true, kNow);
  EXPECT_EQ(plan.plugin, PluginStep::kDelete);
  EXPECT_EQ(plan.grace_period_seconds, 0);
  EXPECT_FALSE(plan.forget);

  facts.delete_sent = true;  // waits for the plugin to forget it
  EXPECT_EQ(Decide(nullptr, facts, true, kNow), Plan{});

  Plan forget = Decide(nullptr, PodFacts{}, true, kNow);
  EXPECT_TRUE(forget.forget);
  EXPECT_EQ(forget.plugin, PluginStep::kNone);
}

TEST(DecideTest, TerminalPodsAreNeverCreated) {
  for (const char* phase : {"Succeeded", "Failed"}) {
    json pod = Pod();
    pod["status"]["phase"] = phase;
    Plan plan = Decide(&pod, PodFacts{}, true, kNow);
    EXPECT_EQ(plan.plugin, PluginStep::kNone) << phase;
    EXPECT_FALSE(plan.write_status) << phase;

    v1::PodStatus report = Report("terminated");
    PodFacts facts;
    facts.in_plugin = true;
    facts.report = &report;
    facts.sent_fingerprint = 1;
    EXPECT_TRUE(Decide(&pod, facts, true, kNow).write_status) << phase;
    EXPECT_EQ(Decide(&pod, facts, true, kNow).plugin, PluginStep::kNone) << phase;
  }
}

TEST(DecideTest, RejectedPodGetsItsFailedStatusUntilItShows) {
  json pod = Pod();
  PodFacts facts;
  facts.rejected = true;
  Plan plan = Decide(&pod, facts, true, kNow);
  EXPECT_TRUE(plan.write_rejected);
  EXPECT_EQ(plan.plugin, PluginStep::kNone);
  pod["status"]["phase"] = "Failed";
  EXPECT_EQ(Decide(&pod, facts, true, kNow), Plan{});
}

TEST(DecideTest, AllContainersTerminatedNeedsAtLeastOne) {
  EXPECT_FALSE(AllContainersTerminated(v1::PodStatus()));
  EXPECT_TRUE(AllContainersTerminated(Report("terminated")));
  EXPECT_FALSE(AllContainersTerminated(Report("running")));
  v1::PodStatus mixed = Report("terminated");
  mixed.add_init_container_statuses()->mutable_state()->mutable_running();
  EXPECT_FALSE(AllContainersTerminated(mixed));
}

TEST(DecideTest, ResolvedHashIgnoresThePodJson) {
  v1::Pod a;
  a.set_uid("u1");
  a.add_containers()->set_image("nginx:1");
  a.set_pod_json("{\"resourceVersion\":\"1\"}");
  v1::Pod b = a;
  b.set_pod_json("{\"resourceVersion\":\"2\"}");
  EXPECT_EQ(ResolvedHash(a), ResolvedHash(b));
  b.mutable_containers(0)->set_image("nginx:2");
  EXPECT_NE(ResolvedHash(a), ResolvedHash(b));
}

// --- events ---

v1::PodStatus Running(int restarts, const char* id) {
  v1::PodStatus r = Report("running");
  r.mutable_container_statuses(0)->set_restart_count(restarts);
  r.mutable_container_statuses(0)->set_container_id(id);
  return r;
}

v1::PodStatus Waiting(const char* reason, const char* message = "") {
  v1::PodStatus r = Report("waiting");
  r.mutable_container_statuses(0)->mutable_state()->mutable_waiting()->set_reason(reason);
  r.mutable_container_statuses(0)->mutable_state()->mutable_waiting()->set_message(message);
  return r;
}

TEST(ContainerEventsTest, FirstStartGivesCreatedAndStarted) {
  json pod = Pod();
  auto events = ContainerEvents(pod, MarksOf(Waiting("ContainerCreating")),
                                MarksOf(Running(0, "mock://1")));
  EXPECT_THAT(events,
              ElementsAre(PodEvent{false, "Created", "Created container: app",
                                   "spec.containers{app}"},
                          PodEvent{false, "Started", "Started container app",
                                   "spec.containers{app}"}));
  // The same state again says nothing.
  EXPECT_THAT(ContainerEvents(pod, MarksOf(Running(0, "mock://1")),
                              MarksOf(Running(0, "mock://1"))),
              IsEmpty());
}

TEST(ContainerEventsTest, RestartIsANewInstance) {
  json pod = Pod();
  auto events = ContainerEvents(pod, MarksOf(Running(0, "mock://1")),
                                MarksOf(Running(1, "mock://2")));
  EXPECT_THAT(events, ElementsAre(Field(&PodEvent::reason, "Created"),
                                  Field(&PodEvent::reason, "Started")));
}

TEST(ContainerEventsTest, CrashLoopBackOffIsAWarningOnce) {
  json pod = Pod();
  auto events = ContainerEvents(pod, MarksOf(Running(0, "mock://1")),
                                MarksOf(Waiting("CrashLoopBackOff")));
  ASSERT_THAT(events, ElementsAre(Field(&PodEvent::reason, "BackOff")));
  EXPECT_TRUE(events[0].warning);
  EXPECT_EQ(events[0].message, "Back-off restarting failed container app in pod web_ns(u1)");
  EXPECT_THAT(ContainerEvents(pod, MarksOf(Waiting("CrashLoopBackOff")),
                              MarksOf(Waiting("CrashLoopBackOff"))),
              IsEmpty());
}

TEST(ContainerEventsTest, PullingThenPulled) {
  json pod = Pod();
  auto pulling = ContainerEvents(pod, {}, MarksOf(Waiting("Pulling")));
  EXPECT_THAT(pulling, ElementsAre(PodEvent{false, "Pulling", "Pulling image \"nginx:1\"",
                                            "spec.containers{app}"}));
  auto started = ContainerEvents(pod, MarksOf(Waiting("Pulling")),
                                 MarksOf(Running(0, "mock://1")));
  EXPECT_THAT(started, ElementsAre(Field(&PodEvent::reason, "Pulled"),
                                   Field(&PodEvent::reason, "Created"),
                                   Field(&PodEvent::reason, "Started")));
}

TEST(ContainerEventsTest, ErrorStatesAreFailedWarnings) {
  json pod = Pod();
  auto events = ContainerEvents(pod, {}, MarksOf(Waiting("ErrImagePull", "no such image")));
  EXPECT_THAT(events, ElementsAre(PodEvent{true, "Failed", "Error: no such image",
                                           "spec.containers{app}"}));
  auto bare = ContainerEvents(pod, {}, MarksOf(Waiting("CreateContainerError")));
  EXPECT_THAT(bare, ElementsAre(Field(&PodEvent::message, "Error: CreateContainerError")));
}

TEST(ContainerEventsTest, QuickExitStillCountsAsStarted) {
  json pod = Pod();
  auto events = ContainerEvents(pod, MarksOf(Waiting("ContainerCreating")),
                                MarksOf(Report("terminated")));
  EXPECT_THAT(events, ElementsAre(Field(&PodEvent::reason, "Created"),
                                  Field(&PodEvent::reason, "Started")));
}

TEST(KillingEventsTest, OnlyRunningContainersAreStopped) {
  json pod = Pod();
  pod["spec"]["containers"].push_back({{"name", "side"}, {"image", "busybox"}});
  EXPECT_THAT(KillingEvents(pod, nullptr),
              ElementsAre(Field(&PodEvent::message, "Stopping container app"),
                          Field(&PodEvent::message, "Stopping container side")));
  v1::PodStatus report = Report("running");
  v1::ContainerStatus* side = report.add_container_statuses();
  side->set_name("side");
  side->mutable_state()->mutable_terminated();
  EXPECT_THAT(KillingEvents(pod, &report),
              ElementsAre(PodEvent{false, "Killing", "Stopping container app",
                                   "spec.containers{app}"}));
}

}  // namespace
}  // namespace vkhost::pods::internal
