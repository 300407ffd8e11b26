"""Errors a provider raises to fail an RPC with a given gRPC code.

spec.md §7 says which code each RPC returns when; raise the matching class
(`NotFound` for an unknown pod, `InvalidArgument` for a pod the backend can
never run, ...) and the SDK ends the RPC with that code and message. Any other
exception escaping a provider method becomes INTERNAL and is logged with its
traceback. A workload that fails is pod *status*, never an error (§4).
"""

from __future__ import annotations

import grpc


class ProviderError(Exception):
    """Fails the current RPC with `code` and `message` (shown to the user)."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: "grpc.StatusCode | None" = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgument(ProviderError):
    """The request can never succeed (malformed, or a pod the backend can never run)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ProviderError):
    """Unknown pod, container, or previous container instance."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(ProviderError):
    """The pod or container is not in a state for this (e.g. exec into a terminated one)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(ProviderError):
    """The backend is out of capacity now; the host retries with backoff."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ProviderError):
    """A transient failure (backend unreachable); the host retries with backoff."""

    code = grpc.StatusCode.UNAVAILABLE


class Unimplemented(ProviderError):
    """The RPC is not implemented; the host treats the capability as absent."""

    code = grpc.StatusCode.UNIMPLEMENTED
