// MockProvider: the vkhost provider plugin `vkhost-mock-plugin`, an
// in-memory backend for tests and benchmarks.
//
// It implements every capability of protocol v1 over a PodStore (pods,
// containers running built-in commands, logs, exec, attach), echoes
// port-forward bytes back, reports synthetic stats and a node sized by
// flags, and can misbehave on demand (FaultInjector) and record the pod
// requests it receives as JSON lines for integration tests. main.cc maps the
// flags onto MockConfig.
#ifndef VKHOST_PLUGINS_MOCK_MOCK_PROVIDER_H_
#define VKHOST_PLUGINS_MOCK_MOCK_PROVIDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "plugins/mock/faults.h"
#include "plugins/mock/pod_store.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::mock {

struct MockConfig {
  PodStoreConfig store;
  FaultConfig faults;
  // Append every CreatePod/UpdatePod/DeletePod request here, one JSON line
  // each: {"rpc":"CreatePod","request":{...protobuf JSON...}}. Empty: off.
  std::string record_file;
  // Node capacity, Kubernetes quantities.
  std::string cpu = "100";
  std::string memory = "1Ti";
  std::string pods = "5000";
};

class RequestRecorder;

// Thread-safe, as sdk::Provider requires.
class MockProvider final : public sdk::Provider {
 public:
  // INVALID_ARGUMENT for a bad config; FAILED_PRECONDITION when the record
  // file cannot be opened.
  static absl::StatusOr<std::unique_ptr<MockProvider>> Create(
      const MockConfig& config);
  ~MockProvider() override;

  v1::GetPluginInfoResponse PluginInfo() override;
  std::vector<v1::Capability> Capabilities() override;
  absl::StatusOr<v1::ProbeResponse> Probe() override;
  absl::StatusOr<v1::NodeStatus> GetNode(
      const v1::GetNodeRequest& request) override;
  absl::Status WatchNode(const v1::WatchNodeRequest& request,
                         sdk::StreamWriter<v1::NodeStatus>& out) override;
  absl::Status CreatePod(const v1::Pod& pod) override;
  absl::Status UpdatePod(const v1::Pod& pod) override;
  absl::Status DeletePod(const v1::PodRef& pod,
                         std::optional<int64_t> grace_period_seconds) override;
  absl::StatusOr<v1::PodStatus> GetPodStatus(const v1::PodRef& pod) override;
  absl::StatusOr<std::vector<v1::PodStatus>> ListPods() override;
  absl::Status ContainerLogs(
      const v1::ContainerLogsRequest& request,
      sdk::StreamWriter<v1::ContainerLogsResponse>& out) override;
  absl::StatusOr<v1::ExitStatus> Exec(const v1::ExecStart& start,
                                      sdk::ProcessSession& session) override;
  absl::StatusOr<v1::ExitStatus> Attach(const v1::AttachStart& start,
                                        sdk::ProcessSession& session) override;
  absl::Status PortForward(const v1::PortForwardStart& start,
                           sdk::PortForwardSession& session) override;
  absl::StatusOr<v1::GetStatsSummaryResponse> GetStatsSummary() override;

  PodStore& store() { return *store_; }

 private:
  explicit MockProvider(const MockConfig& config);
  v1::NodeStatus NodeStatus() const;

  const MockConfig config_;
  std::unique_ptr<FaultInjector> faults_;
  std::unique_ptr<RequestRecorder> recorder_;  // null when not recording
  std::unique_ptr<PodStore> store_;
};

}  // namespace vkhost::mock

#endif  // VKHOST_PLUGINS_MOCK_MOCK_PROVIDER_H_
