"""``mesh.aio``: the mesh from asyncio code outside it (an aiohttp or FastAPI
app, a script, a notebook), over aio-pika, speaking nameko 2.14's AMQP RPC.

    from mesh.aio import connect

    async with connect("config.yaml") as mesh:
        customer = await mesh.customers.get_customer(1)
        bill, stats = await asyncio.gather(mesh.billing.get_full_bill(1),
                                           mesh.analytics.get_customer_stats(1))
        async for event in mesh.events("billing", "bill_created"):
            print(event["bill"]["total"])

It keeps what the mesh's own client (``mesh.proxy.MeshRpcProxy``) promises:

* **a deadline on every call**: ``RPC_TIMEOUT`` from the config (or
  ``connect(..., timeout=)``, or ``.within(seconds)`` per call); past it the
  call raises ``ServiceUnavailable`` and its reply, should it come, is dropped.
  The request carries the deadline (``RPC_DEADLINE_MARGIN`` earlier) as nameko
  context data, so the callee refuses it late (``mesh.rpc``), and a per-message
  ``expiration``, so RabbitMQ drops it if nobody takes it in time;
* **fail fast**: a call to a service with no instance consuming ``rpc-<service>``
  raises ``ServiceUnavailable`` at once (a passive queue declare, cached like
  ``mesh.registry.BrokerView``), and the request is published ``mandatory``, so
  the broker returns it when no queue is bound for it;
* **errors as themselves**: ``CustomerNotFound`` with its ``code``, ``status``
  and message, any class of ``contracts.errors``; anything else the callee
  raised is a ``mesh.aio.RemoteError`` with its ``exc_type`` and ``value``;
* **exact money and times**: kombu's JSON, as nameko's own clients send it, so
  ``Decimal`` and ``datetime`` come back as ``Decimal`` and ``datetime``;
* **request ids**: every call sends one (``connect(request_id=)``,
  ``.with_request_id(...)``, or a fresh one per call), and every log line the
  call causes in the services carries it: ``grep <id> var/log/*.log``.

One connection (``aio_pika.connect_robust``), one exclusive reply queue bound to
``nameko-rpc``, any number of calls in flight, told apart by correlation id.
After the connection drops, calls in flight raise ``ServiceUnavailable`` (their
replies went to a queue that is gone), and calls are served again as soon as the
robust connection is back (it declares the reply queue again).

It imports no nameko: nameko brings eventlet, which an asyncio program does
not want; the few names of nameko's wire format are spelled out below.
"""
import asyncio
import logging
import os
import socket
import time
import uuid
import weakref

import aio_pika
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity, PublishError
from kombu.utils.json import dumps, loads

from common.config import CONFIG_PATH, load_config
from common.topology import REPLY_ROUTING_KEY, rpc_exchange_of
from contracts.errors import DeadlineExceeded, ServiceUnavailable, all_errors
from contracts.headers import (
    CALLER_KEY, CLIENT_ID_KEY, DEADLINE_KEY, MAX_CALLER_LENGTH, REQUEST_ID_KEY, VALID_REQUEST_ID,
    header_name,
)

__all__ = ["connect", "Mesh", "RemoteError", "EventStream", "error_from", "amqp_url"]

log = logging.getLogger(__name__)

# nameko 2.14's wire format (nameko.rpc.get_rpc_exchange and RPC_QUEUE_TEMPLATE,
# nameko.standalone.events.get_event_exchange, nameko.constants; the RPC
# exchange's name and config key: common.topology)
RPC_QUEUE = "rpc-{}"
EVENTS_EXCHANGE = "{}.events"
CALL_ID_STACK_KEY = "call_id_stack"
CONTENT_TYPE = "application/json"  # kombu's "json" serializer, nameko's default
CONTENT_ENCODING = "utf-8"
# this client's name where nameko puts a service's: call ids, reply queue names
CLIENT_NAME = "mesh_aio"

DEFAULT_TIMEOUT = 5.0  # config.yaml's RPC_TIMEOUT default
DEFAULT_MARGIN = 0.2  # config.yaml's RPC_DEADLINE_MARGIN default
DEFAULT_RECONNECT_INTERVAL = 0.5  # config.yaml's BROKER_RECONNECT_INTERVAL default
# mesh.registry's cache of consumer counts: a count of 0 is read again sooner, so
# a service that comes back is used at once
CACHE_UP_S = 1.0
CACHE_DOWN_S = 0.25
# while the connection is away a call waits this long for it (within its own
# deadline), then fails: callers do not pile up behind a broker that is gone
RECONNECT_WAIT_S = 1.0
# unacknowledged events an EventStream holds before the broker waits for it
EVENTS_PREFETCH = 256
# what a lost or refused connection raises here
BROKER_ERRORS = (AMQPError, ConnectionError, OSError)

_MESH_ERRORS = {cls.__name__: cls for cls in all_errors()}

def _checked_request_id(request_id):
    if request_id is not None and not (isinstance(request_id, str)
                                       and VALID_REQUEST_ID.match(request_id)):
        raise ValueError("a request id is 1 to 128 of A-Z a-z 0-9 . _ : - "
                         "(got {!r})".format(request_id))
    return request_id


async def existing_exchange(connection, channel, name, auto_delete=False):
    """The exchange ``name`` on ``channel``: checked to exist on a channel of
    its own (a passive declare, which needs no permission; a missing exchange
    closes the channel it was asked on), declared as nameko declares it (topic,
    durable) only if missing. The mesh's broker users may not declare
    exchanges (docs/security.md); the topology step has made them."""
    probe = await connection.channel(publisher_confirms=False)
    try:
        await probe.get_exchange(name, ensure=True)
        missing = False
    except ChannelNotFoundEntity:
        missing = True
    finally:
        if not probe.is_closed:
            await probe.close()
    if missing:
        return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True,
                                              auto_delete=auto_delete)
    return await channel.get_exchange(name, ensure=False)


class RemoteError(Exception):
    """An error the callee raised that is not one of ``contracts.errors``: a bug
    there, or nameko's own ``MethodNotFound``, ``IncorrectSignature``,
    ``MalformedRequest``. Like ``nameko.exceptions.RemoteError``: ``exc_type``
    and ``value`` as the callee sent them (also ``exc_path``, ``exc_args``)."""

    def __init__(self, exc_type=None, value="", exc_path=None, exc_args=()):
        self.exc_type = exc_type
        self.value = value
        self.exc_path = exc_path
        self.exc_args = list(exc_args or ())
        super().__init__("{} {}".format(exc_type, value))


def error_from(error):
    """The exception a reply's ``error`` dict stands for (nameko's
    ``exceptions.serialize``: ``exc_type``, ``exc_path``, ``value``,
    ``exc_args``).

    ``exc_type`` names a class of ``contracts.errors``: that class, built from
    the callee's ``exc_args`` (``CustomerNotFound("customer 7 does not
    exist")``, with its ``code`` and ``status``). Its ``exc_path``, when sent,
    must be that class's own, so another library's ``NotFound`` (werkzeug's)
    does not pass for the mesh's. Anything else: ``RemoteError``.
    """
    exc_type = error.get("exc_type")
    exc_path = error.get("exc_path")
    exc_args = error.get("exc_args") or []
    value = error.get("value", "")
    cls = _MESH_ERRORS.get(exc_type)
    if cls is not None and exc_path in (None, "{}.{}".format(cls.__module__, cls.__name__)):
        try:
            return cls(*exc_args)
        except TypeError:  # arguments this side's class does not take
            return cls(value)
    return RemoteError(exc_type, value, exc_path, exc_args)


def amqp_url(uri):
    """kombu's AMQP URI as aio-pika takes it: the same broker and vhost.

        amqp_url("pyamqp://guest:guest@127.0.0.1:5672/")  # 'amqp://guest:guest@127.0.0.1:5672/'
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError("not an AMQP URI: {!r}".format(uri))
    # kombu's transports for RabbitMQ; the vhost is the path after its first
    # slash in both (empty: "/"), so the rest stays as it is
    schemes = {"amqp": "amqp", "pyamqp": "amqp", "py-amqp": "amqp", "librabbitmq": "amqp",
               "amqps": "amqps", "pyamqps": "amqps"}
    if scheme.lower() not in schemes:
        raise ValueError("mesh.aio speaks AMQP 0-9-1 to RabbitMQ; {!r} is not an AMQP "
                         "URI".format(uri))
    return "{}://{}".format(schemes[scheme.lower()], rest)


def _read_config(config):
    if config is None:
        return load_config(CONFIG_PATH)
    if isinstance(config, dict):
        return dict(config)
    config = os.fspath(config)
    if "://" in config:
        return {"AMQP_URI": config}
    # a file read as `nameko run --config` reads it: ${ENV_VAR:default} expanded
    return load_config(config)


def connect(config=None, *, timeout=None, request_id=None, caller=None, context_data=None):
    """A client of the mesh: ``async with connect(...) as mesh`` (closed on
    leaving), or ``mesh = await connect(...)`` and ``await mesh.close()``.

    ``config``: a config file (``"config.yaml"``, read with its
    ``${ENV_VAR:default}`` as ``nameko run`` reads it; None: the project's own),
    an AMQP URI, or a config dict (``AMQP_URI``, ``RPC_TIMEOUT``,
    ``RPC_DEADLINE_MARGIN``, ``BROKER_RECONNECT_INTERVAL``, ``rpc_exchange``).

    ``timeout``: the seconds every call may take (default: ``RPC_TIMEOUT``);
    ``request_id``: sent with every call (default: a new one per call);
    ``caller``: on whose behalf every call is made (``Mesh.with_caller``);
    ``context_data``: more nameko context data for every call
    (``{"language": "fr"}``), as ``ClusterRpcProxy(context_data=)`` sends.

        async with connect("config.yaml", timeout=2) as mesh:
            await mesh.customers.get_customer(1)
    """
    settings = _read_config(config)
    core = _Core(settings)
    if timeout is None:
        timeout = float(settings.get("RPC_TIMEOUT", DEFAULT_TIMEOUT))
    mesh = Mesh(core, float(timeout), _checked_request_id(request_id), dict(context_data or {}))
    return mesh.with_caller(caller) if caller is not None else mesh


class Mesh:
    """The mesh, as ``connect`` gives it: ``mesh.<service>.<method>(...)`` is a
    coroutine calling it (``mesh["kafka_bridge"]`` works too);
    ``mesh.events(service, event_type)`` follows events.

        customer = await mesh.customers.get_customer(1)
        page = await mesh.billing.list_bills(customer_id=2, size=5)
        await mesh.within(0.5).customers.ping()            # a shorter deadline
        await mesh.with_request_id("r-42").customers.get_customer(1)
        await mesh.with_caller("alice").billing.cancel_bill(4)  # cancelled_by "alice"
    """

    def __init__(self, core, timeout, request_id=None, context_data=None):
        self._core = core
        self.timeout = timeout
        self.request_id = request_id
        self.context_data = context_data or {}

    # --- starting and stopping ------------------------------------------------

    async def start(self):
        """Connect (``async with`` and ``await connect(...)`` do); raises
        ``ServiceUnavailable`` when the broker cannot be reached."""
        await self._core.start(self.timeout)
        return self

    def __await__(self):
        return self.start().__await__()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc_info):
        await self.close()

    async def close(self):
        """Close the connection: calls in flight raise ``ServiceUnavailable``,
        event streams end."""
        await self._core.close()

    @property
    def connection_name(self):
        """The connection's name as RabbitMQ shows it (``client_properties``)."""
        return self._core.connection_name

    # --- variants sharing the connection --------------------------------------

    def within(self, seconds):
        """The same mesh with calls of at most ``seconds`` each."""
        return Mesh(self._core, float(seconds), self.request_id, self.context_data)

    def with_request_id(self, request_id):
        """The same mesh sending ``request_id`` with every call: the id the
        services' log lines carry (``[request_id]``)."""
        return Mesh(self._core, self.timeout, _checked_request_id(request_id), self.context_data)

    def with_caller(self, subject, client_id=None):
        """The same mesh calling on behalf of ``subject``: the user your app
        authenticated (its token's ``sub``), or your app's own name. It travels
        as the gateway's callers' does: billing stores it as a bill's
        ``created_by`` and ``cancelled_by``, and the services' log lines carry it."""
        if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_CALLER_LENGTH:
            raise ValueError("a caller is 1 to {} characters of text, not {!r}".format(
                MAX_CALLER_LENGTH, subject))
        context_data = dict(self.context_data, **{CALLER_KEY: subject})
        if client_id is not None:
            context_data[CLIENT_ID_KEY] = str(client_id)
        return Mesh(self._core, self.timeout, self.request_id, context_data)

    # --- calls and events -----------------------------------------------------

    def __getattr__(self, service):
        if service.startswith("_"):
            raise AttributeError(service)
        return ServiceClient(self, service)

    def __getitem__(self, service):
        return ServiceClient(self, service)

    def events(self, service, event_type):
        """An ``EventStream`` of ``service``'s ``event_type`` events, as they
        happen from the moment it starts (``async with`` starts it at once;
        ``async for`` at its first step).

            async with mesh.events("billing", "bill_created") as bills:
                await mesh.billing.create_bill(1, [{"product_id": 2, "quantity": 1}])
                async for event in bills:
                    print(event["bill"]["total"])         # '1299.00'
        """
        return EventStream(self._core, service, event_type)


class ServiceClient:
    """``mesh.customers``: ``await mesh.customers.get_customer(1)``."""

    def __init__(self, mesh, service):
        self._mesh = mesh
        self._service = service

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return MethodClient(self._mesh, self._service, method)

    def __repr__(self):
        return "<mesh.aio service {}>".format(self._service)


class MethodClient:
    """``mesh.customers.get_customer``: call it for a coroutine of the answer.

        await mesh.customers.get_customer(1)
        await mesh.customers.get_customer.within(2)(1)
        await mesh.customers.get_customer.with_request_id("r-42")(1)

    ``within`` and ``with_request_id`` take the call's options apart from its
    arguments, which go to the RPC method as they are (a ``timeout=`` keyword
    would be the method's own).
    """

    def __init__(self, mesh, service, method):
        self._mesh = mesh
        self.service = service
        self.method = method

    def within(self, seconds):
        """This method with calls of at most ``seconds``."""
        return MethodClient(self._mesh.within(seconds), self.service, self.method)

    def with_request_id(self, request_id):
        """This method sending ``request_id``."""
        return MethodClient(self._mesh.with_request_id(request_id), self.service, self.method)

    def __call__(self, *args, **kwargs):
        mesh = self._mesh
        return mesh._core.call(self.service, self.method, args, kwargs, mesh.timeout,
                               mesh.request_id or uuid.uuid4().hex, mesh.context_data)

    def __repr__(self):
        return "<mesh.aio method {}.{}>".format(self.service, self.method)


class _Core:
    """The connection, the reply queue and the calls in flight, shared by every
    ``Mesh`` that ``within``/``with_request_id`` make of one ``connect``."""

    def __init__(self, config):
        self.config = config
        # a cluster's nodes (";" between them, as kombu takes them): the first
        # that answers. aio-pika reconnects to that node only (it takes one URL)
        self.urls = [amqp_url(uri) for uri in str(
            config.get("AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/")).split(";") if uri]
        self.url = self.urls[0]
        self.margin = float(config.get("RPC_DEADLINE_MARGIN", DEFAULT_MARGIN))
        self.reconnect_interval = float(
            config.get("BROKER_RECONNECT_INTERVAL", DEFAULT_RECONNECT_INTERVAL))
        self.exchange_name = rpc_exchange_of(config)
        self.auto_delete_event_exchanges = bool(config.get("AUTO_DELETE_EVENT_EXCHANGES"))
        self.connection_name = "{} {}:{} {}".format(
            CLIENT_NAME, socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])
        self.reply_routing_key = REPLY_ROUTING_KEY.format(CLIENT_NAME, uuid.uuid4())
        self.connection = None
        self.channel = None
        self.exchange = None
        self.pending = {}  # correlation id -> future of the reply body
        self.streams = weakref.WeakSet()
        self.closed = False
        self._counts = {}  # service -> (consumers, read at)
        self._reading = {}  # service -> the task reading its count now
        self._probe = None  # a plain channel for passive declares
        self._probe_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()

    async def start(self, timeout):
        async with self._start_lock:  # two tasks starting one client: one connection
            if self.closed:
                raise RuntimeError("this mesh.aio client was closed")
            if self.connection is not None:
                return
            failures = []
            for url in self.urls:
                try:
                    connection = await aio_pika.connect_robust(
                        url, timeout=timeout, reconnect_interval=self.reconnect_interval,
                        client_properties={"connection_name": self.connection_name})
                except BROKER_ERRORS + (asyncio.TimeoutError,) as exc:
                    failures.append("{}: {}".format(_without_password(url), exc))
                    continue
                self.url = url
                break
            else:
                raise ServiceUnavailable("cannot reach the broker at {}".format(
                    "; ".join(failures)))
            try:
                await self._set_up(connection)
            except BaseException:
                await connection.close()
                raise
            self.connection = connection

    async def _set_up(self, connection):
        connection.close_callbacks.add(self._connection_lost)
        connection.reconnect_callbacks.add(self._reconnected)
        # confirmed, as nameko's ClusterRpcProxy publishes: the broker answers a
        # mandatory request nobody's queue is bound for with basic.return before
        # its ack, so publish() raises PublishError then instead of the call
        # waiting out its deadline (aiormq hands returns over only with confirms)
        self.channel = await connection.channel(publisher_confirms=True,
                                                on_return_raises=True)
        self.exchange = await existing_exchange(connection, self.channel, self.exchange_name)
        # exclusive: gone with the connection (the robust connection declares it
        # again); nameko names a service's reply queue rpc.reply-<service>-<uuid>
        reply_queue = await self.channel.declare_queue(
            "rpc.reply-{}-{}".format(CLIENT_NAME, self.reply_routing_key),
            exclusive=True, auto_delete=True)
        await reply_queue.bind(self.exchange, routing_key=self.reply_routing_key)
        # no_ack: a reply is read once or never (its caller gave up, or the
        # connection went with it)
        await reply_queue.consume(self._on_reply, no_ack=True)

    async def close(self):
        if self.closed:
            return
        self.closed = True
        self._fail_pending("the mesh.aio client was closed")
        for stream in list(self.streams):
            await stream.close()
        if self.connection is not None:
            await self.connection.close()

    # --- the broker's view: consumers per service -------------------------------

    async def consumers(self, service):
        """Instances consuming ``rpc-<service>`` (0: none, or no such queue),
        cached ``CACHE_UP_S`` (``CACHE_DOWN_S`` when 0); one read at a time per
        service, however many calls ask at once."""
        cached = self._counts.get(service)
        if cached is not None:
            count, read_at = cached
            if time.monotonic() - read_at < (CACHE_UP_S if count else CACHE_DOWN_S):
                return count
        task = self._reading.get(service)
        if task is None:
            task = asyncio.ensure_future(self._read_consumers(service))
            self._reading[service] = task
            task.add_done_callback(lambda done: self._read_done(service, done))
        # shielded: a caller whose deadline passes leaves the read to the others
        return await asyncio.shield(task)

    def _read_done(self, service, task):
        self._reading.pop(service, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone

    async def _read_consumers(self, service):
        # one read at a time: the broker answers a passive declare that finds no
        # queue by closing its channel, which would fail (as "not found") any other
        # read waiting on it. Reads are rare (one per service per CACHE_UP_S).
        async with self._probe_lock:
            channel = await self._probe_channel()
            try:
                declared = await channel.queue_declare(RPC_QUEUE.format(service), passive=True)
                count = declared.consumer_count
            except ChannelNotFoundEntity:
                # no instance ever declared it; the next read opens another channel
                count = 0
        self._counts[service] = (count, time.monotonic())
        return count

    async def _probe_channel(self):
        # a plain aiormq channel, not one of the robust connection's: those
        # declare again after a reconnect every queue they ever declared, and a
        # passive declare of a queue that is gone would fail that restore
        if self._probe is None or self._probe.is_closed:
            transport = self.connection.transport
            if transport is None:
                raise ConnectionError("not connected to the broker")
            self._probe = await transport.connection.channel(publisher_confirms=False)
        return self._probe

    # --- one call -------------------------------------------------------------

    async def call(self, service, method, args, kwargs, timeout, request_id, context_data):
        name = "{}.{}".format(service, method)
        if self.connection is None:
            raise RuntimeError("not connected: use `async with mesh.aio.connect(...)` "
                               "or `await mesh.aio.connect(...)`")
        if self.closed:
            raise ServiceUnavailable("the mesh.aio client was closed")
        now = time.time()
        # the deadline sent leaves the callee's reply time to arrive, as the mesh's
        # proxy does; at most half the call's time, so .within(0.3) still works
        deadline = now + timeout - min(self.margin, timeout / 2)
        if timeout <= 0:
            raise DeadlineExceeded("no time left to call {}".format(name))
        correlation_id = str(uuid.uuid4())
        try:
            async with asyncio.timeout(timeout):
                await self._connected(timeout)
                if await self.consumers(service) == 0:
                    raise ServiceUnavailable("no instance of {} is running".format(service))
                future = asyncio.get_running_loop().create_future()
                self.pending[correlation_id] = future
                try:
                    await self._publish(name, correlation_id, args, kwargs, deadline,
                                        request_id, context_data)
                    body = await future
                finally:
                    # a reply after this is dropped (_on_reply finds no one waiting)
                    self.pending.pop(correlation_id, None)
        except TimeoutError:
            raise _tagged(ServiceUnavailable("{} did not answer within {:g} s".format(
                name, timeout)), request_id) from None
        except BROKER_ERRORS as exc:
            raise _tagged(ServiceUnavailable("could not call {}: {}".format(
                name, exc or type(exc).__name__)), request_id) from exc
        except ServiceUnavailable as exc:
            raise _tagged(exc, request_id)
        error = body.get("error")
        if error:
            raise _tagged(error_from(error), request_id)
        return body.get("result")

    async def _connected(self, timeout):
        if self.connection.connected.is_set() and not self.channel.is_closed:
            # at once, unless the channel is being restored (reply queue first)
            await self.channel.ready()
            return
        try:
            async with asyncio.timeout(min(timeout, RECONNECT_WAIT_S)):
                await self.channel.ready()
        except TimeoutError:
            raise ServiceUnavailable("not connected to the broker (reconnecting)") from None

    async def _publish(self, name, correlation_id, args, kwargs, deadline, request_id,
                       context_data):
        headers = {header_name(key): value for key, value in context_data.items()
                   if value is not None}
        headers.update({
            # what nameko's WorkerContext reads: the callee's call id stack, the
            # request id of its log lines, the deadline it refuses work after.
            # The deadline travels as text: aio-pika's encoder (pamqp) writes a
            # Python float as a 32-bit AMQP float, some 2 minutes coarse at
            # today's epoch; every reader in the mesh reads it with float()
            header_name(CALL_ID_STACK_KEY): ["{}.call.{}".format(CLIENT_NAME, correlation_id)],
            header_name(REQUEST_ID_KEY): request_id,
            header_name(DEADLINE_KEY): repr(deadline),
        })
        message = aio_pika.Message(
            dumps({"args": list(args), "kwargs": kwargs}).encode(CONTENT_ENCODING),
            content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING,
            headers=headers, correlation_id=correlation_id,
            reply_to=self.reply_routing_key,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            # RabbitMQ drops it unread once the callee would refuse it anyway
            expiration=max(deadline - time.time(), 0.001))
        try:
            await self.exchange.publish(message, routing_key=name, mandatory=True)
        except PublishError:  # returned: no queue is bound for the routing key
            raise ServiceUnavailable("no instance of {} is running (the broker returned "
                                     "the call)".format(name.split(".")[0])) from None

    # --- what the broker sends back -------------------------------------------

    async def _on_reply(self, message):
        future = self.pending.pop(message.correlation_id, None)
        if future is None or future.done():
            log.debug("dropped a reply nobody waits for (%s)", message.correlation_id)
            return
        try:
            future.set_result(loads(message.body))
        except ValueError as exc:
            future.set_exception(RemoteError("MalformedReply", str(exc)))

    def _connection_lost(self, _connection, exc):
        # the reply queue went with the connection: no call in flight can be answered
        self._counts.clear()
        self._probe = None
        if not self.closed:
            log.warning("mesh.aio: connection to the broker lost (%s); reconnecting", exc)
            self._fail_pending("the connection to the broker was lost with the call "
                               "in flight")

    def _reconnected(self, _connection):
        log.info("mesh.aio: connected to the broker again")

    def _fail_pending(self, reason):
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ServiceUnavailable(reason))


def _tagged(exc, request_id):
    # the id to grep the services' logs for, on whatever the call raised
    exc.request_id = request_id
    return exc


def _without_password(url):
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    return "{}://{}:***@{}".format(scheme, credentials.split(":")[0], host)


_END = object()


class EventStream:
    """A service's events of one type, as they happen:
    ``async for payload in mesh.events("billing", "bill_created")``.

    Its queue is its own: exclusive and auto-delete, bound to nameko's
    ``<service>.events`` exchange with the event type (never a service's
    durable handler queue, whose events it would steal). Events sent while it
    is not started, or while the connection is away, are not seen: for every
    event, use a service's ``@event_handler``.

        async with mesh.events("billing", "bill_created") as bills:
            event = await bills.next(timeout=10)   # or: async for event in bills
    """

    def __init__(self, core, service, event_type):
        self._core = core
        self.service = service
        self.event_type = event_type
        self.queue_name = "evt-{}-{}--{}.{}".format(service, event_type, CLIENT_NAME,
                                                    uuid.uuid4().hex[:12])
        self._buffer = asyncio.Queue()
        self._channel = None
        self._closed = False

    async def start(self):
        """Bind the queue now: events from here on are seen."""
        if self._channel is not None:
            return self
        if self._closed or self._core.closed:
            raise RuntimeError("this event stream was closed")
        if self._core.connection is None:
            raise RuntimeError("not connected: use `async with mesh.aio.connect(...)`")
        # a channel of its own: its prefetch bounds what waits here unread, and
        # closing it leaves the RPC channel alone
        self._channel = await self._core.connection.channel(publisher_confirms=False)
        await self._channel.set_qos(prefetch_count=EVENTS_PREFETCH)
        exchange = await existing_exchange(
            self._core.connection, self._channel, EVENTS_EXCHANGE.format(self.service),
            auto_delete=self._core.auto_delete_event_exchanges)
        queue = await self._channel.declare_queue(self.queue_name, exclusive=True,
                                                  auto_delete=True)
        await queue.bind(exchange, routing_key=self.event_type)
        await queue.consume(self._on_event)
        self._core.streams.add(self)
        return self

    async def _on_event(self, message):
        self._buffer.put_nowait(message)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._channel is None and not self._closed:
            await self.start()
        message = await self._buffer.get()
        if message is _END:
            self._buffer.put_nowait(_END)  # every later step ends too
            raise StopAsyncIteration
        payload = loads(message.body)
        try:
            await message.ack()
        except BROKER_ERRORS:  # its channel went with the connection, and the queue too
            pass
        return payload

    async def next(self, timeout=None):
        """The next event, waiting at most ``timeout`` seconds (``TimeoutError``)."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    async def close(self):
        """Unbind and delete its queue; iteration ends."""
        if self._closed:
            return
        self._closed = True
        self._buffer.put_nowait(_END)
        if self._channel is not None and not self._channel.is_closed:
            try:
                await self._channel.close()
            except BROKER_ERRORS:  # the connection went first: so did the queue
                pass

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc_info):
        await self.close()
