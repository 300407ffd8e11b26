#include "host/streambridge/internal/process_stream.h"

#include <utility>

#include "host/streambridge/internal/bidi_call.h"

namespace vkhost::streambridge::internal {
namespace {

// Exec and Attach frames share their layout except for `start`; Request is
// ExecRequest or AttachRequest.
template <typename Request>
class BidiProcessStream final : public ProcessStream {
 public:
  using Call = BidiCall<Request, v1::ExecResponse>;

  explicit BidiProcessStream(std::shared_ptr<Call> call) : call_(std::move(call)) {}

  void SendStdin(std::string bytes) override {
    Request frame;
    frame.set_stdin(std::move(bytes));
    call_->Send(std::move(frame));
  }
  void SendResize(uint32_t width, uint32_t height) override {
    Request frame;
    frame.mutable_resize()->set_width(width);
    frame.mutable_resize()->set_height(height);
    call_->Send(std::move(frame));
  }
  void CloseStdin() override {
    Request frame;
    frame.set_close_stdin(true);
    call_->Send(std::move(frame));
  }
  void ReadNext() override { call_->ReadNext(); }
  void Cancel() override { call_->Cancel(); }
  size_t queued_bytes() const override { return call_->queued_bytes(); }

 private:
  const std::shared_ptr<Call> call_;
};

BidiCallbacks<v1::ExecResponse> CallbacksFor(std::shared_ptr<ProcessObserver> observer) {
  return {
      [observer](v1::ExecResponse frame) { observer->OnProcessFrame(std::move(frame)); },
      [observer] { observer->OnProcessWritable(); },
      [observer](absl::Status status) { observer->OnProcessDone(std::move(status)); },
  };
}

}  // namespace

std::shared_ptr<ProcessStream> ProcessStream::StartExec(
    std::shared_ptr<plugin::PluginConnection> connection,
    const v1::ExecStart& start, std::shared_ptr<ProcessObserver> observer) {
  v1::ExecRequest first;
  *first.mutable_start() = start;
  using Call = BidiCall<v1::ExecRequest, v1::ExecResponse>;
  return std::make_shared<BidiProcessStream<v1::ExecRequest>>(Call::Start(
      std::move(connection), std::move(first), CallbacksFor(std::move(observer)),
      [](v1::Streams::Stub* stub, grpc::ClientContext* context, Call* call) {
        stub->async()->Exec(context, call);
      }));
}

std::shared_ptr<ProcessStream> ProcessStream::StartAttach(
    std::shared_ptr<plugin::PluginConnection> connection,
    const v1::ExecStart& start, std::shared_ptr<ProcessObserver> observer) {
  v1::AttachRequest first;
  v1::AttachStart* attach = first.mutable_start();
  *attach->mutable_pod() = start.pod();
  attach->set_container(start.container());
  attach->set_stdin(start.stdin());
  attach->set_stdout(start.stdout());
  attach->set_stderr(start.stderr());
  attach->set_tty(start.tty());
  if (start.has_terminal_size()) *attach->mutable_terminal_size() = start.terminal_size();
  using Call = BidiCall<v1::AttachRequest, v1::ExecResponse>;
  return std::make_shared<BidiProcessStream<v1::AttachRequest>>(Call::Start(
      std::move(connection), std::move(first), CallbacksFor(std::move(observer)),
      [](v1::Streams::Stub* stub, grpc::ClientContext* context, Call* call) {
        stub->async()->Attach(context, call);
      }));
}

absl::StatusOr<std::shared_ptr<ProcessStream>> StartProcess(
    const RemoteCommandTarget& target, std::optional<spdy::TerminalSize> size,
    plugin::PluginClient& plugin, std::shared_ptr<ProcessObserver> observer) {
  absl::StatusOr<std::shared_ptr<plugin::PluginConnection>> connection =
      plugin.ConnectionFor(target.is_exec ? v1::CAPABILITY_EXEC : v1::CAPABILITY_ATTACH);
  if (!connection.ok()) return connection.status();
  v1::ExecStart start;
  start.mutable_pod()->set_uid(target.pod_uid);
  start.mutable_pod()->set_namespace_(target.pod_namespace);
  start.mutable_pod()->set_name(target.pod_name);
  start.set_container(target.container);
  for (const std::string& arg : target.options.command) start.add_command(arg);
  start.set_stdin(target.options.stdin);
  start.set_stdout(target.options.stdout);
  start.set_stderr(target.options.stderr);
  start.set_tty(target.options.tty);
  if (size.has_value()) {
    start.mutable_terminal_size()->set_width(size->width);
    start.mutable_terminal_size()->set_height(size->height);
  }
  return target.is_exec
             ? ProcessStream::StartExec(*std::move(connection), start, std::move(observer))
             : ProcessStream::StartAttach(*std::move(connection), start, std::move(observer));
}

}  // namespace vkhost::streambridge::internal
