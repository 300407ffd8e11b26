#!/usr/bin/env python3
"""The smallest useful vkhost plugin in Python (the twin of sdk/cpp/examples/minimal_plugin.cc).

It "runs" every container the moment a pod arrives and forgets the pod when
asked to delete it. The test suite runs vkhost-conformance against it, so
what sdk/python/README.md shows is known to conform.
"""
import threading

from vkhost_sdk import NotFound, Provider, serve_main, status, v1


class MinimalProvider(Provider):
    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._pods = {}  # uid -> v1.PodStatus

    def plugin_info(self):
        return v1.GetPluginInfoResponse(name="minimal-python", version="1.0.0")

    def capabilities(self):
        return [v1.CAPABILITY_WATCH_POD_STATUS]

    def create_pod(self, pod):
        with self._lock:
            if pod.uid in self._pods:
                return  # idempotent by UID
            # Init containers "ran to completion" instantly; app containers run.
            now = status.timestamp()
            done = status.terminated(0, started_at=now, finished_at=now)
            self._pods[pod.uid] = status.pod_status(
                pod, start_time=now,
                init_containers=[status.container_status(c, done) for c in pod.init_containers],
                containers=[status.container_status(c, status.running(now))
                            for c in pod.containers])
            self.pod_status_feed.publish(self._pods[pod.uid])

    def delete_pod(self, pod, grace_period_seconds):
        with self._lock:
            if self._pods.pop(pod.uid, None) is not None:
                self.pod_status_feed.publish_deleted(pod)

    def get_pod_status(self, pod):
        with self._lock:
            if pod.uid not in self._pods:
                raise NotFound(f"no pod {pod.uid}")
            return self._pods[pod.uid]

    def list_pods(self):
        with self._lock:
            return list(self._pods.values())


if __name__ == "__main__":
    raise SystemExit(serve_main(MinimalProvider()))
