// PodController against an in-memory API server (real Informer and
// EventRecorder on top) and an in-process plugin reached through a real
// PluginSupervisor in connect mode.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "host/pods/pods.h"
#include "host/pods/pods_test_support.h"

namespace vkhost::pods {
namespace {

using json = nlohmann::json;
using testing::FakeApiServer;
using testing::FakeObjects;
using testing::FakePlugin;
using testing::TestPod;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

enum class StatusMode { kWatch, kPoll };

std::string PhaseOf(const std::optional<json>& pod) {
  if (!pod) return "<absent>";
  return pod->value("status", json::object()).value("phase", "");
}

class PodControllerTest : public ::testing::TestWithParam<StatusMode> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vkpods-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }

  void TearDown() override {
    StopHost();
    plugin_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::vector<provider::v1::Capability> Capabilities(bool update = true) const {
    std::vector<provider::v1::Capability> caps;
    if (GetParam() == StatusMode::kWatch) {
      caps.push_back(provider::v1::CAPABILITY_WATCH_POD_STATUS);
    }
    if (update) caps.push_back(provider::v1::CAPABILITY_UPDATE_POD);
    return caps;
  }

  void StartPlugin(bool update = true) {
    FakePlugin::Options options;
    options.capabilities = Capabilities(update);
    plugin_ = std::make_unique<FakePlugin>(dir_ + "/p.sock", options);
  }

  void StartHost() {
    plugin::PluginSupervisor::Options sup;
    sup.source.endpoint = plugin_->address();
    sup.source.handshake_timeout = absl::Seconds(5);
    sup.probe_interval = absl::Milliseconds(100);
    sup.probe_failure_threshold = 1;
    sup.initial_backoff = absl::Milliseconds(100);
    sup.max_backoff = absl::Milliseconds(500);
    supervisor_ = std::make_unique<plugin::PluginSupervisor>(sup);

    informer::InformerOptions inf;
    inf.target = {kube::kPods, "", "", ""};
    inf.field_selector = "spec.nodeName=vnode";
    inf.initial_backoff = absl::Milliseconds(50);
    informer_ = std::make_unique<informer::Informer>(&api_, inf);

    events::EventRecorder::Options ev;
    ev.host = "vnode";
    recorder_ = std::make_unique<events::EventRecorder>(api_, ev);

    PodControllerOptions options;
    options.resolve.node_name = "vnode";
    options.resolve.host_ips = {"192.0.2.10"};
    options.workers = 4;
    options.status_poll_interval = absl::Milliseconds(100);
    options.retry_backoff = {absl::Milliseconds(20), absl::Milliseconds(200)};
    options.stream_retry_initial = absl::Milliseconds(50);
    options.stream_retry_max = absl::Milliseconds(200);
    controller_ = std::make_unique<PodController>(options, api_, *informer_, *supervisor_,
                                                  objects_, *recorder_);
    ASSERT_TRUE(supervisor_->Start().ok());
    informer_->Start();
    controller_->Start();
  }

  void StopHost() {
    if (controller_) controller_->Stop();
    if (informer_) informer_->Stop();
    if (recorder_) recorder_->Stop();
    if (supervisor_) supervisor_->Stop();
    controller_.reset();
    informer_.reset();
    recorder_.reset();
    supervisor_.reset();
  }

  bool WaitForPhase(const std::string& name, const std::string& phase) {
    return api_.WaitForPod("ns", name, [&](const std::optional<json>& pod) {
      return PhaseOf(pod) == phase;
    });
  }

  bool WaitForEvent(const std::string& name, const std::string& reason) {
    return api_.WaitForCalls([&](const std::vector<FakeApiServer::Call>& calls) {
      for (const auto& c : calls) {
        if (c.verb == "event" && c.name == name && c.body.value("reason", "") == reason) {
          return true;
        }
      }
      return false;
    });
  }

  std::string dir_;
  FakeApiServer api_;
  FakeObjects objects_;
  std::unique_ptr<FakePlugin> plugin_;
  std::unique_ptr<plugin::PluginSupervisor> supervisor_;
  std::unique_ptr<informer::Informer> informer_;
  std::unique_ptr<events::EventRecorder> recorder_;
  std::unique_ptr<PodController> controller_;
};

TEST_P(PodControllerTest, PodReachesRunningWithStatusAndEvents) {
  StartPlugin();
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  json status = api_.GetPod("ns", "web")->at("status");
  EXPECT_EQ(status.value("podIP", ""), "10.0.0.1");
  EXPECT_EQ(status.value("hostIP", ""), "192.0.2.10");
  ASSERT_EQ(status["containerStatuses"].size(), 1u);
  EXPECT_TRUE(status["containerStatuses"][0]["state"].contains("running"));
  bool ready = false;
  for (const json& c : status["conditions"]) {
    if (c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
  }
  EXPECT_TRUE(ready);
  EXPECT_TRUE(WaitForEvent("web", "Started"));
  EXPECT_THAT(api_.EventReasons("web"), Contains("Created"));
  EXPECT_THAT(plugin_->Calls("CreatePod"), ElementsAre("u-web"));
  auto sent = plugin_->LastPod("u-web");
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->containers(0).image(), "nginx:1");
}

size_t PatchesOf(FakeApiServer& api, const std::string& name) {
  size_t n = 0;
  for (const auto& c : api.Calls("patch-status")) n += c.name == name;
  return n;
}

TEST_P(PodControllerTest, UnchangedStatusIsNotPatchedAgain) {
  StartPlugin();
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  ASSERT_TRUE(WaitForEvent("web", "Started"));
  const size_t before = PatchesOf(api_, "web");
  // More passes over "web" with the same report: an update of its own, then
  // polls; another pod's progress shows the passes have run.
  json pod = *api_.GetPod("ns", "web");
  pod["metadata"]["annotations"] = {{"note", "x"}};
  api_.PutPod(pod);
  api_.PutPod(TestPod("other", "u-other"));
  ASSERT_TRUE(WaitForPhase("other", "Running"));
  if (GetParam() == StatusMode::kPoll) {
    ASSERT_TRUE(plugin_->WaitForCalls("ListPods", plugin_->Calls("ListPods").size() + 3));
  }
  EXPECT_EQ(PatchesOf(api_, "web"), before);
}

TEST_P(PodControllerTest, GracefulDeletion) {
  StartPlugin();
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  api_.DeleteGracefully("ns", "web", 30);
  ASSERT_TRUE(api_.WaitForPod("ns", "web", [](const auto& pod) { return !pod; }));
  EXPECT_THAT(plugin_->Calls("DeletePod"), ElementsAre("u-web"));
  auto deletes = api_.Calls("delete");
  ASSERT_EQ(deletes.size(), 1u);
  EXPECT_EQ(deletes[0].body["grace"], 0);
  EXPECT_EQ(deletes[0].body["uid"], "u-web");
  EXPECT_TRUE(WaitForEvent("web", "Killing"));
}

TEST_P(PodControllerTest, RejectedPodBecomesFailedWithoutRetries) {
  StartPlugin();
  StartHost();
  json pod = TestPod("bad", "u-bad");
  pod["spec"]["containers"][0]["image"] = "never/runs";
  api_.PutPod(pod);
  ASSERT_TRUE(WaitForPhase("bad", "Failed"));
  json status = api_.GetPod("ns", "bad")->at("status");
  EXPECT_EQ(status.value("reason", ""), "ProviderFailed");
  EXPECT_THAT(status.value("message", ""), ::testing::HasSubstr("never/runs"));
  EXPECT_TRUE(WaitForEvent("bad", "ProviderCreateFailed"));
  // Later passes (another pod's work, polls) do not retry it.
  api_.PutPod(TestPod("good", "u-good"));
  ASSERT_TRUE(WaitForPhase("good", "Running"));
  EXPECT_THAT(plugin_->Calls("CreatePod"), Contains("u-bad").Times(1));
}

TEST_P(PodControllerTest, MissingConfigMapWaitsThenStarts) {
  StartPlugin();
  StartHost();
  json pod = TestPod("cfg", "u-cfg");
  pod["spec"]["containers"][0]["env"] = json::parse(
      R"([{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}])");
  api_.PutPod(pod);
  ASSERT_TRUE(api_.WaitForPod("ns", "cfg", [](const std::optional<json>& p) {
    if (!p) return false;
    const json& cs = p->value("status", json::object()).value("containerStatuses", json::array());
    return !cs.empty() && cs[0]["state"].value("waiting", json::object()).value("reason", "") ==
                              "CreateContainerConfigError";
  }));
  EXPECT_EQ(PhaseOf(api_.GetPod("ns", "cfg")), "Pending");
  EXPECT_TRUE(WaitForEvent("cfg", "Failed"));
  EXPECT_THAT(plugin_->Calls("CreatePod"), IsEmpty());

  objects_.PutConfigMap("ns", "settings", {{"greeting", "hello"}});
  controller_->NotifyObjectsChanged("ns");
  ASSERT_TRUE(WaitForPhase("cfg", "Running"));
  auto sent = plugin_->LastPod("u-cfg");
  ASSERT_TRUE(sent.has_value());
  bool found = false;
  for (const auto& e : sent->containers(0).env()) {
    found |= e.name() == "GREETING" && e.value() == "hello";
  }
  EXPECT_TRUE(found);
}

TEST_P(PodControllerTest, StartReconcilesOrphansAndMissingPods) {
  StartPlugin();
  plugin_->AddRunning("u-orphan", "ns", "gone");
  plugin_->AddRunning("u-kept", "ns", "kept");
  api_.PutPod(TestPod("kept", "u-kept"));
  api_.PutPod(TestPod("missing", "u-missing"));
  json done = TestPod("done", "u-done");
  done["status"]["phase"] = "Succeeded";
  api_.PutPod(done);
  StartHost();
  ASSERT_TRUE(plugin_->WaitForCalls("DeletePod", 1));
  EXPECT_THAT(plugin_->Calls("DeletePod"), ElementsAre("u-orphan"));
  ASSERT_TRUE(WaitForPhase("missing", "Running"));
  ASSERT_TRUE(WaitForPhase("kept", "Running"));
  EXPECT_THAT(plugin_->Calls("CreatePod"), ElementsAre("u-missing"));
  EXPECT_FALSE(plugin_->Has("u-done"));
}

TEST_P(PodControllerTest, ReconnectResyncsAndRecreatesWhatThePluginLost) {
  StartPlugin();
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  const uint64_t generation = supervisor_->generation();
  const size_t lists = plugin_->Calls("ListPods").size();
  plugin_->Reset();
  plugin_->FailProbesWith(absl::UnavailableError("backend restarting"));
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (supervisor_->generation() == generation && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(supervisor_->generation(), generation);
  plugin_->FailProbesWith(absl::OkStatus());
  ASSERT_TRUE(plugin_->WaitForCalls("CreatePod", 2));
  EXPECT_GT(plugin_->Calls("ListPods").size(), lists);  // the resync
  EXPECT_THAT(plugin_->Calls("CreatePod"), ElementsAre("u-web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
}

TEST_P(PodControllerTest, PluginRestartOnTheSameSocketRecreatesWhatItLostOnce) {
  StartPlugin();
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  // A new plugin process on the same socket that lost its pods. The channel
  // reconnects by itself; the status stream (or the next poll) shows the
  // pod missing.
  plugin_.reset();
  StartPlugin();
  ASSERT_TRUE(plugin_->WaitForCalls("CreatePod", 1));
  // Status flows again from the new plugin (its first pod gets 10.0.0.1 too,
  // so check a change it reports).
  provider::v1::PodStatus crashed;
  crashed.mutable_pod()->set_uid("u-web");
  auto* c = crashed.add_container_statuses();
  c->set_name("app");
  c->set_restart_count(1);
  c->mutable_state()->mutable_waiting()->set_reason("CrashLoopBackOff");
  plugin_->SetStatus(crashed);
  ASSERT_TRUE(api_.WaitForPod("ns", "web", [](const std::optional<json>& p) {
    return p && p->at("status").value("containerStatuses", json::array())[0].value(
                    "restartCount", 0) == 1;
  }));
  EXPECT_THAT(plugin_->Calls("CreatePod"), ElementsAre("u-web"));
  EXPECT_TRUE(WaitForEvent("web", "BackOff"));
}

TEST_P(PodControllerTest, PluginErrorsAreRetried) {
  StartPlugin();
  plugin_->FailWith(absl::UnavailableError("backend unreachable"));
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(plugin_->WaitForCalls("CreatePod", 3));
  EXPECT_TRUE(WaitForEvent("web", "ProviderCreateFailed"));
  EXPECT_EQ(PhaseOf(api_.GetPod("ns", "web")), "Pending");
  plugin_->FailWith(absl::OkStatus());
  ASSERT_TRUE(WaitForPhase("web", "Running"));
}

TEST_P(PodControllerTest, LabelChangesAreForwarded) {
  StartPlugin();
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  json pod = *api_.GetPod("ns", "web");
  pod["metadata"]["labels"] = {{"tier", "front"}};
  api_.PutPod(pod);
  ASSERT_TRUE(plugin_->WaitForCalls("UpdatePod", 1));
  auto sent = plugin_->LastPod("u-web");
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->labels().at("tier"), "front");
}

TEST_P(PodControllerTest, NoUpdatesWithoutTheCapability) {
  StartPlugin(/*update=*/false);
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  json pod = *api_.GetPod("ns", "web");
  pod["metadata"]["labels"] = {{"tier", "front"}};
  api_.PutPod(pod);
  api_.PutPod(TestPod("other", "u-other"));  // processed after the label change
  ASSERT_TRUE(WaitForPhase("other", "Running"));
  EXPECT_THAT(plugin_->Calls("UpdatePod"), IsEmpty());
}

TEST_P(PodControllerTest, ForceDeletedPodIsRemovedFromThePlugin) {
  StartPlugin();
  StartHost();
  api_.PutPod(TestPod("web", "u-web"));
  ASSERT_TRUE(WaitForPhase("web", "Running"));
  api_.RemovePod("ns", "web");
  ASSERT_TRUE(plugin_->WaitForCalls("DeletePod", 1));
  EXPECT_THAT(plugin_->Calls("DeletePod"), ElementsAre("u-web"));
  EXPECT_TRUE(api_.Calls("delete").empty());
}

INSTANTIATE_TEST_SUITE_P(StatusModes, PodControllerTest,
                         ::testing::Values(StatusMode::kWatch, StatusMode::kPoll),
                         [](const auto& info) {
                           return info.param == StatusMode::kWatch ? "Watch" : "Poll";
                         });

}  // namespace
}  // namespace vkhost::pods
