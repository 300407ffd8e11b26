#include "host/kubeletapi/internal/log_stream.h"

#include <utility>

#include "host/kubeletapi/internal/routes.h"

namespace vkhost::kubeletapi::internal {

std::shared_ptr<LogStream> LogStream::Start(
    std::shared_ptr<plugin::PluginConnection> connection,
    const v1::ContainerLogsRequest& request, LogFormat format,
    absl::Duration deadline, std::shared_ptr<LogSink> sink) {
  auto stream = std::make_shared<LogStream>(std::move(connection), format,
                                            std::move(sink));
  stream->request_ = request;
  if (deadline > absl::ZeroDuration()) {
    stream->context_.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  }
  stream->self_ = stream;
  stream->stub_->async()->ContainerLogs(&stream->context_, &stream->request_,
                                        stream.get());
  stream->StartRead(&stream->response_);
  stream->StartCall();
  return stream;
}

LogStream::LogStream(std::shared_ptr<plugin::PluginConnection> connection,
                     LogFormat format, std::shared_ptr<LogSink> sink)
    : connection_(std::move(connection)),
      format_(format),
      stub_(v1::Streams::NewStub(connection_->channel())),
      sink_(std::move(sink)) {}

void LogStream::ReadMore() {
  if (limit_reached_) {
    // Everything the client asked for is out: stop the plugin.
    Cancel();
    return;
  }
  StartRead(&response_);
}

void LogStream::Cancel() {
  cancelled_ = true;
  context_.TryCancel();
}

void LogStream::Format(const v1::LogEntry& entry, std::string* out) {
  std::string line;
  if (format_.timestamps) {
    line = FormatLogTimestamp(absl::FromUnixSeconds(entry.time().seconds()) +
                              absl::Nanoseconds(entry.time().nanos()));
    line.push_back(' ');
  }
  line += entry.line();
  if (format_.limit_bytes) {
    const int64_t room = *format_.limit_bytes - written_;
    if (static_cast<int64_t>(line.size()) >= room) {
      line.resize(room);
      limit_reached_ = true;
    }
  }
  written_ += static_cast<int64_t>(line.size());
  *out += line;
}

void LogStream::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone follows
  std::string bytes;
  for (const v1::LogEntry& entry : response_.entries()) {
    if (limit_reached_) break;
    Format(entry, &bytes);
  }
  if (bytes.empty()) {
    ReadMore();
    return;
  }
  sink_->OnLogBytes(std::move(bytes));
}

void LogStream::OnDone(const grpc::Status& status) {
  // Last callback: drop the self-reference after telling the sink; `this`
  // may be destroyed when `keep` goes out of scope.
  std::shared_ptr<LogStream> keep = std::move(self_);
  std::shared_ptr<LogSink> sink = std::move(sink_);
  absl::Status result = plugin::FromGrpc(status);
  if (limit_reached_ && status.error_code() == grpc::StatusCode::CANCELLED) {
    result = absl::OkStatus();
  }
  sink->OnLogEnd(result);
}

}  // namespace vkhost::kubeletapi::internal
