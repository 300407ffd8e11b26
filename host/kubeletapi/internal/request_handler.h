// Everything a kubelet API request needs except the sockets: authenticate,
// authorize, route, and answer or say what to stream. The Beast session
// (server.cc) turns the resulting Action into bytes on the wire.
#ifndef VKHOST_HOST_KUBELETAPI_INTERNAL_REQUEST_HANDLER_H_
#define VKHOST_HOST_KUBELETAPI_INTERNAL_REQUEST_HANDLER_H_

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "host/kubeletapi/internal/auth.h"
#include "host/kubeletapi/internal/log_stream.h"
#include "host/kubeletapi/internal/routes.h"
#include "host/kubeletapi/kubelet_api.h"
#include "host/plugin/plugin.h"

namespace vkhost::kubeletapi::internal {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path?query
  Headers headers;
  std::string body;
  bool wants_upgrade = false;  // Connection: upgrade and an Upgrade header
  PeerCertificate certificate;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  Headers headers;
  std::string body;
};

// Stream the plugin's log over `connection`.
struct StartLogs {
  std::shared_ptr<plugin::PluginConnection> connection;
  v1::ContainerLogsRequest request;
  LogFormat format;
  absl::Duration deadline;  // zero: none (follow)
  std::string pod_name;
  std::string container;
};

// Write `response` (101) and hand the connection to the upgrade handler.
struct StartUpgrade {
  UpgradeRequest request;
  UpgradeResponse response;
};

using Action = std::variant<HttpResponse, StartLogs, StartUpgrade>;

// A metav1.Status body (kind Status, status Failure) with `code`.
HttpResponse StatusResponse(int code, const std::string& reason,
                            const std::string& message);
// A plain-text body, as the kubelet writes most of its errors.
HttpResponse TextResponse(int code, const std::string& text);
// The answer for a log stream that failed before its first byte.
HttpResponse LogFailureResponse(const absl::Status& status,
                                const std::string& pod_name,
                                const std::string& container);

// Thread-safe. Handle blocks (API server reviews, unary plugin calls): call
// it off the io threads.
class RequestHandler {
 public:
  RequestHandler(const KubeletServerOptions& options,
                 const KubeletServerDependencies& dependencies);

  Action Handle(const HttpRequest& request);

 private:
  Action Route(const HttpRequest& request, const UserInfo& user,
               const std::string& path, const QueryParams& query);
  HttpResponse Pods();
  HttpResponse StatsSummary();
  HttpResponse ResourceMetrics();
  Action ContainerLogs(const internal::Route& route, const QueryParams& query);
  Action Upgrade(const HttpRequest& request, const UserInfo& user,
                 const internal::Route& route, const QueryParams& query);
  HttpResponse Run(const internal::Route& route, const QueryParams& query);
  // The UID of the route's pod (checked against a {uid} segment) when it is
  // bound here and has the route's container; NOT_FOUND with the kubelet's
  // text otherwise. Without an informer: the path's UID, unchecked.
  absl::StatusOr<std::string> KnownPod(const internal::Route& route) const;
  std::string PodUid(const std::string& ns, const std::string& name) const;

  const KubeletServerOptions options_;
  const KubeletServerDependencies deps_;
  RequestAuthenticator authenticator_;
  RequestAuthorizer authorizer_;
};

}  // namespace vkhost::kubeletapi::internal

#endif  // VKHOST_HOST_KUBELETAPI_INTERNAL_REQUEST_HANDLER_H_
