#include "host/kubeletapi/internal/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"

namespace vkhost::kubeletapi::internal {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using EvpKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using ExtPtr =
    std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

// The newest OpenSSL error as text, clearing the queue.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

bool AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext != nullptr && X509_add_ext(cert, ext.get(), -1) == 1;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  return std::string(data, size > 0 ? size : 0);
}

bool IsIpAddress(const std::string& text) {
  ASN1_OCTET_STRING* parsed = a2i_IPADDRESS(text.c_str());
  if (parsed == nullptr) return false;
  ASN1_OCTET_STRING_free(parsed);
  return true;
}

// Any verification error is recorded in the SSL object (read back by
// InspectPeer) instead of aborting the handshake, so a client with a bad
// certificate gets a 401 it can read rather than a TLS alert.
int AcceptAnyClientCertificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) {
  return 1;
}

absl::Status LoadServingCertificate(SSL_CTX* ctx,
                                    const KubeletServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_private_key_file.empty()) {
    return absl::InvalidArgumentError(
        "give both the TLS certificate file and its private key file, or "
        "neither (then a self-signed certificate is generated)");
  }
  if (!options.tls_cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options.tls_cert_file.c_str()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load TLS certificate ", options.tls_cert_file, ": ", OpenSslError()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, options.tls_private_key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load TLS private key ",
                       options.tls_private_key_file, ": ", OpenSslError()));
    }
  } else {
    absl::StatusOr<PemPair> pem =
        GenerateSelfSignedCertificate(options.node_name, options.node_ips);
    if (!pem.ok()) return pem.status();
    BioPtr cert_bio(BIO_new_mem_buf(pem->certificate.data(),
                                    static_cast<int>(pem->certificate.size())));
    X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    BioPtr key_bio(BIO_new_mem_buf(pem->private_key.data(),
                                   static_cast<int>(pem->private_key.size())));
    EvpKey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (!cert || !key || SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
      return absl::InternalError(
          absl::StrCat("cannot use the generated certificate: ", OpenSslError()));
    }
    VKLOG(WARNING) << "kubelet API: no --tls-cert-file given; serving a "
                      "self-signed certificate for \""
                   << options.node_name << "\" ["
                   << absl::StrJoin(options.node_ips, ", ")
                   << "], which is meant for testing only";
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the TLS private key does not match the certificate: ", OpenSslError()));
  }
  return absl::OkStatus();
}

absl::Status LoadClientCa(SSL_CTX* ctx, const std::string& file) {
  if (SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load client CA file ", file, ": ", OpenSslError()));
  }
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(file.c_str())) {
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  }
  SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, AcceptAnyClientCertificate);
  return absl::OkStatus();
}

void AppendEntries(X509_NAME* name, int nid, std::vector<std::string>* out) {
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length < 0) continue;
    out->emplace_back(reinterpret_cast<char*>(utf8), length);
    OPENSSL_free(utf8);
  }
}

}  // namespace

absl::StatusOr<PemPair> GenerateSelfSignedCertificate(
    const std::string& node_name, const std::vector<std::string>& ips) {
  std::vector<std::string> sans = {"DNS:" + node_name, "DNS:localhost",
                                   "IP:127.0.0.1"};
  for (const std::string& ip : ips) {
    if (!IsIpAddress(ip)) {
      return absl::InvalidArgumentError(
          absl::StrCat("node IP \"", ip, "\" is not an IP address"));
    }
    sans.push_back("IP:" + ip);
  }
  EvpKey key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  if (!key || !cert) return absl::InternalError(OpenSslError());
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_UTF8,
      reinterpret_cast<const unsigned char*>(node_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  bool ok = AddExtension(cert.get(), NID_subject_alt_name, absl::StrJoin(sans, ",")) &&
            AddExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") &&
            AddExtension(cert.get(), NID_key_usage, "critical,digitalSignature") &&
            AddExtension(cert.get(), NID_ext_key_usage, "serverAuth");
  if (!ok || X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return absl::InternalError(
        absl::StrCat("cannot build a self-signed certificate: ", OpenSslError()));
  }
  BioPtr cert_out(BIO_new(BIO_s_mem()));
  BioPtr key_out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(cert_out.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    return absl::InternalError(OpenSslError());
  }
  return PemPair{BioText(cert_out.get()), BioText(key_out.get())};
}

absl::Status ConfigureServerContext(SSL_CTX* ctx,
                                    const KubeletServerOptions& options) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  static const unsigned char kSessionContext[] = "vkhost-kubelet";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  if (absl::Status s = LoadServingCertificate(ctx, options); !s.ok()) return s;
  if (!options.client_ca_file.empty()) {
    return LoadClientCa(ctx, options.client_ca_file);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  return absl::OkStatus();
}

PeerCertificate InspectPeer(SSL* ssl) {
  PeerCertificate peer;
  X509* cert = SSL_get_peer_certificate(ssl);
  if (cert == nullptr) return peer;
  X509Ptr owned(cert);
  peer.present = true;
  peer.verified = SSL_get_verify_result(ssl) == X509_V_OK;
  X509_NAME* subject = X509_get_subject_name(cert);
  std::vector<std::string> names;
  AppendEntries(subject, NID_commonName, &names);
  if (!names.empty()) peer.common_name = names.front();
  AppendEntries(subject, NID_organizationName, &peer.organizations);
  return peer;
}

}  // namespace vkhost::kubeletapi::internal
