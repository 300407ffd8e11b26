"""Shared fixtures: a Provider served on a real gRPC server over a unix socket."""

from __future__ import annotations

import concurrent.futures
import pathlib
from typing import Callable, Iterator

import grpc
import pytest

from vkhost.provider.v1 import (identity_pb2_grpc, node_pb2_grpc, pods_pb2_grpc, stats_pb2_grpc,
                                streams_pb2_grpc)
from vkhost_sdk import Provider, ProviderServices


class Stubs:
    """A client stub per v1 service on one channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.identity = identity_pb2_grpc.IdentityStub(channel)
        self.node = node_pb2_grpc.NodeStub(channel)
        self.pods = pods_pb2_grpc.PodsStub(channel)
        self.streams = streams_pb2_grpc.StreamsStub(channel)
        self.stats = stats_pb2_grpc.StatsStub(channel)


@pytest.fixture
def serve_provider(tmp_path: pathlib.Path) -> Iterator[Callable[[Provider], Stubs]]:
    """serve_provider(provider) -> Stubs connected to it; stopped after the test."""
    servers = []
    channels = []

    def start(provider: Provider) -> Stubs:
        services = ProviderServices(provider)
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=16))
        services.register_with(server)
        socket = tmp_path / f"s{len(servers)}.sock"
        server.add_insecure_port(f"unix:{socket}")
        server.start()
        servers.append((server, services))
        channel = grpc.insecure_channel(f"unix:{socket}")
        channels.append(channel)
        return Stubs(channel)

    yield start
    for channel in channels:
        channel.close()
    for server, services in servers:
        services.begin_shutdown()
        server.stop(1).wait()
        services.join_threads(1)
