"""Every message, enum and enum value of vkhost.provider.v1 in one namespace.

`from vkhost_sdk import v1` then `v1.Pod`, `v1.PodStatus`,
`v1.CAPABILITY_WATCH_POD_STATUS`, `v1.RESTART_POLICY_NEVER`, ... The classes
are the generated ones from `vkhost.provider.v1.*_pb2` (built from proto/ when
the SDK was installed); this module only gathers them, like the C++ SDK's
`namespace v1 = ::vkhost::provider::v1`.
"""

# The generated modules define their names at import time, so a star import is
# the only way to re-export them without listing each one.
from vkhost.provider.v1.identity_pb2 import *  # noqa: F401,F403
from vkhost.provider.v1.node_pb2 import *  # noqa: F401,F403
from vkhost.provider.v1.pods_pb2 import *  # noqa: F401,F403
from vkhost.provider.v1.stats_pb2 import *  # noqa: F401,F403
from vkhost.provider.v1.streams_pb2 import *  # noqa: F401,F403
