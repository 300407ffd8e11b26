// The server end of a SPDY/3.1 connection: stream table and automatic
// answers, as the kubelet's spdystream-based server behaves.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "host/spdy/spdy.h"

namespace vkhost::spdy {

ServerSession::ServerSession(SessionOptions options)
    : options_(options), parser_(options.limits) {
  options_.max_data_frame = std::clamp<uint32_t>(options_.max_data_frame, 1, kMaxFramePayload);
}

absl::StatusOr<std::vector<SessionEvent>> ServerSession::Receive(
    absl::string_view bytes) {
  parser_.Feed(bytes);
  std::vector<SessionEvent> events;
  for (;;) {
    absl::StatusOr<std::optional<Frame>> frame = parser_.Next();
    if (!frame.ok()) {
      GoAway(GoAwayStatus::kProtocolError);
      return frame.status();
    }
    if (!frame->has_value()) return events;
    if (absl::Status s = Handle(**std::move(frame), events); !s.ok()) return s;
  }
}

absl::Status ServerSession::Handle(Frame frame, std::vector<SessionEvent>& events) {
  if (auto* syn = std::get_if<SynStreamFrame>(&frame)) {
    OnSynStream(std::move(*syn), events);
  } else if (auto* data = std::get_if<DataFrame>(&frame)) {
    OnData(std::move(*data), events);
  } else if (auto* rst = std::get_if<RstStreamFrame>(&frame)) {
    // Never answer a RST_STREAM with one; unknown streams are simply gone.
    if (streams_.erase(rst->stream_id) > 0) {
      events.emplace_back(std::in_place_type<StreamReset>, rst->stream_id, rst->status);
    }
  } else if (auto* ping = std::get_if<PingFrame>(&frame)) {
    // Odd IDs are the client's pings: echo them. Even ones would answer our
    // own pings, and we send none.
    if (ping->id % 2 == 1) Queue(*ping);
  } else if (auto* away = std::get_if<GoAwayFrame>(&frame)) {
    peer_went_away_ = true;
    events.emplace_back(std::in_place_type<SessionGoAway>,
                        away->last_good_stream_id, away->status);
  } else if (auto* reply = std::get_if<SynReplyFrame>(&frame)) {
    // We open no streams, so nothing can be replied to.
    constexpr auto kStatus = static_cast<uint32_t>(RstStatus::kProtocolError);
    Queue(RstStreamFrame{reply->stream_id, kStatus});
    if (streams_.erase(reply->stream_id) > 0) {
      events.emplace_back(std::in_place_type<StreamReset>, reply->stream_id, kStatus);
    }
  } else if (auto* headers = std::get_if<HeadersFrame>(&frame)) {
    // Kubernetes sends no trailing headers; only a FIN on them matters.
    if (headers->fin) OnData(DataFrame{headers->stream_id, true, ""}, events);
  }
  // SETTINGS and WINDOW_UPDATE: ignored, see the header's flow-control note.
  return absl::OkStatus();
}

void ServerSession::OnSynStream(SynStreamFrame frame,
                                std::vector<SessionEvent>& events) {
  const uint32_t id = frame.stream_id;
  auto refuse = [&](RstStatus status) {
    Queue(RstStreamFrame{id, static_cast<uint32_t>(status)});
  };
  // Client streams are odd and increasing, as spdystream also insists.
  if (id % 2 == 0 || id <= last_peer_stream_id_) {
    refuse(RstStatus::kProtocolError);
    return;
  }
  last_peer_stream_id_ = id;
  if (went_away_ || streams_.size() >= options_.max_open_streams) {
    refuse(RstStatus::kRefusedStream);
    return;
  }
  StreamState& state = streams_[id];
  state.remote_finished = frame.fin;
  state.local_finished = frame.unidirectional;
  events.emplace_back(std::in_place_type<StreamOpened>, id,
                      std::move(frame.headers), frame.fin);
}

void ServerSession::OnData(DataFrame frame, std::vector<SessionEvent>& events) {
  auto it = streams_.find(frame.stream_id);
  // Unknown streams are usually ones we just reset; data after the peer's
  // FIN is a peer bug. Neither deserves a connection error.
  if (it == streams_.end() || it->second.remote_finished) return;
  if (!frame.data.empty()) {
    events.emplace_back(std::in_place_type<StreamData>, frame.stream_id,
                        std::move(frame.data));
  }
  if (frame.fin) {
    it->second.remote_finished = true;
    events.emplace_back(std::in_place_type<StreamFinished>, frame.stream_id);
    ForgetIfDone(frame.stream_id);
  }
}

absl::Status ServerSession::AcceptStream(uint32_t stream_id,
                                         const HeaderBlock& headers) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    return absl::NotFoundError(absl::StrCat("SPDY stream ", stream_id, " is not open"));
  }
  if (it->second.accepted) {
    return absl::FailedPreconditionError(
        absl::StrCat("SPDY stream ", stream_id, " was already accepted"));
  }
  std::string out;
  if (absl::Status s = writer_.Write(SynReplyFrame{stream_id, false, headers}, out);
      !s.ok()) {
    return s;
  }
  output_ += out;
  it->second.accepted = true;
  return absl::OkStatus();
}

absl::Status ServerSession::SendData(uint32_t stream_id, absl::string_view data,
                                     bool fin) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    return absl::NotFoundError(absl::StrCat("SPDY stream ", stream_id, " is not open"));
  }
  if (!it->second.accepted || it->second.local_finished) {
    return absl::FailedPreconditionError(absl::StrCat(
        "SPDY stream ", stream_id,
        it->second.accepted ? " is already closed for sending" : " was not accepted"));
  }
  // No window to wait for (spdystream does no flow control): cut and queue.
  do {
    const absl::string_view chunk = data.substr(0, options_.max_data_frame);
    data.remove_prefix(chunk.size());
    if (chunk.empty() && !fin) break;
    Queue(DataFrame{stream_id, fin && data.empty(), std::string(chunk)});
  } while (!data.empty());
  if (fin) {
    it->second.local_finished = true;
    ForgetIfDone(stream_id);
  }
  return absl::OkStatus();
}

absl::Status ServerSession::ResetStream(uint32_t stream_id, RstStatus status) {
  if (streams_.erase(stream_id) == 0) {
    return absl::NotFoundError(absl::StrCat("SPDY stream ", stream_id, " is not open"));
  }
  Queue(RstStreamFrame{stream_id, static_cast<uint32_t>(status)});
  return absl::OkStatus();
}

void ServerSession::GoAway(GoAwayStatus status) {
  if (went_away_) return;
  went_away_ = true;
  Queue(GoAwayFrame{last_peer_stream_id_, static_cast<uint32_t>(status)});
}

std::string ServerSession::TakeOutput() { return std::exchange(output_, {}); }

void ServerSession::Queue(const Frame& frame) {
  // Only frames built here, valid by construction, come through this path.
  writer_.Write(frame, output_).IgnoreError();
}

void ServerSession::ForgetIfDone(uint32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it != streams_.end() && it->second.local_finished &&
      it->second.remote_finished) {
    streams_.erase(it);
  }
}

}  // namespace vkhost::spdy
