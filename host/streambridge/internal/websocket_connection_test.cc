// WebSocketConnection and the SPDY tunnel over a scripted connection: the
// test thread delivers the client's bytes and completes writes, so every
// step is deterministic.
#include "host/streambridge/internal/websocket_connection.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::streambridge::internal {
namespace {

using websocket::Opcode;
using namespace std::string_literals;

constexpr std::array<uint8_t, 4> kMask = {1, 2, 3, 4};

// An UpgradedConnection whose reads and writes complete when the test says.
class ScriptedConnection final : public kubeletapi::UpgradedConnection {
 public:
  void Read(std::function<void(absl::Status, std::string_view)> done) override {
    absl::MutexLock lock(&mu_);
    ASSERT_FALSE(reader_) << "two reads outstanding";
    reader_ = std::move(done);
  }
  void Write(std::string data, std::function<void(absl::Status)> done) override {
    absl::MutexLock lock(&mu_);
    ASSERT_FALSE(writer_) << "two writes outstanding";
    pending_write_ = std::move(data);
    writer_ = std::move(done);
  }
  void Close() override {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  void Post(std::function<void()> task) override {
    absl::MutexLock lock(&mu_);
    posted_.push_back(std::move(task));
  }

  // Runs what was posted so far (the connection's executor, by hand).
  void RunPosted() {
    std::vector<std::function<void()>> tasks;
    {
      absl::MutexLock lock(&mu_);
      tasks.swap(posted_);
    }
    for (auto& task : tasks) task();
  }

  // Completes the outstanding read with `bytes`; false if none was asked for.
  bool Deliver(const std::string& bytes) {
    std::function<void(absl::Status, std::string_view)> reader;
    {
      absl::MutexLock lock(&mu_);
      reader = std::move(reader_);
      reader_ = nullptr;
    }
    if (!reader) return false;
    reader(absl::OkStatus(), bytes);
    return true;
  }
  // Completes writes until none is outstanding; returns what was written.
  std::string FlushWrites() {
    std::string all;
    for (;;) {
      std::function<void(absl::Status)> writer;
      {
        absl::MutexLock lock(&mu_);
        if (!writer_) return all;
        all += pending_write_;
        writer = std::move(writer_);
        writer_ = nullptr;
      }
      writer(absl::OkStatus());
    }
  }
  bool read_pending() {
    absl::MutexLock lock(&mu_);
    return static_cast<bool>(reader_);
  }
  bool closed() {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

 private:
  absl::Mutex mu_;
  std::function<void(absl::Status, std::string_view)> reader_ ABSL_GUARDED_BY(mu_);
  std::function<void(absl::Status)> writer_ ABSL_GUARDED_BY(mu_);
  std::string pending_write_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
};

std::string ClientFrame(Opcode opcode, const std::string& payload) {
  return websocket::EncodeRawFrame(opcode, payload, true, kMask);
}

// Parses what the server wrote as client-side frames (unmasked).
std::vector<websocket::Message> ServerMessages(const std::string& bytes) {
  websocket::FrameParser parser({.require_masked = false});
  parser.Feed(bytes);
  std::vector<websocket::Message> messages;
  for (;;) {
    absl::StatusOr<std::optional<websocket::Message>> next = parser.Next();
    if (!next.ok() || !next->has_value()) return messages;
    messages.push_back(**next);
  }
}

struct ReadResult {
  absl::Mutex mu;
  std::optional<absl::Status> status;
  websocket::Message message;
};

void ReadInto(WebSocketConnection& ws, std::shared_ptr<ReadResult> result) {
  ws.ReadMessage([result](absl::Status status, websocket::Message message) {
    absl::MutexLock lock(&result->mu);
    result->status = status;
    result->message = std::move(message);
  });
}

TEST(WebSocketConnectionTest, AnswersPingsAndDeliversDataMessages) {
  auto connection = std::make_shared<ScriptedConnection>();
  auto ws = WebSocketConnection::Create(connection);
  auto result = std::make_shared<ReadResult>();
  ReadInto(*ws, result);
  ASSERT_TRUE(connection->read_pending());
  ASSERT_TRUE(connection->Deliver(ClientFrame(Opcode::kPing, "are you there") +
                                  ClientFrame(Opcode::kBinary, "\x01hi"s)));
  {
    absl::MutexLock lock(&result->mu);
    ASSERT_TRUE(result->status.has_value());
    EXPECT_TRUE(result->status->ok());
    EXPECT_EQ(result->message.opcode, Opcode::kBinary);
    EXPECT_EQ(result->message.payload, "\x01hi"s);
  }
  std::vector<websocket::Message> sent = ServerMessages(connection->FlushWrites());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].opcode, Opcode::kPong);
  EXPECT_EQ(sent[0].payload, "are you there");
  // Nobody asked for more: nothing is read from the socket.
  EXPECT_FALSE(connection->read_pending());
}

TEST(WebSocketConnectionTest, BufferedMessageIsDeliveredOnTheExecutorNotInline) {
  auto connection = std::make_shared<ScriptedConnection>();
  auto ws = WebSocketConnection::Create(connection);
  auto first = std::make_shared<ReadResult>();
  ReadInto(*ws, first);
  // Two messages in one chunk (one TLS record can carry many frames).
  ASSERT_TRUE(connection->Deliver(ClientFrame(Opcode::kBinary, "one") +
                                  ClientFrame(Opcode::kBinary, "two")));
  auto second = std::make_shared<ReadResult>();
  ReadInto(*ws, second);
  {
    absl::MutexLock lock(&second->mu);
    EXPECT_FALSE(second->status.has_value());
  }
  connection->RunPosted();
  absl::MutexLock lock(&second->mu);
  ASSERT_TRUE(second->status.has_value());
  EXPECT_EQ(second->message.payload, "two");
  EXPECT_FALSE(connection->read_pending());
}

TEST(WebSocketConnectionTest, ClientCloseIsEchoedAndEndsTheRead) {
  auto connection = std::make_shared<ScriptedConnection>();
  auto ws = WebSocketConnection::Create(connection);
  auto result = std::make_shared<ReadResult>();
  ReadInto(*ws, result);
  ASSERT_TRUE(connection->Deliver(ClientFrame(Opcode::kClose, "\x03\xe9"s)));
  {
    absl::MutexLock lock(&result->mu);
    ASSERT_TRUE(result->status.has_value());
    EXPECT_EQ(result->status->code(), absl::StatusCode::kCancelled);
  }
  std::vector<websocket::Message> sent = ServerMessages(connection->FlushWrites());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].opcode, Opcode::kClose);
  EXPECT_EQ(sent[0].close_code, 1001);
  EXPECT_TRUE(connection->closed());
}

TEST(WebSocketConnectionTest, ServerCloseFollowsQueuedFramesAndAwaitsTheClient) {
  auto connection = std::make_shared<ScriptedConnection>();
  auto ws = WebSocketConnection::Create(connection);
  ws->Write(websocket::EncodeChannelFrame(websocket::Framing::kChannels, 3, "status"));
  ws->Close();
  bool late_write_cancelled = false;
  ws->Write("late", [&](absl::Status s) { late_write_cancelled = absl::IsCancelled(s); });
  EXPECT_FALSE(late_write_cancelled);  // never inline: the caller may hold a lock
  connection->RunPosted();
  EXPECT_TRUE(late_write_cancelled);
  std::vector<websocket::Message> sent = ServerMessages(connection->FlushWrites());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].payload, "\x03status");
  EXPECT_EQ(sent[1].opcode, Opcode::kClose);
  EXPECT_EQ(sent[1].close_code, websocket::kCloseNormal);
  // The TCP connection stays until the client's close frame (data before it
  // is dropped).
  EXPECT_FALSE(connection->closed());
  ASSERT_TRUE(connection->read_pending());
  ASSERT_TRUE(connection->Deliver(ClientFrame(Opcode::kBinary, "\x00late stdin"s) +
                                  ClientFrame(Opcode::kClose, "")));
  EXPECT_TRUE(connection->closed());
}

TEST(WebSocketConnectionTest, ProtocolErrorClosesWith1002) {
  auto connection = std::make_shared<ScriptedConnection>();
  auto ws = WebSocketConnection::Create(connection);
  auto result = std::make_shared<ReadResult>();
  ReadInto(*ws, result);
  // Clients must mask their frames.
  ASSERT_TRUE(connection->Deliver(
      websocket::EncodeRawFrame(Opcode::kBinary, "unmasked", true, std::nullopt)));
  {
    absl::MutexLock lock(&result->mu);
    ASSERT_TRUE(result->status.has_value());
    EXPECT_EQ(result->status->code(), absl::StatusCode::kInvalidArgument);
  }
  std::vector<websocket::Message> sent = ServerMessages(connection->FlushWrites());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].close_code, websocket::kCloseProtocolError);
}

TEST(WebSocketConnectionTest, AbortFailsTheReadAndCloses) {
  auto connection = std::make_shared<ScriptedConnection>();
  auto ws = WebSocketConnection::Create(connection);
  auto result = std::make_shared<ReadResult>();
  ReadInto(*ws, result);
  ws->Abort();
  connection->RunPosted();
  absl::MutexLock lock(&result->mu);
  ASSERT_TRUE(result->status.has_value());
  EXPECT_FALSE(result->status->ok());
  EXPECT_TRUE(connection->closed());
}

TEST(SpdyTunnelTest, BinaryPayloadsAreTheByteStream) {
  auto connection = std::make_shared<ScriptedConnection>();
  auto tunnel = SpdyTunnel(WebSocketConnection::Create(connection));
  std::string got;
  tunnel->Read([&](absl::Status status, std::string_view data) {
    ASSERT_TRUE(status.ok());
    got = std::string(data);
  });
  ASSERT_TRUE(connection->Deliver(ClientFrame(Opcode::kBinary, "\x80\x03\x00\x06"s)));
  EXPECT_EQ(got, "\x80\x03\x00\x06"s);
  bool written = false;
  tunnel->Write("spdy bytes", [&](absl::Status s) { written = s.ok(); });
  std::vector<websocket::Message> sent = ServerMessages(connection->FlushWrites());
  EXPECT_TRUE(written);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].opcode, Opcode::kBinary);
  EXPECT_EQ(sent[0].payload, "spdy bytes");
}

}  // namespace
}  // namespace vkhost::streambridge::internal
