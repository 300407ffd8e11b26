// One port-forward session over SPDY/3.1: the client's data/error stream
// pairs on one side, one Streams.PortForward RPC per pair on the other.
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_SPDY_PORT_FORWARD_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_SPDY_PORT_FORWARD_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "host/kubeletapi/kubelet_api.h"
#include "host/plugin/plugin.h"
#include "host/streambridge/internal/port_forward.h"

namespace vkhost::streambridge::internal {

// Runs the session on `connection` (already past its 101). Returns at once;
// the session keeps itself alive on its callbacks and ends when the client
// closes the connection (which cancels every open plugin stream). A pair
// still missing its partner after `stream_creation` is dropped with an
// error on whichever stream did arrive. `plugin` is borrowed and must
// outlive the session.
void ServeSpdyPortForward(PortForwardTarget target, absl::Duration stream_creation,
                          plugin::PluginClient& plugin,
                          std::shared_ptr<kubeletapi::UpgradedConnection> connection);

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_SPDY_PORT_FORWARD_H_
