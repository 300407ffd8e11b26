// One bidirectional plugin RPC (Exec, Attach, PortForward) driven with gRPC's
// callback API, so a session holds no thread while it is open. ProcessStream
// and ForwardStream are typed fronts for this one piece of machinery.
//
// gRPC never runs reactions inline (can_inline=false), so Start* calls are
// made under mu_. Two holds keep OnDone from firing while a Start* could
// still come: the write hold (from Begin until writes can no longer be
// wanted: the plugin ended its side, a write failed, or Cancel) and a read
// hold per delivered frame (until ReadNext starts the next read).
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_BIDI_CALL_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_BIDI_CALL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "host/plugin/plugin.h"

namespace vkhost::streambridge::internal {

// What a call reports, on gRPC threads (which may overlap). on_done is the
// last call; the callbacks are dropped right after it.
template <typename Response>
struct BidiCallbacks {
  std::function<void(Response frame)> on_frame;  // then call ReadNext()
  std::function<void()> on_writable;  // the queue drained below the threshold
  std::function<void(absl::Status status)> on_done;
};

template <typename Request, typename Response>
class BidiCall final : public grpc::ClientBidiReactor<Request, Response> {
 public:
  // Once the queue toward the plugin falls below this, on_writable runs.
  static constexpr size_t kWritableBytes = 256 * 1024;

  // Starts the RPC: `open` binds it, e.g.
  //   [](auto* stub, auto* ctx, auto* reactor) { stub->async()->Exec(ctx, reactor); }
  // and `first` is its start frame. The call keeps itself and `connection`
  // alive until on_done has run.
  template <typename Open>
  static std::shared_ptr<BidiCall> Start(std::shared_ptr<plugin::PluginConnection> connection,
                                         Request first, BidiCallbacks<Response> callbacks,
                                         Open open) {
    auto call = std::make_shared<BidiCall>(Key{}, std::move(connection), std::move(callbacks));
    open(call->stub_.get(), &call->context_, call.get());
    call->self_ = call;
    call->AddHold();  // the write hold
    call->Send(std::move(first));
    call->StartRead(&call->response_);
    call->StartCall();
    return call;
  }

  // Only Start makes calls (they must own themselves from the first moment).
  class Key {
    friend class BidiCall;
    Key() = default;
  };
  BidiCall(Key, std::shared_ptr<plugin::PluginConnection> connection,
           BidiCallbacks<Response> callbacks)
      : connection_(std::move(connection)),
        stub_(provider::v1::Streams::NewStub(connection_->channel())),
        callbacks_(std::move(callbacks)) {}

  // Queues a frame for the plugin; dropped once writing has stopped.
  void Send(Request frame) {
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

  // Asks for the next frame after on_frame.
  void ReadNext() {
    absl::MutexLock lock(&mu_);
    ReadNextLocked();
  }

  // Cancels the RPC (the client went away). Idempotent.
  void Cancel() {
    context_.TryCancel();
    absl::MutexLock lock(&mu_);
    StopWritingLocked();
    ReadNextLocked();  // fails at once, letting OnDone come
  }

  // Bytes queued for the plugin and not yet written.
  size_t queued_bytes() const {
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
    Response frame = std::move(response_);
    response_.Clear();
    callbacks_.on_frame(std::move(frame));
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
    if (tell) callbacks_.on_writable();
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<BidiCall> keep = std::move(self_);
    BidiCallbacks<Response> callbacks = std::move(callbacks_);
    callbacks.on_done(plugin::FromGrpc(status));
  }

 private:
  void ReadNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!frame_held_) return;
    frame_held_ = false;
    this->StartRead(&response_);
    this->RemoveHold();
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
  std::unique_ptr<provider::v1::Streams::Stub> stub_;
  grpc::ClientContext context_;
  Response response_;                 // owned by the read side
  BidiCallbacks<Response> callbacks_;  // moved out in OnDone
  std::shared_ptr<BidiCall> self_;    // alive until OnDone

  mutable absl::Mutex mu_;
  Request in_flight_ ABSL_GUARDED_BY(mu_);
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool write_hold_released_ ABSL_GUARDED_BY(mu_) = false;
  bool frame_held_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_BIDI_CALL_H_
