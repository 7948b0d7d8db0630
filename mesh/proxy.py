"""``MeshRpcProxy``: the mesh's Feign client, a declarative client of another
service with a deadline on every call.

nameko 2.14's ``RpcProxy`` waits for a reply forever, and a request whose caller
gave up still runs when a worker gets to it. Here:

* the caller waits at most ``RPC_TIMEOUT`` seconds (or what is left of its own
  caller's deadline), then drops the pending reply and raises
  ``ServiceUnavailable`` (HTTP 503);
* the request message carries that deadline in its headers (nameko context
  data, so it flows on to further hops) and a per-message ``expiration``, so
  RabbitMQ drops it if no instance picks it up in time; the callee refuses it
  late (``mesh.rpc``).

The deadline sent is ``RPC_DEADLINE_MARGIN`` seconds before the caller stops
waiting: work committed just before the deadline still has time to reply.
"""
import time
import uuid
from collections.abc import Mapping

import eventlet
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY, SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import deserialize
from nameko.extensions import DependencyProvider
from nameko.messaging import HeaderEncoder
from nameko.rpc import get_rpc_exchange

from common.topology import QUORUM, queue_type_of
from contracts.errors import DeadlineExceeded, ServiceUnavailable
from contracts.headers import DEADLINE_KEY, header_name
from mesh.amqp import RpcPublisher
from mesh.coroutines import in_greenthread, on_loop_greenlet
from mesh.amqp import CONNECTION_ERRORS
from mesh.registry import BrokerView
from mesh.rpc import MeshReplyListener


class MeshRpcProxy(DependencyProvider):
    """Declarative client of another service, with a deadline on every call.

        class BillingService:
            customers = MeshRpcProxy("customers")

            @rpc
            def create_bill(self, customer_id, items):
                self.customers.get_customer(customer_id)         # waits <= RPC_TIMEOUT
                reply = self.inventory.get_products.call_async([1, 2])
                reply.result()                                     # same deadline

            @rpc
            async def get_full_bill(self, bill_id):              # the same, awaited
                customer, products = await asyncio.gather(
                    self.customers.get_customer(1), self.inventory.get_products([1, 2]))

    ``inherit_deadline=False`` gives calls a fresh deadline instead of what is
    left of the caller's: for compensations that must run after a timeout.

    A call fails at once (503) when no instance consumes the target's queue,
    instead of waiting out its deadline: callers do not pile up behind a dead
    service.
    """

    rpc_reply_listener = MeshReplyListener()
    broker = BrokerView()

    def __init__(self, target_service, inherit_deadline=True):
        self.target_service = target_service
        self.inherit_deadline = inherit_deadline

    def setup(self):
        config = self.container.config
        self.timeout = float(config.get("RPC_TIMEOUT", 5))
        self.margin = float(config.get("RPC_DEADLINE_MARGIN", 0.2))
        self.exchange = get_rpc_exchange(config)
        # RabbitMQ (3.10 here) silently dropped unconfirmed messages to a quorum
        # queue sent on a channel opened while the queue's leader was being
        # replaced, for as long as that channel lived: after a node was lost,
        # the gateway's calls to billing went nowhere for 30 s and more, while
        # confirmed ones arrived. Over quorum queues requests are confirmed.
        self.confirmed = queue_type_of(config) == QUORUM
        self.publisher = RpcPublisher(
            config[AMQP_URI_CONFIG_KEY],
            use_confirms=self.confirmed,
            serializer=config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            # a broker that is away fails the call within its deadline, not after
            # kombu's default back-off
            retry_policy={"max_retries": 3, "interval_start": 0.1,
                          "interval_step": 0.2, "interval_max": 0.5},
        )

    def get_dependency(self, worker_ctx):
        return ServiceClient(self, worker_ctx, self.target_service)

    def send_request(self, routing_key, body, seconds, **properties):
        """Publish one request to ``routing_key`` (``billing.create_bill``) that
        lives ``seconds``; ``properties``: its reply_to, correlation_id, headers."""
        if self.confirmed:
            # a confirm that does not come, or a refusal (nack) while the queue's
            # leader is being replaced, is a connection error to kombu: a new
            # connection and the request sent again (the publisher's retry
            # policy), then OperationalError. One that arrived after all is run
            # once: the services' writes are inbox methods (mesh.inbox), and
            # the listener drops the second answer
            properties["confirm_timeout"] = seconds / 2
        self.publisher.publish(body, exchange=self.exchange, routing_key=routing_key,
                               expiration=seconds, **properties)


class ServiceClients(MeshRpcProxy):
    """A client of each of ``services`` (by name), with the same deadlines as
    ``MeshRpcProxy``'s: for code that serves every service alike (the mesh's
    operations routes), so that a service added to the declarations is served
    with no attribute of its own.

        class Gateway:
            services = ServiceClients(RPC_SERVICES)

            @http("GET", "/ping/<service>", scope=OPERATIONS_READ)
            def ping(self, request, service):
                return json_response(self.services[service].ping())

    An unknown name is a ``KeyError``.
    """

    def __init__(self, services, inherit_deadline=True):
        super().__init__(None, inherit_deadline=inherit_deadline)
        self.services = tuple(services)

    def get_dependency(self, worker_ctx):
        return Clients(self, worker_ctx)


class Clients(Mapping):
    """``clients["billing"]``: the ``ServiceClient`` of a service of ``ServiceClients``."""

    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx

    def __getitem__(self, service):
        if service not in self._provider.services:
            raise KeyError(service)
        return ServiceClient(self._provider, self._worker_ctx, service)

    def __iter__(self):
        return iter(self._provider.services)

    def __len__(self):
        return len(self._provider.services)


class ServiceClient:
    """``client.method(...)`` calls ``target.method`` over RPC."""

    def __init__(self, provider, worker_ctx, target):
        self._provider = provider
        self._worker_ctx = worker_ctx
        self._target = target

    def __getattr__(self, method_name):
        return MethodClient(self._provider, self._worker_ctx, self._target, method_name)


class MethodClient(HeaderEncoder):

    def __init__(self, provider, worker_ctx, target, method_name):
        self.provider = provider
        self.worker_ctx = worker_ctx
        self.target = target
        self.method_name = method_name
        self.name = "{}.{}".format(target, method_name)
        self.timeout = provider.timeout

    def within(self, seconds):
        """This method with a shorter deadline: ``client.ping.within(1.0)()``."""
        shorter = MethodClient(self.provider, self.worker_ctx, self.target, self.method_name)
        shorter.timeout = min(float(seconds), self.timeout)
        return shorter

    def __call__(self, *args, **kwargs):
        if on_loop_greenlet():
            # inside an ``async def`` method: an awaitable, the wait in a greenthread
            return in_greenthread(self._call, args, kwargs)
        return self._call(args, kwargs)

    def _call(self, args, kwargs):
        return self.call_async(*args, **kwargs).result()

    def _wait_until(self, now):
        wait_until = now + self.timeout
        inherited = self.worker_ctx.data.get(DEADLINE_KEY)
        if self.provider.inherit_deadline and inherited is not None:
            # our own work must be done by our caller's deadline: wait no longer
            wait_until = min(wait_until, float(inherited))
        return wait_until

    def _has_consumers(self):
        try:
            return self.provider.broker.consumers(self.target) > 0
        except CONNECTION_ERRORS as exc:
            raise ServiceUnavailable("broker unreachable: {}".format(exc))

    def call_async(self, *args, **kwargs):
        """Publish the request now; ``.result()`` waits for the reply."""
        provider = self.provider
        now = time.time()
        wait_until = self._wait_until(now)
        deadline = wait_until - provider.margin
        if deadline <= now:
            raise DeadlineExceeded("no time left to call {}".format(self.name))
        headers = self.get_message_headers(self.worker_ctx)
        headers[header_name(DEADLINE_KEY)] = deadline
        correlation_id = str(uuid.uuid4())
        listener = provider.rpc_reply_listener
        reply_event = listener.get_reply_event(correlation_id)
        reply = Reply(self.name, listener, correlation_id, reply_event, wait_until)
        try:
            # sending must not outlive the deadline either (broker away)
            with eventlet.Timeout(deadline - now):
                if not self._has_consumers():
                    reply.abandon()
                    raise ServiceUnavailable("no instance of {} is running".format(
                        self.target))
                provider.send_request(
                    self.name, {"args": args, "kwargs": kwargs}, deadline - now,
                    reply_to=listener.routing_key, correlation_id=correlation_id,
                    extra_headers=headers)
        except (eventlet.Timeout,) + CONNECTION_ERRORS as exc:
            reply.abandon()
            raise ServiceUnavailable("could not send {}: {}".format(
                self.name, exc or "the broker did not take it in time"))
        return reply


class Reply:
    """A pending RPC reply that gives up at its deadline."""

    def __init__(self, name, listener, correlation_id, event, wait_until):
        self.name = name
        self.listener = listener
        self.correlation_id = correlation_id
        self.event = event
        self.wait_until = wait_until
        self.body = None

    def abandon(self):
        # a late reply for a dropped correlation id is discarded by the listener
        self.listener._reply_events.pop(self.correlation_id, None)

    def result(self):
        if self.body is None:
            try:
                with eventlet.Timeout(max(self.wait_until - time.time(), 0), False):
                    self.body = self.event.wait()
            except BaseException:  # killed while waiting (a cancelled coroutine)
                self.abandon()
                raise
        if self.body is None:
            self.abandon()
            raise ServiceUnavailable("{} did not answer in time".format(self.name))
        if self.body.get("error"):
            raise deserialize(self.body["error"])
        return self.body["result"]
