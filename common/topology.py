"""The mesh's topology: its exchanges (``nameko-rpc`` and each service's
``<service>.events``) and every declared handler's durable queue, bound to its
source's event exchange, declared before any service starts.

Exchanges are declared here, and only here: declaring one needs RabbitMQ's
``configure`` permission on it, which also allows deleting it, and no
service's broker user has that (``common.broker_users``). The services check
that they exist (``ensure_declared``), and declare them only when their user
may (a laptop's ``guest``, a service started by hand on a fresh broker).

nameko drops an event that no queue is bound to, so a handler whose service
has never run would miss what was published before its first start. The
queues come from the declarations (``contracts.services``: ``handles``): the
consumer owns its queue, and no producer's code names its consumers.

Declared by ``make run`` (``tools.run``), by compose's ``topology`` service and
by the tests' meshes before anything starts. A service that publishes checks
that its events' handler queues exist (``mesh.outbox.Outbox``), and refuses to
start, naming them, if they do not and its user may not declare them.
Declaring is idempotent: the same queue with the same arguments is a no-op to
RabbitMQ.

``QUEUE_TYPE`` (config.yaml) says what the mesh's durable queues are: RabbitMQ's
``classic`` queues (the default: one node, and the fastest), or ``quorum``
queues, replicated over a cluster's nodes (``docs/operations.md``). Every
durable queue the mesh declares takes it (services' RPC queues, event handler
queues, here); reply queues and broadcast handlers' queues, which live and die
with their consumer, stay classic. RabbitMQ refuses to declare a queue again
with another type: switching an existing broker means deleting the mesh's
queues first.
"""
import copy

from amqp.exceptions import AccessRefused, NotFound
from kombu import Connection, Exchange, Queue
from kombu.exceptions import ChannelError

from contracts.services import DECLARATIONS, handler_queues

PERSISTENT = 2
# nameko's default RPC exchange, and the config key that names another (its
# RPC_EXCHANGE_CONFIG_KEY; tests/unit/test_aio_wire.py checks both against nameko)
RPC_EXCHANGE = "nameko-rpc"
RPC_EXCHANGE_CONFIG_KEY = "rpc_exchange"
# the routing key a process's replies come back with: its name in it, so its
# broker user alone may bind to it (common.broker_users); one word (no dot), so
# no service's ``<name>.*`` binding matches it
REPLY_ROUTING_KEY = "reply-{}-{}"
CLASSIC, QUORUM = "classic", "quorum"
QUEUE_TYPES = (CLASSIC, QUORUM)


def queue_type_of(config):
    """``QUEUE_TYPE`` of a config (``classic`` when unset); anything else is an
    error at start, not a queue of an unknown type."""
    queue_type = str(config.get("QUEUE_TYPE") or CLASSIC).strip().lower()
    if queue_type not in QUEUE_TYPES:
        raise ValueError("QUEUE_TYPE must be one of {}, not {!r}".format(
            ", ".join(QUEUE_TYPES), config.get("QUEUE_TYPE")))
    return queue_type


def queue_arguments(queue_type):
    """The declare arguments of a durable queue of that type: none for
    classic (what RabbitMQ assumes), ``x-queue-type`` for quorum.

        >>> queue_arguments("quorum")
        {'x-queue-type': 'quorum'}
    """
    return {"x-queue-type": QUORUM} if queue_type == QUORUM else None


def with_queue_type(queue, queue_type):
    """``queue`` (kombu) as declared under ``queue_type``: a durable, shared
    queue takes the type; an exclusive or auto-deleted one stays classic
    (quorum queues are neither)."""
    if queue.durable and not queue.exclusive and not queue.auto_delete:
        arguments = queue_arguments(queue_type)
        if arguments:
            queue.queue_arguments = dict(queue.queue_arguments or {}, **arguments)
    return queue


def event_exchange(source):
    """``<source>.events`` as nameko's ``get_event_exchange`` declares it (any
    difference is an AMQP error when the other side declares it too)."""
    return Exchange("{}.events".format(source), type="topic", durable=True,
                    delivery_mode=PERSISTENT, auto_delete=False)


def rpc_exchange(name=RPC_EXCHANGE):
    """The RPC exchange as nameko's ``get_rpc_exchange`` builds it (topic,
    durable: any difference is an AMQP error when a service declares it too)."""
    return Exchange(name, type="topic", durable=True)


def mesh_exchanges(rpc_exchange_name=RPC_EXCHANGE):
    """Every exchange of the mesh: the RPC exchange, then the event exchange
    of each declared service that sends events (heartbeats included)."""
    return [rpc_exchange(rpc_exchange_name)] + [
        event_exchange(service.name) for service in DECLARATIONS if service.events]


def topology_queues(source=None, queue_type=CLASSIC):
    """The durable handler queues of the declarations (of ``source``'s events
    only, if given), declared exactly as nameko's ``EventHandler`` declares a
    SERVICE_POOL handler's queue (``mesh.events`` gives it the same type)."""
    return [with_queue_type(Queue(name, exchange=event_exchange(event_source),
                                  routing_key=event_type, durable=True, auto_delete=False,
                                  exclusive=False), queue_type)
            for name, event_source, event_type in handler_queues(source)]


def declare_topology(amqp_uri, source=None, timeout=10, queue_type=CLASSIC,
                     rpc_exchange_name=RPC_EXCHANGE):
    """Declare the exchanges and handler queues on the broker at ``amqp_uri``
    (one URI, or several separated by ``;``: the first that answers); the
    queues' names."""
    queues = topology_queues(source, queue_type)
    with Connection(amqp_uri, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=3)
        channel = connection.default_channel
        for exchange in mesh_exchanges(rpc_exchange_name):
            exchange.bind(channel).declare()
        for queue in queues:
            queue.bind(channel).declare()
    return [queue.name for queue in queues]


def rpc_exchange_of(config):
    """The RPC exchange's name in ``config`` (nameko's ``rpc_exchange`` key)."""
    return config.get(RPC_EXCHANGE_CONFIG_KEY) or RPC_EXCHANGE


def missing_from_broker(amqp_uri, timeout=10, rpc_exchange_name=RPC_EXCHANGE):
    """The names of the topology's exchanges and handler queues that do not
    exist on the broker at ``amqp_uri`` (passive declares: any user may ask)."""
    with Connection(amqp_uri, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1)
        return [entity.name for entity in _missing(
            connection, mesh_exchanges(rpc_exchange_name) + topology_queues())]


class TopologyMissing(RuntimeError):
    """An exchange or queue of the topology does not exist, and this process's
    broker user may not declare it."""


def _missing(connection, entities):
    """Those of ``entities`` (kombu's exchanges and queues) that do not exist:
    a passive declare each, on a channel of its own (a refusal closes it)."""
    for entity in entities:
        with connection.channel() as channel:
            try:
                if isinstance(entity, Queue):
                    channel.queue_declare(queue=entity.name, passive=True)
                else:
                    channel.exchange_declare(exchange=entity.name, type=entity.type,
                                             passive=True)
            except (NotFound, ChannelError):
                yield entity


def ensure_declared(amqp_uri, entities, timeout=10, **connection_options):
    """Make sure each exchange or queue of ``entities`` (kombu's) exists on the
    broker at ``amqp_uri``: a passive declare (which needs no permission), then
    a declare of those missing (as given, ``no_declare`` aside), which
    RabbitMQ refuses to a user without ``configure`` on them:
    ``TopologyMissing`` then, naming them and the step that declares them."""
    with Connection(amqp_uri, connect_timeout=timeout, **connection_options) as connection:
        connection.ensure_connection(max_retries=1)
        for entity in _missing(connection, entities):
            declarable = copy.copy(entity)
            declarable.no_declare = False
            with connection.channel() as channel:
                try:
                    declarable.bind(channel).declare()
                except AccessRefused as exc:
                    raise TopologyMissing(
                        "the {} {!r} does not exist on the broker and {!r} may not declare it "
                        "({}): run the topology step first (python -m tools.topology; make "
                        "run and docker compose do)".format(
                            "queue" if isinstance(entity, Queue) else "exchange", entity.name,
                            connection.userid, exc)) from exc
