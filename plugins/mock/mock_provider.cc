// MockProvider; see mock_provider.h.
#include "plugins/mock/mock_provider.h"

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::mock {

// Appends requests to a file as JSON lines. Thread-safe.
class RequestRecorder {
 public:
  static absl::StatusOr<std::unique_ptr<RequestRecorder>> Open(
      const std::string& path) {
    auto recorder = std::unique_ptr<RequestRecorder>(new RequestRecorder());
    recorder->out_.open(path, std::ios::app | std::ios::binary);
    if (!recorder->out_) {
      return absl::FailedPreconditionError(
          absl::StrCat("--record-file: cannot open ", path, " for appending"));
    }
    return recorder;
  }

  void Record(absl::string_view rpc, const google::protobuf::Message& request) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = false;
    if (!google::protobuf::util::MessageToJsonString(request, &json, options)
             .ok()) {
      json = "{}";
    }
    absl::MutexLock lock(&mu_);
    out_ << "{\"rpc\":\"" << rpc << "\",\"request\":" << json << "}\n";
    out_.flush();
  }

 private:
  RequestRecorder() = default;
  absl::Mutex mu_;
  std::ofstream out_ ABSL_GUARDED_BY(mu_);
};

namespace {

// How often open streams look for cancellation.
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

}  // namespace

absl::StatusOr<std::unique_ptr<MockProvider>> MockProvider::Create(
    const MockConfig& config) {
  auto provider = std::unique_ptr<MockProvider>(new MockProvider(config));
  auto faults = FaultInjector::Create(config.faults);
  if (!faults.ok()) return faults.status();
  provider->faults_ = *std::move(faults);
  if (!config.record_file.empty()) {
    auto recorder = RequestRecorder::Open(config.record_file);
    if (!recorder.ok()) return recorder.status();
    provider->recorder_ = *std::move(recorder);
  }
  auto store = PodStore::Create(config.store, provider->pod_status_feed());
  if (!store.ok()) return store.status();
  provider->store_ = *std::move(store);
  return provider;
}

MockProvider::MockProvider(const MockConfig& config) : config_(config) {}
MockProvider::~MockProvider() = default;

v1::GetPluginInfoResponse MockProvider::PluginInfo() {
  v1::GetPluginInfoResponse info;
  info.set_name("mock");
  info.set_version(VKHOST_VERSION);
  auto& manifest = *info.mutable_manifest();
  manifest["backend"] = "in-memory";
  manifest["pod_cidr"] = config_.store.pod_cidr;
  manifest["running_delay"] = absl::FormatDuration(config_.store.running_delay);
  return info;
}

std::vector<v1::Capability> MockProvider::Capabilities() {
  return {v1::CAPABILITY_WATCH_POD_STATUS, v1::CAPABILITY_UPDATE_POD,
          v1::CAPABILITY_NODE_INFO,        v1::CAPABILITY_WATCH_NODE,
          v1::CAPABILITY_CONTAINER_LOGS,   v1::CAPABILITY_CONTAINER_LOGS_PREVIOUS,
          v1::CAPABILITY_EXEC,             v1::CAPABILITY_ATTACH,
          v1::CAPABILITY_PORT_FORWARD,     v1::CAPABILITY_STATS};
}

absl::StatusOr<v1::ProbeResponse> MockProvider::Probe() {
  if (absl::Status s = faults_->Before("Probe", true); !s.ok()) return s;
  v1::ProbeResponse response;
  response.set_ready(true);
  return response;
}

v1::NodeStatus MockProvider::NodeStatus() const {
  v1::NodeStatus node;
  for (auto* resources : {node.mutable_capacity(), node.mutable_allocatable()}) {
    (*resources)["cpu"] = config_.cpu;
    (*resources)["memory"] = config_.memory;
    (*resources)["pods"] = config_.pods;
  }
  v1::NodeCondition* ready = node.add_conditions();
  ready->set_type("Ready");
  ready->set_status(v1::CONDITION_STATUS_TRUE);
  ready->set_reason("MockReady");
  ready->set_message("the in-memory mock backend is always ready");
  v1::NodeSystemInfo* info = node.mutable_system_info();
  info->set_operating_system("linux");
  info->set_architecture("amd64");
  info->set_kernel_version("mock");
  info->set_os_image("vkhost mock backend");
  info->set_container_runtime_version(absl::StrCat("mock://", VKHOST_VERSION));
  return node;
}

absl::StatusOr<v1::NodeStatus> MockProvider::GetNode(const v1::GetNodeRequest&) {
  if (absl::Status s = faults_->Before("GetNode", true); !s.ok()) return s;
  return NodeStatus();
}

absl::Status MockProvider::WatchNode(const v1::WatchNodeRequest&,
                                     sdk::StreamWriter<v1::NodeStatus>& out) {
  if (absl::Status s = faults_->Before("WatchNode", false); !s.ok()) return s;
  if (!out.Write(NodeStatus())) return absl::OkStatus();
  // The mock node never changes: hold the stream open until cancelled.
  while (!out.IsCancelled()) absl::SleepFor(kPollInterval);
  return absl::OkStatus();
}

absl::Status MockProvider::CreatePod(const v1::Pod& pod) {
  if (recorder_) {
    v1::CreatePodRequest request;
    *request.mutable_pod() = pod;
    recorder_->Record("CreatePod", request);
  }
  if (absl::Status s = faults_->Before("CreatePod", true); !s.ok()) return s;
  return store_->CreatePod(pod);
}

absl::Status MockProvider::UpdatePod(const v1::Pod& pod) {
  if (recorder_) {
    v1::UpdatePodRequest request;
    *request.mutable_pod() = pod;
    recorder_->Record("UpdatePod", request);
  }
  if (absl::Status s = faults_->Before("UpdatePod", true); !s.ok()) return s;
  return store_->UpdatePod(pod);
}

absl::Status MockProvider::DeletePod(const v1::PodRef& pod,
                                     std::optional<int64_t> grace) {
  if (recorder_) {
    v1::DeletePodRequest request;
    *request.mutable_pod() = pod;
    if (grace) request.set_grace_period_seconds(*grace);
    recorder_->Record("DeletePod", request);
  }
  if (absl::Status s = faults_->Before("DeletePod", true); !s.ok()) return s;
  return store_->DeletePod(pod, grace);
}

absl::StatusOr<v1::PodStatus> MockProvider::GetPodStatus(const v1::PodRef& pod) {
  if (absl::Status s = faults_->Before("GetPodStatus", true); !s.ok()) return s;
  return store_->GetPodStatus(pod.uid());
}

absl::StatusOr<std::vector<v1::PodStatus>> MockProvider::ListPods() {
  if (absl::Status s = faults_->Before("ListPods", true); !s.ok()) return s;
  return store_->ListPods();
}

absl::Status MockProvider::ContainerLogs(
    const v1::ContainerLogsRequest& request,
    sdk::StreamWriter<v1::ContainerLogsResponse>& out) {
  if (absl::Status s = faults_->Before("ContainerLogs", false); !s.ok()) {
    return s;
  }
  auto log = store_->Log(request.pod().uid(), request.container(),
                         request.previous());
  if (!log.ok()) return log.status();
  return StreamContainerLog(**log, request, out);
}

absl::StatusOr<v1::ExitStatus> MockProvider::Exec(
    const v1::ExecStart& start, sdk::ProcessSession& session) {
  if (absl::Status s = faults_->Before("Exec", false); !s.ok()) return s;
  auto target = store_->PrepareExec(start.pod().uid(), start.container());
  if (!target.ok()) return target.status();
  ProcessContext context;
  context.mode = ProcessMode::kExec;
  context.argv.assign(start.command().begin(), start.command().end());
  context.env = std::move(target->env);
  context.tty = start.tty();
  context.identity = std::move(target->identity);
  std::unique_ptr<MockProcess> process = MakeProcess(context);
  return RunInSession(*process, session, start.stdin());
}

absl::StatusOr<v1::ExitStatus> MockProvider::Attach(
    const v1::AttachStart& start, sdk::ProcessSession& session) {
  using Kind = sdk::ProcessSession::Input::Kind;
  if (absl::Status s = faults_->Before("Attach", false); !s.ok()) return s;
  auto channel = store_->Attach(start.pod().uid(), start.container());
  if (!channel.ok()) return channel.status();
  bool input_open = start.stdin();
  for (;;) {
    std::optional<int> exit_code;
    for (const auto& chunk : (*channel)->Take(&exit_code)) {
      bool written = chunk.is_stderr ? session.WriteStderr(chunk.data)
                                     : session.WriteStdout(chunk.data);
      if (!written) return v1::ExitStatus();  // the host detached
    }
    if (exit_code) {
      v1::ExitStatus exit;
      exit.set_exit_code(*exit_code);
      return exit;
    }
    // Detaching leaves the container running (spec.md §6.3).
    if (session.IsCancelled()) return v1::ExitStatus();
    if (!input_open) {
      absl::SleepFor(kPollInterval);
      continue;
    }
    auto input = session.ReadUntil(absl::Now() + kPollInterval);
    if (!input) continue;
    switch (input->kind) {
      case Kind::kStdin:
        store_->WriteStdin(**channel, input->data);
        break;
      case Kind::kStdinClosed:
        input_open = false;
        store_->CloseStdin(**channel);
        break;
      case Kind::kEnded:
        input_open = false;
        break;
      case Kind::kResize:
        break;
    }
  }
}

absl::Status MockProvider::PortForward(const v1::PortForwardStart& start,
                                       sdk::PortForwardSession& session) {
  using Kind = sdk::PortForwardSession::Input::Kind;
  if (absl::Status s = faults_->Before("PortForward", false); !s.ok()) {
    return s;
  }
  if (!store_->HasPod(start.pod().uid())) {
    return absl::NotFoundError(
        absl::StrCat("pod ", start.pod().uid(), " not found"));
  }
  if (start.port() <= 0 || start.port() > 65535) {
    session.WriteError(
        absl::StrCat("connection refused: no port ", start.port()));
    return absl::OkStatus();
  }
  // Every port of a mock pod is an echo server.
  for (;;) {
    sdk::PortForwardSession::Input input = session.Read();
    if (input.kind != Kind::kData) return absl::OkStatus();
    if (!session.Write(input.data)) return absl::OkStatus();
  }
}

absl::StatusOr<v1::GetStatsSummaryResponse> MockProvider::GetStatsSummary() {
  if (absl::Status s = faults_->Before("GetStatsSummary", true); !s.ok()) {
    return s;
  }
  return store_->Stats();
}

}  // namespace vkhost::mock
