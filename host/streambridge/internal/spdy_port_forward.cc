#include "host/streambridge/internal/spdy_port_forward.h"

#include <cstdint>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "grpcpp/alarm.h"
#include "host/spdy/spdy.h"
#include "host/streambridge/internal/forward_stream.h"
#include "host/streambridge/internal/port_forward.h"

namespace vkhost::streambridge::internal {
namespace {

// Client reads stop while this much data for one connection waits for the
// plugin, so a fast sender is slowed by TCP instead of growing our queue.
constexpr size_t kPauseReadsBytes = 1 << 20;

// One forwarded connection: its two streams and, once both are there, its
// plugin stream. Pairs are named by a serial number rather than their
// requestID because a (legacy) client may reuse an ID once a pair is gone.
struct Pair {
  std::string key;  // requestID (or the legacy guess)
  StreamPair streams;
  std::shared_ptr<ForwardStream> forward;  // set once both streams arrived
  std::string early_data;  // data that came before the plugin stream
  bool client_done_writing = false;
  bool cancelled = false;  // by us: the plugin's CANCELLED is no news
  std::string plugin_error;
  std::unique_ptr<grpc::Alarm> creation_alarm;
};

class SpdyPortForward final : public std::enable_shared_from_this<SpdyPortForward> {
 public:
  SpdyPortForward(PortForwardTarget target, absl::Duration stream_creation,
                  plugin::PluginClient& plugin,
                  std::shared_ptr<kubeletapi::UpgradedConnection> connection)
      : target_(std::move(target)),
        stream_creation_(stream_creation),
        plugin_(plugin),
        connection_(std::move(connection)) {}

  void Start() {
    absl::MutexLock lock(&mu_);
    ReadLocked();
  }

  // Plugin side, from gRPC threads (through PairObserver).
  void OnPluginFrame(uint64_t serial, v1::PortForwardResponse frame) {
    absl::MutexLock lock(&mu_);
    auto it = pairs_.find(serial);
    if (it == pairs_.end()) return;
    Pair& pair = it->second;
    if (frame.frame_case() == v1::PortForwardResponse::kData && !frame.data().empty()) {
      const uint32_t id = *pair.streams.data_stream;
      // Fails only if the client reset or finished the stream: data dropped.
      if (spdy_.HasStream(id)) spdy_.SendData(id, frame.data()).IgnoreError();
    } else if (frame.frame_case() == v1::PortForwardResponse::kError) {
      pair.plugin_error = frame.error();
    }
    // The next frame is read once this one is on the wire (back-pressure).
    awaiting_flush_.push_back(pair.forward);
    FlushLocked();
  }

  void OnPluginWritable() {
    absl::MutexLock lock(&mu_);
    if (reads_paused_) {
      reads_paused_ = false;
      ReadLocked();
    }
  }

  void OnPluginDone(uint64_t serial, const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    auto it = pairs_.find(serial);
    if (it == pairs_.end()) return;
    Pair& pair = it->second;
    std::string why = pair.plugin_error;
    if (why.empty() && !status.ok() && !pair.cancelled) why = std::string(status.message());
    FinishPairLocked(serial, why);
  }

 private:
  // Routes one pair's plugin callbacks to the session.
  class PairObserver final : public ForwardObserver {
   public:
    PairObserver(std::shared_ptr<SpdyPortForward> session, uint64_t serial)
        : session_(std::move(session)), serial_(serial) {}
    void OnForwardFrame(v1::PortForwardResponse frame) override {
      session_->OnPluginFrame(serial_, std::move(frame));
    }
    void OnForwardWritable() override { session_->OnPluginWritable(); }
    void OnForwardDone(absl::Status status) override {
      session_->OnPluginDone(serial_, status);
    }

   private:
    const std::shared_ptr<SpdyPortForward> session_;
    const uint64_t serial_;
  };

  // --- client side ---------------------------------------------------------

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_pending_ || closed_) return;
    read_pending_ = true;
    connection_->Read([self = shared_from_this()](absl::Status status,
                                                  std::string_view data) {
      self->OnClientBytes(status, data);
    });
  }

  void OnClientBytes(const absl::Status& status, std::string_view data) {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    if (!status.ok()) return CloseLocked();
    if (closed_) return;
    absl::StatusOr<std::vector<spdy::SessionEvent>> events =
        spdy_.Receive(absl::string_view(data.data(), data.size()));
    if (!events.ok()) {
      VKLOG(WARNING) << Describe() << ": malformed SPDY from the client: "
                     << events.status().message();
      FlushLocked();
      return CloseLocked();
    }
    bool pause = false;
    for (spdy::SessionEvent& event : *events) {
      std::visit([this, &pause](auto& e) { pause |= HandleLocked(e); }, event);
    }
    FlushLocked();
    if (pause) {
      reads_paused_ = true;
      return;
    }
    ReadLocked();
  }

  // Each handler returns whether client reads should pause.
  bool HandleLocked(spdy::StreamOpened& opened) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<spdy::PortForwardStream> stream =
        spdy::ParsePortForwardHeaders(opened.headers);
    if (!stream.ok()) {
      VKLOG(WARNING) << Describe() << ": refusing stream " << opened.stream_id << ": "
                     << stream.status().message();
      spdy_.ResetStream(opened.stream_id, spdy::RstStatus::kRefusedStream).IgnoreError();
      return false;
    }
    if (!spdy_.AcceptStream(opened.stream_id).ok()) return false;
    const std::string key = PairKey(opened.stream_id, *stream);
    auto [found, created] = serial_of_key_.try_emplace(key, next_serial_);
    if (created) NewPairLocked(next_serial_++, key);
    const uint64_t serial = found->second;
    Pair& pair = pairs_.at(serial);
    if (absl::Status added = AddToPair(pair.streams, key, opened.stream_id, *stream);
        !added.ok()) {
      VKLOG(WARNING) << Describe() << ": " << added.message();
      if (pair.streams.error_stream.has_value() &&
          spdy_.HasStream(*pair.streams.error_stream)) {
        spdy_.SendData(*pair.streams.error_stream, added.message()).IgnoreError();
      }
      spdy_.ResetStream(opened.stream_id).IgnoreError();
      return false;
    }
    pair_of_stream_[opened.stream_id] = serial;
    if (pair.streams.complete()) StartForwardLocked(serial);
    return false;
  }

  bool HandleLocked(spdy::StreamData& data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Pair* pair = DataPairLocked(data.stream_id);
    if (pair == nullptr) return false;  // error-stream data means nothing
    if (pair->forward == nullptr) {
      pair->early_data += data.data;
      return false;
    }
    pair->forward->SendData(std::move(data.data));
    return pair->forward->queued_bytes() > kPauseReadsBytes;
  }

  bool HandleLocked(spdy::StreamFinished& finished) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Pair* pair = DataPairLocked(finished.stream_id);
    if (pair == nullptr || pair->client_done_writing) return false;
    pair->client_done_writing = true;
    if (pair->forward != nullptr) pair->forward->CloseWrite();
    return false;
  }

  bool HandleLocked(spdy::StreamReset& reset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = pair_of_stream_.find(reset.stream_id);
    if (it == pair_of_stream_.end()) return false;
    const uint64_t serial = it->second;
    Pair& pair = pairs_.at(serial);
    if (pair.forward == nullptr) {
      FinishPairLocked(serial, "");
    } else if (!pair.cancelled) {
      pair.cancelled = true;
      pair.forward->Cancel();  // OnPluginDone finishes the pair
    }
    return false;
  }

  bool HandleLocked(spdy::SessionGoAway&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return false;  // the client closes the TCP connection next
  }

  // The pair whose data stream is `stream_id`, or null.
  Pair* DataPairLocked(uint32_t stream_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = pair_of_stream_.find(stream_id);
    if (it == pair_of_stream_.end()) return nullptr;
    Pair& pair = pairs_.at(it->second);
    return pair.streams.data_stream == stream_id ? &pair : nullptr;
  }

  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || closed_) return;
    std::string bytes = spdy_.TakeOutput();
    if (bytes.empty()) {
      std::vector<std::shared_ptr<ForwardStream>> ready = std::move(awaiting_flush_);
      awaiting_flush_.clear();
      for (const std::shared_ptr<ForwardStream>& forward : ready) forward->ReadNext();
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
    if (!status.ok()) return CloseLocked();
    FlushLocked();
  }

  // --- pairs ----------------------------------------------------------------

  void NewPairLocked(uint64_t serial, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Pair& pair = pairs_[serial];
    pair.key = key;
    pair.creation_alarm = std::make_unique<grpc::Alarm>();
    std::weak_ptr<SpdyPortForward> weak = weak_from_this();
    pair.creation_alarm->Set(absl::ToChronoTime(absl::Now() + stream_creation_),
                             [weak, serial](bool fired) {
                               if (auto self = weak.lock(); self && fired) {
                                 self->OnCreationTimeout(serial);
                               }
                             });
  }

  void OnCreationTimeout(uint64_t serial) {
    absl::MutexLock lock(&mu_);
    auto it = pairs_.find(serial);
    if (it == pairs_.end() || it->second.forward != nullptr) return;
    const std::string why =
        absl::StrCat("(request=", it->second.key, ") timed out waiting for streams");
    VKLOG(WARNING) << Describe() << ": " << why;
    FinishPairLocked(serial, why, /*raw=*/true);
  }

  void StartForwardLocked(uint64_t serial) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Pair& pair = pairs_.at(serial);
    pair.creation_alarm->Cancel();
    absl::StatusOr<std::shared_ptr<plugin::PluginConnection>> plugin =
        plugin_.ConnectionFor(v1::CAPABILITY_PORT_FORWARD);
    if (!plugin.ok()) return FinishPairLocked(serial, std::string(plugin.status().message()));
    v1::PortForwardStart start;
    start.mutable_pod()->set_uid(target_.pod_uid);
    start.mutable_pod()->set_namespace_(target_.pod_namespace);
    start.mutable_pod()->set_name(target_.pod_name);
    start.set_port(pair.streams.port);
    pair.forward = ForwardStream::Start(
        *std::move(plugin), start,
        std::make_shared<PairObserver>(shared_from_this(), serial));
    if (!pair.early_data.empty()) pair.forward->SendData(std::move(pair.early_data));
    if (pair.client_done_writing) pair.forward->CloseWrite();
  }

  // Ends a pair as the kubelet does: `why` (if any) on the error stream, then
  // FIN on both streams; the client resets or finishes them in turn.
  void FinishPairLocked(uint64_t serial, const std::string& why, bool raw = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = pairs_.find(serial);
    if (it == pairs_.end()) return;
    Pair& pair = it->second;
    std::string text;
    if (!why.empty()) {
      text = raw ? why : ForwardErrorText(pair.streams.port, target_.pod_uid, why);
      VKLOG(WARNING) << Describe() << ": " << text;
    }
    for (const std::optional<uint32_t>& id :
         {pair.streams.error_stream, pair.streams.data_stream}) {
      if (!id.has_value() || !spdy_.HasStream(*id)) continue;
      const bool is_error = id == pair.streams.error_stream;
      spdy_.SendData(*id, is_error ? text : "", /*fin=*/true).IgnoreError();
    }
    for (const std::optional<uint32_t>& id :
         {pair.streams.error_stream, pair.streams.data_stream}) {
      if (id.has_value()) pair_of_stream_.erase(*id);
    }
    // Alarms outlive their pair: one may be running this very call.
    retired_alarms_.push_back(std::move(pair.creation_alarm));
    serial_of_key_.erase(pair.key);
    pairs_.erase(it);
    FlushLocked();
  }

  // Ends the session: cancels every plugin stream and closes the connection.
  void CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_) return;
    closed_ = true;
    for (auto& [serial, pair] : pairs_) {
      if (pair.forward != nullptr && !pair.cancelled) {
        pair.cancelled = true;
        pair.forward->Cancel();
      }
    }
    connection_->Close();
  }

  std::string Describe() const {
    return "port-forward to " + target_.pod_namespace + "/" + target_.pod_name;
  }

  const PortForwardTarget target_;
  const absl::Duration stream_creation_;
  plugin::PluginClient& plugin_;
  const std::shared_ptr<kubeletapi::UpgradedConnection> connection_;

  absl::Mutex mu_;
  spdy::ServerSession spdy_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Pair> pairs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> serial_of_key_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, uint64_t> pair_of_stream_ ABSL_GUARDED_BY(mu_);
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::shared_ptr<ForwardStream>> awaiting_flush_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<grpc::Alarm>> retired_alarms_ ABSL_GUARDED_BY(mu_);
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

void ServeSpdyPortForward(PortForwardTarget target, absl::Duration stream_creation,
                          plugin::PluginClient& plugin,
                          std::shared_ptr<kubeletapi::UpgradedConnection> connection) {
  auto session = std::make_shared<SpdyPortForward>(std::move(target), stream_creation,
                                                   plugin, std::move(connection));
  session->Start();
}

}  // namespace vkhost::streambridge::internal
