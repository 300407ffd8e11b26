// Authentication and authorization of kubelet API requests, as the kubelet
// does them (kubelet-api.md §2): client certificate, else bearer token by
// TokenReview, else anonymous when allowed; then one SubjectAccessReview per
// candidate subresource until one is allowed. API server answers are cached
// briefly in bounded caches so a busy `kubectl logs -f` or metrics-server does
// not cost a review per request.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_AUTH_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_AUTH_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "host/kube/client.h"
#include "host/kubeletapi/internal/ttl_cache.h"
#include "host/kubeletapi/kubelet_api.h"

namespace vkhost::kubeletapi::internal {

// What the TLS layer learnt about the client's certificate.
struct PeerCertificate {
  bool present = false;
  bool verified = false;  // chains to the client CA, usable for clientAuth
  std::string common_name;
  std::vector<std::string> organizations;
};

struct Credentials {
  PeerCertificate certificate;
  std::string authorization_header;  // "Bearer <token>" or ""
};

// The bearer token of an Authorization header, "" when there is none.
std::string BearerToken(std::string_view authorization_header);

// Thread-safe; blocks on the API server (call it off the io threads).
class RequestAuthenticator {
 public:
  // `kube` may be null: bearer tokens are then refused.
  RequestAuthenticator(kube::KubeClient* kube, bool anonymous_auth,
                       absl::Duration success_ttl, absl::Duration failure_ttl,
                       size_t max_entries);

  // The user, or UNAUTHENTICATED with the reason (for the log; the client
  // only sees "Unauthorized").
  absl::StatusOr<UserInfo> Authenticate(const Credentials& credentials);

 private:
  absl::StatusOr<UserInfo> ReviewToken(const std::string& token);

  kube::KubeClient* const kube_;
  const bool anonymous_auth_;
  const absl::Duration success_ttl_;
  const absl::Duration failure_ttl_;
  // Keyed by the token's SHA-256 so the cache holds no secrets.
  TtlCache<absl::StatusOr<UserInfo>> cache_;
};

// Thread-safe; blocks on the API server (call it off the io threads).
class RequestAuthorizer {
 public:
  RequestAuthorizer(kube::KubeClient* kube, std::string node_name,
                    absl::Duration allowed_ttl, absl::Duration denied_ttl,
                    size_t max_entries);

  // OK when one of `subresources` (tried in order) is allowed for `verb` on
  // nodes/<node_name>. PERMISSION_DENIED with the kubelet's message
  // "Forbidden (user=..., verb=..., resource=nodes, subresource(s)=[...])"
  // when none is; INTERNAL "Authorization error (...)" when a review failed.
  absl::Status Authorize(const UserInfo& user, const std::string& verb,
                         const std::vector<std::string>& subresources);

 private:
  absl::StatusOr<bool> Review(const UserInfo& user, const std::string& verb,
                              const std::string& subresource);

  kube::KubeClient* const kube_;
  const std::string node_name_;
  const absl::Duration allowed_ttl_;
  const absl::Duration denied_ttl_;
  TtlCache<bool> cache_;
};

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_AUTH_H_
