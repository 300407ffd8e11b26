#include "host/streambridge/internal/forward_stream.h"

#include <utility>

#include "host/streambridge/internal/bidi_call.h"

namespace vkhost::streambridge::internal {
namespace {

using Call = BidiCall<v1::PortForwardRequest, v1::PortForwardResponse>;

class BidiForwardStream final : public ForwardStream {
 public:
  explicit BidiForwardStream(std::shared_ptr<Call> call) : call_(std::move(call)) {}

  void SendData(std::string bytes) override {
    v1::PortForwardRequest frame;
    frame.set_data(std::move(bytes));
    call_->Send(std::move(frame));
  }
  void CloseWrite() override {
    v1::PortForwardRequest frame;
    frame.set_close_write(true);
    call_->Send(std::move(frame));
  }
  void ReadNext() override { call_->ReadNext(); }
  void Cancel() override { call_->Cancel(); }
  size_t queued_bytes() const override { return call_->queued_bytes(); }

 private:
  const std::shared_ptr<Call> call_;
};

}  // namespace

std::shared_ptr<ForwardStream> ForwardStream::Start(
    std::shared_ptr<plugin::PluginConnection> connection,
    const v1::PortForwardStart& start, std::shared_ptr<ForwardObserver> observer) {
  v1::PortForwardRequest first;
  *first.mutable_start() = start;
  BidiCallbacks<v1::PortForwardResponse> callbacks{
      [observer](v1::PortForwardResponse frame) { observer->OnForwardFrame(std::move(frame)); },
      [observer] { observer->OnForwardWritable(); },
      [observer](absl::Status status) { observer->OnForwardDone(std::move(status)); },
  };
  return std::make_shared<BidiForwardStream>(Call::Start(
      std::move(connection), std::move(first), std::move(callbacks),
      [](v1::Streams::Stub* stub, grpc::ClientContext* context, Call* call) {
        stub->async()->PortForward(context, call);
      }));
}

}  // namespace vkhost::streambridge::internal
