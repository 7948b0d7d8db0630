"""``common.cache.TaggedCache`` alone: hits, eviction by tag, loads overtaken
by an eviction, TTL and size, switched off."""
import time

from common.cache import TaggedCache


def loader(value, *tags):
    calls = []

    def load():
        calls.append(1)
        return value, list(tags)
    load.calls = calls
    return load


def test_a_second_read_is_served_from_the_cache():
    cache = TaggedCache(ttl=30, size=10)
    load = loader("v1", "customer:1")
    assert cache.read("customer:1", load) == "v1"
    assert cache.read("customer:1", load) == "v1"
    assert len(load.calls) == 1 and (cache.hits, cache.misses) == (1, 1)


def test_evicting_a_tag_drops_every_entry_carrying_it():
    cache = TaggedCache(ttl=30, size=10)
    cache.read("bill:1:full", loader("bill", "customer:1", "product:2"))
    cache.read("product:2", loader("p2", "product:2"))
    cache.read("customer:3", loader("c3", "customer:3"))
    cache.evict("product:2")
    assert cache.read("bill:1:full", loader("bill v2", "customer:1")) == "bill v2"
    assert cache.read("product:2", loader("p2 v2", "product:2")) == "p2 v2"
    assert cache.read("customer:3", loader("c3 v2", "customer:3")) == "c3"


def test_a_load_overtaken_by_an_eviction_is_not_kept():
    """The load may have read before the change committed: keeping it would
    serve stale data until the next change."""
    cache = TaggedCache(ttl=30, size=10)

    def load_then_change():
        cache.evict("customer:1")  # a write commits while this read is in flight
        return "old", ["customer:1"]

    assert cache.read("customer:1", load_then_change) == "old"
    assert cache.read("customer:1", loader("new", "customer:1")) == "new"


def test_entries_expire_and_the_oldest_go_first():
    cache = TaggedCache(ttl=0.05, size=2)
    cache.read("a", loader(1, "a"))
    time.sleep(0.06)
    assert cache.read("a", loader(2, "a")) == 2
    cache.read("b", loader(3, "b"))
    cache.read("c", loader(4, "c"))  # over size: "a" is the least recently used
    assert cache.read("a", loader(5, "a")) == 5
    assert cache.read("c", loader(6, "c")) == 4


def test_switched_off_it_always_loads():
    cache = TaggedCache(ttl=30, size=10, enabled=False)
    load = loader("v", "x")
    cache.read("x", load)
    cache.read("x", load)
    assert len(load.calls) == 2
