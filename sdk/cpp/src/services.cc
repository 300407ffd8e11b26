// gRPC services over a Provider; see services.h.
//
// Unary RPCs, WatchNode, ContainerLogs and WatchPodStatus use gRPC's sync API:
// each call holds one gRPC thread while it runs. Exec, Attach and PortForward
// use the callback API with one worker thread per session, because a
// provider's blocking session loop must be able to finish (and the RPC end
// with its exit frame) while the host still has its send side open; with the
// sync API a blocked Read would pin the call.
#include "services.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "vkhost/provider/v1/identity.grpc.pb.h"
#include "vkhost/provider/v1/node.grpc.pb.h"
#include "vkhost/provider/v1/pods.grpc.pb.h"
#include "vkhost/provider/v1/stats.grpc.pb.h"
#include "vkhost/provider/v1/streams.grpc.pb.h"

namespace vkhost::sdk::internal {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

namespace {

// Frames stay under the 32 KiB spec.md §6.6 recommends.
constexpr size_t kMaxFrameBytes = 32 * 1024;
// How often SDK-served streams look for cancellation and shutdown.
constexpr absl::Duration kStreamPollInterval = absl::Milliseconds(200);

grpc::Status Unimplemented(v1::Capability capability, absl::string_view rpc) {
  return grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      absl::StrCat(rpc, " is not available: the plugin does not list ",
                   v1::Capability_Name(capability)));
}

grpc::Status InvalidArgument(absl::string_view message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(message));
}

// Joins finished session worker threads off the gRPC callback threads, so no
// thread is ever detached and a reactor can be deleted while its worker is
// still returning.
class ThreadReaper {
 public:
  ThreadReaper() : reaper_([this] { Loop(); }) {}
  ~ThreadReaper() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    reaper_.join();
  }
  void Adopt(std::thread thread) {
    absl::MutexLock lock(&mu_);
    finished_.push_back(std::move(thread));
  }

 private:
  void Loop() {
    for (;;) {
      std::deque<std::thread> batch;
      bool stop;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !finished_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        batch.swap(finished_);
        stop = stopping_;
      }
      for (auto& thread : batch) thread.join();
      if (stop) return;
    }
  }

  absl::Mutex mu_;
  std::deque<std::thread> finished_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

}  // namespace

struct ProviderServices::Shared {
  explicit Shared(Provider& p) : provider(p) {
    for (v1::Capability c : provider.Capabilities()) capabilities.insert(c);
  }
  bool Has(v1::Capability c) const { return capabilities.contains(c); }
  bool ShuttingDown() const { return shutting_down.load(); }

  Provider& provider;
  absl::flat_hash_set<int> capabilities;  // constant after construction
  std::atomic<bool> shutting_down{false};
  ThreadReaper reaper;
};

namespace {

using Shared = ProviderServices::Shared;

// StreamWriter over a sync server stream.
template <typename Message>
class SyncStreamWriter : public StreamWriter<Message> {
 public:
  SyncStreamWriter(grpc::ServerContext& context,
                   grpc::ServerWriter<Message>& writer, const Shared& shared)
      : context_(context), writer_(writer), shared_(shared) {}
  bool Write(const Message& message) override {
    if (IsCancelled()) return false;
    absl::MutexLock lock(&mu_);
    return writer_.Write(message);
  }
  bool IsCancelled() const override {
    return context_.IsCancelled() || shared_.ShuttingDown();
  }

 private:
  grpc::ServerContext& context_;
  absl::Mutex mu_;  // providers may write from more than one thread
  grpc::ServerWriter<Message>& writer_ ABSL_GUARDED_BY(mu_);
  const Shared& shared_;
};

// ----------------------------------------------------------------- Identity

class IdentityService final : public v1::Identity::Service {
 public:
  explicit IdentityService(Shared& shared) : shared_(shared) {}

  grpc::Status GetPluginInfo(grpc::ServerContext*,
                             const v1::GetPluginInfoRequest*,
                             v1::GetPluginInfoResponse* response) override {
    *response = shared_.provider.PluginInfo();
    return grpc::Status::OK;
  }
  grpc::Status GetCapabilities(grpc::ServerContext*,
                               const v1::GetCapabilitiesRequest*,
                               v1::GetCapabilitiesResponse* response) override {
    for (int c : shared_.capabilities) {
      response->add_capabilities(static_cast<v1::Capability>(c));
    }
    std::sort(response->mutable_capabilities()->begin(),
              response->mutable_capabilities()->end());
    return grpc::Status::OK;
  }
  grpc::Status Probe(grpc::ServerContext*, const v1::ProbeRequest*,
                     v1::ProbeResponse* response) override {
    auto result = shared_.provider.Probe();
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }

 private:
  Shared& shared_;
};

// --------------------------------------------------------------------- Node

class NodeService final : public v1::Node::Service {
 public:
  explicit NodeService(Shared& shared) : shared_(shared) {}

  grpc::Status GetNode(grpc::ServerContext*, const v1::GetNodeRequest* request,
                       v1::NodeStatus* response) override {
    if (!shared_.Has(v1::CAPABILITY_NODE_INFO)) {
      return Unimplemented(v1::CAPABILITY_NODE_INFO, "Node.GetNode");
    }
    auto result = shared_.provider.GetNode(*request);
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }
  grpc::Status WatchNode(grpc::ServerContext* context,
                         const v1::WatchNodeRequest* request,
                         grpc::ServerWriter<v1::NodeStatus>* writer) override {
    if (!shared_.Has(v1::CAPABILITY_WATCH_NODE)) {
      return Unimplemented(v1::CAPABILITY_WATCH_NODE, "Node.WatchNode");
    }
    SyncStreamWriter<v1::NodeStatus> out(*context, *writer, shared_);
    return ToGrpcStatus(shared_.provider.WatchNode(*request, out));
  }

 private:
  Shared& shared_;
};

// --------------------------------------------------------------------- Pods

class PodsService final : public v1::Pods::Service {
 public:
  explicit PodsService(Shared& shared) : shared_(shared) {}

  grpc::Status CreatePod(grpc::ServerContext*,
                         const v1::CreatePodRequest* request,
                         v1::CreatePodResponse*) override {
    if (request->pod().uid().empty()) {
      return InvalidArgument("CreatePod: the pod has no uid");
    }
    if (request->pod().containers().empty()) {
      return InvalidArgument(absl::StrCat("CreatePod: pod ",
                                          request->pod().namespace_(), "/",
                                          request->pod().name(),
                                          " has no containers"));
    }
    return ToGrpcStatus(shared_.provider.CreatePod(request->pod()));
  }
  grpc::Status UpdatePod(grpc::ServerContext*,
                         const v1::UpdatePodRequest* request,
                         v1::UpdatePodResponse*) override {
    if (!shared_.Has(v1::CAPABILITY_UPDATE_POD)) {
      return Unimplemented(v1::CAPABILITY_UPDATE_POD, "Pods.UpdatePod");
    }
    if (request->pod().uid().empty()) {
      return InvalidArgument("UpdatePod: the pod has no uid");
    }
    return ToGrpcStatus(shared_.provider.UpdatePod(request->pod()));
  }
  grpc::Status DeletePod(grpc::ServerContext*,
                         const v1::DeletePodRequest* request,
                         v1::DeletePodResponse*) override {
    if (request->pod().uid().empty()) {
      return InvalidArgument("DeletePod: the pod reference has no uid");
    }
    std::optional<int64_t> grace;
    if (request->has_grace_period_seconds()) {
      grace = request->grace_period_seconds();
    }
    return ToGrpcStatus(shared_.provider.DeletePod(request->pod(), grace));
  }
  grpc::Status GetPodStatus(grpc::ServerContext*,
                            const v1::GetPodStatusRequest* request,
                            v1::GetPodStatusResponse* response) override {
    auto result = shared_.provider.GetPodStatus(request->pod());
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response->mutable_status() = *std::move(result);
    return grpc::Status::OK;
  }
  grpc::Status ListPods(grpc::ServerContext*, const v1::ListPodsRequest*,
                        v1::ListPodsResponse* response) override {
    auto result = shared_.provider.ListPods();
    if (!result.ok()) return ToGrpcStatus(result.status());
    for (auto& status : *result) *response->add_pods() = std::move(status);
    return grpc::Status::OK;
  }

  // Subscribes before listing so that a change racing with the snapshot is
  // delivered after SYNCED rather than lost; identical statuses are skipped.
  grpc::Status WatchPodStatus(
      grpc::ServerContext* context, const v1::WatchPodStatusRequest*,
      grpc::ServerWriter<v1::WatchPodStatusResponse>* writer) override {
    using Event = v1::WatchPodStatusResponse;
    if (!shared_.Has(v1::CAPABILITY_WATCH_POD_STATUS)) {
      return Unimplemented(v1::CAPABILITY_WATCH_POD_STATUS,
                           "Pods.WatchPodStatus");
    }
    auto subscription = shared_.provider.pod_status_feed().Subscribe();
    auto snapshot = shared_.provider.ListPods();
    if (!snapshot.ok()) return ToGrpcStatus(snapshot.status());

    absl::flat_hash_map<std::string, std::string> last_sent;  // uid → bytes
    Event event;
    event.set_type(Event::TYPE_STATUS);
    for (auto& status : *snapshot) {
      last_sent[status.pod().uid()] = status.SerializeAsString();
      *event.mutable_status() = std::move(status);
      if (!writer->Write(event)) return grpc::Status::OK;
    }
    Event synced;
    synced.set_type(Event::TYPE_SYNCED);
    if (!writer->Write(synced)) return grpc::Status::OK;

    while (!context->IsCancelled() && !shared_.ShuttingDown()) {
      auto next = subscription->NextUntil(absl::Now() + kStreamPollInterval);
      if (!next) continue;
      const std::string& uid = next->status().pod().uid();
      if (next->type() == Event::TYPE_STATUS) {
        std::string bytes = next->status().SerializeAsString();
        auto it = last_sent.find(uid);
        if (it != last_sent.end() && it->second == bytes) continue;
        last_sent[uid] = std::move(bytes);
      } else {
        last_sent.erase(uid);
      }
      if (!writer->Write(*next)) break;
    }
    return grpc::Status::OK;
  }

 private:
  Shared& shared_;
};

// -------------------------------------------------------------------- Stats

class StatsService final : public v1::Stats::Service {
 public:
  explicit StatsService(Shared& shared) : shared_(shared) {}

  grpc::Status GetStatsSummary(grpc::ServerContext*,
                               const v1::GetStatsSummaryRequest*,
                               v1::GetStatsSummaryResponse* response) override {
    if (!shared_.Has(v1::CAPABILITY_STATS)) {
      return Unimplemented(v1::CAPABILITY_STATS, "Stats.GetStatsSummary");
    }
    auto result = shared_.provider.GetStatsSummary();
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }

 private:
  Shared& shared_;
};

// ------------------------------------------------------------------ Streams

// gRPC's callback API owns reactors by raw pointer: the handler returns a
// `new` reactor and the reactor deletes itself in OnDone. That is the one
// place this file uses new/delete.
//
// A bidi reactor that hands the session to a worker thread. The worker runs
// Run(first frame) and finishes the RPC with its result. All StartRead and
// Finish calls happen on the worker (or, for the first read, in the
// constructor), so they can never race; callbacks only record results.
template <typename Request, typename Response>
class SessionReactor : public grpc::ServerBidiReactor<Request, Response> {
 public:
  SessionReactor(Shared& shared, grpc::CallbackServerContext* context)
      : shared_(shared), context_(context) {
    this->StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!first_done_) {
      first_done_ = true;
      if (!ok) {
        this->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                                  "the stream ended before its start frame"));
        return;
      }
      absl::MutexLock lock(&mu_);
      reading_ = false;
      worker_ = std::thread([this, first = std::move(incoming_)] {
        { absl::MutexLock wait_for_assignment(&mu_); }
        grpc::Status status = Run(first);
        this->Finish(status);  // last touch of `this`: OnDone may follow
      });
      return;
    }
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (ok) {
      queue_.push_back(std::move(incoming_));
    } else {
      input_ended_ = true;
    }
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    write_pending_ = false;
    if (!ok) write_failed_ = true;
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  void OnDone() override {
    std::thread worker;
    {
      absl::MutexLock lock(&mu_);
      worker = std::move(worker_);
    }
    if (worker.joinable()) shared_.reaper.Adopt(std::move(worker));
    delete this;
  }

 protected:
  // Runs on the worker thread; the result ends the RPC.
  virtual grpc::Status Run(const Request& first) = 0;

  // Next frame after the first, nullopt at `deadline`; an ended stream
  // (half-close, cancel, shutdown) yields `ended = true`.
  std::optional<Request> NextFrame(absl::Time deadline, bool* ended) {
    *ended = false;
    StartReadIfRoom();
    std::optional<Request> frame;
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !queue_.empty() || input_ended_ || cancelled_;
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    if (!queue_.empty()) {
      frame = std::move(queue_.front());
      queue_.pop_front();
    } else if (input_ended_ || cancelled_) {
      *ended = true;
    }
    return frame;
  }

  // Blocks until the frame is sent; false once the host is gone. Keeps
  // reading meanwhile: a host that writes before it reads must not stall us.
  bool WriteFrame(const Response& response) {
    absl::MutexLock serialize(&write_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_ || write_failed_) return false;
      write_pending_ = true;
    }
    outgoing_ = response;
    this->StartWrite(&outgoing_);
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !write_pending_ || ShouldReadLocked();
        };
        mu_.Await(absl::Condition(&wake));
        if (!write_pending_) return !write_failed_;
      }
      StartReadIfRoom();
    }
  }

  // The context knows of a cancellation before OnCancel runs; asking it too
  // means a read that failed because of a cancel is seen as one.
  bool Cancelled() const {
    absl::MutexLock lock(&mu_);
    return cancelled_ || context_->IsCancelled() || shared_.ShuttingDown();
  }

  Shared& shared_;

 private:
  grpc::CallbackServerContext* const context_;
  // Frames read ahead of the provider, enough to keep a chatty host moving.
  static constexpr size_t kMaxQueuedFrames = 64;

  bool ShouldReadLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !reading_ && !input_ended_ && !cancelled_ &&
           queue_.size() < kMaxQueuedFrames;
  }
  // Worker thread only (see the class comment).
  void StartReadIfRoom() {
    {
      absl::MutexLock lock(&mu_);
      if (!ShouldReadLocked()) return;
      reading_ = true;
    }
    this->StartRead(&incoming_);
  }

  bool first_done_ = false;  // only touched by OnReadDone, which is serial
  Request incoming_;         // target of the one outstanding read
  absl::Mutex write_mu_;     // one write outstanding at a time
  Response outgoing_ ABSL_GUARDED_BY(write_mu_);

  mutable absl::Mutex mu_;
  std::thread worker_ ABSL_GUARDED_BY(mu_);
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = true;
  bool input_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool write_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
};

// Exec and Attach: the same session shape, different first frame.
template <typename Request, typename Start>
class ProcessReactor final : public SessionReactor<Request, v1::ExecResponse>,
                             public ProcessSession {
 public:
  using Handler = absl::StatusOr<v1::ExitStatus> (Provider::*)(const Start&,
                                                               ProcessSession&);
  ProcessReactor(Shared& shared, grpc::CallbackServerContext* context,
                 Handler handler, absl::string_view rpc)
      : SessionReactor<Request, v1::ExecResponse>(shared, context),
        handler_(handler),
        rpc_(rpc) {}

  std::optional<Input> ReadUntil(absl::Time deadline) override {
    for (;;) {
      bool ended = false;
      auto frame = this->NextFrame(deadline, &ended);
      if (ended) return Input{};  // kEnded
      if (!frame) return std::nullopt;
      Input input;
      switch (frame->frame_case()) {
        case Request::kStdin:
          input.kind = Input::Kind::kStdin;
          input.data = frame->stdin();
          return input;
        case Request::kResize:
          input.kind = Input::Kind::kResize;
          input.size = frame->resize();
          return input;
        case Request::kCloseStdin:
          input.kind = Input::Kind::kStdinClosed;
          return input;
        default:
          continue;  // a repeated start or an unknown frame: ignore
      }
    }
  }
  bool WriteStdout(absl::string_view data) override {
    return WriteData(data, /*to_stderr=*/false);
  }
  bool WriteStderr(absl::string_view data) override {
    return WriteData(data, /*to_stderr=*/!tty_);
  }
  bool IsCancelled() const override { return this->Cancelled(); }

 private:
  grpc::Status Run(const Request& first) override {
    if (!first.has_start()) {
      return InvalidArgument(absl::StrCat(
          rpc_, ": the first request frame must be `start`"));
    }
    tty_ = first.start().tty();
    auto exit = (this->shared_.provider.*handler_)(first.start(), *this);
    if (!exit.ok()) return ToGrpcStatus(exit.status());
    v1::ExecResponse last;
    *last.mutable_exit() = *exit;
    this->WriteFrame(last);
    return grpc::Status::OK;
  }

  bool WriteData(absl::string_view data, bool to_stderr) {
    do {
      absl::string_view chunk = data.substr(0, kMaxFrameBytes);
      data.remove_prefix(chunk.size());
      v1::ExecResponse frame;
      if (to_stderr) {
        frame.set_stderr(std::string(chunk));
      } else {
        frame.set_stdout(std::string(chunk));
      }
      if (!this->WriteFrame(frame)) return false;
    } while (!data.empty());
    return true;
  }

  Handler handler_;
  std::string rpc_;
  bool tty_ = false;  // set by the worker before the provider runs
};

class PortForwardReactor final
    : public SessionReactor<v1::PortForwardRequest, v1::PortForwardResponse>,
      public PortForwardSession {
 public:
  PortForwardReactor(Shared& shared, grpc::CallbackServerContext* context)
      : SessionReactor(shared, context) {}

  std::optional<Input> ReadUntil(absl::Time deadline) override {
    for (;;) {
      bool ended = false;
      auto frame = NextFrame(deadline, &ended);
      if (ended) return Input{};  // kEnded
      if (!frame) return std::nullopt;
      Input input;
      switch (frame->frame_case()) {
        case v1::PortForwardRequest::kData:
          input.kind = Input::Kind::kData;
          input.data = frame->data();
          return input;
        case v1::PortForwardRequest::kCloseWrite:
          input.kind = Input::Kind::kCloseWrite;
          return input;
        default:
          continue;
      }
    }
  }
  bool Write(absl::string_view data) override {
    do {
      absl::string_view chunk = data.substr(0, kMaxFrameBytes);
      data.remove_prefix(chunk.size());
      v1::PortForwardResponse frame;
      frame.set_data(std::string(chunk));
      if (!WriteFrame(frame)) return false;
    } while (!data.empty());
    return true;
  }
  bool WriteError(absl::string_view message) override {
    v1::PortForwardResponse frame;
    frame.set_error(std::string(message));
    return WriteFrame(frame);
  }
  bool IsCancelled() const override { return Cancelled(); }

 private:
  grpc::Status Run(const v1::PortForwardRequest& first) override {
    if (!first.has_start()) {
      return InvalidArgument(
          "PortForward: the first request frame must be `start`");
    }
    return ToGrpcStatus(shared_.provider.PortForward(first.start(), *this));
  }
};

// Answers a bidi RPC with a fixed status at once.
template <typename Request, typename Response>
class RejectingReactor final
    : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RejectingReactor(const grpc::Status& status) {
    this->Finish(status);
  }
  void OnDone() override { delete this; }
};

using StreamsBase = v1::Streams::WithCallbackMethod_Exec<
    v1::Streams::WithCallbackMethod_Attach<
        v1::Streams::WithCallbackMethod_PortForward<v1::Streams::Service>>>;

class StreamsService final : public StreamsBase {
 public:
  explicit StreamsService(Shared& shared) : shared_(shared) {}

  grpc::Status ContainerLogs(
      grpc::ServerContext* context, const v1::ContainerLogsRequest* request,
      grpc::ServerWriter<v1::ContainerLogsResponse>* writer) override {
    if (!shared_.Has(v1::CAPABILITY_CONTAINER_LOGS)) {
      return Unimplemented(v1::CAPABILITY_CONTAINER_LOGS,
                           "Streams.ContainerLogs");
    }
    if (request->previous() &&
        !shared_.Has(v1::CAPABILITY_CONTAINER_LOGS_PREVIOUS)) {
      return Unimplemented(v1::CAPABILITY_CONTAINER_LOGS_PREVIOUS,
                           "Streams.ContainerLogs with previous");
    }
    SyncStreamWriter<v1::ContainerLogsResponse> out(*context, *writer,
                                                    shared_);
    return ToGrpcStatus(shared_.provider.ContainerLogs(*request, out));
  }

  grpc::ServerBidiReactor<v1::ExecRequest, v1::ExecResponse>* Exec(
      grpc::CallbackServerContext* context) override {
    if (!shared_.Has(v1::CAPABILITY_EXEC)) {
      return new RejectingReactor<v1::ExecRequest, v1::ExecResponse>(
          Unimplemented(v1::CAPABILITY_EXEC, "Streams.Exec"));
    }
    return new ProcessReactor<v1::ExecRequest, v1::ExecStart>(
        shared_, context, &Provider::Exec, "Exec");
  }
  grpc::ServerBidiReactor<v1::AttachRequest, v1::ExecResponse>* Attach(
      grpc::CallbackServerContext* context) override {
    if (!shared_.Has(v1::CAPABILITY_ATTACH)) {
      return new RejectingReactor<v1::AttachRequest, v1::ExecResponse>(
          Unimplemented(v1::CAPABILITY_ATTACH, "Streams.Attach"));
    }
    return new ProcessReactor<v1::AttachRequest, v1::AttachStart>(
        shared_, context, &Provider::Attach, "Attach");
  }
  grpc::ServerBidiReactor<v1::PortForwardRequest, v1::PortForwardResponse>*
  PortForward(grpc::CallbackServerContext* context) override {
    if (!shared_.Has(v1::CAPABILITY_PORT_FORWARD)) {
      return new RejectingReactor<v1::PortForwardRequest,
                                  v1::PortForwardResponse>(
          Unimplemented(v1::CAPABILITY_PORT_FORWARD, "Streams.PortForward"));
    }
    return new PortForwardReactor(shared_, context);
  }

 private:
  Shared& shared_;
};

}  // namespace

ProviderServices::ProviderServices(Provider& provider)
    : shared_(std::make_unique<Shared>(provider)),
      identity_(std::make_unique<IdentityService>(*shared_)),
      node_(std::make_unique<NodeService>(*shared_)),
      pods_(std::make_unique<PodsService>(*shared_)),
      streams_(std::make_unique<StreamsService>(*shared_)),
      stats_(std::make_unique<StatsService>(*shared_)) {}

ProviderServices::~ProviderServices() = default;

void ProviderServices::RegisterWith(grpc::ServerBuilder& builder) {
  for (grpc::Service* service :
       {identity_.get(), node_.get(), pods_.get(), streams_.get(),
        stats_.get()}) {
    builder.RegisterService(service);
  }
}

void ProviderServices::BeginShutdown() { shared_->shutting_down = true; }

}  // namespace vkhost::sdk::internal
