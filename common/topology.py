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
"""
from kombu import Connection, Exchange, Queue

from contracts.services import handler_queues

PERSISTENT = 2


def event_exchange(source):
    """``<source>.events`` as nameko's ``get_event_exchange`` declares it (any
    difference is an AMQP error when the other side declares it too)."""
    return Exchange("{}.events".format(source), type="topic", durable=True,
                    delivery_mode=PERSISTENT, auto_delete=False)


def topology_queues(source=None):
    """The durable handler queues of the declarations (of ``source``'s events
    only, if given), declared exactly as nameko's ``EventHandler`` declares a
    SERVICE_POOL handler's queue."""
    return [Queue(name, exchange=event_exchange(event_source), routing_key=event_type,
                  durable=True, auto_delete=False, exclusive=False)
            for name, event_source, event_type in handler_queues(source)]


def declare_topology(amqp_uri, source=None, timeout=10):
    """Declare the exchanges and handler queues on the broker at ``amqp_uri``;
    the queues' names."""
    queues = topology_queues(source)
    with Connection(amqp_uri, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=3)
        channel = connection.default_channel
        for queue in queues:
            queue.bind(channel).declare()
    return [queue.name for queue in queues]
