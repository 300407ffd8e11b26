#include "services.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "vkhost/provider/v1/identity.grpc.pb.h"
#include "vkhost/provider/v1/node.grpc.pb.h"
#include "vkhost/provider/v1/pods.grpc.pb.h"
#include "vkhost/provider/v1/streams.grpc.pb.h"

namespace vkhost::sdk::internal {
namespace {

using Event = v1::WatchPodStatusResponse;

// A provider whose behaviour each test sets through the hooks.
class FakeProvider : public Provider {
 public:
  v1::GetPluginInfoResponse PluginInfo() override {
    v1::GetPluginInfoResponse info;
    info.set_name("fake");
    return info;
  }
  std::vector<v1::Capability> Capabilities() override { return capabilities; }
  absl::StatusOr<v1::NodeStatus> GetNode(const v1::GetNodeRequest&) override {
    return v1::NodeStatus();
  }
  absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef&) override {
    return get_pod_status_result;
  }
  absl::StatusOr<std::vector<v1::PodStatus>> ListPods() override {
    return list_pods();
  }
  absl::StatusOr<v1::ExitStatus> Exec(const v1::ExecStart& start,
                                      ProcessSession& session) override {
    return exec(start, session);
  }

  std::vector<v1::Capability> capabilities;
  absl::StatusOr<v1::PodStatus> get_pod_status_result = v1::PodStatus();
  std::function<absl::StatusOr<std::vector<v1::PodStatus>>()> list_pods =
      [] { return std::vector<v1::PodStatus>(); };
  std::function<absl::StatusOr<v1::ExitStatus>(const v1::ExecStart&,
                                               ProcessSession&)>
      exec;
};

// A provider that overrides nothing optional.
class BareProvider : public Provider {
 public:
  v1::GetPluginInfoResponse PluginInfo() override { return {}; }
  std::vector<v1::Capability> Capabilities() override {
    std::vector<v1::Capability> all;
    for (int c = v1::Capability_MIN + 1; c <= v1::Capability_MAX; ++c) {
      all.push_back(static_cast<v1::Capability>(c));
    }
    return all;
  }
};

// Serves a provider in process for one test.
class InProcessServer {
 public:
  explicit InProcessServer(Provider& provider) : services_(provider) {
    grpc::ServerBuilder builder;
    services_.RegisterWith(builder);
    server_ = builder.BuildAndStart();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
  }
  ~InProcessServer() {
    services_.BeginShutdown();
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(1));
  }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  ProviderServices services_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

v1::PodStatus Status(const std::string& uid, const std::string& reason) {
  v1::PodStatus status;
  status.mutable_pod()->set_uid(uid);
  status.set_reason(reason);
  return status;
}

TEST(ProviderServicesTest, DefaultsAnswerUnimplementedNamingTheRpc) {
  BareProvider provider;
  InProcessServer server(provider);
  auto node = v1::Node::NewStub(server.channel());
  auto pods = v1::Pods::NewStub(server.channel());
  {
    grpc::ClientContext context;
    v1::NodeStatus response;
    grpc::Status status = node->GetNode(&context, {}, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_NE(status.error_message().find("Node.GetNode"), std::string::npos);
  }
  {
    grpc::ClientContext context;
    v1::CreatePodRequest request;
    request.mutable_pod()->set_uid("u");
    request.mutable_pod()->add_containers()->set_name("c");
    v1::CreatePodResponse response;
    grpc::Status status = pods->CreatePod(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_NE(status.error_message().find("Pods.CreatePod"),
              std::string::npos);
  }
  {
    auto identity = v1::Identity::NewStub(server.channel());
    grpc::ClientContext context;
    v1::ProbeResponse response;
    ASSERT_TRUE(identity->Probe(&context, {}, &response).ok());
    EXPECT_TRUE(response.ready());
  }
}

TEST(ProviderServicesTest, RpcWithoutItsCapabilityIsUnimplemented) {
  FakeProvider provider;  // implements GetNode and Exec, lists nothing
  provider.exec = [](const v1::ExecStart&, ProcessSession&) {
    return v1::ExitStatus();
  };
  InProcessServer server(provider);
  {
    auto node = v1::Node::NewStub(server.channel());
    grpc::ClientContext context;
    v1::NodeStatus response;
    grpc::Status status = node->GetNode(&context, {}, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_NE(status.error_message().find("CAPABILITY_NODE_INFO"),
              std::string::npos);
  }
  {
    auto streams = v1::Streams::NewStub(server.channel());
    grpc::ClientContext context;
    auto stream = streams->Exec(&context);
    v1::ExecRequest start;
    start.mutable_start()->add_command("true");
    stream->Write(start);
    stream->WritesDone();
    v1::ExecResponse response;
    while (stream->Read(&response)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  {
    auto identity = v1::Identity::NewStub(server.channel());
    grpc::ClientContext context;
    v1::GetCapabilitiesResponse response;
    ASSERT_TRUE(identity->GetCapabilities(&context, {}, &response).ok());
    EXPECT_EQ(response.capabilities_size(), 0);
  }
}

TEST(ProviderServicesTest, StatusCodesMapOneToOne) {
  FakeProvider provider;
  InProcessServer server(provider);
  auto pods = v1::Pods::NewStub(server.channel());
  for (int code = 1; code <= 16; ++code) {
    provider.get_pod_status_result =
        absl::Status(static_cast<absl::StatusCode>(code), "why " +
                                                             std::to_string(code));
    grpc::ClientContext context;
    v1::GetPodStatusResponse response;
    grpc::Status status = pods->GetPodStatus(&context, {}, &response);
    EXPECT_EQ(static_cast<int>(status.error_code()), code);
    EXPECT_EQ(status.error_message(), "why " + std::to_string(code));
  }
}

TEST(ProviderServicesTest, EmptyUidIsInvalidArgument) {
  FakeProvider provider;
  InProcessServer server(provider);
  auto pods = v1::Pods::NewStub(server.channel());
  grpc::ClientContext context;
  v1::DeletePodResponse response;
  EXPECT_EQ(pods->DeletePod(&context, {}, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext context2;
  v1::CreatePodRequest create;
  create.mutable_pod()->set_uid("u");  // but no containers
  v1::CreatePodResponse created;
  EXPECT_EQ(pods->CreatePod(&context2, create, &created).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ProviderServicesTest, WatchPodStatusSendsSnapshotSyncedThenChanges) {
  FakeProvider provider;
  provider.capabilities = {v1::CAPABILITY_WATCH_POD_STATUS};
  // A change of pod "a" lands while the snapshot is being taken: it must
  // still reach the stream, after SYNCED.
  provider.list_pods = [&provider] {
    std::vector<v1::PodStatus> pods = {Status("a", "old"), Status("b", "b")};
    provider.pod_status_feed().Publish(Status("a", "new"));
    return pods;
  };
  InProcessServer server(provider);
  auto pods = v1::Pods::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = pods->WatchPodStatus(&context, {});

  std::vector<Event> events(3);
  for (Event& event : events) ASSERT_TRUE(stream->Read(&event));
  EXPECT_EQ(events[0].type(), Event::TYPE_STATUS);
  EXPECT_EQ(events[0].status().reason(), "old");
  EXPECT_EQ(events[1].status().pod().uid(), "b");
  EXPECT_EQ(events[2].type(), Event::TYPE_SYNCED);

  Event event;
  ASSERT_TRUE(stream->Read(&event));
  EXPECT_EQ(event.type(), Event::TYPE_STATUS);
  EXPECT_EQ(event.status().reason(), "new");

  provider.pod_status_feed().Publish(Status("b", "b"));  // unchanged: skipped
  provider.pod_status_feed().Publish(Status("b", "b2"));
  ASSERT_TRUE(stream->Read(&event));
  EXPECT_EQ(event.status().reason(), "b2");

  v1::PodRef ref;
  ref.set_uid("a");
  provider.pod_status_feed().PublishDeleted(ref);
  ASSERT_TRUE(stream->Read(&event));
  EXPECT_EQ(event.type(), Event::TYPE_DELETED);
  EXPECT_EQ(event.status().pod().uid(), "a");
  context.TryCancel();
}

TEST(ProviderServicesTest, WatchPodStatusFailsWhenListPodsFails) {
  FakeProvider provider;
  provider.capabilities = {v1::CAPABILITY_WATCH_POD_STATUS};
  provider.list_pods = []() -> absl::StatusOr<std::vector<v1::PodStatus>> {
    return absl::UnavailableError("backend down");
  };
  InProcessServer server(provider);
  auto pods = v1::Pods::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = pods->WatchPodStatus(&context, {});
  Event event;
  EXPECT_FALSE(stream->Read(&event));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

class ExecTest : public ::testing::Test {
 protected:
  ExecTest() { provider_.capabilities = {v1::CAPABILITY_EXEC}; }
  FakeProvider provider_;
};

TEST_F(ExecTest, FirstFrameMustBeStart) {
  provider_.exec = [](const v1::ExecStart&, ProcessSession&) {
    ADD_FAILURE() << "provider called without a start frame";
    return v1::ExitStatus();
  };
  InProcessServer server(provider_);
  auto streams = v1::Streams::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = streams->Exec(&context);
  v1::ExecRequest frame;
  frame.set_stdin("too early");
  stream->Write(frame);
  stream->WritesDone();
  v1::ExecResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ExecTest, OutputThenExitFrameLast) {
  // Echo stdin until it is closed, then exit 3.
  provider_.exec = [](const v1::ExecStart& start, ProcessSession& session) {
    EXPECT_EQ(start.command(0), "cat");
    for (;;) {
      auto input = session.Read();
      if (input.kind == ProcessSession::Input::Kind::kStdin) {
        session.WriteStdout(input.data);
      } else if (input.kind != ProcessSession::Input::Kind::kResize) {
        break;
      }
    }
    session.WriteStderr("bye\n");
    v1::ExitStatus exit;
    exit.set_exit_code(3);
    return exit;
  };
  InProcessServer server(provider_);
  auto streams = v1::Streams::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = streams->Exec(&context);
  v1::ExecRequest frame;
  frame.mutable_start()->add_command("cat");
  ASSERT_TRUE(stream->Write(frame));
  frame.set_stdin("hello\n");
  ASSERT_TRUE(stream->Write(frame));
  frame.set_close_stdin(true);
  ASSERT_TRUE(stream->Write(frame));

  std::vector<v1::ExecResponse> responses;
  v1::ExecResponse response;
  while (stream->Read(&response)) responses.push_back(response);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0].stdout(), "hello\n");
  EXPECT_EQ(responses[1].stderr(), "bye\n");
  ASSERT_TRUE(responses[2].has_exit());
  EXPECT_EQ(responses[2].exit().exit_code(), 3);
}

TEST_F(ExecTest, EndsWhileTheHostStillHasStdinOpen) {
  provider_.exec = [](const v1::ExecStart&, ProcessSession& session) {
    session.WriteStdout("done\n");
    return v1::ExitStatus();
  };
  InProcessServer server(provider_);
  auto streams = v1::Streams::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = streams->Exec(&context);
  v1::ExecRequest frame;
  frame.mutable_start()->add_command("echo");
  ASSERT_TRUE(stream->Write(frame));  // and never WritesDone
  v1::ExecResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.stdout(), "done\n");
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_TRUE(response.has_exit());
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ExecTest, ReadUntilTimesOutAndTtyMergesStderr) {
  provider_.exec = [](const v1::ExecStart&, ProcessSession& session) {
    auto input = session.ReadUntil(absl::Now() + absl::Milliseconds(10));
    session.WriteStderr(input.has_value() ? "input\n" : "timeout\n");
    return v1::ExitStatus();
  };
  InProcessServer server(provider_);
  auto streams = v1::Streams::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = streams->Exec(&context);
  v1::ExecRequest frame;
  frame.mutable_start()->set_tty(true);
  ASSERT_TRUE(stream->Write(frame));
  v1::ExecResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.stdout(), "timeout\n");
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_TRUE(response.has_exit());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ExecTest, ProviderErrorBeforeStartIsTheRpcStatus) {
  provider_.exec = [](const v1::ExecStart&,
                      ProcessSession&) -> absl::StatusOr<v1::ExitStatus> {
    return absl::NotFoundError("no such container");
  };
  InProcessServer server(provider_);
  auto streams = v1::Streams::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = streams->Exec(&context);
  v1::ExecRequest frame;
  frame.mutable_start();
  stream->Write(frame);
  v1::ExecResponse response;
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no such container");
}

TEST_F(ExecTest, CancelEndsTheSession) {
  absl::Notification saw_end;
  provider_.exec = [&saw_end](const v1::ExecStart&, ProcessSession& session) {
    while (session.Read().kind != ProcessSession::Input::Kind::kEnded) {
    }
    EXPECT_TRUE(session.IsCancelled());
    saw_end.Notify();
    return v1::ExitStatus();
  };
  InProcessServer server(provider_);
  auto streams = v1::Streams::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = streams->Exec(&context);
  v1::ExecRequest frame;
  frame.mutable_start();
  ASSERT_TRUE(stream->Write(frame));
  context.TryCancel();
  EXPECT_TRUE(saw_end.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(PortForwardServiceTest, FirstFrameMustBeStart) {
  FakeProvider provider;
  provider.capabilities = {v1::CAPABILITY_PORT_FORWARD};
  InProcessServer server(provider);
  auto streams = v1::Streams::NewStub(server.channel());
  grpc::ClientContext context;
  auto stream = streams->PortForward(&context);
  v1::PortForwardRequest frame;
  frame.set_data("x");
  stream->Write(frame);
  stream->WritesDone();
  v1::PortForwardResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace vkhost::sdk::internal
