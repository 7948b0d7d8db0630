"""What the broker knows about the mesh: how many instances consume each
service's RPC queue.

RabbitMQ's routing is the service discovery: an instance is "registered" while
it consumes ``rpc-<service>``. The count comes from a passive queue declare (no
management API needed), cached briefly because every RPC call consults it to
fail fast when nobody would answer.
"""
import datetime
import logging
import time

from amqp.exceptions import NotFound
from nameko.amqp.publish import get_connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.rpc import RPC_QUEUE_TEMPLATE

from contracts.events import HEARTBEAT_EXPIRY_S
from mesh.amqp import CONNECTION_ERRORS

log = logging.getLogger(__name__)

# a count of zero is re-read sooner, so a service that comes back is used at once
CACHE_UP_S = 1.0
CACHE_DOWN_S = 0.25
# connecting for a count must not sit in kombu's default back-off (2, 3, 4 s):
# a broker that is away is reported at once
FAIL_FAST = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1,
             "interval_max": 0.1}


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
        try:
            count = self._read(service)
        except CONNECTION_ERRORS:
            # a pooled connection the broker dropped (restart) fails once, and is
            # reconnected by the next use
            count = self._read(service)
        self._cache[service] = (count, time.monotonic())
        return count

    def messages(self, queue):
        """Messages waiting in ``queue`` now (not cached)."""
        return queue_counts(self.amqp_uri, queue)[0]

    def _read(self, service):
        return queue_consumers(self.amqp_uri, RPC_QUEUE_TEMPLATE.format(service))


def queue_consumers(amqp_uri, queue):
    """Consumers of ``queue`` right now, as the broker counts them (0: no queue)."""
    return queue_counts(amqp_uri, queue)[1]


def queue_counts(amqp_uri, queue):
    """``(messages, consumers)`` of ``queue``, by a passive declare; ``(0, 0)``
    when no instance ever declared it."""
    with get_connection(amqp_uri, transport_options=dict(FAIL_FAST)) as connection:
        # the pool may hand back a connection the broker closed (restart)
        connection.ensure_connection(**FAIL_FAST)
        channel = connection.channel()
        try:
            _, messages, consumers = channel.queue_declare(queue, passive=True)
            return messages, consumers
        except NotFound:  # no instance ever started: no queue
            # caught here: an error leaving the pool's block closes its connection
            return 0, 0
        finally:
            if channel.is_open:
                channel.close()


class Registry(DependencyProvider):
    """``self.registry.consumers("billing")`` inside a worker."""

    broker = BrokerView()

    def get_dependency(self, worker_ctx):
        return self.broker


class Instances(DependencyProvider):
    """The instances whose heartbeats arrive (``contracts.events.heartbeat``):
    the registry view's instance list, like Eureka's. ``record(payload)`` from
    a heartbeat handler; ``live(service)`` those heard from within
    ``HEARTBEAT_EXPIRY_S``, each with its ``uptime_s``."""

    def setup(self):
        self.seen = {}  # service -> {instance: (payload, heard at)}

    def get_dependency(self, worker_ctx):
        return self

    def record(self, payload):
        self.seen.setdefault(payload["service"], {})[payload["instance"]] = (
            payload, time.monotonic())

    def live(self, service):
        now = time.monotonic()
        instances = self.seen.get(service, {})
        for instance, (_, heard) in list(instances.items()):
            if now - heard > HEARTBEAT_EXPIRY_S:
                del instances[instance]
        return [dict(payload, uptime_s=round(uptime(payload["started_at"]), 1))
                for payload, _ in sorted(instances.values(), key=lambda seen: seen[0]["instance"])]


def uptime(started_at):
    started = datetime.datetime.fromisoformat(started_at)
    return (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()

