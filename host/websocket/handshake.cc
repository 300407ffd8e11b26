// The RFC 6455 opening handshake (server side) and the Kubernetes
// subprotocol table.
#include <openssl/evp.h>

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "host/websocket/websocket.h"

namespace vkhost::websocket {
namespace {

// RFC 6455 section 1.3.
constexpr absl::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// Sources: k8s.io/apimachinery wsstream (channel.k8s.io, base64.channel.k8s.io),
// remotecommand constants (v4, v5), kubelet port-forward websocket.go (v4
// variants, ""), client-go tunneling dialer (SPDY/3.1+portforward.k8s.io;
// v2.portforward.k8s.io was its pre-release name for the same tunnel).
constexpr std::array<Subprotocol, 8> kSubprotocols = {{
    {"v5.channel.k8s.io", Framing::kChannels, 5},
    {"v4.channel.k8s.io", Framing::kChannels, 4},
    {"v4.base64.channel.k8s.io", Framing::kBase64Channels, 4},
    {"channel.k8s.io", Framing::kChannels, 1},
    {"base64.channel.k8s.io", Framing::kBase64Channels, 1},
    {"", Framing::kChannels, 1},
    {"SPDY/3.1+portforward.k8s.io", Framing::kSpdyTunnel, 0},
    {"v2.portforward.k8s.io", Framing::kSpdyTunnel, 0},
}};

constexpr std::array<absl::string_view, 6> kExec = {
    "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
    "channel.k8s.io",    "base64.channel.k8s.io", ""};

constexpr std::array<absl::string_view, 5> kPortForward = {
    "SPDY/3.1+portforward.k8s.io", "v2.portforward.k8s.io",
    "v4.channel.k8s.io", "v4.base64.channel.k8s.io", ""};

bool HasToken(absl::string_view list, absl::string_view token) {
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(item), token)) return true;
  }
  return false;
}

std::vector<std::string> OfferedProtocols(const std::vector<std::string>& lines) {
  std::vector<std::string> offered;
  for (const std::string& line : lines) {
    for (absl::string_view item : absl::StrSplit(line, ',')) {
      item = absl::StripAsciiWhitespace(item);
      if (!item.empty()) offered.emplace_back(item);
    }
  }
  return offered;
}

}  // namespace

const Subprotocol* FindSubprotocol(absl::string_view name) {
  for (const Subprotocol& p : kSubprotocols) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

absl::Span<const absl::string_view> ExecSubprotocols() { return kExec; }
absl::Span<const absl::string_view> PortForwardSubprotocols() { return kPortForward; }

bool IsWebSocketUpgrade(absl::string_view upgrade, absl::string_view connection) {
  return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(upgrade), "websocket") &&
         HasToken(connection, "upgrade");
}

std::string ComputeAcceptKey(absl::string_view key) {
  const std::string input = absl::StrCat(key, kAcceptGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha1(), nullptr) != 1) {
    return "";  // Only if OpenSSL itself is broken; the client will reject it.
  }
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

absl::StatusOr<HandshakeAnswer> AnswerHandshake(
    const UpgradeRequest& request, absl::Span<const absl::string_view> supported) {
  if (request.method != "GET") {
    return absl::InvalidArgumentError(absl::StrCat(
        "WebSocket upgrade must use GET, not ", request.method));
  }
  if (!IsWebSocketUpgrade(request.upgrade, request.connection)) {
    return absl::InvalidArgumentError(
        "not a WebSocket upgrade: need \"Upgrade: websocket\" and \"Connection: Upgrade\"");
  }
  if (absl::StripAsciiWhitespace(request.version) != "13") {
    return absl::UnimplementedError(absl::StrCat(
        "unsupported Sec-WebSocket-Version \"", request.version, "\"; only 13 is spoken"));
  }
  const absl::string_view key = absl::StripAsciiWhitespace(request.key);
  std::string nonce;
  if (key.size() != 24 || !absl::Base64Unescape(key, &nonce) || nonce.size() != 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Sec-WebSocket-Key \"", key, "\" is not a base64-encoded 16-byte nonce"));
  }
  const std::vector<std::string> offered = OfferedProtocols(request.protocols);
  auto is_supported = [&](absl::string_view name) {
    for (absl::string_view s : supported) {
      if (s == name && FindSubprotocol(name) != nullptr) return true;
    }
    return false;
  };
  std::optional<std::string> chosen;
  if (offered.empty()) {
    if (is_supported("")) chosen = "";
  } else {
    for (const std::string& name : offered) {
      if (is_supported(name)) {
        chosen = name;
        break;
      }
    }
  }
  if (!chosen.has_value()) {
    std::vector<std::string> accepted;
    for (absl::string_view s : supported) {
      accepted.push_back(s.empty() ? "(none)" : std::string(s));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "no common WebSocket subprotocol: client offered [",
        absl::StrJoin(offered, ", "), "], server accepts [",
        absl::StrJoin(accepted, ", "), "]"));
  }
  HandshakeAnswer answer;
  answer.accept = ComputeAcceptKey(key);
  answer.protocol = *chosen;
  answer.subprotocol = FindSubprotocol(*chosen);
  return answer;
}

int HandshakeErrorHttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 101;
    case absl::StatusCode::kUnimplemented: return 426;
    default: return 400;
  }
}

}  // namespace vkhost::websocket
