#include "host/streambridge/internal/forward_stream.h"

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace vkhost::streambridge::internal {
namespace {

// Writes resume telling the observer once the queue is below this.
constexpr size_t kWritableBytes = 256 * 1024;

// The same hold discipline as process_stream.cc: a write hold from Begin
// until no write can be wanted any more, and a read hold per delivered
// frame until ReadNext starts the next read, so OnDone cannot fire while a
// Start* call could still come.
class BidiForwardStream final
    : public ForwardStream,
      public grpc::ClientBidiReactor<v1::PortForwardRequest, v1::PortForwardResponse> {
 public:
  BidiForwardStream(std::shared_ptr<plugin::PluginConnection> connection,
                    std::shared_ptr<ForwardObserver> observer)
      : connection_(std::move(connection)),
        stub_(v1::Streams::NewStub(connection_->channel())),
        observer_(std::move(observer)) {}

  grpc::ClientContext& context() { return context_; }
  v1::Streams::Stub& stub() { return *stub_; }

  void Begin(std::shared_ptr<BidiForwardStream> self, v1::PortForwardRequest start) {
    self_ = std::move(self);
    this->AddHold();  // the write hold
    Enqueue(std::move(start));
    this->StartRead(&response_);
    this->StartCall();
  }

  void SendData(std::string bytes) override {
    v1::PortForwardRequest frame;
    frame.set_data(std::move(bytes));
    Enqueue(std::move(frame));
  }
  void CloseWrite() override {
    v1::PortForwardRequest frame;
    frame.set_close_write(true);
    Enqueue(std::move(frame));
  }
  void ReadNext() override {
    absl::MutexLock lock(&mu_);
    ReadNextLocked();
  }
  void Cancel() override {
    context_.TryCancel();
    absl::MutexLock lock(&mu_);
    StopWritingLocked();
    ReadNextLocked();
  }
  size_t queued_bytes() const override {
    absl::MutexLock lock(&mu_);
    return queued_bytes_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      absl::MutexLock lock(&mu_);
      StopWritingLocked();
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      this->AddHold();
      frame_held_ = true;
    }
    v1::PortForwardResponse frame = std::move(response_);
    response_.Clear();
    observer_->OnForwardFrame(std::move(frame));
  }

  void OnWriteDone(bool ok) override {
    bool tell = false;
    {
      absl::MutexLock lock(&mu_);
      const size_t before = queued_bytes_;
      queued_bytes_ -= in_flight_.ByteSizeLong();
      writing_ = false;
      if (!ok) StopWritingLocked();
      if (!queue_.empty() && !stopped_) {
        in_flight_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        this->StartWrite(&in_flight_);
      }
      if (stopped_ && !writing_) ReleaseWriteHoldLocked();
      tell = before >= kWritableBytes && queued_bytes_ < kWritableBytes;
    }
    if (tell) observer_->OnForwardWritable();
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<BidiForwardStream> keep = std::move(self_);
    std::shared_ptr<ForwardObserver> observer = std::move(observer_);
    observer->OnForwardDone(plugin::FromGrpc(status));
  }

 private:
  void ReadNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!frame_held_) return;
    frame_held_ = false;
    this->StartRead(&response_);
    this->RemoveHold();
  }

  void Enqueue(v1::PortForwardRequest frame) {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    queued_bytes_ += frame.ByteSizeLong();
    if (writing_) {
      queue_.push_back(std::move(frame));
      return;
    }
    in_flight_ = std::move(frame);
    writing_ = true;
    this->StartWrite(&in_flight_);
  }

  void StopWritingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    stopped_ = true;
    queue_.clear();
    queued_bytes_ = writing_ ? in_flight_.ByteSizeLong() : 0;
    if (!writing_) ReleaseWriteHoldLocked();
  }

  void ReleaseWriteHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_hold_released_) return;
    write_hold_released_ = true;
    this->RemoveHold();
  }

  const std::shared_ptr<plugin::PluginConnection> connection_;
  std::unique_ptr<v1::Streams::Stub> stub_;
  grpc::ClientContext context_;
  v1::PortForwardResponse response_;  // owned by the read side
  std::shared_ptr<ForwardObserver> observer_;  // reset in OnDone
  std::shared_ptr<BidiForwardStream> self_;    // alive until OnDone

  mutable absl::Mutex mu_;
  v1::PortForwardRequest in_flight_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::PortForwardRequest> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool write_hold_released_ ABSL_GUARDED_BY(mu_) = false;
  bool frame_held_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::shared_ptr<ForwardStream> ForwardStream::Start(
    std::shared_ptr<plugin::PluginConnection> connection,
    const v1::PortForwardStart& start, std::shared_ptr<ForwardObserver> observer) {
  auto stream =
      std::make_shared<BidiForwardStream>(std::move(connection), std::move(observer));
  stream->stub().async()->PortForward(&stream->context(), stream.get());
  v1::PortForwardRequest first;
  *first.mutable_start() = start;
  stream->Begin(stream, std::move(first));
  return stream;
}

}  // namespace vkhost::streambridge::internal
