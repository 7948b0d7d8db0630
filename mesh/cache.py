"""Read caches: answers kept until what they show changes. The gateway keeps
customers, products and full bills; billing keeps the customers it bills.

A read through the gateway costs two broker hops; a cached one costs none. An
entry is evicted by *tag* (``customer:1``, ``product:2``), from two sides:

* the gateway's own writes evict what they touch as soon as the service has
  answered (``evict`` in a ``finally``), so a read after a write through this
  gateway never sees the old data;
* the services' change events (``customer_updated``, ``stock_changed``, ...,
  see ``services.events``) evict what was changed by anybody else (``nameko
  shell``, another service), a moment after their reply.

A read that was loading while one of its tags was evicted does not keep its
answer: it may have been read before the change committed. ``ttl`` bounds how
long an entry may stay stale if an event is lost (the gateway away from the
broker when it was sent). The cache belongs to one gateway process; with
several gateways, a write through one reaches the others by event only.
Billing's cache of customers makes no writes of its own: events evict it, and
its shorter TTL (``BILLING_CACHE_TTL``) bounds what a lost event can cost.

No library fits here (cachetools has TTL and LRU, not tag eviction that also
refuses loads in flight), so it is this small class.
"""
import time
from collections import OrderedDict

from nameko.events import BROADCAST, EventHandler
from nameko.extensions import DependencyProvider

from mesh.config import as_bool
from mesh.rpc import FastReconnectQueueConsumer


class TaggedCache:
    """``read(key, load)``: the cached value, or ``load()``'s, kept when safe.

        cache = TaggedCache(ttl=30, size=10000)
        body = cache.read("customer:1", lambda: (fetch(1), ["customer:1"]))
        cache.evict("customer:1")
    """

    def __init__(self, ttl, size, enabled=True):
        self.ttl = ttl
        self.size = size
        self.enabled = enabled
        self._entries = OrderedDict()  # key -> (expires at, tags, value), oldest first
        self._keys_by_tag = {}  # tag -> keys of entries carrying it
        self._evictions = 0  # how many evictions so far: the clock of "meanwhile"
        self._evicted_at = {}  # tag -> number of its latest eviction
        self._forgotten_before = 0  # loads started before this are never kept
        self.hits = self.misses = 0

    def read(self, key, load):
        """``load()`` returns ``(value, tags)``; the value is what ``read`` returns."""
        if not self.enabled:
            return load()[0]
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[2]
        self.misses += 1
        started = self._evictions
        value, tags = load()
        if self._changed_since(started, tags):
            return value  # good for this caller, too old to keep
        self._store(key, value, tags)
        return value

    def evict(self, *tags):
        """Drop every entry carrying any of ``tags``, and any such load in flight."""
        self._evictions += 1
        for tag in tags:
            self._evicted_at[tag] = self._evictions
            for key in self._keys_by_tag.pop(tag, ()):
                self._drop(key)
        if len(self._evicted_at) > self.size:
            # the record of evictions stays bounded: forget it, and with it
            # every load that started before now
            self._evicted_at.clear()
            self._forgotten_before = self._evictions

    def _changed_since(self, started, tags):
        if started < self._forgotten_before:
            return True
        return any(self._evicted_at.get(tag, 0) > started for tag in tags)

    def _store(self, key, value, tags):
        self._drop(key)
        self._entries[key] = (time.monotonic() + self.ttl, tuple(tags), value)
        for tag in tags:
            self._keys_by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.size:
            self._drop(next(iter(self._entries)))

    def _drop(self, key):
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry[1]:
            keys = self._keys_by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_tag[tag]


class ReadCache(DependencyProvider):
    """A service's ``TaggedCache``, set from config: ``<setting>`` (on/off),
    ``<setting>_TTL`` (seconds), ``<setting>_SIZE`` (entries); the gateway's is
    ``GATEWAY_CACHE``, billing's (customers it bills) ``BILLING_CACHE``."""

    def __init__(self, setting="GATEWAY_CACHE"):
        self.setting = setting

    def setup(self):
        config = self.container.config
        self.cache = TaggedCache(ttl=float(config.get(self.setting + "_TTL", 30)),
                                 size=int(config.get(self.setting + "_SIZE", 10000)),
                                 enabled=as_bool(config.get(self.setting, True)))

    def get_dependency(self, worker_ctx):
        return self.cache


class EvictionHandler(EventHandler):
    """A change event for every instance of the service (``BROADCAST``: each has
    its own queue, gone with it), on the connection its RPC replies use."""

    queue_consumer = FastReconnectQueueConsumer()

    def __init__(self, source_service, event_type, **kwargs):
        super().__init__(source_service, event_type, handler_type=BROADCAST,
                         reliable_delivery=False, **kwargs)


evicts_on = EvictionHandler.decorator
