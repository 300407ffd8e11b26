#include "host/streambridge/internal/process_stream.h"

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace vkhost::streambridge::internal {
namespace {

// Writes resume telling the observer once the queue is below this.
constexpr size_t kWritableBytes = 256 * 1024;

// Exec and Attach frames share their layout except for `start`; Request is
// ExecRequest or AttachRequest.
//
// gRPC never runs reactions inline (can_inline=false), so Start* calls are
// made under mu_. Two holds keep OnDone from firing while a Start* could
// still come: the write hold (from Begin until writes can no longer be
// wanted: the plugin ended its side, a write failed, or Cancel) and a read
// hold per delivered frame (until ReadNext starts the next read).
template <typename Request>
class BidiProcessStream final
    : public ProcessStream,
      public grpc::ClientBidiReactor<Request, v1::ExecResponse> {
 public:
  BidiProcessStream(std::shared_ptr<plugin::PluginConnection> connection,
                    std::shared_ptr<ProcessObserver> observer)
      : connection_(std::move(connection)),
        stub_(v1::Streams::NewStub(connection_->channel())),
        observer_(std::move(observer)) {}

  grpc::ClientContext& context() { return context_; }
  v1::Streams::Stub& stub() { return *stub_; }

  // Queues the start frame and starts the call; keeps `self` until OnDone.
  void Begin(std::shared_ptr<BidiProcessStream> self, Request start) {
    self_ = std::move(self);
    this->AddHold();  // the write hold
    Enqueue(std::move(start));
    this->StartRead(&response_);
    this->StartCall();
  }

  void SendStdin(std::string bytes) override {
    Request frame;
    frame.set_stdin(std::move(bytes));
    Enqueue(std::move(frame));
  }
  void SendResize(uint32_t width, uint32_t height) override {
    Request frame;
    frame.mutable_resize()->set_width(width);
    frame.mutable_resize()->set_height(height);
    Enqueue(std::move(frame));
  }
  void CloseStdin() override {
    Request frame;
    frame.set_close_stdin(true);
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
    ReadNextLocked();  // fails at once, letting OnDone come
  }
  size_t queued_bytes() const override {
    absl::MutexLock lock(&mu_);
    return queued_bytes_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The plugin ended the stream: nothing written now could matter.
      absl::MutexLock lock(&mu_);
      StopWritingLocked();
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      this->AddHold();
      frame_held_ = true;
    }
    v1::ExecResponse frame = std::move(response_);
    response_.Clear();
    observer_->OnProcessFrame(std::move(frame));
  }

  void OnWriteDone(bool ok) override {
    bool tell = false;
    {
      absl::MutexLock lock(&mu_);
      const size_t before = queued_bytes_;
      queued_bytes_ -= in_flight_.ByteSizeLong();
      writing_ = false;
      if (!ok) StopWritingLocked();  // the RPC is over; OnDone says why
      if (!queue_.empty() && !stopped_) {
        in_flight_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        this->StartWrite(&in_flight_);
      }
      if (stopped_ && !writing_) ReleaseWriteHoldLocked();
      tell = before >= kWritableBytes && queued_bytes_ < kWritableBytes;
    }
    if (tell) observer_->OnProcessWritable();
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<BidiProcessStream> keep = std::move(self_);
    std::shared_ptr<ProcessObserver> observer = std::move(observer_);
    observer->OnProcessDone(plugin::FromGrpc(status));
  }

 private:
  void ReadNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!frame_held_) return;
    frame_held_ = false;
    this->StartRead(&response_);
    this->RemoveHold();
  }

  void Enqueue(Request frame) {
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
  v1::ExecResponse response_;  // owned by the read side
  std::shared_ptr<ProcessObserver> observer_;  // reset in OnDone
  std::shared_ptr<BidiProcessStream> self_;    // alive until OnDone

  mutable absl::Mutex mu_;
  Request in_flight_ ABSL_GUARDED_BY(mu_);
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool write_hold_released_ ABSL_GUARDED_BY(mu_) = false;
  bool frame_held_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::shared_ptr<ProcessStream> ProcessStream::StartExec(
    std::shared_ptr<plugin::PluginConnection> connection,
    const v1::ExecStart& start, std::shared_ptr<ProcessObserver> observer) {
  auto stream = std::make_shared<BidiProcessStream<v1::ExecRequest>>(
      std::move(connection), std::move(observer));
  stream->stub().async()->Exec(&stream->context(), stream.get());
  v1::ExecRequest first;
  *first.mutable_start() = start;
  stream->Begin(stream, std::move(first));
  return stream;
}

std::shared_ptr<ProcessStream> ProcessStream::StartAttach(
    std::shared_ptr<plugin::PluginConnection> connection,
    const v1::ExecStart& start, std::shared_ptr<ProcessObserver> observer) {
  auto stream = std::make_shared<BidiProcessStream<v1::AttachRequest>>(
      std::move(connection), std::move(observer));
  stream->stub().async()->Attach(&stream->context(), stream.get());
  v1::AttachRequest first;
  v1::AttachStart* attach = first.mutable_start();
  *attach->mutable_pod() = start.pod();
  attach->set_container(start.container());
  attach->set_stdin(start.stdin());
  attach->set_stdout(start.stdout());
  attach->set_stderr(start.stderr());
  attach->set_tty(start.tty());
  if (start.has_terminal_size()) *attach->mutable_terminal_size() = start.terminal_size();
  stream->Begin(stream, std::move(first));
  return stream;
}

}  // namespace vkhost::streambridge::internal
