// The gRPC face of a Provider: the v1 Identity, Node, Pods, Streams and Stats
// services, which translate RPCs into Provider calls and absl::Status into
// gRPC status (the numeric codes are the same). Serve() registers them; tests
// register them on an in-process server.
//
// Besides translation the services enforce the protocol rules every plugin
// shares, so providers need not: capability gating (an RPC whose capability
// the provider did not list answers UNIMPLEMENTED), the WatchPodStatus
// snapshot/SYNCED/changes sequence, the `start`-first rule and the final
// `exit` frame of Exec and Attach, the `start`-first rule of PortForward, and
// the empty-UID checks of spec.md §7.
#ifndef VKHOST_SDK_SRC_SERVICES_H_
#define VKHOST_SDK_SRC_SERVICES_H_

#include <memory>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "vkhost/sdk/provider.h"

namespace vkhost::sdk::internal {

// absl::Status → grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Owns the service objects for one server. Construct, RegisterWith a builder,
// build the server; call BeginShutdown before Server::Shutdown so open
// streams end at once; destroy only after the server is destroyed.
// Thread-safe once registered (gRPC calls it from many threads).
class ProviderServices {
 public:
  explicit ProviderServices(Provider& provider);
  ~ProviderServices();
  ProviderServices(const ProviderServices&) = delete;
  ProviderServices& operator=(const ProviderServices&) = delete;

  void RegisterWith(grpc::ServerBuilder& builder);
  // Makes streams served by the SDK end with OK and tells providers'
  // streams they are cancelled (StreamWriter/session IsCancelled()).
  void BeginShutdown();

  struct Shared;

 private:
  std::unique_ptr<Shared> shared_;
  std::unique_ptr<grpc::Service> identity_, node_, pods_, streams_, stats_;
};

}  // namespace vkhost::sdk::internal

#endif  // VKHOST_SDK_SRC_SERVICES_H_
