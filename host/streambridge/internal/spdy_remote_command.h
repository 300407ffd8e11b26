// One exec/attach session over SPDY/3.1: the client's streams on one side,
// the plugin's Exec/Attach RPC on the other.
#ifndef VKHOST_HOST_STREAMBRIDGE_INTERNAL_SPDY_REMOTE_COMMAND_H_
#define VKHOST_HOST_STREAMBRIDGE_INTERNAL_SPDY_REMOTE_COMMAND_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "host/kubeletapi/kubelet_api.h"
#include "host/plugin/plugin.h"
#include "host/streambridge/internal/remote_command.h"

namespace vkhost::streambridge::internal {

// Runs the session on `connection` (already past its 101). Returns at once;
// the session keeps itself alive on its callbacks and ends when the client
// has hung up (or the finish timeout passed) and the plugin stream is done.
// `plugin` is borrowed and must outlive the session.
void ServeSpdyRemoteCommand(RemoteCommandTarget target,
                            RemoteCommandTimeouts timeouts,
                            plugin::PluginClient& plugin,
                            std::shared_ptr<kubeletapi::UpgradedConnection> connection);

}  // namespace vkhost::streambridge::internal

#endif  // VKHOST_HOST_STREAMBRIDGE_INTERNAL_SPDY_REMOTE_COMMAND_H_
