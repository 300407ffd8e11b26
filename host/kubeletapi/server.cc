// The Beast/Asio side of KubeletServer: listener, TLS sessions, HTTP framing,
// chunked log streaming and the hand-over of upgraded connections. Everything
// that is not about sockets lives in internal/ (this is the one translation
// unit that pays for Beast).
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "common/log/log.h"
#include "host/kubeletapi/internal/log_stream.h"
#include "host/kubeletapi/internal/request_handler.h"
#include "host/kubeletapi/internal/tls.h"
#include "host/kubeletapi/kubelet_api.h"

namespace vkhost::kubeletapi {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using internal::Action;
using internal::HttpRequest;
using internal::HttpResponse;

constexpr size_t kMaxBodyBytes = 1 << 20;
constexpr size_t kUpgradeReadBytes = 64 * 1024;
// How long Stop() waits for sessions to wind down before giving up on them.
constexpr absl::Duration kStopGrace = absl::Seconds(10);

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

bool WantsUpgrade(const http::request<http::string_body>& req) {
  auto connection = req.find(http::field::connection);
  auto upgrade = req.find(http::field::upgrade);
  if (connection == req.end() || upgrade == req.end()) return false;
  std::string value = absl::AsciiStrToLower(
      std::string(connection->value().data(), connection->value().size()));
  return absl::StrContains(value, "upgrade");
}

HttpRequest ToHttpRequest(http::request<http::string_body>& req) {
  HttpRequest out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  for (const auto& field : req) {
    out.headers.emplace_back(std::string(field.name_string()),
                             std::string(field.value()));
  }
  out.wants_upgrade = WantsUpgrade(req);
  out.body = std::move(req.body());
  return out;
}

}  // namespace

class Session;

// The server's state; KubeletServer::Impl is this (declared out here so that
// Session may name it).
class KubeletServerCore {
 public:
  KubeletServerCore(KubeletServerOptions options,
                    KubeletServerDependencies dependencies)
      : options_(std::move(options)),
        dependencies_(dependencies),
        handler_(options_, dependencies_),
        io_(std::max(1, options_.io_threads)),
        ssl_context_(ssl::context::tls_server),
        acceptor_(net::make_strand(io_)),  // serializes Accept and Stop's close
        blocking_(std::max(1, options_.blocking_threads)) {}

  absl::Status Start();
  void Stop();
  uint16_t port() const { return port_.load(); }
  size_t live_sessions() const {
    absl::MutexLock lock(&sessions_mu_);
    return sessions_.size();
  }

  void Register(const std::shared_ptr<Session>& session);
  void Unregister(Session* session) {
    absl::MutexLock lock(&sessions_mu_);
    sessions_.erase(session);
  }

  const KubeletServerOptions& options() const { return options_; }
  const KubeletServerDependencies& dependencies() const { return dependencies_; }
  internal::RequestHandler& handler() { return handler_; }
  ssl::context& ssl_context() { return ssl_context_; }
  net::thread_pool& blocking() { return blocking_; }

 private:
  void Accept();

  const KubeletServerOptions options_;
  const KubeletServerDependencies dependencies_;
  internal::RequestHandler handler_;

  // Declared before io_ so that sessions destroyed with io_'s pending
  // handlers can still unregister.
  mutable absl::Mutex sessions_mu_;
  std::map<Session*, std::weak_ptr<Session>> sessions_
      ABSL_GUARDED_BY(sessions_mu_);

  net::io_context io_;
  ssl::context ssl_context_;
  tcp::acceptor acceptor_;
  net::thread_pool blocking_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<uint16_t> port_{0};
  absl::Mutex stop_mu_;
  bool started_ ABSL_GUARDED_BY(stop_mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

// One client connection. Owned by the shared_ptrs of its pending handlers
// (and of a running log stream or upgrade handler); all its state is touched
// only on its strand.
class Session final : public std::enable_shared_from_this<Session>,
                      public internal::LogSink,
                      public UpgradedConnection {
 public:
  Session(tcp::socket socket, KubeletServerCore& server)
      : server_(server),
        stream_(std::move(socket), server.ssl_context()),
        idle_timer_(stream_.get_executor()) {}
  ~Session() override { server_.Unregister(this); }

  void Run() {
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->Handshake(); });
  }

  // Stop(): closes the connection whatever it is doing.
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->CloseSocket();
    });
  }

  // internal::LogSink (gRPC threads).
  void OnLogBytes(std::string bytes) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
                self->WriteLogBytes(std::move(bytes));
              });
  }
  void OnLogEnd(absl::Status status) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), status = std::move(status)] {
                self->EndLog(status);
              });
  }

  // UpgradedConnection (any thread).
  void Read(std::function<void(absl::Status, std::string_view)> done) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), done = std::move(done)]() mutable {
                self->UpgradedRead(std::move(done));
              });
  }
  void Write(std::string data, std::function<void(absl::Status)> done) override {
    net::post(stream_.get_executor(), [self = shared_from_this(),
                                       data = std::move(data),
                                       done = std::move(done)]() mutable {
      self->UpgradedWrite(std::move(data), std::move(done));
    });
  }
  void Close() override { Shutdown(); }
  void Post(std::function<void()> task) override {
    net::post(stream_.get_executor(),
              [self = shared_from_this(), task = std::move(task)] { task(); });
  }

 private:
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void CloseSocket() {
    closed_ = true;
    idle_timer_.cancel();
    if (log_stream_) log_stream_->Cancel();
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
  }

  void Handshake() {
    Tcp().expires_after(ToChrono(server_.options().handshake_timeout));
    stream_.async_handshake(
        ssl::stream_base::server,
        [self = shared_from_this()](beast::error_code ec) {
          if (ec) return self->CloseSocket();
          self->certificate_ = internal::InspectPeer(self->stream_.native_handle());
          self->ReadRequest();
        });
  }

  void ReadRequest() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options().max_header_bytes));
    parser_->body_limit(kMaxBodyBytes);
    Tcp().expires_after(ToChrono(server_.options().idle_timeout));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRequest(ec);
                     });
  }

  void OnRequest(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return GracefulClose();
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      keep_alive_ = false;
      return WriteResponse(internal::TextResponse(
          ec == http::error::header_limit ? 431 : 413,
          ec == http::error::header_limit ? "request header too large\n"
                                          : "request body too large\n"));
    }
    if (ec == http::error::bad_target || ec == http::error::bad_method ||
        ec == http::error::bad_version || ec == http::error::bad_field ||
        ec == http::error::bad_value || ec == http::error::bad_line_ending) {
      keep_alive_ = false;
      return WriteResponse(internal::TextResponse(400, "malformed request\n"));
    }
    if (ec) return CloseSocket();
    http::request<http::string_body> request = parser_->release();
    keep_alive_ = request.keep_alive();
    // No deadline while the handler runs; it bounds its own calls.
    Tcp().expires_never();
    auto work = std::make_shared<HttpRequest>(ToHttpRequest(request));
    work->certificate = certificate_;
    net::post(server_.blocking(), [self = shared_from_this(), work] {
      Action action = self->server_.handler().Handle(*work);
      net::post(self->stream_.get_executor(),
                [self, action = std::move(action)]() mutable {
                  self->Perform(std::move(action));
                });
    });
  }

  void Perform(Action action) {
    if (closed_) return;
    if (auto* response = std::get_if<HttpResponse>(&action)) {
      return WriteResponse(std::move(*response));
    }
    if (auto* logs = std::get_if<internal::StartLogs>(&action)) {
      return BeginLog(std::move(*logs));
    }
    BeginUpgrade(std::move(std::get<internal::StartUpgrade>(action)));
  }

  // --- plain responses ---------------------------------------------------

  void WriteResponse(HttpResponse response) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), 11);
    res->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res->set(name, value);
    res->body() = std::move(response.body);
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    Tcp().expires_after(ToChrono(server_.options().write_timeout));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return self->CloseSocket();
                        // A background read may be pending (log streams):
                        // a TLS shutdown would race it, so just close.
                        if (self->log_started_) return self->CloseSocket();
                        if (!self->keep_alive_) return self->GracefulClose();
                        self->ReadRequest();
                      });
  }

  void GracefulClose() {
    if (closed_) return;
    Tcp().expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
      self->CloseSocket();
    });
  }

  // --- container logs ----------------------------------------------------
  //
  // The status line waits for the first bytes (or the end) so that a
  // NOT_FOUND from the plugin still becomes a 404. The response says
  // Connection: close: while streaming, a read watches for the client going
  // away, and it cannot be handed back to the HTTP parser cleanly.

  void BeginLog(internal::StartLogs start) {
    log_started_ = true;
    log_pod_ = start.pod_name;
    log_container_ = start.container;
    log_stream_ = internal::LogStream::Start(start.connection, start.request,
                                             start.format, start.deadline,
                                             shared_from_this());
    WatchForClientGone();
  }

  void WatchForClientGone() {
    auto buffer = std::make_shared<std::array<char, 512>>();
    stream_.async_read_some(
        net::buffer(*buffer),
        [self = shared_from_this(), buffer](beast::error_code ec, size_t) {
          if (self->closed_ || self->log_done_) return;
          if (ec) {
            // The client went away: stop the plugin's stream.
            if (self->log_stream_) self->log_stream_->Cancel();
            return;
          }
          self->WatchForClientGone();  // stray bytes are ignored
        });
  }

  void WriteLogBytes(std::string bytes) {
    if (closed_) return;
    log_chunk_ = std::move(bytes);
    if (!log_header_sent_) {
      log_header_sent_ = true;
      log_writing_ = true;
      log_response_.emplace(http::status::ok, 11);
      log_response_->set(http::field::content_type, "text/plain");
      log_response_->set(http::field::connection, "close");
      log_response_->chunked(true);
      log_serializer_.emplace(*log_response_);
      http::async_write_header(
          stream_, *log_serializer_,
          [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec) return self->LogWriteFailed();
            self->WriteLogChunk();
          });
      return;
    }
    WriteLogChunk();
  }

  void WriteLogChunk() {
    log_writing_ = true;
    net::async_write(stream_, http::make_chunk(net::buffer(log_chunk_)),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->log_writing_ = false;
                       if (ec) return self->LogWriteFailed();
                       if (self->pending_end_) {
                         // The plugin stream ended (e.g. cancelled) while
                         // this chunk was being written.
                         absl::Status status = *std::move(self->pending_end_);
                         self->pending_end_.reset();
                         return self->EndLog(status);
                       }
                       if (self->log_stream_) self->log_stream_->ReadMore();
                     });
  }

  void LogWriteFailed() {
    log_writing_ = false;
    if (log_stream_) log_stream_->Cancel();
    CloseSocket();
  }

  void EndLog(const absl::Status& status) {
    if (log_writing_) {
      pending_end_ = status;
      return;
    }
    log_done_ = true;
    log_stream_.reset();
    if (closed_) return;
    if (!log_header_sent_) {
      keep_alive_ = false;
      if (status.ok()) {
        return WriteResponse(internal::TextResponse(200, ""));
      }
      return WriteResponse(
          internal::LogFailureResponse(status, log_pod_, log_container_));
    }
    if (!status.ok()) {
      // The status line is gone; ending without the last chunk tells the
      // client the body is incomplete.
      VKLOG(INFO) << "kubelet API: log stream of " << log_pod_ << "/"
                  << log_container_ << " ended: " << status;
      return CloseSocket();
    }
    net::async_write(stream_, http::make_chunk_last(),
                     [self = shared_from_this()](beast::error_code, size_t) {
                       self->CloseSocket();
                     });
  }

  // --- upgrades ------------------------------------------------------------

  void BeginUpgrade(internal::StartUpgrade start) {
    auto res = std::make_shared<http::response<http::empty_body>>(
        http::status::switching_protocols, 11);
    for (const auto& [name, value] : start.response.headers) res->set(name, value);
    auto request = std::make_shared<UpgradeRequest>(std::move(start.request));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, request](beast::error_code ec,
                                                                size_t) {
                        if (ec) return self->CloseSocket();
                        // The session owns the connection from here; the
                        // request's read/write deadlines must not cut it.
                        self->Tcp().expires_never();
                        self->StartIdleTimer();
                        UpgradeHandler* handler =
                            self->server_.dependencies().upgrades;
                        handler->Serve(*request, self);
                      });
  }

  void UpgradedRead(std::function<void(absl::Status, std::string_view)> done) {
    if (closed_) return done(absl::CancelledError("connection closed"), {});
    if (buffer_.size() > 0) {
      // Bytes the client sent right behind its request header.
      std::string data = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      return done(absl::OkStatus(), data);
    }
    stream_.async_read_some(
        buffer_.prepare(kUpgradeReadBytes),
        [self = shared_from_this(), done = std::move(done)](beast::error_code ec,
                                                            size_t n) {
          if (ec) {
            return done(absl::UnavailableError(
                            absl::StrCat("connection read: ", ec.message())),
                        {});
          }
          self->buffer_.commit(n);
          self->last_activity_ = std::chrono::steady_clock::now();
          std::string data = beast::buffers_to_string(self->buffer_.data());
          self->buffer_.consume(n);
          done(absl::OkStatus(), data);
        });
  }

  void UpgradedWrite(std::string data, std::function<void(absl::Status)> done) {
    if (closed_) return done(absl::CancelledError("connection closed"));
    auto owned = std::make_shared<std::string>(std::move(data));
    net::async_write(stream_, net::buffer(*owned),
                     [self = shared_from_this(), owned,
                      done = std::move(done)](beast::error_code ec, size_t) {
                       if (ec) {
                         return done(absl::UnavailableError(
                             absl::StrCat("connection write: ", ec.message())));
                       }
                       self->last_activity_ = std::chrono::steady_clock::now();
                       done(absl::OkStatus());
                     });
  }

  // --- idle upgraded sessions -----------------------------------------------
  //
  // A session that moves no byte either way for the streaming idle timeout
  // is closed, which its handler sees as a failed read and ends (cancelling
  // the plugin stream). One timer per session, re-armed for what is left.

  void StartIdleTimer() {
    const absl::Duration timeout = server_.options().streaming_connection_idle_timeout;
    if (timeout <= absl::ZeroDuration()) return;
    last_activity_ = std::chrono::steady_clock::now();
    ArmIdleTimer(ToChrono(timeout));
  }

  void ArmIdleTimer(std::chrono::steady_clock::duration after) {
    idle_timer_.expires_after(after);
    // Weak: the timer must not keep a session alive that its handler and
    // peer are done with.
    idle_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || self == nullptr || self->closed_) return;
      const auto timeout = ToChrono(self->server_.options().streaming_connection_idle_timeout);
      const auto idle = std::chrono::steady_clock::now() - self->last_activity_;
      if (idle < timeout) return self->ArmIdleTimer(timeout - idle);
      VKLOG(INFO) << "kubelet API: closing a streaming connection idle for "
                  << self->server_.options().streaming_connection_idle_timeout;
      self->CloseSocket();
    });
  }

  KubeletServerCore& server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  net::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point last_activity_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  internal::PeerCertificate certificate_;
  bool keep_alive_ = true;
  bool closed_ = false;

  std::shared_ptr<internal::LogStream> log_stream_;
  std::string log_pod_;
  std::string log_container_;
  std::string log_chunk_;
  bool log_started_ = false;
  bool log_header_sent_ = false;
  bool log_writing_ = false;
  bool log_done_ = false;
  std::optional<absl::Status> pending_end_;
  std::optional<http::response<http::empty_body>> log_response_;
  std::optional<http::response_serializer<http::empty_body>> log_serializer_;
};

void KubeletServerCore::Register(const std::shared_ptr<Session>& session) {
  absl::MutexLock lock(&sessions_mu_);
  sessions_[session.get()] = session;
}

absl::Status KubeletServerCore::Start() {
  absl::MutexLock lock(&stop_mu_);
  if (started_) return absl::FailedPreconditionError("already started");
  if (options_.node_name.empty()) {
    return absl::InvalidArgumentError("the kubelet API needs the node name");
  }
  if (absl::Status s = internal::ConfigureServerContext(
          ssl_context_.native_handle(), options_);
      !s.ok()) {
    return s;
  }
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(options_.address, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubelet API listen address \"", options_.address, "\" is not an IP address"));
  }
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("kubelet API cannot listen on ",
                                               options_.address, ":", options_.port,
                                               ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  started_ = true;
  work_.emplace(io_.get_executor());
  Accept();
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
  VKLOG(INFO) << "kubelet API listening on " << options_.address << ":" << port_
              << (options_.client_ca_file.empty() ? "" : " (client certificates accepted)")
              << (options_.anonymous_auth ? " (anonymous requests allowed)" : "");
  return absl::OkStatus();
}

void KubeletServerCore::Accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec,
                                                        tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      auto session = std::make_shared<Session>(std::move(socket), *this);
      Register(session);
      session->Run();
    } else {
      VKLOG(WARNING) << "kubelet API: accept failed: " << ec.message();
    }
    Accept();
  });
}

void KubeletServerCore::Stop() {
  absl::MutexLock lock(&stop_mu_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    absl::MutexLock sessions(&sessions_mu_);
    for (auto& [raw, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (const auto& session : live) session->Shutdown();
  live.clear();
  {
    absl::MutexLock sessions(&sessions_mu_);
    auto none_left = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sessions_mu_) {
      return sessions_.empty();
    };
    if (!sessions_mu_.AwaitWithTimeout(absl::Condition(&none_left), kStopGrace)) {
      VKLOG(WARNING) << "kubelet API: " << sessions_.size()
                     << " sessions still open after " << kStopGrace
                     << "; stopping anyway";
    }
  }
  blocking_.join();
  work_.reset();
  io_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  VKLOG(INFO) << "kubelet API stopped";
}

class KubeletServer::Impl : public KubeletServerCore {
 public:
  using KubeletServerCore::KubeletServerCore;
};

KubeletServer::KubeletServer(KubeletServerOptions options,
                             KubeletServerDependencies dependencies)
    : impl_(std::make_unique<Impl>(std::move(options), dependencies)) {}

KubeletServer::~KubeletServer() { Stop(); }

absl::Status KubeletServer::Start() { return impl_->Start(); }
void KubeletServer::Stop() { impl_->Stop(); }
uint16_t KubeletServer::port() const { return impl_->port(); }
size_t KubeletServer::live_sessions() const { return impl_->live_sessions(); }

}  // namespace vkhost::kubeletapi
