// Pod lifecycle through MockProvider and its PodStore.
#include "plugins/mock/pod_store.h"

#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "plugins/mock/fake_session.h"
#include "plugins/mock/mock_provider.h"

namespace vkhost::mock {
namespace {

using Event = v1::WatchPodStatusResponse;

class PodStoreTest : public ::testing::Test {
 protected:
  PodStoreTest() {
    MockConfig config;
    config.store.running_delay = absl::Milliseconds(10);
    config.store.log_interval = absl::Milliseconds(10);
    config.store.restart_backoff = absl::Milliseconds(10);
    config.store.stop_delay = absl::Milliseconds(20);
    config.store.rejected_images = {"forbidden:1"};
    config_ = config;
  }
  MockProvider& provider() {
    if (!provider_) {
      auto created = MockProvider::Create(config_);
      EXPECT_TRUE(created.ok()) << created.status();
      provider_ = *std::move(created);
    }
    return *provider_;
  }
  PodStore& store() { return provider().store(); }

  static v1::Pod Pod(const std::string& uid, std::vector<std::string> command,
                     v1::RestartPolicy policy = v1::RESTART_POLICY_ALWAYS) {
    v1::Pod pod;
    pod.set_uid(uid);
    pod.set_namespace_("ns");
    pod.set_name("pod-" + uid);
    pod.set_restart_policy(policy);
    v1::Container* c = pod.add_containers();
    c->set_name("main");
    c->set_image("busybox");
    for (auto& word : command) c->add_command(word);
    return pod;
  }

  // Polls the pod's status until `done` holds (10 s at most).
  v1::PodStatus WaitFor(const std::string& uid,
                        const std::function<bool(const v1::PodStatus&)>& done) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    v1::PodStatus last;
    while (absl::Now() < deadline) {
      auto status = store().GetPodStatus(uid);
      if (status.ok()) {
        last = *status;
        if (done(last)) return last;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    ADD_FAILURE() << "timed out; last status: " << last.DebugString();
    return last;
  }
  static bool MainRunning(const v1::PodStatus& s) {
    return s.container_statuses(0).state().has_running();
  }
  static bool MainTerminated(const v1::PodStatus& s) {
    return s.container_statuses(0).state().has_terminated();
  }

  MockConfig config_;
  std::unique_ptr<MockProvider> provider_;
};

TEST_F(PodStoreTest, CreateWaitsThenRuns) {
  ASSERT_TRUE(store().CreatePod(Pod("u1", {})).ok());
  v1::PodStatus status = *store().GetPodStatus("u1");
  EXPECT_EQ(status.pod().name(), "pod-u1");
  ASSERT_EQ(status.pod_ips_size(), 1);
  EXPECT_EQ(status.pod_ips(0).rfind("10.250.", 0), 0u);
  ASSERT_EQ(status.container_statuses_size(), 1);
  EXPECT_EQ(status.container_statuses(0).state().waiting().reason(),
            "ContainerCreating");
  EXPECT_EQ(status.phase(), v1::POD_PHASE_UNSPECIFIED);

  status = WaitFor("u1", MainRunning);
  EXPECT_TRUE(status.container_statuses(0).ready());
  EXPECT_FALSE(status.container_statuses(0).container_id().empty());
  EXPECT_EQ(store().ListPods().size(), 1u);
}

TEST_F(PodStoreTest, CreateIsIdempotent) {
  v1::Pod pod = Pod("u1", {});
  ASSERT_TRUE(store().CreatePod(pod).ok());
  v1::PodStatus first = WaitFor("u1", MainRunning);
  pod.mutable_containers(0)->set_image("other");
  ASSERT_TRUE(store().CreatePod(pod).ok());
  v1::PodStatus again = *store().GetPodStatus("u1");
  EXPECT_EQ(again.pod_ips(0), first.pod_ips(0));
  EXPECT_EQ(again.container_statuses(0).image(), "busybox");
  EXPECT_EQ(again.container_statuses(0).state().running().started_at()
                .SerializeAsString(),
            first.container_statuses(0).state().running().started_at()
                .SerializeAsString());
  EXPECT_EQ(store().ListPods().size(), 1u);
}

TEST_F(PodStoreTest, EveryPodGetsItsOwnIp) {
  std::set<std::string> ips;
  for (int i = 0; i < 50; ++i) {
    std::string uid = "u" + std::to_string(i);
    ASSERT_TRUE(store().CreatePod(Pod(uid, {})).ok());
    ips.insert(store().GetPodStatus(uid)->pod_ips(0));
  }
  EXPECT_EQ(ips.size(), 50u);
}

TEST_F(PodStoreTest, RejectedImageIsInvalidArgumentAndNotStored) {
  v1::Pod pod = Pod("u1", {});
  pod.mutable_containers(0)->set_image("forbidden:1");
  EXPECT_EQ(store().CreatePod(pod).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store().GetPodStatus("u1").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PodStoreTest, CompletedContainerWithRestartNever) {
  ASSERT_TRUE(store()
                  .CreatePod(Pod("u1", {"echo", "hi"}, v1::RESTART_POLICY_NEVER))
                  .ok());
  v1::PodStatus status = WaitFor("u1", MainTerminated);
  const auto& terminated = status.container_statuses(0).state().terminated();
  EXPECT_EQ(terminated.exit_code(), 0);
  EXPECT_EQ(terminated.reason(), "Completed");
  EXPECT_EQ(status.container_statuses(0).restart_count(), 0);

  CollectingWriter<v1::ContainerLogsResponse> out;
  auto log = store().Log("u1", "main", false);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE(StreamContainerLog(**log, {}, out).ok());
  ASSERT_EQ(out.messages().size(), 1u);
  EXPECT_EQ(out.messages()[0].entries(0).line(), "hi\n");
  EXPECT_EQ(store().Log("u1", "main", true).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PodStoreTest, FailedContainerWithRestartNeverStaysFailed) {
  ASSERT_TRUE(store()
                  .CreatePod(Pod("u1", {"sh", "-c", "exit 3"},
                                 v1::RESTART_POLICY_NEVER))
                  .ok());
  v1::PodStatus status = WaitFor("u1", MainTerminated);
  EXPECT_EQ(status.container_statuses(0).state().terminated().exit_code(), 3);
  EXPECT_EQ(status.container_statuses(0).state().terminated().reason(),
            "Error");
  absl::SleepFor(absl::Milliseconds(100));  // would have restarted by now
  EXPECT_EQ(store().GetPodStatus("u1")->container_statuses(0).restart_count(),
            0);
}

TEST_F(PodStoreTest, OnFailureRestartsWithBackoffAndKeepsPreviousLog) {
  ASSERT_TRUE(store()
                  .CreatePod(Pod("u1", {"sh", "-c", "echo 'boom'"},
                                 v1::RESTART_POLICY_ON_FAILURE))
                  .ok());
  // echo exits 0: OnFailure does not restart it.
  WaitFor("u1", MainTerminated);

  ASSERT_TRUE(store()
                  .CreatePod(Pod("u2", {"false"}, v1::RESTART_POLICY_ON_FAILURE))
                  .ok());
  v1::PodStatus status = WaitFor("u2", [](const v1::PodStatus& s) {
    return s.container_statuses(0).restart_count() >= 2;
  });
  const auto& last = status.container_statuses(0).last_state().terminated();
  EXPECT_EQ(last.exit_code(), 1);
  EXPECT_EQ(last.reason(), "Error");
  EXPECT_TRUE(store().Log("u2", "main", true).ok());
  EXPECT_EQ(store().GetPodStatus("u1")->container_statuses(0).restart_count(),
            0);
}

TEST_F(PodStoreTest, AlwaysRestartsEvenAfterSuccess) {
  ASSERT_TRUE(store().CreatePod(Pod("u1", {"true"})).ok());
  v1::PodStatus status = WaitFor("u1", [](const v1::PodStatus& s) {
    return s.container_statuses(0).restart_count() >= 1;
  });
  EXPECT_EQ(status.container_statuses(0).last_state().terminated().reason(),
            "Completed");
}

TEST_F(PodStoreTest, CrashLoopShowsBackOffWaitingReason) {
  config_.store.restart_backoff = absl::Seconds(3);
  ASSERT_TRUE(store().CreatePod(Pod("u1", {"false"})).ok());
  v1::PodStatus status = WaitFor("u1", [](const v1::PodStatus& s) {
    return s.container_statuses(0).state().has_waiting() &&
           s.container_statuses(0).last_state().has_terminated();
  });
  EXPECT_EQ(status.container_statuses(0).state().waiting().reason(),
            "CrashLoopBackOff");
}

TEST_F(PodStoreTest, InitContainersRunFirstInOrder) {
  v1::Pod pod = Pod("u1", {});
  for (const char* name : {"init-a", "init-b"}) {
    v1::Container* init = pod.add_init_containers();
    init->set_name(name);
    init->add_command("echo");
    init->add_args(name);
  }
  ASSERT_TRUE(store().CreatePod(pod).ok());
  v1::PodStatus first = *store().GetPodStatus("u1");
  ASSERT_EQ(first.init_container_statuses_size(), 2);
  EXPECT_EQ(first.init_container_statuses(0).state().waiting().reason(),
            "ContainerCreating");
  EXPECT_EQ(first.init_container_statuses(1).state().waiting().reason(),
            "PodInitializing");
  EXPECT_EQ(first.container_statuses(0).state().waiting().reason(),
            "PodInitializing");

  v1::PodStatus status = WaitFor("u1", MainRunning);
  for (const auto& init : status.init_container_statuses()) {
    EXPECT_EQ(init.state().terminated().reason(), "Completed");
  }
  // init-b started only after init-a finished.
  EXPECT_LE(google::protobuf::util::TimeUtil::TimestampToNanoseconds(
                status.init_container_statuses(0).state().terminated().finished_at()),
            google::protobuf::util::TimeUtil::TimestampToNanoseconds(
                status.init_container_statuses(1).state().terminated().started_at()));
}

TEST_F(PodStoreTest, FailedInitWithRestartNeverBlocksTheApp) {
  v1::Pod pod = Pod("u1", {}, v1::RESTART_POLICY_NEVER);
  v1::Container* init = pod.add_init_containers();
  init->set_name("init");
  init->add_command("false");
  ASSERT_TRUE(store().CreatePod(pod).ok());
  v1::PodStatus status = WaitFor("u1", [](const v1::PodStatus& s) {
    return s.init_container_statuses(0).state().has_terminated();
  });
  EXPECT_EQ(status.init_container_statuses(0).state().terminated().exit_code(),
            1);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(store()
                .GetPodStatus("u1")
                ->container_statuses(0)
                .state()
                .waiting()
                .reason(),
            "PodInitializing");
}

TEST_F(PodStoreTest, DeleteWithGraceZeroForgetsAtOnce) {
  auto subscription = provider().pod_status_feed().Subscribe();
  ASSERT_TRUE(store().CreatePod(Pod("u1", {})).ok());
  WaitFor("u1", MainRunning);
  v1::PodRef ref;
  ref.set_uid("u1");
  ASSERT_TRUE(store().DeletePod(ref, 0).ok());
  EXPECT_EQ(store().GetPodStatus("u1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store().ListPods().empty());

  // The last event is DELETED, carrying the final terminated status.
  std::optional<Event> event, last;
  while ((event = subscription->NextUntil(absl::Now() + absl::Milliseconds(200)))) {
    last = event;
  }
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->type(), Event::TYPE_DELETED);
  EXPECT_EQ(last->status().pod().uid(), "u1");
  const auto& terminated =
      last->status().container_statuses(0).state().terminated();
  EXPECT_EQ(terminated.exit_code(), 143);
  EXPECT_EQ(terminated.reason(), "Error");
}

TEST_F(PodStoreTest, GracefulDeleteTakesAMomentAndUnknownIsFine) {
  ASSERT_TRUE(store().CreatePod(Pod("u1", {})).ok());
  v1::PodRef ref;
  ref.set_uid("u1");
  ASSERT_TRUE(store().DeletePod(ref, 30).ok());
  ASSERT_TRUE(store().DeletePod(ref, 60).ok());  // does not extend
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (store().GetPodStatus("u1").ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(store().GetPodStatus("u1").status().code(),
            absl::StatusCode::kNotFound);
  ref.set_uid("never-existed");
  EXPECT_TRUE(store().DeletePod(ref, std::nullopt).ok());
  EXPECT_EQ(store().GetPodStatus("never-existed").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PodStoreTest, UpdatePodChangesImageAndUnknownIsNotFound) {
  v1::Pod pod = Pod("u1", {});
  ASSERT_TRUE(store().CreatePod(pod).ok());
  pod.mutable_containers(0)->set_image("busybox:2");
  ASSERT_TRUE(store().UpdatePod(pod).ok());
  EXPECT_EQ(store().GetPodStatus("u1")->container_statuses(0).image(),
            "busybox:2");
  pod.set_uid("other");
  EXPECT_EQ(store().UpdatePod(pod).code(), absl::StatusCode::kNotFound);
}

TEST_F(PodStoreTest, LongRunningContainerLogsLines) {
  ASSERT_TRUE(store().CreatePod(Pod("u1", {"my-server"})).ok());
  WaitFor("u1", MainRunning);
  v1::ContainerLogsRequest request;
  request.mutable_pod()->set_uid("u1");
  request.set_container("main");
  request.set_follow(true);
  request.set_limit_bytes(60);  // ends the follow after a few lines
  CollectingWriter<v1::ContainerLogsResponse> out;
  ASSERT_TRUE(provider().ContainerLogs(request, out).ok());
  ASSERT_FALSE(out.messages().empty());
  EXPECT_EQ(out.messages()[0].entries(0).line(),
            "mock: ns/pod-u1/main line 1\n");
  request.set_container("nope");
  EXPECT_EQ(provider().ContainerLogs(request, out).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PodStoreTest, ExecRunsTheCommandSetInARunningContainer) {
  v1::Pod pod = Pod("u1", {});
  auto* env = pod.mutable_containers(0)->add_env();
  env->set_name("GREETING");
  env->set_value("hello");
  ASSERT_TRUE(store().CreatePod(pod).ok());

  v1::ExecStart start;
  start.mutable_pod()->set_uid("u1");
  start.set_container("main");
  start.add_command("env");
  FakeProcessSession early({});
  auto not_running = provider().Exec(start, early);
  if (!not_running.ok()) {  // only while still ContainerCreating
    EXPECT_EQ(not_running.status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  WaitFor("u1", MainRunning);

  FakeProcessSession session({});
  auto exit = provider().Exec(start, session);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(exit->exit_code(), 0);
  EXPECT_EQ(session.out(), "GREETING=hello\n");

  start.clear_command();
  start.add_command("sh");
  start.add_command("-c");
  start.add_command("exit 7");
  FakeProcessSession exit7({});
  EXPECT_EQ(provider().Exec(start, exit7)->exit_code(), 7);

  start.set_container("missing");
  FakeProcessSession missing({});
  EXPECT_EQ(provider().Exec(start, missing).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PodStoreTest, AttachForwardsStdinToACatContainer) {
  v1::Pod pod = Pod("u1", {"cat"});
  pod.mutable_containers(0)->set_stdin(true);
  ASSERT_TRUE(store().CreatePod(pod).ok());
  WaitFor("u1", MainRunning);

  v1::AttachStart start;
  start.mutable_pod()->set_uid("u1");
  start.set_stdin(true);
  start.set_stdout(true);
  FakeProcessSession session({FakeProcessSession::Stdin("ping\n")},
                             /*hold_open=*/true);
  session.cancel_when = [](const std::string& out) {
    return out.find("ping\n") != std::string::npos;
  };
  auto exit = provider().Attach(start, session);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(session.out(), "ping\n");
  // Detaching left the container running.
  EXPECT_TRUE(MainRunning(*store().GetPodStatus("u1")));

  // Closing stdin ends `cat`, and attach reports its exit.
  FakeProcessSession closing({FakeProcessSession::CloseStdin()},
                             /*hold_open=*/true);
  exit = provider().Attach(start, closing);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->exit_code(), 0);
}

TEST_F(PodStoreTest, StatsAreCumulative) {
  ASSERT_TRUE(store().CreatePod(Pod("u1", {})).ok());
  WaitFor("u1", MainRunning);
  absl::SleepFor(absl::Milliseconds(20));
  auto first = provider().GetStatsSummary();
  absl::SleepFor(absl::Milliseconds(20));
  auto second = provider().GetStatsSummary();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(second->pods_size(), 1);
  const auto& c1 = first->pods(0).containers(0);
  const auto& c2 = second->pods(0).containers(0);
  EXPECT_EQ(c1.cpu().usage_nano_cores(), c2.cpu().usage_nano_cores());
  EXPECT_EQ(c1.memory().working_set_bytes(), c2.memory().working_set_bytes());
  EXPECT_GT(c2.cpu().usage_core_nano_seconds(),
            c1.cpu().usage_core_nano_seconds());
  EXPECT_GE(second->node().cpu().usage_core_nano_seconds(),
            c2.cpu().usage_core_nano_seconds());
}

TEST_F(PodStoreTest, RecordFileGetsOneJsonLinePerPodRequest) {
  std::string path = ::testing::TempDir() + "/record-" +
                     std::to_string(getpid()) + ".jsonl";
  std::remove(path.c_str());
  config_.record_file = path;
  ASSERT_TRUE(provider().CreatePod(Pod("u1", {})).ok());
  v1::PodRef ref;
  ref.set_uid("u1");
  ASSERT_TRUE(provider().DeletePod(ref, 0).ok());
  std::ifstream in(path);
  std::string line1, line2;
  std::getline(in, line1);
  std::getline(in, line2);
  EXPECT_EQ(line1.rfind("{\"rpc\":\"CreatePod\",\"request\":{\"pod\":{\"uid\":\"u1\"", 0),
            0u)
      << line1;
  EXPECT_EQ(line2,
            "{\"rpc\":\"DeletePod\",\"request\":{\"pod\":{\"uid\":\"u1\"},"
            "\"gracePeriodSeconds\":\"0\"}}");
  std::remove(path.c_str());
}

TEST_F(PodStoreTest, NodeAndPortForward) {
  auto node = provider().GetNode({});
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node->capacity().at("pods"), "5000");
  EXPECT_EQ(node->conditions(0).type(), "Ready");
  EXPECT_EQ(node->conditions(0).status(), v1::CONDITION_STATUS_TRUE);
  EXPECT_EQ(provider().Capabilities().size(), 10u);
}

TEST(ParseCidrTest, ValidAndInvalid) {
  uint32_t network = 0, size = 0;
  ASSERT_TRUE(ParseCidr("10.250.3.7/16", &network, &size).ok());
  EXPECT_EQ(network, (10u << 24) | (250u << 16));
  EXPECT_EQ(size, 65536u);
  for (const char* bad : {"10.0.0.0", "10.0.0/8", "10.0.0.0/33", "a.b.c.d/8",
                          "10.0.0.300/24", "10.0.0.0/31"}) {
    EXPECT_FALSE(ParseCidr(bad, &network, &size).ok()) << bad;
  }
}

}  // namespace
}  // namespace vkhost::mock
