"""How the mesh talks AMQP: a consumer that reconnects fast, a publisher for
messages that live no longer than a deadline, exchanges it never declares.

Every entrypoint and proxy of the mesh (``mesh.rpc``, ``mesh.proxy``,
``mesh.events``) consumes through ``FastReconnectQueueConsumer``; nameko's
stock extensions each bring their own consumer with kombu's slow back-off,
which is why ``services/`` may not use them (ruff's banned-api, pyproject.toml).
"""
import logging
from contextlib import contextmanager

from amqp.exceptions import ConnectionError as AMQPConnectionError
from amqp.exceptions import RecoverableConnectionError
from kombu import Exchange
from kombu.exceptions import OperationalError
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS, LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
)
from nameko.messaging import QueueConsumer

from common.topology import ensure_declared


log = logging.getLogger(__name__)

# what a broker that is away or restarting raises (kombu wraps some as its own)
CONNECTION_ERRORS = (OSError, AMQPConnectionError, RecoverableConnectionError,
                     OperationalError)
# how often an idle consumer's loop wakes (kombu's default: every second)
WAKE_INTERVAL_S = 0.1
# service -> whether this process's consumer is connected and consuming now:
# its readiness (mesh.metrics' mesh_amqp_consuming, read by tools.probe)
CONSUMING = {}
# (AMQP URI, entity name) this process has seen exist on its broker
_KNOWN_TO_EXIST = set()
# nameko's own switch: its event dispatchers and handlers then build their
# exchanges ``no_declare`` (nameko.standalone.events.get_event_exchange)
DECLARE_EVENT_EXCHANGES = "DECLARE_EVENT_EXCHANGES"


def event_exchanges_undeclared(config):
    """Have nameko build event exchanges it will not declare (its
    ``DECLARE_EVENT_EXCHANGES``, unless the config says otherwise): a
    dispatcher declares its exchange as it sets up, before it could be marked
    (``declared_by_topology`` then checks it exists)."""
    config.setdefault(DECLARE_EVENT_EXCHANGES, False)


def declared_by_topology(config, *entities):
    """``entities`` (kombu exchanges, or queues of other services) checked to
    exist on the broker, made if they do not and this process's user may
    (``common.topology.ensure_declared``), then marked ``no_declare``: nameko
    and kombu declare an exchange again at each connection, which needs
    RabbitMQ's ``configure`` permission on it (deleting it needs no more), and
    no service's broker user has that (``common.broker_users``). Once per
    process and broker; a broker that is away is not waited for here (the
    consumers reconnect, and durable exchanges outlive a restart)."""
    uri = config[AMQP_URI_CONFIG_KEY]
    missing = [entity for entity in entities if (uri, entity.name) not in _KNOWN_TO_EXIST]
    if missing:
        try:
            ensure_declared(uri, missing, ssl=config.get(AMQP_SSL_CONFIG_KEY),
                            login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        except CONNECTION_ERRORS as exc:
            log.warning("could not check %s on the broker (%s): assumed declared",
                        ", ".join(entity.name for entity in missing), exc)
        else:
            _KNOWN_TO_EXIST.update((uri, entity.name) for entity in missing)
    for entity in entities:
        if isinstance(entity, Exchange):
            entity.no_declare = True


class FastReconnectQueueConsumer(QueueConsumer):
    """nameko's consumer, reconnecting every ``BROKER_RECONNECT_INTERVAL`` seconds
    after the broker goes away (kombu's default backs off 2, 4, 6... seconds, so
    a broker restart costs a service 10 s or more), and stopping in a fraction
    of a second. It says in ``CONSUMING`` whether it consumes now."""

    def consume(self, *args, **kwargs):
        # nameko cancels a stopping consumer's queues only between two wakes of
        # kombu's loop (on_iteration), one step per wake, and an idle loop wakes
        # once per safety_interval: with kombu's 1 s, every service took three
        # seconds more to stop (Ctrl-C, SIGTERM, each test's teardown).
        kwargs.setdefault("safety_interval", WAKE_INTERVAL_S)
        try:
            yield from super().consume(*args, **kwargs)
        finally:  # the connection was lost, or the service stops
            CONSUMING[self.container.service_name] = False

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        CONSUMING[self.container.service_name] = True
        return super().on_consume_ready(connection, channel, consumers, **kwargs)

    def on_connection_error(self, exc, interval):
        CONSUMING[self.container.service_name] = False
        return super().on_connection_error(exc, interval)

    def ack_message(self, message):
        # nameko ignores only amqp's own ConnectionError here; a socket reset
        # (OSError) escaped, ended the thread and with it the whole service: a
        # cluster node killed under load stopped billing for good. The message
        # goes back to its queue with the connection, nothing to do.
        try:
            super().ack_message(message)
        except CONNECTION_ERRORS as exc:
            log.info("could not acknowledge a message: the broker connection is gone (%s)", exc)

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except CONNECTION_ERRORS as exc:
            log.info("could not requeue a message: the broker connection is gone (%s)", exc)

    @contextmanager
    def establish_connection(self):
        interval = float(self.container.config.get("BROKER_RECONNECT_INTERVAL", 0.5))
        with self.create_connection() as connection:
            connection.ensure_connection(
                self.on_connection_error, self.connect_max_retries,
                interval_start=interval, interval_step=0, interval_max=interval)
            yield connection


class MeshPublisher(Publisher):
    """nameko's publisher with transport options of its own.

    nameko's ``Publisher.publish`` writes ``confirm_publish`` into
    ``transport_options``, a class attribute: one dict for every publisher of
    the process, which kombu's pooled connections keep a reference to. With
    unconfirmed publishers (RPC, change events) beside confirmed ones
    (``bill_created``), a connection (re)made at the wrong moment would publish
    events unconfirmed. Every publisher of the mesh is this class.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.transport_options = dict(DEFAULT_TRANSPORT_OPTIONS)


class RpcPublisher(MeshPublisher):
    """How RPC requests and replies are sent: transient and unconfirmed.

    nameko sends them persistent with publisher confirms, so RabbitMQ writes
    every request and reply to disk before confirming it. An RPC message lives
    no longer than its caller's deadline (seconds), so surviving a broker restart
    buys nothing: the caller has answered 503 by then. Fail-fast needs no
    confirm either (``MeshRpcProxy`` asks the broker for consumers instead of
    relying on ``mandatory``). So RabbitMQ neither writes nor confirms them, which
    was a large share of its CPU per call (``make bench``; the figures are in
    docs/benchmarks.md). Events stay persistent and confirmed. Over quorum queues
    ``MeshRpcProxy`` has requests confirmed (``mesh.proxy`` says why).
    """

    delivery_mode = NON_PERSISTENT
    use_confirms = False
