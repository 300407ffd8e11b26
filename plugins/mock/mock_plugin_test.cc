// vkhost-mock-plugin end to end: the real binary in connect mode, driven
// over gRPC (the conformance suite covers the protocol in depth).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "vkhost/provider/v1/identity.grpc.pb.h"
#include "vkhost/provider/v1/pods.grpc.pb.h"
#include "vkhost/provider/v1/stats.grpc.pb.h"
#include "vkhost/provider/v1/streams.grpc.pb.h"

extern char** environ;

namespace vkhost::mock {
namespace {

namespace v1 = ::vkhost::provider::v1;

std::chrono::system_clock::time_point In(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

class MockPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/vkhost-mock-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir_.data()), nullptr);
    socket_ = dir_ + "/plugin.sock";
    std::vector<std::string> args = {VKHOST_MOCK_PLUGIN,
                                     "--listen=unix://" + socket_,
                                     "--running-delay=10ms", "--fail",
                                     "GetStatsSummary:UNAVAILABLE"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(),
                          environ),
              0);
    channel_ = grpc::CreateChannel("unix:" + socket_,
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
  }
  int Terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string dir_, socket_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(MockPluginTest, PodLifecycleExecAndFaults) {
  auto identity = v1::Identity::NewStub(channel_);
  {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(In(20));
    v1::GetPluginInfoResponse info;
    ASSERT_TRUE(identity->GetPluginInfo(&context, {}, &info).ok());
    EXPECT_EQ(info.name(), "mock");
  }
  auto pods = v1::Pods::NewStub(channel_);
  grpc::ClientContext watch_context;
  auto watch = pods->WatchPodStatus(&watch_context, {});
  v1::WatchPodStatusResponse event;
  ASSERT_TRUE(watch->Read(&event));
  EXPECT_EQ(event.type(), v1::WatchPodStatusResponse::TYPE_SYNCED);

  v1::CreatePodRequest create;
  create.mutable_pod()->set_uid("u1");
  create.mutable_pod()->set_namespace_("ns");
  create.mutable_pod()->set_name("web");
  create.mutable_pod()->add_containers()->set_name("main");
  {
    grpc::ClientContext context;
    v1::CreatePodResponse response;
    ASSERT_TRUE(pods->CreatePod(&context, create, &response).ok());
  }
  // Statuses arrive until the container runs.
  bool running = false;
  while (!running && watch->Read(&event)) {
    running = event.status().container_statuses(0).state().has_running();
  }
  ASSERT_TRUE(running);

  auto streams = v1::Streams::NewStub(channel_);
  {
    grpc::ClientContext context;
    auto exec = streams->Exec(&context);
    v1::ExecRequest start;
    start.mutable_start()->mutable_pod()->set_uid("u1");
    start.mutable_start()->set_container("main");
    for (const char* word : {"sh", "-c", "exit 5"}) {
      start.mutable_start()->add_command(word);
    }
    ASSERT_TRUE(exec->Write(start));
    v1::ExecResponse response, last;
    while (exec->Read(&response)) last = response;
    ASSERT_TRUE(exec->Finish().ok());
    ASSERT_TRUE(last.has_exit());
    EXPECT_EQ(last.exit().exit_code(), 5);
  }
  {
    auto stats = v1::Stats::NewStub(channel_);
    grpc::ClientContext context;
    v1::GetStatsSummaryResponse response;
    EXPECT_EQ(stats->GetStatsSummary(&context, {}, &response).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  {
    grpc::ClientContext context;
    v1::DeletePodRequest request;
    request.mutable_pod()->set_uid("u1");
    request.set_grace_period_seconds(0);
    v1::DeletePodResponse response;
    ASSERT_TRUE(pods->DeletePod(&context, request, &response).ok());
  }
  bool deleted = false;
  while (!deleted && watch->Read(&event)) {
    deleted = event.type() == v1::WatchPodStatusResponse::TYPE_DELETED;
  }
  EXPECT_TRUE(deleted);
  watch_context.TryCancel();
  EXPECT_EQ(Terminate(), 0);
}

}  // namespace
}  // namespace vkhost::mock
