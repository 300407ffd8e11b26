// KubeClient over cpp-httplib: connection pool, TLS material, auth headers,
// the rate limit, and the request/response/watch plumbing.
#include <httplib.h>
#include <netdb.h>
#include <signal.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "host/kube/client.h"
#include "host/kube/internal/json_fields.h"
#include "host/kube/internal/rate_limiter.h"
#include "host/kube/internal/token_source.h"
#include "host/kube/internal/url.h"
#include "host/kube/internal/watch_decoder.h"

namespace vkhost::kube {
namespace {

#if defined(__x86_64__)
constexpr char kArch[] = "amd64";
#elif defined(__aarch64__)
constexpr char kArch[] = "arm64";
#else
constexpr char kArch[] = "unknown";
#endif

constexpr absl::Duration kMaxRetryAfter = absl::Seconds(10);
// How long a watch may stay silent beyond its timeoutSeconds before the
// connection is presumed dead (bookmarks keep healthy ones talking).
constexpr absl::Duration kWatchReadSlack = absl::Seconds(60);
constexpr absl::Duration kWatchDefaultReadTimeout = absl::Minutes(65);

// ---------------------------------------------------------------------------
// TLS material

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

X509Ptr ParseCertificate(const std::string& pem) {
  auto bio = MemoryBio(pem);
  if (!bio) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr ParsePrivateKey(const std::string& pem) {
  auto bio = MemoryBio(pem);
  if (!bio) return nullptr;
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// A file readable only by us, removed when destroyed. httplib takes trusted
// CAs only as a file path if the system store must stay out of the trust
// decision, so inline CA data lands here.
class PrivateTempFile {
 public:
  static absl::StatusOr<std::unique_ptr<PrivateTempFile>> Create(
      const std::string& content) {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string path = absl::StrCat(tmpdir && *tmpdir ? tmpdir : "/tmp",
                                    "/vkhost-kube-ca-XXXXXX");
    const int fd = mkstemp(path.data());  // mode 0600
    if (fd < 0) {
      return absl::InternalError(
          absl::StrCat("cannot create a temp file for the cluster CA in ", path));
    }
    auto file = std::make_unique<PrivateTempFile>(path);
    size_t written = 0;
    while (written < content.size()) {
      const ssize_t n = write(fd, content.data() + written, content.size() - written);
      if (n <= 0) {
        close(fd);
        return absl::InternalError(absl::StrCat("cannot write ", path));
      }
      written += static_cast<size_t>(n);
    }
    close(fd);
    return file;
  }
  // Takes ownership of the file at `path`: it is removed on destruction.
  explicit PrivateTempFile(std::string path) : path_(std::move(path)) {}
  ~PrivateTempFile() { unlink(path_.c_str()); }
  PrivateTempFile(const PrivateTempFile&) = delete;
  PrivateTempFile& operator=(const PrivateTempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The first numeric address of `host`, for connecting to it while verifying
// the certificate against tls-server-name.
absl::StatusOr<std::string> ResolveNumeric(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(found, freeaddrinfo);
  char text[NI_MAXHOST];
  if (getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof text, nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host));
  }
  return std::string(text);
}

// ---------------------------------------------------------------------------
// Connection pool

using HttpClientPtr = std::unique_ptr<httplib::ClientImpl>;

// Hands out keep-alive clients, at most `max` at once; callers beyond that
// wait. httplib clients serialize their requests, hence one per caller.
// Thread-safe.
class ConnectionPool {
 public:
  using Factory = std::function<absl::StatusOr<HttpClientPtr>()>;

  ConnectionPool(int max, Factory factory)
      : max_(std::max(1, max)), factory_(std::move(factory)) {}

  class Lease {
   public:
    Lease(ConnectionPool* pool, HttpClientPtr client)
        : pool_(pool), client_(std::move(client)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (client_) pool_->Release(std::move(client_));
    }
    httplib::ClientImpl* get() { return client_.get(); }

   private:
    ConnectionPool* pool_;
    HttpClientPtr client_;
  };

  absl::StatusOr<Lease> Acquire() {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &ConnectionPool::CanHandOut));
      if (!idle_.empty()) {
        HttpClientPtr client = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(client));
      }
      ++created_;
    }
    absl::StatusOr<HttpClientPtr> client = factory_();
    if (!client.ok()) {
      absl::MutexLock lock(&mu_);
      --created_;
      return client.status();
    }
    return Lease(this, *std::move(client));
  }

 private:
  void Release(HttpClientPtr client) {
    absl::MutexLock lock(&mu_);
    idle_.push_back(std::move(client));
  }

  bool CanHandOut() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || created_ < max_;
  }

  const int max_;
  const Factory factory_;
  absl::Mutex mu_;
  std::vector<HttpClientPtr> idle_ ABSL_GUARDED_BY(mu_);
  int created_ ABSL_GUARDED_BY(mu_) = 0;
};

// ---------------------------------------------------------------------------
// The client

struct PatchFormat {
  PatchType type;
  const char* content_type;
};
constexpr PatchFormat kPatchFormats[] = {
    {PatchType::kMerge, "application/merge-patch+json"},
    {PatchType::kStrategicMerge, "application/strategic-merge-patch+json"},
    {PatchType::kJson, "application/json-patch+json"},
    {PatchType::kApply, "application/apply-patch+yaml"},
};

const char* PatchContentType(PatchType type) {
  for (const PatchFormat& f : kPatchFormats) {
    if (f.type == type) return f.content_type;
  }
  return "application/merge-patch+json";
}

// One request as the client sends it.
struct Call {
  std::string method;
  std::string path;   // URL path without the server's base path
  std::string query;  // "" or "?..."
  std::string body;
  std::string content_type;
};

// What each transport failure means, for the operator reading the log.
struct TransportErrorText {
  httplib::Error error;
  const char* text;
};
constexpr TransportErrorText kTransportErrors[] = {
    {httplib::Error::Connection, "cannot connect to the API server"},
    {httplib::Error::ConnectionTimeout, "connecting to the API server timed out"},
    {httplib::Error::Read, "the connection broke while reading the response"},
    {httplib::Error::Write, "the connection broke while sending the request"},
    {httplib::Error::SSLConnection, "the TLS handshake with the API server failed"},
    {httplib::Error::SSLLoadingCerts, "the CA or client certificates could not be loaded"},
    {httplib::Error::ExceedRedirectCount, "too many redirects"},
    {httplib::Error::Canceled, "the request was cancelled"},
};

std::string ConnectionErrorText(httplib::Error error, long verify_result,
                                const std::string& verified_name) {
  if (error != httplib::Error::SSLServerVerification) {
    for (const TransportErrorText& t : kTransportErrors) {
      if (t.error == error) return t.text;
    }
    return absl::StrCat("transport error: ", httplib::to_string(error));
  }
  if (verify_result != X509_V_OK) {
    return absl::StrCat("the server's certificate was rejected (",
                        X509_verify_cert_error_string(verify_result),
                        "); check certificate-authority and the server URL");
  }
  return absl::StrCat("the server's certificate is not valid for \"", verified_name,
                      "\"; check the server URL or set tls-server-name");
}

class HttpKubeClient final : public KubeClient {
 public:
  HttpKubeClient(RestConfig config, ClientOptions options,
                 internal::ServerAddress address,
                 std::unique_ptr<PrivateTempFile> ca_file)
      : config_(std::move(config)),
        options_(std::move(options)),
        address_(std::move(address)),
        ca_file_(std::move(ca_file)),
        user_agent_(options_.user_agent.empty()
                        ? absl::StrCat("vkhost/", VKHOST_VERSION, " (linux/", kArch, ")")
                        : options_.user_agent),
        tokens_(config_.token, config_.token_file),
        limiter_(options_.qps, options_.burst),
        pool_(options_.max_connections,
              [this] { return MakeHttpClient(options_.request_timeout, true); }) {}

  absl::Status Init() { return tokens_.Init(); }

  absl::StatusOr<nlohmann::json> Get(const Target& target) override {
    absl::StatusOr<std::string> path = ResourcePath(target);
    if (!path.ok()) return path.status();
    return Execute({"GET", *path, "", "", ""});
  }

  absl::StatusOr<nlohmann::json> List(const Target& target,
                                      const ListOptions& options) override {
    if (!target.name.empty()) {
      return absl::InvalidArgumentError("List needs a collection, not a name");
    }
    absl::StatusOr<std::string> path = ResourcePath(target);
    if (!path.ok()) return path.status();
    return Execute({"GET", *path, internal::ListQuery(options), "", ""});
  }

  absl::StatusOr<nlohmann::json> Create(const Target& target,
                                        const nlohmann::json& body,
                                        const WriteOptions& options) override {
    absl::StatusOr<std::string> path = ResourcePath(target);
    if (!path.ok()) return path.status();
    return Execute({"POST", *path, internal::WriteQuery(options, false),
                    internal::DumpJson(body), "application/json"});
  }

  absl::StatusOr<nlohmann::json> Update(const Target& target,
                                        const nlohmann::json& body,
                                        const WriteOptions& options) override {
    if (target.name.empty()) return absl::InvalidArgumentError("Update needs a name");
    absl::StatusOr<std::string> path = ResourcePath(target);
    if (!path.ok()) return path.status();
    return Execute({"PUT", *path, internal::WriteQuery(options, false),
                    internal::DumpJson(body), "application/json"});
  }

  absl::StatusOr<nlohmann::json> Patch(const Target& target, PatchType type,
                                       const nlohmann::json& patch,
                                       const WriteOptions& options) override {
    if (target.name.empty()) return absl::InvalidArgumentError("Patch needs a name");
    if (type == PatchType::kApply && options.field_manager.empty()) {
      return absl::InvalidArgumentError("server-side apply needs a field manager");
    }
    if (type == PatchType::kJson && !patch.is_array()) {
      return absl::InvalidArgumentError("a JSON patch must be an array of operations");
    }
    if (type != PatchType::kJson && !patch.is_object()) {
      return absl::InvalidArgumentError("a merge or apply patch must be an object");
    }
    absl::StatusOr<std::string> path = ResourcePath(target);
    if (!path.ok()) return path.status();
    return Execute({"PATCH", *path,
                    internal::WriteQuery(options, type == PatchType::kApply),
                    internal::DumpJson(patch), PatchContentType(type)});
  }

  absl::StatusOr<nlohmann::json> Delete(const Target& target,
                                        const DeleteOptions& options) override {
    if (target.name.empty()) return absl::InvalidArgumentError("Delete needs a name");
    absl::StatusOr<std::string> path = ResourcePath(target);
    if (!path.ok()) return path.status();
    return Execute({"DELETE", *path, "",
                    internal::DumpJson(internal::DeleteOptionsBody(options)),
                    "application/json"});
  }

  absl::Status Watch(const Target& target, const WatchOptions& options,
                     const WatchEventHandler& on_event,
                     WatchCancel* cancel) override;

 private:
  absl::StatusOr<HttpClientPtr> MakeHttpClient(absl::Duration read_timeout,
                                               bool keep_alive) const;
  void PrepareRequest(const Call& call, httplib::Request* req);
  const std::string& VerifiedName() const {
    return config_.tls_server_name.empty() ? address_.host : config_.tls_server_name;
  }
  std::string Describe(const Call& call) const {
    return absl::StrCat(call.method, " ", config_.server, call.path, call.query);
  }
  absl::StatusOr<nlohmann::json> Execute(const Call& call);

  const RestConfig config_;
  const ClientOptions options_;
  const internal::ServerAddress address_;
  const std::unique_ptr<PrivateTempFile> ca_file_;
  const std::string user_agent_;
  internal::TokenSource tokens_;
  internal::RateLimiter limiter_;
  ConnectionPool pool_;
};

absl::StatusOr<HttpClientPtr> HttpKubeClient::MakeHttpClient(
    absl::Duration read_timeout, bool keep_alive) const {
  HttpClientPtr client;
  if (address_.https) {
    X509Ptr cert;
    PkeyPtr key;
    if (!config_.client_cert_pem.empty()) {
      cert = ParseCertificate(config_.client_cert_pem);
      key = ParsePrivateKey(config_.client_key_pem);
      if (!cert || !key) {
        return absl::InvalidArgumentError(absl::StrCat(
            config_.source, ": the client certificate or key is not valid PEM"));
      }
    }
    auto ssl = std::make_unique<httplib::SSLClient>(VerifiedName(), address_.port,
                                                    cert.get(), key.get());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          config_.source, ": cannot set up TLS (does the client key match the certificate?)"));
    }
    if (config_.insecure_skip_tls_verify) {
      ssl->enable_server_certificate_verification(false);
    } else if (ca_file_) {
      ssl->set_ca_cert_path(ca_file_->path());
    }
    if (!config_.tls_server_name.empty()) {
      absl::StatusOr<std::string> ip = ResolveNumeric(address_.host);
      if (!ip.ok()) return ip.status();
      ssl->set_hostname_addr_map({{config_.tls_server_name, *ip}});
    }
    client = std::move(ssl);
  } else {
    client = std::make_unique<httplib::ClientImpl>(address_.host, address_.port);
  }
  client->set_keep_alive(keep_alive);
  client->set_follow_location(false);
  client->set_decompress(true);
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(
      std::chrono::microseconds(absl::ToInt64Microseconds(options_.connect_timeout)));
  client->set_read_timeout(
      std::chrono::microseconds(absl::ToInt64Microseconds(read_timeout)));
  client->set_write_timeout(
      std::chrono::microseconds(absl::ToInt64Microseconds(options_.request_timeout)));
  return client;
}

void HttpKubeClient::PrepareRequest(const Call& call, httplib::Request* req) {
  req->method = call.method;
  req->path = absl::StrCat(address_.base_path, call.path, call.query);
  req->set_header("Host", address_.host_header);
  req->set_header("Accept", "application/json");
  req->set_header("User-Agent", user_agent_);
  if (std::string token = tokens_.Token(); !token.empty()) {
    req->set_header("Authorization", absl::StrCat("Bearer ", token));
  }
  if (!call.content_type.empty()) {
    req->set_header("Content-Type", call.content_type);
    req->body = call.body;
  }
}

absl::StatusOr<nlohmann::json> HttpKubeClient::Execute(const Call& call) {
  for (int attempt = 0;; ++attempt) {
    limiter_.Wait();
    httplib::Request req;
    PrepareRequest(call, &req);
    req.set_header("Accept-Encoding", "gzip");
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    bool sent;
    long verify_result = 0;
    {
      absl::StatusOr<ConnectionPool::Lease> client = pool_.Acquire();
      if (!client.ok()) return client.status();
      httplib::ClientImpl* http = client->get();
      sent = http->send(req, res, error);
      if (!sent && address_.https) {
        verify_result = static_cast<httplib::SSLClient*>(http)->get_openssl_verify_result();
      }
    }
    // A pooled keep-alive connection the server closed (it restarted, or
    // dropped idle connections) fails on first use; one retry on a fresh
    // connection is safe when the request never left, or when it is a read.
    bool stale = error == httplib::Error::Write ||
                 (error == httplib::Error::Read && call.method == "GET");
    if (!sent && stale && attempt == 0) continue;
    if (!sent) {
      return absl::UnavailableError(absl::StrCat(
          Describe(call), ": ", ConnectionErrorText(error, verify_result, VerifiedName())));
    }
    if (res.status == 429 && attempt < options_.max_retries_on_429) {
      int seconds = 1;
      if (!absl::SimpleAtoi(res.get_header_value("Retry-After"), &seconds) || seconds < 0) {
        seconds = 1;
      }
      absl::SleepFor(std::min(kMaxRetryAfter, absl::Seconds(seconds)));
      continue;
    }
    if (res.status < 200 || res.status > 299) {
      return StatusFromResponse(call.method, absl::StrCat(call.path, call.query),
                                res.status, res.body);
    }
    if (res.body.empty()) return nlohmann::json::object();
    nlohmann::json parsed = nlohmann::json::parse(res.body, nullptr, false);
    if (parsed.is_discarded()) {
      return absl::InternalError(
          absl::StrCat(Describe(call), ": the response is not JSON"));
    }
    return parsed;
  }
}

absl::Status HttpKubeClient::Watch(const Target& target,
                                   const WatchOptions& options,
                                   const WatchEventHandler& on_event,
                                   WatchCancel* cancel) {
  if (!target.name.empty()) {
    return absl::InvalidArgumentError(
        "Watch needs a collection; select one object with a field selector");
  }
  absl::StatusOr<std::string> path = ResourcePath(target);
  if (!path.ok()) return path.status();
  const Call call{"GET", *path, internal::WatchQuery(options), "", ""};

  limiter_.Wait();  // the stream itself is not rate limited
  const absl::Duration read_timeout =
      options.timeout_seconds > 0
          ? absl::Seconds(options.timeout_seconds) + kWatchReadSlack
          : kWatchDefaultReadTimeout;
  absl::StatusOr<HttpClientPtr> client = MakeHttpClient(read_timeout, false);
  if (!client.ok()) return client.status();
  httplib::ClientImpl* raw = client->get();
  if (cancel && !cancel->Register([raw] { raw->stop(); })) {
    return absl::CancelledError("watch cancelled");
  }

  int http_status = 0;
  std::string error_body;
  internal::WatchDecoder decoder;
  absl::Status stream_status;  // why the content receiver stopped reading
  httplib::Request req;
  PrepareRequest(call, &req);
  req.response_handler = [&](const httplib::Response& res) {
    http_status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    if (cancel && cancel->cancelled()) return false;
    if (http_status != 200) {
      if (error_body.size() < (1 << 16)) error_body.append(data, size);
      return true;
    }
    stream_status = decoder.Feed(std::string_view(data, size), on_event);
    return stream_status.ok();
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool sent = (*client)->send(req, res, error);
  long verify_result = 0;
  if (!sent && address_.https) {
    verify_result = static_cast<httplib::SSLClient*>(raw)->get_openssl_verify_result();
  }
  if (cancel) cancel->Unregister();

  if (cancel && cancel->cancelled()) return absl::CancelledError("watch cancelled");
  if (absl::IsCancelled(stream_status)) return absl::OkStatus();  // handler said stop
  if (!stream_status.ok()) {
    return absl::DataLossError(absl::StrCat(Describe(call), ": ", stream_status.message()));
  }
  if (http_status != 0 && http_status != 200) {
    return StatusFromResponse(call.method, absl::StrCat(call.path, call.query),
                              http_status, error_body);
  }
  if (!sent) {
    return absl::UnavailableError(absl::StrCat(
        Describe(call), ": ", ConnectionErrorText(error, verify_result, VerifiedName())));
  }
  return absl::OkStatus();
}

// A write to a connection the server (or WatchCancel's shutdown) closed must
// fail with EPIPE, not kill the process: OpenSSL writes through write(2),
// which has no MSG_NOSIGNAL. gRPC makes the same choice at init.
void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<KubeClient>> NewKubeClient(
    const RestConfig& config, const ClientOptions& options) {
  IgnoreSigpipe();
  absl::StatusOr<internal::ServerAddress> address =
      internal::ParseServerUrl(config.server);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.source, ": ", address.status().message()));
  }
  std::unique_ptr<PrivateTempFile> ca_file;
  if (address->https && !config.insecure_skip_tls_verify && !config.ca_pem.empty()) {
    if (!ParseCertificate(config.ca_pem)) {
      return absl::InvalidArgumentError(absl::StrCat(
          config.source, ": the certificate authority is not a PEM certificate"));
    }
    absl::StatusOr<std::unique_ptr<PrivateTempFile>> file =
        PrivateTempFile::Create(config.ca_pem);
    if (!file.ok()) return file.status();
    ca_file = *std::move(file);
  }
  if (!config.client_cert_pem.empty() &&
      (!ParseCertificate(config.client_cert_pem) || !ParsePrivateKey(config.client_key_pem))) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source, ": the client certificate or key is not valid PEM"));
  }
  auto client = std::make_unique<HttpKubeClient>(config, options, *std::move(address),
                                                 std::move(ca_file));
  if (absl::Status s = client->Init(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(config.source, ": ", s.message()));
  }
  return std::unique_ptr<KubeClient>(std::move(client));
}

}  // namespace vkhost::kube
