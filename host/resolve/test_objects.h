// Test support for host/resolve: an in-memory ObjectSource and a few helpers.
#ifndef VKHOST_HOST_RESOLVE_TEST_OBJECTS_H_
#define VKHOST_HOST_RESOLVE_TEST_OBJECTS_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "host/resolve/resolve.h"
#include "nlohmann/json.hpp"

namespace vkhost::resolve::testing {

using nlohmann::json;

// Objects kept in maps; tokens minted as "token:<sa>:<audience>:<seconds>"
// expiring `expiration_seconds` after `now`. Single-threaded tests only.
class FakeObjectSource : public ObjectSource {
 public:
  void AddConfigMap(const std::string& ns, const std::string& name,
                    json data, json binary_data = nullptr);
  // `data` in plain text; stored base64-encoded as the API server returns it.
  void AddSecret(const std::string& ns, const std::string& name,
                 const std::map<std::string, std::string>& data);
  void AddService(const std::string& ns, const std::string& name,
                  const std::string& cluster_ip, json ports);
  void AddServiceAccount(const std::string& ns, const std::string& name);
  // Every ConfigMap / Secret / token call fails with `status` when not OK.
  void FailWith(absl::Status status) { failure_ = std::move(status); }
  // Tokens come back with this lifetime instead of the requested one.
  void OverrideTokenSeconds(int64_t seconds) { token_seconds_ = seconds; }

  absl::StatusOr<std::shared_ptr<const json>> ConfigMap(
      const std::string& ns, const std::string& name) override;
  absl::StatusOr<std::shared_ptr<const json>> Secret(
      const std::string& ns, const std::string& name) override;
  std::vector<std::shared_ptr<const json>> Services(
      const std::string& ns) override;
  absl::StatusOr<Token> ServiceAccountToken(
      const TokenRequest& request) override;

  absl::Time now = absl::FromUnixSeconds(1700000000);
  std::vector<TokenRequest> token_requests;

 private:
  using Key = std::pair<std::string, std::string>;
  std::map<Key, std::shared_ptr<const json>> config_maps_;
  std::map<Key, std::shared_ptr<const json>> secrets_;
  std::map<Key, std::shared_ptr<const json>> services_;
  std::map<Key, bool> service_accounts_;
  absl::Status failure_;
  int64_t token_seconds_ = 0;
};

// A minimal valid pod in namespace "ns" with one container "app"; tests
// add to it.
json MinimalPod();

// Options of a node "vnode" at 10.1.0.1 / fd00::1 with allocatable
// cpu 4, memory 8Gi, ephemeral-storage 100Gi and the kubernetes Service at
// 10.96.0.1:443.
ResolveOptions TestOptions();

// The container's environment as a map.
std::map<std::string, std::string> EnvOf(const provider::v1::Container& c);

// The volume's files by path: {content, mode}.
std::map<std::string, std::pair<std::string, int>> FilesOf(
    const provider::v1::Volume& volume);

}  // namespace vkhost::resolve::testing

#endif  // VKHOST_HOST_RESOLVE_TEST_OBJECTS_H_
