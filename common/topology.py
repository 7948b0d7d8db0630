"""The mesh's topology: every declared handler's durable queue, bound to its
source's event exchange, declared before any service starts.

nameko drops an event that no queue is bound to, so a handler whose service
has never run would miss what was published before its first start. The
queues come from the declarations (``contracts.services``: ``handles``): the
consumer owns its queue, and no producer's code names its consumers.

Declared by ``make run`` (``tools.run``), by compose's ``topology`` service and
by the tests' meshes before anything starts, and again by each service that
publishes (``mesh.outbox.Outbox``), so a producer started alone by hand keeps
the same guarantee. Declaring is idempotent: the same queue with the same
arguments is a no-op to RabbitMQ.

``QUEUE_TYPE`` (config.yaml) says what the mesh's durable queues are: RabbitMQ's
``classic`` queues (the default: one node, and the fastest), or ``quorum``
queues, replicated over a cluster's nodes (``docs/operations.md``). Every
durable queue the mesh declares takes it (services' RPC queues, event handler
queues, here); reply queues and broadcast handlers' queues, which live and die
with their consumer, stay classic. RabbitMQ refuses to declare a queue again
with another type: switching an existing broker means deleting the mesh's
queues first.
"""
from kombu import Connection, Exchange, Queue

from contracts.services import handler_queues

PERSISTENT = 2
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


def topology_queues(source=None, queue_type=CLASSIC):
    """The durable handler queues of the declarations (of ``source``'s events
    only, if given), declared exactly as nameko's ``EventHandler`` declares a
    SERVICE_POOL handler's queue (``mesh.events`` gives it the same type)."""
    return [with_queue_type(Queue(name, exchange=event_exchange(event_source),
                                  routing_key=event_type, durable=True, auto_delete=False,
                                  exclusive=False), queue_type)
            for name, event_source, event_type in handler_queues(source)]


def declare_topology(amqp_uri, source=None, timeout=10, queue_type=CLASSIC):
    """Declare the exchanges and handler queues on the broker at ``amqp_uri``
    (one URI, or several separated by ``;``: the first that answers); the
    queues' names."""
    queues = topology_queues(source, queue_type)
    with Connection(amqp_uri, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=3)
        channel = connection.default_channel
        for queue in queues:
            queue.bind(channel).declare()
    return [queue.name for queue in queues]
