// One /containerLogs request bridged to the plugin's Streams.ContainerLogs
// with gRPC's callback API, so a `kubectl logs -f` holds no thread.
//
// The stream formats entries as the kubelet writes them (optional
// RFC3339NanoFixed timestamp prefix, limitBytes enforced exactly) and hands
// them to a LogSink one batch at a time: the next plugin frame is read only
// after the sink has written the previous batch (ReadMore), so a slow client
// slows the plugin down instead of growing a buffer.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_LOG_STREAM_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_LOG_STREAM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "host/plugin/plugin.h"
#include "vkhost/provider/v1/streams.grpc.pb.h"

namespace vkhost::kubeletapi::internal {

namespace v1 = ::vkhost::provider::v1;

// Receives a log stream's output. Calls never overlap; they come from gRPC
// threads, so an implementation posts to its own executor.
class LogSink {
 public:
  virtual ~LogSink() = default;
  // Formatted bytes to send; call LogStream::ReadMore() once written.
  virtual void OnLogBytes(std::string bytes) = 0;
  // The last call: OK when the log ended (or limitBytes was reached), else
  // the plugin's error or CANCELLED after Cancel().
  virtual void OnLogEnd(absl::Status status) = 0;
};

struct LogFormat {
  bool timestamps = false;
  std::optional<int64_t> limit_bytes;
};

class LogStream final
    : public grpc::ClientReadReactor<v1::ContainerLogsResponse> {
 public:
  // Starts the RPC on `connection`. The stream keeps itself, the connection
  // and `sink` alive until OnLogEnd has run. A zero `deadline` means none
  // (follow); otherwise the RPC fails with DEADLINE_EXCEEDED after it.
  static std::shared_ptr<LogStream> Start(
      std::shared_ptr<plugin::PluginConnection> connection,
      const v1::ContainerLogsRequest& request, LogFormat format,
      absl::Duration deadline, std::shared_ptr<LogSink> sink);

  // The sink wrote the last batch: fetch the next frame. Any thread.
  void ReadMore();
  // The client went away or the server stops: cancels the RPC. Any thread,
  // any number of times.
  void Cancel();

  // gRPC callbacks.
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  LogStream(std::shared_ptr<plugin::PluginConnection> connection,
            LogFormat format, std::shared_ptr<LogSink> sink);

 private:
  // Appends `entry` to `out` as the kubelet would, within the byte limit.
  void Format(const v1::LogEntry& entry, std::string* out);

  const std::shared_ptr<plugin::PluginConnection> connection_;
  const LogFormat format_;
  std::unique_ptr<v1::Streams::Stub> stub_;
  grpc::ClientContext context_;
  v1::ContainerLogsRequest request_;
  v1::ContainerLogsResponse response_;
  std::shared_ptr<LogSink> sink_;   // reset in OnDone
  std::shared_ptr<LogStream> self_;  // alive until OnDone
  int64_t written_ = 0;               // touched by one callback at a time
  std::atomic<bool> limit_reached_{false};
  std::atomic<bool> cancelled_{false};
};

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_LOG_STREAM_H_
