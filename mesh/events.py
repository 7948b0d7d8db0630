"""Events the mesh's way: handlers on the fast-reconnect consumer, change
events sent transient.

* ``event_handler``: nameko's ``@event_handler`` on ``FastReconnectQueueConsumer``
  (the stock one brings a second AMQP consumer with kombu's slow back-off:
  nameko shares extensions by class).
* ``broadcast_handler`` (and ``evicts_on``, for read caches: ``mesh.cache``): an
  event for every instance of the service (``BROADCAST``: each has its own
  queue, gone with it).
* ``ChangeEvents``: the dispatcher of change events (``contracts.events``).

Each handler may be an ``async def`` method (``mesh.coroutines``).
"""
from nameko.constants import NON_PERSISTENT
from nameko.events import BROADCAST, EventDispatcher
from nameko.events import EventHandler as NamekoEventHandler

from common.topology import queue_type_of, with_queue_type
from contracts.errors import MeshError
from contracts.headers import DEADLINE_KEY
from mesh.amqp import (
    FastReconnectQueueConsumer, MeshPublisher, declared_by_topology, event_exchanges_undeclared,
)
from mesh.coroutines import accepting_coroutines
from mesh.errors import quiet_expected_errors
from mesh.inbox import after_commit


class EventHandler(NamekoEventHandler):
    """``@event_handler(source_service, event_type, ...)``, as nameko's."""

    queue_consumer = FastReconnectQueueConsumer()

    def __init__(self, source_service, event_type, expected_exceptions=(MeshError,), **kwargs):
        super().__init__(source_service, event_type,
                         expected_exceptions=expected_exceptions, **kwargs)

    def setup(self):
        super().setup()  # nameko's builds self.queue; declared once consuming starts
        with_queue_type(self.queue, queue_type_of(self.container.config))
        declared_by_topology(self.container.config, self.queue.exchange)
        quiet_expected_errors()

    def unpack_message_headers(self, message):
        """The sender's context data without its deadline: nameko hands a
        handler the headers of the request that sent the event, deadline
        included, so an event handled later than that request's RPC_TIMEOUT (its
        consumer was down; it waited in its queue) could commit nothing
        (``mesh.db``) and was dropped. An event is handled whenever it arrives;
        the request id still follows it."""
        data = super().unpack_message_headers(message)
        data.pop(DEADLINE_KEY, None)
        return data


event_handler = accepting_coroutines(EventHandler.decorator)


class BroadcastHandler(EventHandler):
    """Every instance gets the event, none keeps it: a hint to read again, a
    line for a live view."""

    def __init__(self, source_service, event_type, **kwargs):
        super().__init__(source_service, event_type, handler_type=BROADCAST,
                         reliable_delivery=False, **kwargs)


broadcast_handler = accepting_coroutines(BroadcastHandler.decorator)
# the same, named for what read caches do with it
evicts_on = broadcast_handler


class ChangeEvents(EventDispatcher):
    """Change events: transient and unconfirmed, like RPC messages
    (``mesh.amqp.RpcPublisher``), so a write does not wait on a disk write for a
    hint. ``self.changes(PRODUCT_UPDATED, products_changed([4]))``. In an
    inbox call (``mesh.inbox``) the event leaves once the call has committed."""

    publisher_cls = MeshPublisher

    def __init__(self, **options):
        super().__init__(use_confirms=False, delivery_mode=NON_PERSISTENT, **options)

    def setup(self):
        event_exchanges_undeclared(self.container.config)
        super().setup()
        declared_by_topology(self.container.config, self.exchange)

    def get_dependency(self, worker_ctx):
        dispatch = super().get_dependency(worker_ctx)
        return lambda event_type, event_data: after_commit(
            worker_ctx, dispatch, event_type, event_data)
