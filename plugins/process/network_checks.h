// The network checks behind httpGet and tcpSocket probes and lifecycle
// hooks, as the kubelet performs them: a TCP connect, and an HTTP(S) GET
// that succeeds on a status from 200 to 399 (HTTPS without certificate
// verification). Pure functions; any thread.
#ifndef VKHOST_PLUGINS_PROCESS_NETWORK_CHECKS_H_
#define VKHOST_PLUGINS_PROCESS_NETWORK_CHECKS_H_

#include <string>

#include "absl/time/time.h"
#include "vkhost/provider/v1/pods.pb.h"

namespace vkhost::process {

namespace v1 = ::vkhost::provider::v1;

// True when a TCP connection to host:port (an IPv4 address; anything else
// means 127.0.0.1) is accepted within `timeout`.
bool TcpConnects(const std::string& host, int port, absl::Duration timeout);

// True when GET action.path() (default "/") with action's headers answers
// 200-399 within `timeout` on every phase (connect, write, read).
bool HttpGetSucceeds(const v1::HTTPGetAction& action, const std::string& host, int port,
                     absl::Duration timeout);

}  // namespace vkhost::process

#endif  // VKHOST_PLUGINS_PROCESS_NETWORK_CHECKS_H_
