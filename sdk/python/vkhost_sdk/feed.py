"""PodStatusFeed: where a provider publishes pod status changes.

The SDK serves `Pods.WatchPodStatus` from it (spec.md §5.3): each open stream
subscribes, sends the provider's `list_pods()` snapshot, the SYNCED marker,
then what was published since it subscribed. A slow stream gets the latest
status of each pod rather than every intermediate one (allowed by §5.3 rule
4), so memory stays bounded by the number of pods.
"""

from __future__ import annotations

import collections
import threading
from typing import Dict, Optional

from vkhost.provider.v1 import pods_pb2

Event = pods_pb2.WatchPodStatusResponse


class Subscription:
    """One reader of a PodStatusFeed: the WatchPodStatus handler or a test.

    Holds the events published since it was made, at most one per pod (the
    latest; a DELETED event carries the pod's last unsent status if any),
    oldest pod first. `next()` is for one thread at a time; publishing threads
    may run concurrently. Use as a context manager or call `close()`.
    """

    def __init__(self, feed: "PodStatusFeed") -> None:
        self._feed = feed
        self._cond = threading.Condition()
        self._pending: "collections.OrderedDict[str, Event]" = collections.OrderedDict()

    def _offer(self, event: Event) -> None:
        uid = event.status.pod.uid
        with self._cond:
            previous = self._pending.get(uid)
            if event.type == Event.TYPE_DELETED and previous is not None and \
                    previous.type == Event.TYPE_STATUS and not event.status.container_statuses:
                # Keep the unsent final status inside the DELETED event.
                merged = Event(type=Event.TYPE_DELETED)
                merged.status.CopyFrom(previous.status)
                event = merged
            # Replacing a pending event keeps the pod's place in line.
            self._pending[uid] = event
            self._cond.notify()

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event (TYPE_STATUS or TYPE_DELETED), or None after `timeout` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending, timeout):
                return None
            _, event = self._pending.popitem(last=False)
            return event

    def close(self) -> None:
        """Stops receiving events. Idempotent."""
        self._feed._unsubscribe(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PodStatusFeed:
    """Fan-out of pod status changes to the open WatchPodStatus streams.

    Publish the whole status on every change and `publish_deleted` when the
    plugin forgets a pod after DeletePod. Thread-safe; cheap when no stream is
    open.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: Dict[int, Subscription] = {}

    def publish(self, status: pods_pb2.PodStatus) -> None:
        """Sends `status` (copied) to every subscriber as a STATUS event."""
        event = Event(type=Event.TYPE_STATUS)
        event.status.CopyFrom(status)
        self._fan_out(event)

    def publish_deleted(self, pod: pods_pb2.PodRef) -> None:
        """Sends a DELETED event for `pod` to every subscriber."""
        event = Event(type=Event.TYPE_DELETED)
        event.status.pod.CopyFrom(pod)
        self._fan_out(event)

    def subscribe(self) -> Subscription:
        """A subscription that receives every event published from now on."""
        subscription = Subscription(self)
        with self._lock:
            self._subscribers[id(subscription)] = subscription
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.pop(id(subscription), None)

    def _fan_out(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers.values())
        for subscription in subscribers:
            subscription._offer(event)
