// The production ObjectSource for host/resolve: ConfigMaps, Secrets and
// Services from informer caches (no API request per pod), service-account
// tokens from the TokenRequest API, cached until the kubelet's refresh time so
// re-resolving a pod does not mint a token every time.
//
// Private to host/app. Thread-safe: the pod controller's workers call it
// concurrently.
#ifndef VKHOST_HOST_APP_KUBE_OBJECT_SOURCE_H_
#define VKHOST_HOST_APP_KUBE_OBJECT_SOURCE_H_

#include <map>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "host/informer/informer.h"
#include "host/kube/client.h"
#include "host/resolve/resolve.h"

namespace vkhost::app {

class KubeObjectSource : public resolve::ObjectSource {
 public:
  // Borrows everything; the informers must be started by the caller.
  KubeObjectSource(kube::KubeClient& client, informer::Informer& config_maps,
                   informer::Informer& secrets, informer::Informer& services)
      : client_(client),
        config_maps_(config_maps),
        secrets_(secrets),
        services_(services) {}

  absl::StatusOr<std::shared_ptr<const nlohmann::json>> ConfigMap(
      const std::string& namespace_name, const std::string& name) override;
  absl::StatusOr<std::shared_ptr<const nlohmann::json>> Secret(
      const std::string& namespace_name, const std::string& name) override;
  std::vector<std::shared_ptr<const nlohmann::json>> Services(
      const std::string& namespace_name) override;
  absl::StatusOr<resolve::Token> ServiceAccountToken(
      const resolve::TokenRequest& request) override;

 private:
  using TokenKey = std::tuple<std::string, std::string, std::string, int64_t, std::string>;

  kube::KubeClient& client_;
  informer::Informer& config_maps_;
  informer::Informer& secrets_;
  informer::Informer& services_;

  absl::Mutex mu_;
  std::map<TokenKey, resolve::Token> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vkhost::app

#endif  // VKHOST_HOST_APP_KUBE_OBJECT_SOURCE_H_
