"""Read caches of services: the gateway keeps customers, products and full
bills; billing keeps the customers it bills (``common.cache.TaggedCache``).

A read through the gateway costs two broker hops; a cached one costs none.
Entries are evicted by tag from two sides:

* the gateway's own writes evict what they touch as soon as the service has
  answered (``evict`` in a ``finally``), so a read after a write through this
  gateway never sees the old data;
* the services' change events (``customer_updated``, ``stock_changed``, ...,
  see ``contracts.events``) evict what was changed by anybody else (``nameko
  shell``, another service), a moment after their reply (``mesh.events.evicts_on``).

The cache belongs to one service process; with several gateways, a write
through one reaches the others by event only. Billing's cache of customers
makes no writes of its own: events evict it, and its shorter TTL
(``BILLING_CACHE_TTL``) bounds what a lost event can cost.
"""
from nameko.extensions import DependencyProvider

from common.cache import TaggedCache
from common.config import as_bool


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
