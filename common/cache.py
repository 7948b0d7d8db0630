"""``TaggedCache``: answers kept until what they show changes.

An entry is evicted by *tag* (``customer:1``, ``product:2``: see
``contracts.cache_tags``). A read that was loading while one of its tags was
evicted does not keep its answer: it may have been read before the change
committed. ``ttl`` bounds how long an entry may stay stale if an eviction is
lost.

No library fits here (cachetools has TTL and LRU, not tag eviction that also
refuses loads in flight), so it is this small class. ``mesh.cache.ReadCache``
gives a service one, set from config.
"""
import time
from collections import OrderedDict


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
        hit, value = self._lookup(key)
        if hit:
            return value
        started = self._evictions
        value, tags = load()
        return self._keep(key, started, value, tags)

    async def read_async(self, key, load):
        """``read`` for coroutines: ``await load()`` returns ``(value, tags)``.

            >>> customer = await cache.read_async(tag, fetch_customer)
        """
        if not self.enabled:
            return (await load())[0]
        hit, value = self._lookup(key)
        if hit:
            return value
        started = self._evictions
        value, tags = await load()
        return self._keep(key, started, value, tags)

    def _lookup(self, key):
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self._entries.move_to_end(key)
            self.hits += 1
            return True, entry[2]
        self.misses += 1
        return False, None

    def _keep(self, key, started, value, tags):
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
