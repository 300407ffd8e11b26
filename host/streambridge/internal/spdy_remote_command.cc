#include "host/streambridge/internal/spdy_remote_command.h"

#include <array>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "grpcpp/alarm.h"
#include "host/spdy/spdy.h"
#include "host/streambridge/internal/process_stream.h"

namespace vkhost::streambridge::internal {
namespace {

using spdy::StreamType;

// Client reads stop while this much stdin waits for the plugin, so a fast
// writer is slowed by TCP instead of growing our queue.
constexpr size_t kPauseReadsBytes = 1 << 20;

enum class Phase {
  kWaitingForStreams,  // SYN_STREAMs arriving
  kRunning,            // plugin stream open
  kFinishing,          // status written; waiting for the client to hang up
  kClosed,
};

// State is touched under mu_ only. Entry points: OnClientBytes/OnWritten
// (kubelet server io threads), OnProcess* (gRPC threads), alarms (gRPC
// threads). Calls into the connection and the process stream under mu_ are
// safe: both complete asynchronously on other threads.
class SpdyRemoteCommand final
    : public ProcessObserver,
      public std::enable_shared_from_this<SpdyRemoteCommand> {
 public:
  SpdyRemoteCommand(RemoteCommandTarget target, RemoteCommandTimeouts timeouts,
                    plugin::PluginClient& plugin,
                    std::shared_ptr<kubeletapi::UpgradedConnection> connection)
      : target_(std::move(target)),
        timeouts_(timeouts),
        plugin_(plugin),
        connection_(std::move(connection)),
        expected_streams_(ExpectedStreamCount(target_.options, target_.protocol)) {}

  void Start() {
    absl::MutexLock lock(&mu_);
    std::weak_ptr<SpdyRemoteCommand> weak = weak_from_this();
    creation_alarm_.Set(absl::ToChronoTime(absl::Now() + timeouts_.stream_creation),
                        [weak](bool fired) {
                          if (auto self = weak.lock(); self && fired) {
                            self->OnCreationTimeout();
                          }
                        });
    ReadLocked();
  }

  // ProcessObserver (gRPC threads).
  void OnProcessFrame(v1::ExecResponse frame) override {
    absl::MutexLock lock(&mu_);
    switch (frame.frame_case()) {
      case v1::ExecResponse::kStdout:
        SendOutputLocked(StreamType::kStdout, frame.stdout());
        break;
      case v1::ExecResponse::kStderr:
        SendOutputLocked(target_.options.tty ? StreamType::kStdout : StreamType::kStderr,
                         frame.stderr());
        break;
      case v1::ExecResponse::kExit:
        outcome_.exit_code = frame.exit().exit_code();
        outcome_.exit_message = frame.exit().message();
        break;
      case v1::ExecResponse::FRAME_NOT_SET:
        break;
    }
    // The next frame is read once this one is on the wire (back-pressure).
    frame_waiting_ = true;
    FlushLocked();
  }

  void OnProcessWritable() override {
    absl::MutexLock lock(&mu_);
    if (reads_paused_) {
      reads_paused_ = false;
      ReadLocked();
    }
  }

  void OnProcessDone(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    process_done_ = true;
    frame_waiting_ = false;
    RecordStreamEnd(status, outcome_);
    FinishLocked();
    process_.reset();  // OnDone is its last call; drop the cycle
  }

 private:
  // --- client side ---------------------------------------------------------

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_pending_ || phase_ == Phase::kClosed) return;
    read_pending_ = true;
    connection_->Read([self = shared_from_this()](absl::Status status,
                                                  std::string_view data) {
      self->OnClientBytes(status, data);
    });
  }

  void OnClientBytes(const absl::Status& status, std::string_view data) {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    if (!status.ok()) return CloseLocked(phase_ == Phase::kFinishing ? "" : "the client went away");
    if (phase_ == Phase::kClosed) return;
    absl::StatusOr<std::vector<spdy::SessionEvent>> events =
        spdy_.Receive(absl::string_view(data.data(), data.size()));
    if (!events.ok()) {
      VKLOG(WARNING) << Describe() << ": malformed SPDY from the client: "
                     << events.status().message();
      FlushLocked();
      return CloseLocked("protocol error");
    }
    for (spdy::SessionEvent& event : *events) {
      std::visit([this](auto& e) { HandleLocked(e); }, event);
    }
    FlushLocked();
    if (process_ != nullptr && process_->queued_bytes() > kPauseReadsBytes) {
      reads_paused_ = true;
      return;
    }
    ReadLocked();
  }

  void HandleLocked(spdy::StreamOpened& opened) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // The kubelet answers every stream; ones it does not use are ignored.
    if (absl::Status s = spdy_.AcceptStream(opened.stream_id); !s.ok()) return;
    std::optional<StreamType> type = spdy::StreamTypeOf(opened.headers);
    if (!type.has_value() ||
        !StreamWanted(target_.options, target_.protocol, *type) ||
        ids_[Index(*type)].has_value()) {
      VKLOG(INFO) << Describe() << ": ignoring stream " << opened.stream_id
                  << " of type "
                  << spdy::FindHeader(opened.headers, spdy::kStreamTypeHeader)
                         .value_or("(none)");
      return;
    }
    ids_[Index(*type)] = opened.stream_id;
    if (++opened_streams_ == expected_streams_ && phase_ == Phase::kWaitingForStreams) {
      StartProcessLocked();
    }
  }

  void HandleLocked(spdy::StreamData& data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (Is(StreamType::kStdin, data.stream_id)) {
      if (process_ != nullptr) {
        process_->SendStdin(std::move(data.data));
      } else if (phase_ == Phase::kWaitingForStreams) {
        early_stdin_ += data.data;
      }
      return;
    }
    if (Is(StreamType::kResize, data.stream_id)) {
      absl::StatusOr<std::vector<spdy::TerminalSize>> sizes = resize_.Feed(data.data);
      if (!sizes.ok()) {
        VKLOG(WARNING) << Describe() << ": bad resize data: " << sizes.status().message();
        return;
      }
      for (const spdy::TerminalSize& size : *sizes) {
        if (process_ != nullptr) {
          process_->SendResize(size.width, size.height);
        } else {
          initial_size_ = size;
        }
      }
    }
  }

  void HandleLocked(spdy::StreamFinished& finished) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    StdinEndedLocked(finished.stream_id);
  }
  void HandleLocked(spdy::StreamReset& reset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    StdinEndedLocked(reset.stream_id);
  }
  void HandleLocked(spdy::SessionGoAway&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // The client closes the TCP connection next; the failing read ends us.
  }

  void StdinEndedLocked(uint32_t stream_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!Is(StreamType::kStdin, stream_id) || stdin_closed_) return;
    stdin_closed_ = true;
    if (process_ != nullptr) process_->CloseStdin();
  }

  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || phase_ == Phase::kClosed) return;
    std::string bytes = spdy_.TakeOutput();
    if (bytes.empty()) {
      if (frame_waiting_ && process_ != nullptr) {
        frame_waiting_ = false;
        process_->ReadNext();
      }
      return;
    }
    writing_ = true;
    connection_->Write(std::move(bytes), [self = shared_from_this()](absl::Status s) {
      self->OnWritten(s);
    });
  }

  void OnWritten(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!status.ok()) return CloseLocked("writing to the client failed");
    FlushLocked();
  }

  void SendOutputLocked(StreamType type, const std::string& bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::optional<uint32_t>& id = ids_[Index(type)];
    if (!id.has_value() || bytes.empty() || !spdy_.HasStream(*id)) return;
    // Fails only if the client reset the stream; its output is then dropped.
    spdy_.SendData(*id, bytes).IgnoreError();
  }

  // --- plugin side ---------------------------------------------------------

  void StartProcessLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kRunning;
    creation_alarm_.Cancel();
    absl::StatusOr<std::shared_ptr<ProcessStream>> process =
        StartProcess(target_, initial_size_, plugin_, shared_from_this());
    if (!process.ok()) {
      outcome_.error = process.status();
      return FinishLocked();
    }
    process_ = *std::move(process);
    if (!early_stdin_.empty()) process_->SendStdin(std::move(early_stdin_));
    if (stdin_closed_) process_->CloseStdin();
  }

  // Writes the status and half-closes our streams, as the kubelet does; the
  // client closes the connection once it has read them.
  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (phase_ == Phase::kClosed || phase_ == Phase::kFinishing) return;
    phase_ = Phase::kFinishing;
    for (StreamType type : {StreamType::kStdin, StreamType::kResize}) {
      const std::optional<uint32_t>& id = ids_[Index(type)];
      if (id.has_value() && spdy_.HasStream(*id)) spdy_.ResetStream(*id).IgnoreError();
    }
    const std::string payload =
        ErrorStreamPayload(target_.protocol, outcome_, target_.options.command);
    if (!outcome_.error.ok()) {
      VKLOG(WARNING) << Describe() << " failed: " << outcome_.error.message();
    }
    for (StreamType type : {StreamType::kError, StreamType::kStdout, StreamType::kStderr}) {
      const std::optional<uint32_t>& id = ids_[Index(type)];
      if (!id.has_value() || !spdy_.HasStream(*id)) continue;
      spdy_.SendData(*id, type == StreamType::kError ? payload : "", /*fin=*/true)
          .IgnoreError();
    }
    FlushLocked();
    std::weak_ptr<SpdyRemoteCommand> weak = weak_from_this();
    finish_alarm_.Set(absl::ToChronoTime(absl::Now() + timeouts_.finish),
                      [weak](bool fired) {
                        if (auto self = weak.lock(); self && fired) {
                          absl::MutexLock lock(&self->mu_);
                          self->CloseLocked("");
                        }
                      });
  }

  void OnCreationTimeout() {
    absl::MutexLock lock(&mu_);
    if (phase_ != Phase::kWaitingForStreams) return;
    CloseLocked("timed out waiting for client to create streams");
  }

  // Ends the session: cancels the plugin stream if it still runs and closes
  // the connection. `why` empty: a normal end.
  void CloseLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (phase_ == Phase::kClosed) return;
    if (!why.empty() && phase_ != Phase::kFinishing) {
      VKLOG(INFO) << Describe() << " ended: " << why;
    }
    phase_ = Phase::kClosed;
    if (process_ != nullptr && !process_done_) process_->Cancel();
    connection_->Close();
  }

  // --- helpers --------------------------------------------------------------

  static size_t Index(StreamType type) { return static_cast<size_t>(type); }
  bool Is(StreamType type, uint32_t stream_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ids_[Index(type)] == stream_id;
  }
  std::string Describe() const {
    return std::string(target_.is_exec ? "exec" : "attach") + " in " +
           target_.pod_namespace + "/" + target_.pod_name + "/" + target_.container;
  }

  const RemoteCommandTarget target_;
  const RemoteCommandTimeouts timeouts_;
  plugin::PluginClient& plugin_;
  const std::shared_ptr<kubeletapi::UpgradedConnection> connection_;
  const int expected_streams_;

  absl::Mutex mu_;
  spdy::ServerSession spdy_ ABSL_GUARDED_BY(mu_);
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kWaitingForStreams;
  std::array<std::optional<uint32_t>, 6> ids_ ABSL_GUARDED_BY(mu_);  // by StreamType
  int opened_streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::string early_stdin_ ABSL_GUARDED_BY(mu_);
  bool stdin_closed_ ABSL_GUARDED_BY(mu_) = false;
  spdy::TerminalSizeDecoder resize_ ABSL_GUARDED_BY(mu_);
  std::optional<spdy::TerminalSize> initial_size_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ProcessStream> process_ ABSL_GUARDED_BY(mu_);
  bool process_done_ ABSL_GUARDED_BY(mu_) = false;
  bool frame_waiting_ ABSL_GUARDED_BY(mu_) = false;
  Outcome outcome_ ABSL_GUARDED_BY(mu_);
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Alarm creation_alarm_;
  grpc::Alarm finish_alarm_;
};

}  // namespace

void ServeSpdyRemoteCommand(RemoteCommandTarget target,
                            RemoteCommandTimeouts timeouts,
                            plugin::PluginClient& plugin,
                            std::shared_ptr<kubeletapi::UpgradedConnection> connection) {
  auto session = std::make_shared<SpdyRemoteCommand>(std::move(target), timeouts,
                                                     plugin, std::move(connection));
  session->Start();
}

}  // namespace vkhost::streambridge::internal
