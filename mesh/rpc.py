"""The mesh's ``@rpc``: nameko's entrypoint, refusing requests whose caller
has already given up, answering over transient messages.

Deadlines (see ``mesh.proxy`` for the caller's side): the request carries its
caller's deadline as nameko context data (``contracts.headers``); a request
that arrives past it is refused with ``DeadlineExceeded`` instead of run, and
``mesh.db`` refuses to commit past it, so a call answered 503 never takes
effect later.

``@rpc(inbox=True)``: the method's effect and answer commit together, and a
request RabbitMQ delivers again is answered from that record (``mesh.inbox``).
"""
import logging
import time
import uuid

from kombu import Queue
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY, SERIALIZER_CONFIG_KEY,
)
from nameko.rpc import (RPC_REPLY_QUEUE_TEMPLATE, ReplyListener, Responder, Rpc, RpcConsumer,
                        get_rpc_exchange)

from common.topology import REPLY_ROUTING_KEY, queue_type_of, with_queue_type
from contracts.errors import DeadlineExceeded, MeshError
from contracts.headers import DEADLINE_KEY, header_name
from mesh.amqp import (
    CONNECTION_ERRORS, FastReconnectQueueConsumer, RpcPublisher, declared_by_topology,
)
from mesh.coroutines import accepting_coroutines
from mesh.errors import quiet_expected_errors
from mesh.inbox import call_data, finish_call, inbox_database, replay

log = logging.getLogger(__name__)


class MeshResponder(Responder):
    publisher_cls = RpcPublisher


class MeshRpcConsumer(RpcConsumer):
    queue_consumer = FastReconnectQueueConsumer()

    def setup(self):
        super().setup()  # nameko's builds the service's queue; declared once consuming starts
        with_queue_type(self.queue, queue_type_of(self.container.config))
        declared_by_topology(self.container.config, self.queue.exchange)

    def handle_result(self, message, result, exc_info):
        # nameko's, with the responder above (nameko builds its own inline)
        config = self.container.config
        responder = MeshResponder(
            config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        try:
            result, exc_info = responder.send_response(result, exc_info)
        except CONNECTION_ERRORS as exc:
            # the broker went away after the work was done (a restart): raised
            # from here, the error would kill the whole container (nameko ends a
            # service whose worker thread fails). The caller answers 503 at its
            # deadline; the request, unacknowledged on a dead channel, is given
            # again (an inbox call answered from its record).
            log.warning("could not send the answer of %s: the broker is away (%s)",
                        message.delivery_info.get("routing_key"), exc)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class MeshReplyListener(ReplyListener):
    """nameko's reply listener, its reply queue transient and named anew at each
    (re)connection (same routing key, the ``reply_to`` of every call).

    nameko's reply queue is durable: on a cluster, a durable classic queue whose
    node died cannot be declared again on another node until that node is back,
    so every process that failed over lost its connection at each attempt. A
    reply outlives its caller's deadline by nothing, so a transient queue loses
    nothing the caller still waits for. But a transient queue of the same name,
    declared on the next node before that node had cleaned up the dead node's
    queues, was then deleted under its consumer: in one run of six on the test
    cluster, billing served calls and got no answer to any of its own. A new
    name each time cannot meet the dead node's copy. ``auto_delete``: the copy
    a normal reconnection leaves behind goes with its consumer.
    """

    queue_consumer = FastReconnectQueueConsumer()
    _reply_queue = None

    def setup(self):
        super().setup()
        # nameko's key is a bare UUID, which any service's broker user could bind
        # a queue of its own to once it saw it as a request's reply_to
        self.routing_key = REPLY_ROUTING_KEY.format(self.container.service_name, uuid.uuid4())
        self._reply_queue.routing_key = self.routing_key
        declared_by_topology(self.container.config, self._reply_queue.exchange)

    @property
    def queue(self):
        """What nameko's ``QueueConsumer.get_consumers`` reads after each
        (re)connection to the broker: the reply queue under a new name."""
        if self._reply_queue is None:
            return None
        base = self._reply_queue
        return Queue(RPC_REPLY_QUEUE_TEMPLATE.format(self.container.service_name, uuid.uuid4()),
                     exchange=base.exchange, routing_key=base.routing_key, durable=False,
                     auto_delete=True, queue_arguments=base.queue_arguments)

    @queue.setter
    def queue(self, queue):  # set by nameko's ``setup``
        self._reply_queue = queue


class DeadlineRpc(Rpc):
    """``@rpc`` that refuses requests whose caller has already given up.

    ``MeshError`` (not found, conflict, invalid input) is an answer, not a
    failure: logged as a warning, not as a crash. ``inbox=True``: exactly-once
    effects (``mesh.inbox``).
    """

    rpc_consumer = MeshRpcConsumer()

    def __init__(self, expected_exceptions=(MeshError,), inbox=False, **kwargs):
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)
        self.inbox = inbox

    def setup(self):
        super().setup()
        quiet_expected_errors()
        self.inbox_db = inbox_database(self.container) if self.inbox else None

    def unpack_message_headers(self, message):
        data = super().unpack_message_headers(message)
        if self.inbox:  # the call's identity beside the data, never sent on
            return call_data(data, message)
        return data

    def handle_result(self, message, worker_ctx, result, exc_info):
        if self.inbox:  # commit effect and answer, then reply and acknowledge
            result, exc_info = finish_call(worker_ctx, result, exc_info)
        return super().handle_result(message, worker_ctx, result, exc_info)

    def handle_message(self, body, message):
        if self.inbox:
            # before the deadline: a call that took effect is answered what it
            # answered, however late its second delivery
            found, answer = replay(self.inbox_db, message)
            if found:
                self.rpc_consumer.handle_result(message, answer, None)
                return None
        deadline = message.headers.get(header_name(DEADLINE_KEY))
        late = deadline is not None and time.time() > float(deadline)
        if not late:
            return super().handle_message(body, message)
        method = message.delivery_info["routing_key"]
        log.warning("refused %s: its caller's deadline passed %.3f s ago",
                    method, time.time() - float(deadline))
        exc = DeadlineExceeded("{} arrived after its deadline".format(method))
        self.rpc_consumer.handle_result(message, None, (type(exc), exc, None))


# takes ``async def`` methods too (mesh.coroutines)
rpc = accepting_coroutines(DeadlineRpc.decorator)
