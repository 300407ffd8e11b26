// PluginConnection: launch (spawn + handshake) or dial, then negotiate.

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"
#include "host/plugin/child_process.h"
#include "host/plugin/plugin.h"

extern char** environ;

namespace vkhost::plugin {
namespace {

using internal::ChildProcess;
using internal::ExitInfo;

constexpr size_t kStderrTailBytes = 4096;
// Lines of the stderr tail quoted in an error message.
constexpr int kTailLinesInMessage = 20;
constexpr size_t kMaxQuotedLine = 200;
// Identity calls during negotiation (spec.md §8 default for Identity).
constexpr absl::Duration kIdentityDeadline = absl::Seconds(5);
// How long a plugin that closed stdout gets to exit and flush stderr, so the
// error message can say how it ended.
constexpr absl::Duration kExitSettleTime = absl::Seconds(2);
// Messages from the host can be 64 MiB (spec.md §9); accept as much back.
constexpr int kMaxMessageBytes = 64 * 1024 * 1024;

std::string Quote(absl::string_view text) {
  std::string clipped(text.substr(0, kMaxQuotedLine));
  std::string out = absl::StrCat("\"", absl::CHexEscape(clipped), "\"");
  if (text.size() > kMaxQuotedLine) out += "...";
  return out;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string OfferedList(const std::vector<int>& offered) {
  return absl::StrJoin(offered, ",");
}

std::string CodeName(const grpc::Status& status) {
  return absl::StatusCodeToString(
      static_cast<absl::StatusCode>(status.error_code()));
}

// The plugin's environment: the host's, then the handshake variables, then
// `extra_env`; a later entry for the same name replaces an earlier one.
class Environment {
 public:
  Environment() {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) Set(*e);
  }
  void Set(const std::string& entry) {
    std::string name = entry.substr(0, entry.find('='));
    for (std::string& existing : entries_) {
      if (existing.substr(0, existing.find('=')) == name) {
        existing = entry;
        return;
      }
    }
    entries_.push_back(entry);
  }
  const std::vector<std::string>& entries() const { return entries_; }

 private:
  std::vector<std::string> entries_;
};

std::vector<std::string> PluginEnvironment(const PluginSource& source) {
  Environment env;
  env.Set(absl::StrCat(kMagicCookieEnv, "=", kMagicCookieValue));
  env.Set(absl::StrCat(kProtocolVersionsEnv, "=",
                       OfferedList(source.offered_protocols)));
  if (!source.socket_dir.empty()) {
    env.Set(absl::StrCat(kSocketDirEnv, "=", source.socket_dir));
  }
  for (const std::string& entry : source.extra_env) env.Set(entry);
  return env.entries();
}

struct Handshake {
  int protocol_major = 0;
  std::string socket_path;
};

// Checks one handshake line (spec.md §2.1 item 4) against what vkhost
// offered. `who` names the plugin in messages, e.g. `plugin "./x"`.
absl::StatusOr<Handshake> ParseHandshake(const std::string& line,
                                         const std::vector<int>& offered,
                                         const std::string& who) {
  std::vector<std::string> f = absl::StrSplit(line, '|');
  if (f.size() != 6 || f[0] != "VKHOST") {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " printed ", Quote(line),
        " instead of a handshake line (want VKHOST|", kCoreVersion,
        "|<protocol>|unix|<socket>|grpc)"));
  }
  int core = 0;
  if (!absl::SimpleAtoi(f[1], &core) || core != kCoreVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " uses handshake core version ", Quote(f[1]),
        ", but this vkhost understands only ", kCoreVersion,
        " (is the plugin newer than the host?)"));
  }
  Handshake h;
  if (!absl::SimpleAtoi(f[2], &h.protocol_major) ||
      std::find(offered.begin(), offered.end(), h.protocol_major) ==
          offered.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, " chose protocol ", f[2], ", but vkhost offered ",
                     OfferedList(offered)));
  }
  if (f[3] != "unix") {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " announced network ", Quote(f[3]),
        ", but in launch mode vkhost dials only unix sockets"));
  }
  if (f[5] != "grpc") {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " announced protocol ", Quote(f[5]),
        ", but vkhost speaks only grpc"));
  }
  if (f[4].empty() || f[4][0] != '/') {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " announced socket path ", Quote(f[4]),
        ", which is not absolute"));
  }
  h.socket_path = f[4];
  return h;
}

absl::Status WithContext(const absl::Status& status, const std::string& suffix) {
  if (suffix.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(status.message(), suffix));
}

// Opens a channel and waits until it is connected.
// `who` names the plugin in messages: `plugin "./x" at unix:///...`.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(
    const std::string& target, const std::string& who,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    absl::Duration timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, credentials, args);
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", who, " within ",
                     absl::FormatDuration(timeout)));
  }
  return channel;
}

// GetPluginInfo and GetCapabilities (spec.md §2.3).
absl::StatusOr<PluginIdentity> Negotiate(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& address,
    const std::string& who) {
  std::unique_ptr<v1::Identity::Stub> stub = v1::Identity::NewStub(channel);
  auto failed = [&](const char* rpc, const grpc::Status& s) {
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, " does not speak vkhost.provider.v1 (",
          rpc, " answered UNIMPLEMENTED: ", s.error_message(), ")"));
    }
    return absl::UnavailableError(absl::StrCat(
        who, " failed ", rpc, ": ", CodeName(s), ": ",
        s.error_message()));
  };

  v1::GetPluginInfoResponse info;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kIdentityDeadline));
    grpc::Status s = stub->GetPluginInfo(&ctx, {}, &info);
    if (!s.ok()) return failed("Identity.GetPluginInfo", s);
  }
  if (info.name().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(who,
                     " answered GetPluginInfo with an empty name; a plugin "
                     "must name itself"));
  }
  v1::GetCapabilitiesResponse caps;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kIdentityDeadline));
    grpc::Status s = stub->GetCapabilities(&ctx, {}, &caps);
    if (!s.ok()) return failed("Identity.GetCapabilities", s);
  }
  PluginIdentity identity;
  identity.name = info.name();
  identity.version = info.version();
  identity.manifest.insert(info.manifest().begin(), info.manifest().end());
  identity.address = address;
  identity.protocol_major = 1;  // What the v1 Identity service answered.
  for (int c : caps.capabilities()) {
    // Capabilities added to v1 after this host was built are ignored (§1.3).
    if (v1::Capability_IsValid(c) && c != v1::CAPABILITY_UNSPECIFIED) {
      identity.capabilities.insert(static_cast<v1::Capability>(c));
    }
  }
  return identity;
}

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const char* what) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read the plugin ", what, " file ", path));
  }
  if (!in.is_open()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the plugin ", what, " file ", path));
  }
  return text.str();
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" ||
         absl::StartsWith(host, "127.");
}

struct Endpoint {
  std::string target;  // What gRPC dials.
  std::string host;    // TCP only.
  bool tcp = false;
};

absl::StatusOr<Endpoint> ParseEndpoint(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad plugin endpoint ", Quote(url), ": ", why,
                     " (want unix:///absolute/path or tcp://host:port)"));
  };
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "unix://")) {
    if (rest.empty() || rest[0] != '/') return bad("the socket path is not absolute");
    return Endpoint{url, "", false};
  }
  if (!absl::ConsumePrefix(&rest, "tcp://")) return bad("unknown scheme");
  Endpoint e;
  e.tcp = true;
  absl::string_view port;
  if (absl::ConsumePrefix(&rest, "[")) {  // [v6]:port
    size_t close = rest.find("]:");
    if (close == absl::string_view::npos) return bad("no port");
    e.host = std::string(rest.substr(0, close));
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return bad("no port");
    e.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
  }
  int port_number = 0;
  if (e.host.empty()) return bad("no host");
  if (!absl::SimpleAtoi(port, &port_number) || port_number <= 0 ||
      port_number > 65535) {
    return bad("the port is not a number from 1 to 65535");
  }
  e.target = std::string(absl::StripPrefix(url, "tcp://"));
  return e;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> CredentialsFor(
    const Endpoint& endpoint, const PluginSource& source) {
  bool any_tls = !source.tls_ca_file.empty() || !source.tls_cert_file.empty() ||
                 !source.tls_key_file.empty();
  if (!endpoint.tcp) {
    if (any_tls) {
      return absl::InvalidArgumentError(absl::StrCat(
          "TLS files were given for the unix endpoint ", source.endpoint,
          "; TLS applies to tcp:// endpoints only"));
    }
    return grpc::InsecureChannelCredentials();
  }
  if (!any_tls) {
    if (IsLoopback(endpoint.host)) return grpc::InsecureChannelCredentials();
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing plaintext connection to plugin at ", source.endpoint,
        ": give a CA file, a client certificate and a key for mutual TLS "
        "(plaintext TCP is allowed only to loopback addresses)"));
  }
  if (source.tls_ca_file.empty() ||
      source.tls_cert_file.empty() != source.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS to the plugin needs a CA file, and a client certificate and key "
        "together (or neither for server-only TLS)");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadFile(source.tls_ca_file, "CA");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (!source.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert =
        ReadFile(source.tls_cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(source.tls_key_file, "key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

// The connection's parts. In launch mode the child's threads report into the
// fields guarded by `mu`; in connect mode only identity and channel are set.
struct PluginConnection::State {
  mutable absl::Mutex mu;
  // Prefix of logged plugin output: argv[0]'s base name, then the plugin's
  // own name once known.
  std::string log_name ABSL_GUARDED_BY(mu);
  std::optional<std::string> first_line ABSL_GUARDED_BY(mu);
  bool stdout_closed ABSL_GUARDED_BY(mu) = false;
  bool stderr_closed ABSL_GUARDED_BY(mu) = false;
  std::optional<ExitInfo> exit ABSL_GUARDED_BY(mu);
  std::string stderr_tail ABSL_GUARDED_BY(mu);
  std::function<void()> exit_callback ABSL_GUARDED_BY(mu);

  // Set before the connection is handed out, constant afterwards.
  PluginIdentity identity;
  std::shared_ptr<grpc::Channel> channel;
  // Declared last so it is destroyed first: its threads call into the
  // fields above until it is gone.
  std::unique_ptr<ChildProcess> child;

  // Our side of the connection goes first, so the plugin stops with no
  // client attached.
  ~State() {
    channel.reset();
    child.reset();
  }

  void OnStdoutLine(const std::string& line) {
    std::string name;
    {
      absl::MutexLock lock(&mu);
      if (!first_line.has_value()) {
        first_line = line;
        return;
      }
      name = log_name;
    }
    VKLOG(INFO) << name << " (stdout): " << line;
  }

  void OnStderrLine(const std::string& line) {
    std::string name;
    {
      absl::MutexLock lock(&mu);
      name = log_name;
      stderr_tail.append(line).append("\n");
      if (stderr_tail.size() > kStderrTailBytes) {
        // Cut at a line start when there is one in the last 4 KiB.
        size_t from = stderr_tail.size() - kStderrTailBytes;
        size_t cut = stderr_tail.find('\n', from);
        stderr_tail.erase(0, cut == std::string::npos || cut + 1 == stderr_tail.size()
                                 ? from
                                 : cut + 1);
      }
    }
    VKLOG(INFO) << name << ": " << line;
  }

  void OnExit(const ExitInfo& info) {
    std::function<void()> callback;
    std::string name;
    {
      absl::MutexLock lock(&mu);
      exit = info;
      callback = std::move(exit_callback);
      exit_callback = nullptr;
      name = log_name;
    }
    VKLOG(INFO) << "plugin \"" << name << "\" (pid " << info.pid << ") "
                << info.description;
    if (callback) callback();
  }

  // The stderr tail as a suffix for error messages; when there is none,
  // says so unless `quiet_when_empty`.
  std::string TailSuffix(bool quiet_when_empty) const {
    absl::MutexLock lock(&mu);
    if (stderr_tail.empty()) {
      return quiet_when_empty ? "" : "; it wrote nothing to stderr";
    }
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::StripSuffix(stderr_tail, "\n"), '\n');
    size_t first = lines.size() > kTailLinesInMessage
                       ? lines.size() - kTailLinesInMessage
                       : 0;
    std::string out = "; its stderr ends with:";
    for (size_t i = first; i < lines.size(); ++i) {
      absl::StrAppend(&out, "\n  ", lines[i]);
    }
    return out;
  }

  absl::StatusOr<Handshake> AwaitHandshake(const PluginSource& source,
                                           const std::string& who);
};

absl::StatusOr<Handshake> PluginConnection::State::AwaitHandshake(
    const PluginSource& source, const std::string& who) {
  std::optional<std::string> line;
  bool in_time;
  {
    absl::MutexLock lock(&mu);
    auto answered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return first_line.has_value() || stdout_closed || exit.has_value();
    };
    in_time = mu.AwaitWithTimeout(absl::Condition(&answered),
                                  source.handshake_timeout);
    line = first_line;
  }
  if (line.has_value()) {
    absl::StatusOr<Handshake> handshake =
        ParseHandshake(*line, source.offered_protocols, who);
    if (!handshake.ok()) {
      return WithContext(handshake.status(), TailSuffix(/*quiet_when_empty=*/true));
    }
    return handshake;
  }
  if (!in_time) {
    return absl::DeadlineExceededError(
        absl::StrCat(who, " printed no handshake within ",
                     absl::FormatDuration(source.handshake_timeout),
                     TailSuffix(/*quiet_when_empty=*/false)));
  }
  // Stdout closed or the process ended: give it a moment to finish and flush
  // stderr so the message can say how it ended and why.
  std::optional<ExitInfo> ended;
  {
    absl::MutexLock lock(&mu);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return exit.has_value() && stderr_closed;
    };
    mu.AwaitWithTimeout(absl::Condition(&settled), kExitSettleTime);
    ended = exit;
  }
  std::string tail = TailSuffix(/*quiet_when_empty=*/false);
  if (!ended.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " closed its stdout without printing a handshake line", tail));
  }
  std::string message =
      absl::StrCat(who, " ", ended->description, " before its handshake", tail);
  // Status 1 before the handshake is how a plugin refuses the magic cookie
  // or the offered versions (spec.md §2.1 items 1-2): retrying cannot help.
  if (ended->exit_code == 1) return absl::FailedPreconditionError(message);
  return absl::UnavailableError(message);
}

absl::StatusOr<std::unique_ptr<PluginConnection>> PluginConnection::Launch(
    const PluginSource& source) {
  if (source.command.empty() || source.command[0].empty()) {
    return absl::InvalidArgumentError("empty plugin command");
  }
  const std::string who = absl::StrCat("plugin ", Quote(source.command[0]));
  auto state = std::make_unique<State>();
  {
    absl::MutexLock lock(&state->mu);
    state->log_name = Basename(source.command[0]);
  }
  State* s = state.get();
  ChildProcess::Callbacks callbacks{
      .on_stdout_line = [s](const std::string& l) { s->OnStdoutLine(l); },
      .on_stdout_closed =
          [s] {
            absl::MutexLock lock(&s->mu);
            s->stdout_closed = true;
          },
      .on_stderr_line = [s](const std::string& l) { s->OnStderrLine(l); },
      .on_stderr_closed =
          [s] {
            absl::MutexLock lock(&s->mu);
            s->stderr_closed = true;
          },
      .on_exit = [s](const ExitInfo& e) { s->OnExit(e); },
  };
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
      source.command, PluginEnvironment(source), std::move(callbacks));
  if (!child.ok()) return child.status();
  state->child = *std::move(child);
  VKLOG(INFO) << "started " << who << " (pid " << state->child->pid() << ")";

  absl::StatusOr<Handshake> handshake = state->AwaitHandshake(source, who);
  if (!handshake.ok()) return handshake.status();
  const std::string address = "unix://" + handshake->socket_path;
  const std::string who_at = absl::StrCat(who, " at ", address);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectChannel(address, who_at, grpc::InsecureChannelCredentials(),
                     source.handshake_timeout);
  absl::StatusOr<PluginIdentity> identity =
      channel.ok() ? Negotiate(*channel, address, who_at) : channel.status();
  if (!identity.ok()) {
    std::string context;
    if (state->child->Exited()) {
      context = absl::StrCat("; the plugin ", state->child->exit_description());
    }
    return WithContext(identity.status(),
                       context + state->TailSuffix(/*quiet_when_empty=*/true));
  }
  identity->protocol_major = handshake->protocol_major;
  state->identity = *std::move(identity);
  state->channel = *std::move(channel);
  {
    absl::MutexLock lock(&state->mu);
    state->log_name = state->identity.name;
  }
  return absl::WrapUnique(new PluginConnection(std::move(state)));
}

absl::StatusOr<std::unique_ptr<PluginConnection>> PluginConnection::Dial(
    const PluginSource& source) {
  absl::StatusOr<Endpoint> endpoint = ParseEndpoint(source.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      CredentialsFor(*endpoint, source);
  if (!credentials.ok()) return credentials.status();
  const std::string who = "plugin at " + source.endpoint;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ConnectChannel(
      endpoint->target, who, *credentials, source.handshake_timeout);
  if (!channel.ok()) return channel.status();
  absl::StatusOr<PluginIdentity> identity =
      Negotiate(*channel, source.endpoint, who);
  if (!identity.ok()) return identity.status();
  auto state = std::make_unique<State>();
  {
    absl::MutexLock lock(&state->mu);
    state->log_name = identity->name;
  }
  state->identity = *std::move(identity);
  state->channel = *std::move(channel);
  return absl::WrapUnique(new PluginConnection(std::move(state)));
}

absl::StatusOr<std::unique_ptr<PluginConnection>> PluginConnection::Open(
    const PluginSource& source) {
  bool launch = !source.command.empty();
  bool dial = !source.endpoint.empty();
  if (launch == dial) {
    return absl::InvalidArgumentError(
        "give the plugin either as a command to launch or as an endpoint to "
        "dial, not both or neither");
  }
  return launch ? Launch(source) : Dial(source);
}

PluginConnection::PluginConnection(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

PluginConnection::~PluginConnection() = default;

const PluginIdentity& PluginConnection::identity() const {
  return state_->identity;
}

std::shared_ptr<grpc::Channel> PluginConnection::channel() const {
  return state_->channel;
}

int PluginConnection::pid() const {
  return state_->child ? state_->child->pid() : 0;
}

bool PluginConnection::Exited() const {
  return state_->child && state_->child->Exited();
}

std::string PluginConnection::exit_description() const {
  return state_->child ? state_->child->exit_description() : "";
}

bool PluginConnection::WaitForExit(absl::Duration timeout) const {
  if (state_->child) return state_->child->WaitForExit(timeout);
  absl::SleepFor(timeout);
  return false;
}

std::string PluginConnection::StderrTail() const {
  absl::MutexLock lock(&state_->mu);
  return state_->stderr_tail;
}

void PluginConnection::SetExitCallback(std::function<void()> callback) {
  if (!state_->child) return;
  {
    absl::MutexLock lock(&state_->mu);
    if (!state_->exit.has_value()) {
      state_->exit_callback = std::move(callback);
      return;
    }
  }
  callback();
}

}  // namespace vkhost::plugin
