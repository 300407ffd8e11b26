// The server's TLS setup with OpenSSL, kept out of the Beast translation
// unit: serving certificate (from files or self-signed), the optional client
// CA, and what a handshake proved about the client's certificate.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_TLS_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_TLS_H_

#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "host/kubeletapi/internal/auth.h"
#include "host/kubeletapi/kubelet_api.h"

namespace vkhost::kubeletapi::internal {

struct PemPair {
  std::string certificate;
  std::string private_key;
};

// A P-256 key and a one-year self-signed serving certificate with CN =
// `node_name` and SANs DNS:node_name, DNS:localhost and IP: for each of `ips`
// plus 127.0.0.1. INVALID_ARGUMENT for an address that is not an IP.
absl::StatusOr<PemPair> GenerateSelfSignedCertificate(
    const std::string& node_name, const std::vector<std::string>& ips);

// Prepares `ctx` for serving: TLS 1.2+, certificate and key from the
// options' files (or generated, logged as for testing), and, with a client
// CA, asks for (without requiring) a client certificate. A certificate that
// fails verification does not fail the handshake: the request is then
// treated as carrying no certificate. INVALID_ARGUMENT naming the file.
absl::Status ConfigureServerContext(SSL_CTX* ctx,
                                    const KubeletServerOptions& options);

// What the finished handshake on `ssl` says about the client certificate.
PeerCertificate InspectPeer(SSL* ssl);

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_TLS_H_
