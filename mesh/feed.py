"""``EventFeed``: the latest events of the mesh, fanned out to every open
stream of one service instance (the gateway's ``/events/stream``).

    class GatewayService:
        feed = EventFeed(size=100)

        @broadcast_handler(BILLING, BILL_CREATED)
        def feed_bill_created(self, event):
            self.feed.publish("bill_created", event, event_id=event["event_id"])

        # in a stream: for item in self.feed.follow(last_event_id, heartbeat_s=15): ...

A subscriber that cannot keep up (its queue full: a stalled client) loses
events rather than holding memory. The feed lives in memory: it starts empty
with the process.
"""
import collections
import itertools

from eventlet.queue import Empty, LightQueue, Full
from nameko.extensions import DependencyProvider

QUEUE_SIZE = 1000


class Feed:
    """The events kept (``size`` newest) and the queues of open streams."""

    def __init__(self, size):
        self.recent = collections.deque(maxlen=size)  # (event_id, name, payload)
        self.subscribers = set()
        self.sequence = itertools.count(1)

    def publish(self, name, payload, event_id=None):
        item = (str(event_id or next(self.sequence)), name, payload)
        self.recent.append(item)
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(item)
            except Full:
                pass  # a stalled client: it misses events, the others do not wait

    def follow(self, last_event_id=None, heartbeat_s=15.0):
        """Yield the events after ``last_event_id`` still kept, then every new
        one as it comes; ``None`` every ``heartbeat_s`` without one. Stop
        iterating (close the generator) to unsubscribe."""
        queue = LightQueue(QUEUE_SIZE)
        self.subscribers.add(queue)
        try:
            ids = [item[0] for item in self.recent]
            if last_event_id is not None and last_event_id in ids:
                for item in list(self.recent)[ids.index(last_event_id) + 1:]:
                    yield item
            while True:
                try:
                    yield queue.get(timeout=heartbeat_s)
                except Empty:
                    yield None
        finally:
            self.subscribers.discard(queue)


class EventFeed(DependencyProvider):
    """One ``Feed`` per service instance, shared by its workers."""

    def __init__(self, size=100):
        self.size = size

    def setup(self):
        self.feed = Feed(self.size)

    def get_dependency(self, worker_ctx):
        return self.feed
