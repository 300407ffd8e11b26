"""A BatchProvider served on a real gRPC server over a unix socket, per test."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from typing import Callable, List

import grpc
import pytest

from vkhost.provider.v1 import pods_pb2_grpc, stats_pb2_grpc, streams_pb2_grpc
from vkhost_batch.accounting import AccountingLog
from vkhost_batch.provider import BatchProvider
from vkhost_sdk import ProviderServices, v1

# Generous: the machine may be busy with other tests.
WAIT_SECONDS = 30.0


class Batch:
    """The provider, stubs to reach it and helpers to drive it."""

    def __init__(self, provider: BatchProvider, channel: grpc.Channel, accounting: str) -> None:
        self.provider = provider
        self.pods = pods_pb2_grpc.PodsStub(channel)
        self.streams = streams_pb2_grpc.StreamsStub(channel)
        self.stats = stats_pb2_grpc.StatsStub(channel)
        self.accounting_path = accounting

    def create(self, *commands: List[str], policy=v1.RESTART_POLICY_NEVER, init=(),
               **fields) -> v1.Pod:
        pod = v1.Pod(uid=str(uuid.uuid4()), namespace="ns", name=f"job-{uuid.uuid4().hex[:6]}",
                     restart_policy=policy,
                     init_containers=[v1.Container(name=f"init{i}", command=c)
                                      for i, c in enumerate(init)],
                     containers=[v1.Container(name="main" if i == 0 else f"c{i}", command=c)
                                 for i, c in enumerate(commands)], **fields)
        self.pods.CreatePod(v1.CreatePodRequest(pod=pod), timeout=30)
        return pod

    def status(self, pod) -> v1.PodStatus:
        return self.pods.GetPodStatus(v1.GetPodStatusRequest(pod=v1.PodRef(uid=pod.uid)),
                                      timeout=30).status

    def wait_for(self, what: str, predicate: Callable[[], object]):
        deadline = time.monotonic() + WAIT_SECONDS
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except grpc.RpcError as e:
                last = e
            if last:
                return last
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last: {last}")

    def wait_state(self, pod, state: str, container: int = 0) -> v1.ContainerStatus:
        def check():
            s = self.status(pod).container_statuses[container]
            return s if s.state.WhichOneof("state") == state else None
        return self.wait_for(f"container {container} of {pod.name} {state}", check)

    def logs(self, pod, container="main", **fields) -> bytes:
        return b"".join(e.line for r in self.streams.ContainerLogs(v1.ContainerLogsRequest(
            pod=v1.PodRef(uid=pod.uid), container=container, **fields), timeout=30)
            for e in r.entries)

    def accounting(self) -> List[dict]:
        with open(self.accounting_path) as f:
            return [json.loads(line) for line in f]

    def forgotten(self, pod) -> bool:
        try:
            self.status(pod)
            return False
        except grpc.RpcError as e:
            return e.code() == grpc.StatusCode.NOT_FOUND


@pytest.fixture
def make_batch(tmp_path):
    started = []

    def make(slots: int = 4) -> Batch:
        accounting = str(tmp_path / f"accounting{len(started)}.jsonl")
        provider = BatchProvider(slots, str(tmp_path / f"work{len(started)}"),
                                 AccountingLog(accounting))
        services = ProviderServices(provider)
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=16))
        services.register_with(server)
        socket = tmp_path / f"b{len(started)}.sock"
        server.add_insecure_port(f"unix:{socket}")
        server.start()
        channel = grpc.insecure_channel(f"unix:{socket}")
        started.append((provider, services, server, channel))
        return Batch(provider, channel, accounting)

    yield make
    for provider, services, server, channel in started:
        channel.close()
        services.begin_shutdown()
        server.stop(1).wait()
        provider.shutdown()
