"""vkhost Python SDK: write a provider plugin by subclassing one class.

A plugin is a process that runs pods on some backend for vkhost (see
proto/vkhost/provider/v1/spec.md). With this SDK a plugin author subclasses
`Provider`, overrides the operations the backend supports (every method not
overridden answers UNIMPLEMENTED), lists the matching capabilities, and calls
`serve_main(provider)`. The SDK does the rest: the launch-mode handshake or
connect-mode listening, gRPC plumbing and stream framing, grpc.health.v1, the
WatchPodStatus snapshot/SYNCED/changes protocol fed from `PodStatusFeed`, and
clean shutdown on SIGTERM, SIGINT or when the host goes away. It mirrors the
C++ SDK (sdk/cpp/include/vkhost/sdk/provider.h) rule for rule.

    from vkhost_sdk import Provider, serve_main, v1, NotFound, status

Modules: `v1` (the protocol's messages), `status` (PodStatus builders),
`logs` (log files and ContainerLogs), `local` (exec and port-forward to local
processes), `errors`, `sessions`, `launch` (handshake rules), `serve`.
`ProviderServices` registers a provider's services on a grpc.Server of
your own, for tests that drive a provider through a real channel without a
process.

Threading: the SDK calls Provider methods concurrently from gRPC threads;
implementations must be thread-safe.
"""

from . import errors, launch, local, logs, sessions, status, v1
from ._services import ProviderServices
from .errors import (FailedPrecondition, InvalidArgument, NotFound, ProviderError,
                     ResourceExhausted, Unavailable, Unimplemented)
from .feed import PodStatusFeed, Subscription
from .launch import LaunchError
from .provider import Provider
from .serve import (ServeOptions, add_serve_flags, configure_logging, options_from_args, serve,
                    serve_main, serve_with_args)
from .sessions import PortForwardSession, ProcessSession, StreamContext

__version__ = "0.1.0"

__all__ = [
    "FailedPrecondition", "InvalidArgument", "LaunchError", "NotFound", "PodStatusFeed",
    "PortForwardSession", "ProcessSession", "Provider", "ProviderError", "ProviderServices",
    "ResourceExhausted", "ServeOptions", "StreamContext", "Subscription", "Unavailable",
    "Unimplemented",
    "add_serve_flags", "configure_logging", "errors", "launch", "local", "logs",
    "options_from_args", "serve", "serve_main", "serve_with_args", "sessions", "status", "v1",
]
