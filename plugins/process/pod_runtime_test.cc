// PodRuntime with real shims and processes: init order, restart policies,
// back-off, deadline, deletion and adoption by a new runtime.
#include "plugins/process/pod_runtime.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "plugins/process/log_file.h"
#include "plugins/process/process_tree.h"
#include "plugins/process/shim.h"

namespace vkhost::process {
namespace {

class PodRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/vkhost-runtime-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    store_ = std::make_unique<PodStateStore>(dir_);
    ASSERT_TRUE(store_->Init().ok());
    config_.self_exe = VKHOST_PROCESS_PLUGIN;
    config_.restart_backoff = absl::Milliseconds(100);
    config_.tick = absl::Milliseconds(20);
  }
  void TearDown() override {
    for (auto& runtime : runtimes_) {
      if (!runtime->Forgotten()) runtime->Delete(0);
    }
    for (auto& runtime : runtimes_) {
      Await("forgotten", [&] { return runtime->Forgotten(); });
    }
    runtimes_.clear();
    std::filesystem::remove_all(dir_);
  }

  PodRuntime::Deps Deps() { return {images_, config_, *store_, feed_, ports_}; }

  v1::Pod NewPod(std::vector<std::vector<std::string>> commands) {
    v1::Pod pod;
    pod.set_uid("uid-" + std::to_string(++counter_));
    pod.set_namespace_("ns");
    pod.set_name("pod" + std::to_string(counter_));
    pod.set_termination_grace_period_seconds(1);
    for (size_t i = 0; i < commands.size(); ++i) {
      v1::Container* c = pod.add_containers();
      c->set_name("c" + std::to_string(i));
      c->set_image("busybox");
      c->add_env()->set_name("PATH");
      c->mutable_env(0)->set_value("/usr/bin:/bin");
      for (const auto& word : commands[i]) c->add_command(word);
    }
    return pod;
  }

  PodRuntime& Run(const v1::Pod& pod) {
    auto runtime = PodRuntime::Create(pod, Deps());
    EXPECT_TRUE(runtime.ok()) << runtime.status();
    runtimes_.push_back(*std::move(runtime));
    runtimes_.back()->Start();
    return *runtimes_.back();
  }

  // Polls until `ready` holds (30 s at most).
  static bool Await(const std::string& what, const std::function<bool()>& ready) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (ready()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "timed out waiting for " << what;
    return false;
  }

  std::string dir_;
  std::unique_ptr<PodStateStore> store_;
  ImageMap images_ = ImageMap::Defaults();
  RuntimeConfig config_;
  sdk::PodStatusFeed feed_;
  PortAllocator ports_;
  std::vector<std::unique_ptr<PodRuntime>> runtimes_;
  int counter_ = 0;
};

TEST_F(PodRuntimeTest, UnknownImageAndMissingCommandAreInvalid) {
  v1::Pod pod = NewPod({{"true"}});
  pod.mutable_containers(0)->set_image("example.com/nope:1");
  auto runtime = PodRuntime::Create(pod, Deps());
  ASSERT_FALSE(runtime.ok());
  EXPECT_EQ(runtime.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(runtime.status().message().find("example.com/nope:1"), std::string::npos);

  v1::Pod no_command = NewPod({{}});
  runtime = PodRuntime::Create(no_command, Deps());
  ASSERT_FALSE(runtime.ok());
  EXPECT_NE(runtime.status().message().find("no command"), std::string::npos);
}

TEST_F(PodRuntimeTest, InitContainersRunInOrderBeforeAppContainers) {
  v1::Pod pod = NewPod({{"sh", "-c", "cat $VKHOST_POD_DIR/order; exec sleep 30"}});
  for (const char* name : {"first", "second"}) {
    v1::Container* init = pod.add_init_containers();
    init->set_name(name);
    init->set_image("busybox");
    init->add_command("sh");
    init->add_command("-c");
    init->add_command(std::string("echo ") + name + " >> $VKHOST_POD_DIR/order");
  }
  PodRuntime& runtime = Run(pod);
  Await("the app container running", [&] {
    return runtime.Status().container_statuses(0).state().has_running();
  });
  v1::PodStatus status = runtime.Status();
  ASSERT_EQ(status.init_container_statuses_size(), 2);
  for (const auto& init : status.init_container_statuses()) {
    EXPECT_EQ(init.state().terminated().reason(), "Completed") << init.name();
  }
  auto instance = runtime.Instance("c0", false);
  ASSERT_TRUE(instance.ok());
  std::string log;
  Await("the app's log", [&] {
    log.clear();
    for (const LogLine& line : ReadLogLines(instance->dir + "/log")) log += line.text;
    return !log.empty();
  });
  EXPECT_EQ(log, "first\nsecond\n");
}

TEST_F(PodRuntimeTest, NeverPolicyKeepsTheExitCode) {
  v1::Pod pod = NewPod({{"sh", "-c", "exit 3"}});
  pod.set_restart_policy(v1::RESTART_POLICY_NEVER);
  PodRuntime& runtime = Run(pod);
  Await("terminated", [&] {
    return runtime.Status().container_statuses(0).state().has_terminated();
  });
  absl::SleepFor(absl::Milliseconds(300));  // no restart may follow
  const v1::ContainerStatus c = runtime.Status().container_statuses(0);
  EXPECT_EQ(c.state().terminated().exit_code(), 3);
  EXPECT_EQ(c.state().terminated().reason(), "Error");
  EXPECT_EQ(c.restart_count(), 0);
}

TEST_F(PodRuntimeTest, AlwaysPolicyBacksOffAndCountsRestarts) {
  PodRuntime& runtime = Run(NewPod({{"sh", "-c", "exit 2"}}));
  Await("two restarts", [&] { return runtime.Status().container_statuses(0).restart_count() >= 2; });
  const v1::ContainerStatus c = runtime.Status().container_statuses(0);
  EXPECT_EQ(c.last_state().terminated().exit_code(), 2);
  Await("CrashLoopBackOff", [&] {
    return runtime.Status().container_statuses(0).state().waiting().reason() ==
           "CrashLoopBackOff";
  });
  auto previous = runtime.Instance("c0", true);
  EXPECT_TRUE(previous.ok());
}

TEST_F(PodRuntimeTest, ActiveDeadlineFailsThePod) {
  v1::Pod pod = NewPod({{"sleep", "60"}});
  pod.set_active_deadline_seconds(1);
  PodRuntime& runtime = Run(pod);
  Await("DeadlineExceeded", [&] {
    v1::PodStatus s = runtime.Status();
    return s.reason() == "DeadlineExceeded" && s.container_statuses(0).state().has_terminated();
  });
  EXPECT_EQ(runtime.Status().phase(), v1::POD_PHASE_FAILED);
}

TEST_F(PodRuntimeTest, DeleteKillsTheTreeAndForgets) {
  PodRuntime& runtime = Run(NewPod({{"sh", "-c", "sleep 60 & exec sleep 60"}}));
  Await("running", [&] { return runtime.Status().container_statuses(0).state().has_running(); });
  auto instance = runtime.Instance("c0", false);
  ASSERT_TRUE(instance.ok());
  Await("pid.json", [&] { return ReadWorkloadPid(instance->dir).has_value(); });
  const WorkloadPid workload = *ReadWorkloadPid(instance->dir);
  absl::SleepFor(absl::Milliseconds(100));
  std::vector<pid_t> tree = Descendants(workload.pid);
  runtime.Delete(std::nullopt);
  Await("forgotten", [&] { return runtime.Forgotten(); });
  EXPECT_FALSE(ProcessAlive(workload.pid, workload.start_ticks));
  for (pid_t pid : tree) EXPECT_FALSE(ProcessAlive(pid, 0)) << pid;
  EXPECT_FALSE(std::filesystem::exists(store_->PodDir(runtime.uid())));
}

TEST_F(PodRuntimeTest, ANewRuntimeAdoptsRunningInstancesAndSeesTheirExit) {
  v1::Pod pod = NewPod({{"sh", "-c", "read line < $VKHOST_POD_DIR/go; exit 5"}});
  pod.set_restart_policy(v1::RESTART_POLICY_NEVER);
  std::filesystem::create_directories(store_->PodDir(pod.uid()));
  ASSERT_EQ(mkfifo((store_->PodDir(pod.uid()) + "/go").c_str(), 0600), 0);
  {
    PodRuntime& runtime = Run(pod);
    Await("running", [&] { return runtime.Status().container_statuses(0).state().has_running(); });
    runtimes_.clear();  // the "plugin" goes away; the workload stays
  }
  std::vector<PodStateStore::Loaded> loaded = store_->LoadAll();
  ASSERT_EQ(loaded.size(), 1u);
  runtimes_.push_back(PodRuntime::Adopt(std::move(loaded[0]), Deps()));
  PodRuntime& adopted = *runtimes_.back();
  adopted.Start();
  v1::PodStatus status = adopted.Status();
  ASSERT_TRUE(status.container_statuses(0).state().has_running());
  // Release the workload; the adopted runtime reads its real exit code.
  FILE* go = fopen((store_->PodDir(pod.uid()) + "/go").c_str(), "w");
  ASSERT_NE(go, nullptr);
  fputs("go\n", go);
  fclose(go);
  Await("exit 5", [&] {
    return adopted.Status().container_statuses(0).state().terminated().exit_code() == 5;
  });
  EXPECT_EQ(adopted.Status().container_statuses(0).restart_count(), 0);
}

TEST_F(PodRuntimeTest, UpdateRefreshesVolumeFiles) {
  v1::Pod pod = NewPod({{"sleep", "60"}});
  v1::Volume* volume = pod.add_volumes();
  volume->set_name("config");
  v1::VolumeFile* file = volume->mutable_files()->add_files();
  file->set_path("a/one.txt");
  file->set_content("1");
  v1::VolumeFile* two = volume->mutable_files()->add_files();
  two->set_path("two.txt");
  two->set_content("2");
  two->set_mode(0600);
  PodRuntime& runtime = Run(pod);
  const std::string dir = store_->PodDir(pod.uid()) + "/volumes/config";
  EXPECT_EQ((std::filesystem::status(dir + "/two.txt").permissions() &
             std::filesystem::perms::all),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  v1::Pod updated = pod;
  updated.mutable_volumes(0)->mutable_files()->mutable_files(0)->set_content("one again");
  updated.mutable_volumes(0)->mutable_files()->mutable_files()->RemoveLast();
  ASSERT_TRUE(runtime.Update(updated).ok());
  std::ifstream in(dir + "/a/one.txt");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "one again");
  EXPECT_FALSE(std::filesystem::exists(dir + "/two.txt"));
}

v1::ContainerProbe ExecProbe(const std::string& script, int period, int failures) {
  v1::ContainerProbe probe;
  probe.mutable_exec()->add_command("sh");
  probe.mutable_exec()->add_command("-c");
  probe.mutable_exec()->add_command(script);
  probe.set_period_seconds(period);
  probe.set_failure_threshold(failures);
  return probe;
}

TEST_F(PodRuntimeTest, HooksRunAroundTheContainer) {
  const std::string marks = dir_ + "/marks";
  std::filesystem::create_directories(marks);
  v1::Pod pod = NewPod({{"sleep", "60"}});
  v1::Container* c = pod.mutable_containers(0);
  for (auto [hook, name] : {std::pair{c->mutable_post_start(), "post"},
                            std::pair{c->mutable_pre_stop(), "pre"}}) {
    hook->mutable_exec()->add_command("sh");
    hook->mutable_exec()->add_command("-c");
    hook->mutable_exec()->add_command(std::string("touch ") + marks + "/" + name);
  }
  PodRuntime& runtime = Run(pod);
  Await("the postStart hook", [&] { return std::filesystem::exists(marks + "/post"); });
  EXPECT_FALSE(std::filesystem::exists(marks + "/pre"));
  runtime.Delete(std::nullopt);
  Await("forgotten", [&] { return runtime.Forgotten(); });
  EXPECT_TRUE(std::filesystem::exists(marks + "/pre"));
}

TEST_F(PodRuntimeTest, ReadinessFollowsItsProbe) {
  const std::string flag = dir_ + "/ready";
  v1::Pod pod = NewPod({{"sleep", "60"}});
  *pod.mutable_containers(0)->mutable_readiness_probe() =
      ExecProbe("test -f " + flag, 1, 1);
  PodRuntime& runtime = Run(pod);
  Await("running", [&] { return runtime.Status().container_statuses(0).state().has_running(); });
  EXPECT_FALSE(runtime.Status().container_statuses(0).ready());
  FILE* f = fopen(flag.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  Await("ready", [&] { return runtime.Status().container_statuses(0).ready(); });
  std::filesystem::remove(flag);
  Await("not ready again", [&] { return !runtime.Status().container_statuses(0).ready(); });
  EXPECT_EQ(runtime.Status().container_statuses(0).restart_count(), 0);
}

TEST_F(PodRuntimeTest, FailedStartupProbeRestartsAndGatesStarted) {
  v1::Pod pod = NewPod({{"sleep", "60"}});
  *pod.mutable_containers(0)->mutable_startup_probe() = ExecProbe("exit 1", 1, 1);
  PodRuntime& runtime = Run(pod);
  Await("running", [&] { return runtime.Status().container_statuses(0).state().has_running(); });
  EXPECT_FALSE(runtime.Status().container_statuses(0).started());
  Await("a restart", [&] { return runtime.Status().container_statuses(0).restart_count() >= 1; });
}

}  // namespace
}  // namespace vkhost::process
