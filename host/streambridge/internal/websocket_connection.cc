#include "host/streambridge/internal/websocket_connection.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vkhost::streambridge::internal {
namespace {

using Completions = std::vector<std::function<void()>>;

void Run(Completions& completions) {
  for (std::function<void()>& completion : completions) completion();
}

// The SPDY byte stream inside binary messages.
class Tunnel final : public kubeletapi::UpgradedConnection {
 public:
  explicit Tunnel(std::shared_ptr<WebSocketConnection> websocket)
      : websocket_(std::move(websocket)) {}

  void Read(std::function<void(absl::Status, std::string_view)> done) override {
    websocket_->ReadMessage(
        [done = std::move(done)](absl::Status status, websocket::Message message) {
          done(status, message.payload);
        });
  }
  void Write(std::string data, std::function<void(absl::Status)> done) override {
    websocket_->Write(
        websocket::EncodeRawFrame(websocket::Opcode::kBinary, data, true, std::nullopt),
        std::move(done));
  }
  void Close() override { websocket_->Close(); }
  void Post(std::function<void()> task) override { websocket_->Post(std::move(task)); }

 private:
  const std::shared_ptr<WebSocketConnection> websocket_;
};

}  // namespace

std::shared_ptr<WebSocketConnection> WebSocketConnection::Create(
    std::shared_ptr<kubeletapi::UpgradedConnection> connection, absl::Duration linger) {
  return std::shared_ptr<WebSocketConnection>(
      new WebSocketConnection(std::move(connection), linger));
}

WebSocketConnection::WebSocketConnection(
    std::shared_ptr<kubeletapi::UpgradedConnection> connection, absl::Duration linger)
    : connection_(std::move(connection)), linger_(linger) {}

void WebSocketConnection::ReadMessage(ReadDone done) {
  Completions completions;
  {
    absl::MutexLock lock(&mu_);
    reader_ = std::move(done);
    if (state_ != State::kOpen) {
      FailReadLocked(absl::CancelledError("the WebSocket is closed"), completions);
    } else {
      ParseLocked(completions);
      PumpLocked();
    }
  }
  Defer(std::move(completions));
}

void WebSocketConnection::Write(std::string frame, WriteDone done) {
  {
    absl::MutexLock lock(&mu_);
    if (!close_sent_ && state_ != State::kClosed) {
      QueueLocked(std::move(frame), std::move(done));
      return;
    }
  }
  if (done) {
    Defer({[done = std::move(done)] { done(absl::CancelledError("the WebSocket is closing")); }});
  }
}

void WebSocketConnection::Close(uint16_t code, std::string reason) {
  absl::MutexLock lock(&mu_);
  SendCloseLocked(code, reason);
}

void WebSocketConnection::Abort() {
  Completions completions;
  {
    absl::MutexLock lock(&mu_);
    ShutdownLocked(completions);
  }
  Defer(std::move(completions));
}

void WebSocketConnection::Post(std::function<void()> task) {
  connection_->Post(std::move(task));
}

void WebSocketConnection::Defer(Completions completions) {
  if (completions.empty()) return;
  connection_->Post([completions = std::move(completions)]() mutable { Run(completions); });
}

void WebSocketConnection::PumpLocked() {
  if (socket_read_pending_ || state_ == State::kClosed) return;
  // Read for the owner, or (closing) to see the client's close frame.
  const bool wanted = (reader_ != nullptr && state_ == State::kOpen) ||
                      (close_sent_ && !peer_closed_);
  if (!wanted) return;
  socket_read_pending_ = true;
  connection_->Read([self = shared_from_this()](absl::Status status, std::string_view data) {
    self->OnBytes(status, data);
  });
}

void WebSocketConnection::OnBytes(const absl::Status& status, std::string_view data) {
  Completions completions;
  {
    absl::MutexLock lock(&mu_);
    socket_read_pending_ = false;
    if (!status.ok()) {
      // Normal after a close handshake; otherwise the client vanished.
      FailReadLocked(state_ == State::kOpen ? absl::UnavailableError(status.message())
                                            : absl::CancelledError("the WebSocket is closed"),
                     completions);
      ShutdownLocked(completions);
    } else if (state_ != State::kClosed) {
      parser_.Feed(absl::string_view(data.data(), data.size()));
      ParseLocked(completions);
      PumpLocked();
    }
  }
  Run(completions);
}

void WebSocketConnection::ParseLocked(Completions& completions) {
  for (;;) {
    // Data waits in the parser until someone asks (unless we are closing
    // and only look for the client's close frame).
    if (reader_ == nullptr && !close_sent_) return;
    absl::StatusOr<std::optional<websocket::Message>> next = parser_.Next();
    if (!next.ok()) {
      SendCloseLocked(parser_.failure_close_code(), std::string(next.status().message()));
      FailReadLocked(absl::InvalidArgumentError(
                         absl::StrCat("malformed WebSocket frame from the client: ",
                                      next.status().message())),
                     completions);
      return;
    }
    if (!next->has_value()) return;
    websocket::Message message = **std::move(next);
    switch (message.opcode) {
      case websocket::Opcode::kPing:
        if (!close_sent_) {
          absl::StatusOr<std::string> pong =
              websocket::EncodeFrame(websocket::Opcode::kPong, message.payload);
          if (pong.ok()) QueueLocked(*std::move(pong), nullptr);
        }
        continue;
      case websocket::Opcode::kPong:
      case websocket::Opcode::kContinuation:
        continue;
      case websocket::Opcode::kClose: {
        peer_closed_ = true;
        const uint16_t echo = message.close_code == websocket::kCloseNoStatus
                                  ? static_cast<uint16_t>(websocket::kCloseNormal)
                                  : message.close_code;
        SendCloseLocked(echo, "");
        FailReadLocked(absl::CancelledError("the client closed the WebSocket"), completions);
        if (close_written_) ShutdownLocked(completions);
        return;
      }
      case websocket::Opcode::kText:
      case websocket::Opcode::kBinary:
        if (close_sent_) continue;  // too late: we are closing
        completions.push_back([reader = std::move(reader_), message = std::move(message)] {
          reader(absl::OkStatus(), message);
        });
        reader_ = nullptr;
        return;
    }
  }
}

void WebSocketConnection::FailReadLocked(absl::Status status, Completions& completions) {
  if (reader_ == nullptr) return;
  completions.push_back([reader = std::move(reader_), status = std::move(status)] {
    reader(status, websocket::Message{});
  });
  reader_ = nullptr;
}

void WebSocketConnection::QueueLocked(std::string bytes, WriteDone done) {
  writes_.push_back({std::move(bytes), std::move(done)});
  FlushLocked();
}

void WebSocketConnection::SendCloseLocked(uint16_t code, const std::string& reason) {
  if (close_sent_ || state_ == State::kClosed) return;
  close_sent_ = true;
  state_ = State::kClosing;
  writes_.push_back({websocket::EncodeCloseFrame(code, reason), nullptr});
  close_queued_ = true;
  FlushLocked();
}

void WebSocketConnection::FlushLocked() {
  if (writing_ || writes_.empty() || state_ == State::kClosed) return;
  PendingWrite next = std::move(writes_.front());
  writes_.pop_front();
  writing_ = true;
  in_flight_done_ = std::move(next.done);
  in_flight_is_close_ = close_queued_ && writes_.empty();
  connection_->Write(std::move(next.bytes), [self = shared_from_this()](absl::Status status) {
    self->OnWritten(status);
  });
}

void WebSocketConnection::OnWritten(const absl::Status& status) {
  Completions completions;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (in_flight_done_) {
      completions.push_back([done = std::move(in_flight_done_), status] { done(status); });
      in_flight_done_ = nullptr;
    }
    if (!status.ok()) {
      FailReadLocked(absl::UnavailableError(status.message()), completions);
      ShutdownLocked(completions);
    } else if (in_flight_is_close_) {
      close_written_ = true;
      if (peer_closed_) {
        ShutdownLocked(completions);
      } else {
        std::weak_ptr<WebSocketConnection> weak = weak_from_this();
        linger_set_ = true;
        linger_alarm_.Set(absl::ToChronoTime(absl::Now() + linger_), [weak](bool fired) {
          if (auto self = weak.lock(); self && fired) self->Abort();
        });
        PumpLocked();
      }
    } else {
      FlushLocked();
    }
  }
  Run(completions);
}

void WebSocketConnection::ShutdownLocked(Completions& completions) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  FailReadLocked(absl::CancelledError("the WebSocket is closed"), completions);
  for (PendingWrite& write : writes_) {
    if (write.done) {
      completions.push_back([done = std::move(write.done)] {
        done(absl::CancelledError("the WebSocket is closed"));
      });
    }
  }
  writes_.clear();
  if (linger_set_) linger_alarm_.Cancel();
  connection_->Close();
}

std::shared_ptr<kubeletapi::UpgradedConnection> SpdyTunnel(
    std::shared_ptr<WebSocketConnection> websocket) {
  return std::make_shared<Tunnel>(std::move(websocket));
}

}  // namespace vkhost::streambridge::internal
