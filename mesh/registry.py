"""What the broker knows about the mesh: how many instances consume each
service's RPC queue.

RabbitMQ's routing is the service discovery: an instance is "registered" while
it consumes ``rpc-<service>``. The count comes from a passive queue declare (no
management API needed), cached briefly because every RPC call consults it to
fail fast when nobody would answer.
"""
import logging
import time

from amqp.exceptions import NotFound
from nameko.amqp.publish import get_connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.rpc import RPC_QUEUE_TEMPLATE

log = logging.getLogger(__name__)

# a count of zero is re-read sooner, so a service that comes back is used at once
CACHE_UP_S = 1.0
CACHE_DOWN_S = 0.25


class BrokerView(SharedExtension):
    """``consumers("inventory")`` -> instances consuming ``rpc-inventory`` now."""

    def setup(self):
        self.amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        self._cache = {}  # service -> (count, read at)

    def consumers(self, service, fresh=False):
        cached = self._cache.get(service)
        now = time.monotonic()
        if cached and not fresh:
            count, read_at = cached
            if now - read_at < (CACHE_UP_S if count else CACHE_DOWN_S):
                return count
        count = self._read(service)
        self._cache[service] = (count, time.monotonic())
        return count

    def _read(self, service):
        with get_connection(self.amqp_uri) as connection:
            channel = connection.channel()
            try:
                _, _, count = channel.queue_declare(
                    RPC_QUEUE_TEMPLATE.format(service), passive=True)
                return count
            except NotFound:  # no instance ever started: no queue
                # caught here: an error leaving the pool's block closes its connection
                return 0
            finally:
                if channel.is_open:
                    channel.close()


class Registry(DependencyProvider):
    """``self.registry.consumers("billing")`` inside a worker."""

    broker = BrokerView()

    def get_dependency(self, worker_ctx):
        return self.broker
