#include "host/streambridge/internal/websocket_sessions.h"

#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "host/spdy/spdy.h"
#include "host/streambridge/internal/forward_stream.h"
#include "host/streambridge/internal/process_stream.h"

namespace vkhost::streambridge::internal {
namespace {

using websocket::Framing;

// Client reads stop while this much waits for the plugin, so a fast writer
// is slowed by TCP instead of growing our queue.
constexpr size_t kPauseReadsBytes = 1 << 20;

// State is touched under mu_ only. Entry points: OnClientMessage (kubelet
// server io threads), OnProcess* and write completions (gRPC / io threads).
class WebSocketRemoteCommand final
    : public ProcessObserver,
      public std::enable_shared_from_this<WebSocketRemoteCommand> {
 public:
  WebSocketRemoteCommand(RemoteCommandTarget target, Framing framing,
                         plugin::PluginClient& plugin,
                         std::shared_ptr<WebSocketConnection> websocket)
      : target_(std::move(target)),
        framing_(framing),
        plugin_(plugin),
        websocket_(std::move(websocket)) {}

  void Start() {
    absl::MutexLock lock(&mu_);
    const uint8_t ready = target_.options.stdout   ? websocket::kStdout
                          : target_.options.stderr ? websocket::kStderr
                                                   : websocket::kError;
    websocket_->Write(websocket::EncodeChannelFrame(framing_, ready, ""));
    absl::StatusOr<std::shared_ptr<ProcessStream>> process =
        StartProcess(target_, std::nullopt, plugin_, shared_from_this());
    if (!process.ok()) {
      outcome_.error = process.status();
      return FinishLocked();
    }
    process_ = *std::move(process);
    ReadLocked();
  }

  // ProcessObserver (gRPC threads).
  void OnProcessFrame(v1::ExecResponse frame) override {
    absl::MutexLock lock(&mu_);
    switch (frame.frame_case()) {
      case v1::ExecResponse::kStdout:
        if (SendOutputLocked(websocket::kStdout, frame.stdout())) return;
        break;
      case v1::ExecResponse::kStderr:
        if (SendOutputLocked(target_.options.tty ? websocket::kStdout : websocket::kStderr,
                             frame.stderr())) {
          return;
        }
        break;
      case v1::ExecResponse::kExit:
        outcome_.exit_code = frame.exit().exit_code();
        outcome_.exit_message = frame.exit().message();
        break;
      case v1::ExecResponse::FRAME_NOT_SET:
        break;
    }
    if (process_ != nullptr) process_->ReadNext();
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
    RecordStreamEnd(status, outcome_);
    FinishLocked();
    process_.reset();  // OnDone is its last call; drop the cycle
  }

 private:
  // Writes `bytes` on `channel`; the next plugin frame is read once they are
  // on the wire (back-pressure). False if nothing was sent.
  bool SendOutputLocked(uint8_t channel, const std::string& bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool wanted = channel == websocket::kStdout ? target_.options.stdout
                                                      : target_.options.stderr;
    if (bytes.empty() || !wanted || closed_) return false;
    websocket_->Write(websocket::EncodeChannelFrame(framing_, channel, bytes),
                      [self = shared_from_this()](absl::Status status) {
                        self->OnOutputWritten(status);
                      });
    return true;
  }

  void OnOutputWritten(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (!status.ok()) return CloseLocked("writing to the client failed");
    if (process_ != nullptr) process_->ReadNext();
  }

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_pending_ || reads_paused_ || closed_ || finished_) return;
    read_pending_ = true;
    websocket_->ReadMessage(
        [self = shared_from_this()](absl::Status status, websocket::Message message) {
          self->OnClientMessage(status, std::move(message));
        });
  }

  void OnClientMessage(const absl::Status& status, websocket::Message message) {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    if (!status.ok()) {
      if (!finished_) CloseLocked(std::string(status.message()));
      return;
    }
    absl::StatusOr<std::optional<websocket::ChannelMessage>> decoded =
        websocket::DecodeChannelMessage(framing_, message);
    if (!decoded.ok()) {
      VKLOG(WARNING) << Describe() << ": ignoring a message: " << decoded.status().message();
    } else if (decoded->has_value()) {
      HandleLocked(**decoded);
    }
    if (process_ != nullptr && process_->queued_bytes() > kPauseReadsBytes) {
      reads_paused_ = true;
      return;
    }
    ReadLocked();
  }

  void HandleLocked(websocket::ChannelMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (message.channel) {
      case websocket::kStdin:
        if (target_.options.stdin && !stdin_closed_ && process_ != nullptr &&
            !message.data.empty()) {
          process_->SendStdin(std::move(message.data));
        }
        return;
      case websocket::kResize:
        return ResizeLocked(message.data);
      case websocket::kCloseSignal:
        if (target_.protocol >= Protocol::kV5 &&
            websocket::ClosedChannel(message) == websocket::kStdin && !stdin_closed_) {
          stdin_closed_ = true;
          if (process_ != nullptr) process_->CloseStdin();
        }
        return;
      default:
        return;  // wsstream drops messages for channels it does not read
    }
  }

  void ResizeLocked(const std::string& data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!target_.options.tty) return;
    absl::StatusOr<std::vector<spdy::TerminalSize>> sizes = resize_.Feed(data);
    if (!sizes.ok()) {
      VKLOG(WARNING) << Describe() << ": bad resize data: " << sizes.status().message();
      return;
    }
    for (const spdy::TerminalSize& size : *sizes) {
      if (process_ != nullptr) process_->SendResize(size.width, size.height);
    }
  }

  // The status on the error channel, then the closing handshake: the
  // client's channel readers see EOF only at the close frame.
  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || closed_) return;
    finished_ = true;
    if (!outcome_.error.ok()) {
      VKLOG(WARNING) << Describe() << " failed: " << outcome_.error.message();
    }
    const std::string payload =
        ErrorStreamPayload(target_.protocol, outcome_, target_.options.command);
    if (!payload.empty()) {
      websocket_->Write(websocket::EncodeChannelFrame(framing_, websocket::kError, payload));
    }
    websocket_->Close(websocket::kCloseNormal);
  }

  // Ends the session early: cancels the plugin stream and closes.
  void CloseLocked(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_) return;
    closed_ = true;
    VKLOG(INFO) << Describe() << " ended: " << why;
    if (process_ != nullptr && !process_done_) process_->Cancel();
    websocket_->Close(websocket::kCloseNormal);
  }

  std::string Describe() const {
    return std::string(target_.is_exec ? "exec" : "attach") + " (WebSocket) in " +
           target_.pod_namespace + "/" + target_.pod_name + "/" + target_.container;
  }

  const RemoteCommandTarget target_;
  const Framing framing_;
  plugin::PluginClient& plugin_;
  const std::shared_ptr<WebSocketConnection> websocket_;

  absl::Mutex mu_;
  std::shared_ptr<ProcessStream> process_ ABSL_GUARDED_BY(mu_);
  bool process_done_ ABSL_GUARDED_BY(mu_) = false;
  Outcome outcome_ ABSL_GUARDED_BY(mu_);
  spdy::TerminalSizeDecoder resize_ ABSL_GUARDED_BY(mu_);
  bool stdin_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // status written
  bool closed_ ABSL_GUARDED_BY(mu_) = false;    // ended early
};

// One port of a kubelet-native WebSocket port-forward.
struct ForwardedPort {
  uint16_t port = 0;
  websocket::PortChannels channels{};
  std::shared_ptr<ForwardStream> forward;
  std::string plugin_error;
  bool cancelled = false;  // by us: the plugin's CANCELLED is no news
  bool done = false;
};

class WebSocketPortForward final
    : public std::enable_shared_from_this<WebSocketPortForward> {
 public:
  WebSocketPortForward(PortForwardTarget target, const std::vector<uint16_t>& ports,
                       Framing framing, plugin::PluginClient& plugin,
                       std::shared_ptr<WebSocketConnection> websocket)
      : target_(std::move(target)),
        framing_(framing),
        plugin_(plugin),
        websocket_(std::move(websocket)) {
    for (size_t i = 0; i < ports.size(); ++i) {
      ForwardedPort& port = ports_.emplace_back();
      port.port = ports[i];
      port.channels = websocket::PortForwardChannels(i);
    }
  }

  void Start() {
    absl::MutexLock lock(&mu_);
    for (ForwardedPort& port : ports_) {
      const std::string prefix = websocket::PortPrefix(port.port);
      websocket_->Write(websocket::EncodeChannelFrame(framing_, port.channels.data, prefix));
      websocket_->Write(websocket::EncodeChannelFrame(framing_, port.channels.error, prefix));
    }
    for (size_t i = 0; i < ports_.size(); ++i) StartPortLocked(i);
    ReadLocked();
  }

  // Plugin side, from gRPC threads (through PortObserver).
  void OnPluginFrame(size_t index, v1::PortForwardResponse frame) {
    absl::MutexLock lock(&mu_);
    ForwardedPort& port = ports_[index];
    if (frame.frame_case() == v1::PortForwardResponse::kData && !frame.data().empty() &&
        !closed_) {
      // The next frame is read once this one is on the wire.
      websocket_->Write(
          websocket::EncodeChannelFrame(framing_, port.channels.data, frame.data()),
          [forward = port.forward](absl::Status status) {
            if (status.ok()) forward->ReadNext();
          });
      return;
    }
    if (frame.frame_case() == v1::PortForwardResponse::kError) {
      port.plugin_error = frame.error();
    }
    if (port.forward != nullptr) port.forward->ReadNext();
  }

  void OnPluginWritable() {
    absl::MutexLock lock(&mu_);
    if (reads_paused_) {
      reads_paused_ = false;
      ReadLocked();
    }
  }

  void OnPluginDone(size_t index, const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    ForwardedPort& port = ports_[index];
    std::string why = port.plugin_error;
    if (why.empty() && !status.ok() && !port.cancelled) why = std::string(status.message());
    EndPortLocked(index, why);
  }

 private:
  class PortObserver final : public ForwardObserver {
   public:
    PortObserver(std::shared_ptr<WebSocketPortForward> session, size_t index)
        : session_(std::move(session)), index_(index) {}
    void OnForwardFrame(v1::PortForwardResponse frame) override {
      session_->OnPluginFrame(index_, std::move(frame));
    }
    void OnForwardWritable() override { session_->OnPluginWritable(); }
    void OnForwardDone(absl::Status status) override {
      session_->OnPluginDone(index_, status);
    }

   private:
    const std::shared_ptr<WebSocketPortForward> session_;
    const size_t index_;
  };

  void StartPortLocked(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<std::shared_ptr<plugin::PluginConnection>> plugin =
        plugin_.ConnectionFor(v1::CAPABILITY_PORT_FORWARD);
    if (!plugin.ok()) return EndPortLocked(index, std::string(plugin.status().message()));
    v1::PortForwardStart start;
    start.mutable_pod()->set_uid(target_.pod_uid);
    start.mutable_pod()->set_namespace_(target_.pod_namespace);
    start.mutable_pod()->set_name(target_.pod_name);
    start.set_port(ports_[index].port);
    ports_[index].forward = ForwardStream::Start(
        *std::move(plugin), start, std::make_shared<PortObserver>(shared_from_this(), index));
  }

  // A port's plugin stream ended: its error (if any) on the error channel;
  // the connection closes with the last port, as the kubelet's does.
  void EndPortLocked(size_t index, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ForwardedPort& port = ports_[index];
    if (port.done) return;
    port.done = true;
    port.forward.reset();  // its OnDone was the last call
    if (!why.empty() && !closed_) {
      const std::string text = ForwardErrorText(port.port, target_.pod_uid, why);
      VKLOG(WARNING) << Describe() << ": " << text;
      websocket_->Write(websocket::EncodeChannelFrame(framing_, port.channels.error, text));
    }
    if (++ended_ == ports_.size()) {
      closed_ = true;
      websocket_->Close(websocket::kCloseNormal);
    }
  }

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_pending_ || reads_paused_ || closed_) return;
    read_pending_ = true;
    websocket_->ReadMessage(
        [self = shared_from_this()](absl::Status status, websocket::Message message) {
          self->OnClientMessage(status, std::move(message));
        });
  }

  void OnClientMessage(const absl::Status& status, websocket::Message message) {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    if (!status.ok()) return CloseLocked();
    absl::StatusOr<std::optional<websocket::ChannelMessage>> decoded =
        websocket::DecodeChannelMessage(framing_, message);
    bool pause = false;
    if (decoded.ok() && decoded->has_value()) {
      const websocket::ChannelMessage& m = **decoded;
      const size_t index = m.channel / 2;
      // Only data channels carry anything from the client.
      if (m.channel % 2 == 0 && index < ports_.size() && !ports_[index].done &&
          ports_[index].forward != nullptr && !m.data.empty()) {
        ports_[index].forward->SendData(m.data);
        pause = ports_[index].forward->queued_bytes() > kPauseReadsBytes;
      }
    }
    if (pause) {
      reads_paused_ = true;
      return;
    }
    ReadLocked();
  }

  // The client went away: cancel every plugin stream.
  void CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_) return;
    closed_ = true;
    for (ForwardedPort& port : ports_) {
      if (port.forward != nullptr && !port.done && !port.cancelled) {
        port.cancelled = true;
        port.forward->Cancel();
      }
    }
    websocket_->Close(websocket::kCloseNormal);
  }

  std::string Describe() const {
    return "port-forward (WebSocket) to " + target_.pod_namespace + "/" + target_.pod_name;
  }

  const PortForwardTarget target_;
  const Framing framing_;
  plugin::PluginClient& plugin_;
  const std::shared_ptr<WebSocketConnection> websocket_;

  absl::Mutex mu_;
  std::vector<ForwardedPort> ports_ ABSL_GUARDED_BY(mu_);
  size_t ended_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

Protocol ProtocolOfSubprotocol(const websocket::Subprotocol& subprotocol) {
  if (subprotocol.version >= 5) return Protocol::kV5;
  if (subprotocol.version == 4) return Protocol::kV4;
  return Protocol::kV1;
}

void ServeWebSocketRemoteCommand(RemoteCommandTarget target, Framing framing,
                                 plugin::PluginClient& plugin,
                                 std::shared_ptr<WebSocketConnection> websocket) {
  std::make_shared<WebSocketRemoteCommand>(std::move(target), framing, plugin,
                                           std::move(websocket))
      ->Start();
}

void ServeWebSocketPortForward(PortForwardTarget target, std::vector<uint16_t> ports,
                               Framing framing, plugin::PluginClient& plugin,
                               std::shared_ptr<WebSocketConnection> websocket) {
  std::make_shared<WebSocketPortForward>(std::move(target), ports, framing, plugin,
                                         std::move(websocket))
      ->Start();
}

}  // namespace vkhost::streambridge::internal
