"""The private upstream internals the mesh relies on (docs/upstream-internals.md),
checked against what is installed: a row fails here when its pinned upstream
changes it. No broker, no network: imports and ``inspect.getsource`` only.

Each row of ``ROWS`` names one upstream object and how it is checked:

* ``Source(target, sha)``: the first 12 hex digits of the sha256 of
  ``inspect.getsource(target)`` as installed at the pinned version;
* ``Value(target, expected)``: a constant, a class attribute (shown as
  ``<module.Class instance>``), or which class defines a method;
* ``Contains(target, text)``: a text (a log message, a queue name format) that
  must still be in ``target``'s source.

When a row fails: re-read the upstream code the message names, fix the mesh's
override if it no longer fits, then update the row here (hash, value, and
``PINS`` when the version moved) and its line in docs/upstream-internals.md.
"""
import hashlib
import importlib
import importlib.metadata
import inspect
import pkgutil
import re
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "upstream-internals.md"
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-dev.txt")

# distribution -> the version every row below was read and hashed at
PINS = {
    "nameko": "2.14.1",
    "kombu": "5.7.0",
    "nameko-sqlalchemy": "1.5.0",
    "honcho": "2.0.0",
    "eventlet": "0.41.3",
}
# top-level import names of those distributions
UPSTREAM_PACKAGES = ("nameko", "kombu", "nameko_sqlalchemy", "honcho", "eventlet")

# How the project touches an upstream object (the doc's "How" column), and the
# verb the failure message uses for it.
HOW = {
    "overrides": "overrides",
    "copies": "copies",
    "calls": "calls",
    "subclasses": "subclasses",
    "class attribute": "replaces",
    "private attribute": "uses",
    "naming convention": "relies on",
    "log message text": "relies on",
    "relies on internals": "relies on",
}


class Source(NamedTuple):
    target: str
    sha: str


class Value(NamedTuple):
    target: str
    expected: object


class Contains(NamedTuple):
    target: str
    text: str


class Row(NamedTuple):
    name: str     # the dotted upstream name, as in the doc
    lib: str      # its distribution (a key of PINS)
    where: str    # "path/to/file.py Qualname; other/file.py Other.qualname"
    how: str      # a key of HOW
    checks: tuple


ROWS = (
    # --- nameko: RPC ---------------------------------------------------------
    Row("nameko.rpc.RpcConsumer.handle_result", "nameko",
        "mesh/rpc.py MeshRpcConsumer.handle_result; mesh/rpc.py DeadlineRpc.handle_message",
        "copies",
        (Source("nameko.rpc.RpcConsumer.handle_result", "25b95fd9dfce"),
         # the copy builds a MeshResponder with Responder's signature
         Source("nameko.rpc.Responder.__init__", "87b437a31dd0"))),
    Row("nameko.rpc.RpcConsumer.queue_consumer", "nameko",
        "mesh/rpc.py MeshRpcConsumer.queue_consumer", "class attribute",
        (Value("nameko.rpc.RpcConsumer.queue_consumer", "<nameko.messaging.QueueConsumer instance>"),
         Source("nameko.rpc.RpcConsumer.setup", "5f423f9c5917"))),
    Row("nameko.rpc.RpcConsumer.setup", "nameko",
        "mesh/rpc.py MeshRpcConsumer.setup", "relies on internals",
        # the queue it builds (self.queue), declared only once consuming starts
        (Source("nameko.rpc.RpcConsumer.setup", "5f423f9c5917"),)),
    Row("nameko.rpc.ReplyListener.setup", "nameko",
        "mesh/rpc.py MeshReplyListener.queue; mesh/rpc.py MeshReplyListener.setup", "relies on internals",
        # setup assigns self.queue once; get_consumers reads it at each (re)connection
        (Source("nameko.rpc.ReplyListener.setup", "13e0e4ffef66"),
         Source("nameko.messaging.QueueConsumer.get_consumers", "9566ed8719e2"))),
    Row("nameko.rpc.Rpc.rpc_consumer", "nameko",
        "mesh/rpc.py DeadlineRpc.rpc_consumer", "class attribute",
        (Value("nameko.rpc.Rpc.rpc_consumer", "<nameko.rpc.RpcConsumer instance>"),
         Source("nameko.rpc.Rpc.setup", "4601056b5212"),
         Source("nameko.rpc.Rpc.handle_result", "6ebc9ffac02c"))),
    Row("nameko.rpc.Rpc.handle_message", "nameko",
        "mesh/rpc.py DeadlineRpc.handle_message", "overrides",
        (Source("nameko.rpc.Rpc.handle_message", "7cafedcdfc41"),)),
    Row("nameko.rpc.Rpc.handle_result", "nameko",
        "mesh/rpc.py DeadlineRpc.handle_result", "overrides",
        (Source("nameko.rpc.Rpc.handle_result", "6ebc9ffac02c"),
         # the entrypoint's handle_result runs in the worker, before the
         # dependencies' worker_result and worker_teardown (which closes sessions)
         Source("nameko.containers.ServiceContainer._run_worker", "7418dcb70469"))),
    Row("nameko.messaging.HeaderDecoder.unpack_message_headers", "nameko",
        "mesh/rpc.py DeadlineRpc.unpack_message_headers; "
        "mesh/events.py EventHandler.unpack_message_headers", "overrides",
        (Source("nameko.messaging.HeaderDecoder.unpack_message_headers", "2ce5e0693e3d"),
         Source("nameko.rpc.Rpc.handle_message", "7cafedcdfc41"))),
    Row("nameko.rpc.Responder.publisher_cls", "nameko",
        "mesh/rpc.py MeshResponder.publisher_cls", "class attribute",
        (Value("nameko.rpc.Responder.publisher_cls", "nameko.amqp.publish.Publisher"),
         Source("nameko.rpc.Responder.send_response", "d5c3234c5e40"))),
    Row("nameko.rpc.ReplyListener.queue_consumer", "nameko",
        "mesh/rpc.py MeshReplyListener.queue_consumer", "class attribute",
        (Value("nameko.rpc.ReplyListener.queue_consumer", "<nameko.messaging.QueueConsumer instance>"),
         Source("nameko.rpc.ReplyListener.setup", "13e0e4ffef66"))),
    Row("nameko.rpc.ReplyListener._reply_events", "nameko",
        "mesh/proxy.py Reply.abandon", "private attribute",
        (Source("nameko.rpc.ReplyListener.__init__", "2cf4c91b949c"),
         Source("nameko.rpc.ReplyListener.handle_message", "c10e21f1b3ea"))),
    Row("nameko.rpc.ReplyListener.get_reply_event", "nameko",
        "mesh/proxy.py MethodClient.call_async", "calls",
        (Source("nameko.rpc.ReplyListener.get_reply_event", "8425b219b2c2"),)),
    Row("nameko.rpc.ReplyListener.routing_key", "nameko",
        "mesh/proxy.py MethodClient.call_async", "private attribute",
        (Source("nameko.rpc.ReplyListener.setup", "13e0e4ffef66"),)),
    Row("nameko.rpc.MethodProxy._call", "nameko",
        "mesh/proxy.py MethodClient.call_async", "copies",
        (Source("nameko.rpc.MethodProxy._call", "162cdf3c92de"),)),
    Row("nameko.rpc.RpcReply.result", "nameko",
        "mesh/proxy.py Reply.result", "copies",
        (Source("nameko.rpc.RpcReply.result", "5b81ff69807a"),)),
    Row("nameko.rpc.get_rpc_exchange", "nameko",
        "mesh/rpc.py MeshRpcConsumer.handle_result; mesh/proxy.py MeshRpcProxy.setup", "calls",
        (Source("nameko.rpc.get_rpc_exchange", "c268143df78a"),)),
    Row("nameko.rpc.RPC_QUEUE_TEMPLATE", "nameko",
        "mesh/registry.py BrokerView._read", "naming convention",
        (Value("nameko.rpc.RPC_QUEUE_TEMPLATE", "rpc-{}"),
         Source("nameko.rpc.RpcConsumer.setup", "5f423f9c5917"))),
    Row("nameko.exceptions.deserialize", "nameko",
        "mesh/proxy.py Reply.result", "calls",
        (Source("nameko.exceptions.deserialize", "e44eacf4cc5d"),)),
    # --- nameko: messaging and publishing ------------------------------------
    Row("nameko.messaging.Consumer.queue_consumer", "nameko",
        "mesh/events.py EventHandler.queue_consumer", "class attribute",
        (Value("nameko.messaging.Consumer.queue_consumer", "<nameko.messaging.QueueConsumer instance>"),
         Source("nameko.messaging.Consumer.setup", "bd4b30ea26ad"))),
    Row("nameko.messaging.HeaderEncoder.get_message_headers", "nameko",
        "mesh/proxy.py MethodClient.call_async", "calls",
        (Source("nameko.messaging.HeaderEncoder.get_message_headers", "73796a317040"),)),
    Row("nameko.constants.HEADER_PREFIX", "nameko",
        "contracts/headers.py header_name", "naming convention",
        (Value("nameko.constants.HEADER_PREFIX", "nameko"),
         Source("nameko.messaging.HeaderEncoder._get_header_name", "c0766718bbdd"),
         Source("nameko.messaging.HeaderDecoder._strip_header_name", "5537839b71ec"))),
    Row("nameko.events.EventDispatcher.setup", "nameko",
        "mesh/events.py ChangeEvents.setup; mesh/outbox.py Outbox.setup", "relies on internals",
        # the exchange it builds (self.exchange, no_declare under
        # DECLARE_EVENT_EXCHANGES: False) is the one its publisher declares
        (Source("nameko.events.EventDispatcher.setup", "76c5b85494dc"),
         Source("nameko.messaging.Publisher.setup", "7c63a9af6ca3"))),
    Row("nameko.amqp.publish.Publisher.delivery_mode", "nameko",
        "mesh/amqp.py RpcPublisher.delivery_mode; mesh/events.py ChangeEvents.__init__",
        "class attribute",
        (Value("nameko.amqp.publish.Publisher.delivery_mode", 2),
         Source("nameko.amqp.publish.Publisher.__init__", "b314ab543fd6"))),
    Row("nameko.amqp.publish.Publisher.use_confirms", "nameko",
        "mesh/amqp.py RpcPublisher.use_confirms; mesh/events.py ChangeEvents.__init__",
        "class attribute",
        (Value("nameko.amqp.publish.Publisher.use_confirms", True),
         Source("nameko.amqp.publish.Publisher.__init__", "b314ab543fd6"))),
    Row("nameko.amqp.publish.Publisher.publish", "nameko",
        "mesh/proxy.py MeshRpcProxy.send_request", "calls",
        (Source("nameko.amqp.publish.Publisher.publish", "dd0e87b3027e"),)),
    Row("nameko.messaging.Publisher.publisher_cls", "nameko",
        "mesh/events.py ChangeEvents.publisher_cls; mesh/outbox.py Outbox.publisher_cls",
        "class attribute",
        (Value("nameko.messaging.Publisher.publisher_cls", "nameko.amqp.publish.Publisher"),
         Source("nameko.messaging.Publisher.setup", "7c63a9af6ca3"))),
    Row("nameko.amqp.publish.Publisher.transport_options", "nameko",
        "mesh/amqp.py MeshPublisher.__init__", "private attribute",
        # publish() writes confirm_publish into it: one dict per publisher here
        (Contains("nameko.amqp.publish.Publisher.publish",
                  "transport_options['confirm_publish'] = use_confirms"),
         Source("nameko.amqp.publish.get_producer", "386e9499d8d0"))),
    Row("nameko.amqp.publish.get_connection", "nameko",
        "mesh/registry.py queue_consumers", "calls",
        (Source("nameko.amqp.publish.get_connection", "6bccfabb5001"),)),
    # --- nameko: events ------------------------------------------------------
    Row("nameko.events.EventHandler.setup", "nameko",
        "contracts/events.py handler_queue_name; common/topology.py topology_queues; "
        "mesh/events.py EventHandler.setup", "copies",
        (Source("nameko.events.EventHandler.setup", "626d110cc0f6"),
         Contains("nameko.events.EventHandler.setup", '"evt-{}-{}--{}.{}"'))),
    Row("nameko.standalone.events.get_event_exchange", "nameko",
        "common/topology.py event_exchange", "copies",
        (Source("nameko.standalone.events.get_event_exchange", "e9f47bbbd5f4"),)),
    # --- nameko: HTTP ----------------------------------------------------------
    Row("nameko.web.server.WsgiApp.__call__", "nameko",
        "mesh/http.py JsonWsgiApp.__call__", "copies",
        (Source("nameko.web.server.WsgiApp.__call__", "2909d54e61f1"),)),
    Row("nameko.web.server.WebServer.get_wsgi_app", "nameko",
        "mesh/http.py JsonWebServer.get_wsgi_app", "overrides",
        (Source("nameko.web.server.WebServer.get_wsgi_app", "deb63ef08854"),
         Source("nameko.web.server.WsgiApp.__init__", "0c505e03cf75"))),
    Row("nameko.web.server.WebServer.get_wsgi_server", "nameko",
        "mesh/http.py JsonWebServer.get_wsgi_server", "overrides",
        (Source("nameko.web.server.WebServer.get_wsgi_server", "040239d82b51"),)),
    Row("nameko.web.server.WebServer.context_data_from_headers", "nameko",
        "mesh/http.py JsonWebServer.context_data_from_headers", "overrides",
        (Source("nameko.web.server.WebServer.context_data_from_headers", "d9c70131b578"),)),
    Row("nameko.web.handlers.HttpRequestHandler.handle_request", "nameko",
        "mesh/http.py JsonWsgiApp.__call__", "calls",
        (Source("nameko.web.handlers.HttpRequestHandler.handle_request", "4a686b5b8268"),)),
    Row("nameko.web.handlers.HttpRequestHandler.server", "nameko",
        "mesh/http.py JsonHttpEntrypoint.server", "class attribute",
        (Value("nameko.web.handlers.HttpRequestHandler.server", "<nameko.web.server.WebServer instance>"),
         Source("nameko.web.handlers.HttpRequestHandler.setup", "182696cc7982"))),
    Row("nameko.web.handlers.HttpRequestHandler.url", "nameko",
        "mesh/http.py JsonHttpEntrypoint.setup; mesh/http.py http_routes", "private attribute",
        (Source("nameko.web.handlers.HttpRequestHandler.__init__", "b0b46c3059b9"),
         Source("nameko.web.handlers.HttpRequestHandler.get_url_rule", "f8380c3a4df5"))),
    Row("nameko.extensions.Entrypoint.check_signature", "nameko",
        "mesh/http.py JsonHttpEntrypoint.check_signature; mesh/http.py JsonHttpEntrypoint.setup",
        "overrides",
        (Source("nameko.extensions.Entrypoint.check_signature", "568d1c1e1852"),)),
    # --- nameko: containers, extensions ----------------------------------------
    Row("nameko.extensions.ENTRYPOINT_EXTENSIONS_ATTR", "nameko",
        "mesh/service.py rpc_methods; mesh/http.py http_routes", "naming convention",
        (Value("nameko.extensions.ENTRYPOINT_EXTENSIONS_ATTR", "nameko_entrypoints"),
         Source("nameko.extensions.register_entrypoint", "f3dc125a2062"))),
    Row("nameko.extensions.SharedExtension.sharing_key", "nameko",
        "mesh/amqp.py FastReconnectQueueConsumer; mesh/registry.py BrokerView", "relies on internals",
        (Source("nameko.extensions.SharedExtension.sharing_key", "e545bd967b8f"),)),
    Row("nameko.web.server.WebServer.bind_addr", "nameko",
        "mesh/http.py JsonWebServer.bind_addr", "overrides",
        # upstream's, with 127.0.0.1:8000 instead of 0.0.0.0:8000 as the default
        (Source("nameko.web.server.WebServer.bind_addr", "5bab7b647933"),
         Source("nameko.web.server.parse_address", "b28a9ce278fd"))),
    Row("nameko.messaging.QueueConsumer.ack_message", "nameko",
        "mesh/amqp.py FastReconnectQueueConsumer.ack_message", "overrides",
        # upstream's, with socket errors ignored too; called by every entrypoint's
        # and reply listener's thread, whose error would kill the container
        (Source("nameko.messaging.QueueConsumer.ack_message", "b8a1614182c1"),
         Source("nameko.containers.ServiceContainer._handle_thread_exited", "d3ffd742732a"))),
    Row("nameko.messaging.QueueConsumer.on_consume_ready", "nameko",
        "mesh/amqp.py FastReconnectQueueConsumer.on_consume_ready", "overrides",
        # kombu's hook, after every (re)connection; nameko's releases start()
        (Source("nameko.messaging.QueueConsumer.on_consume_ready", "22e65947e14b"),)),
    Row("nameko.messaging.QueueConsumer.on_connection_error", "nameko",
        "mesh/amqp.py FastReconnectQueueConsumer.on_connection_error", "overrides",
        (Source("nameko.messaging.QueueConsumer.on_connection_error", "93154c9c79e4"),)),
    Row("nameko.messaging.QueueConsumer.requeue_message", "nameko",
        "mesh/amqp.py FastReconnectQueueConsumer.requeue_message", "overrides",
        (Source("nameko.messaging.QueueConsumer.requeue_message", "42a6f7bb5b0e"),)),
    Row("nameko.containers.ServiceContainer._run_worker", "nameko",
        "mesh/errors.py WithoutTraceback.filter", "log message text",
        # mesh.errors.EXPECTED_ERROR_PREFIX, logged as a warning with its traceback
        (Contains("nameko.containers.ServiceContainer._run_worker",
                  "'(expected) error handling worker %s: %s'"),
         Contains("nameko.containers.ServiceContainer._run_worker", "worker_ctx, exc, exc_info=True)"))),
    Row("nameko.containers._log", "nameko",
        "mesh/errors.py quiet_expected_errors", "naming convention",
        (Value("nameko.containers._log.name", "nameko.containers"),)),
    Row("nameko.containers.WorkerContext.data", "nameko",
        "mesh/proxy.py MethodClient._wait_until; mesh/db.py MeshDatabase.get_dependency; "
        "mesh/tracing.py Tracing.worker_setup; mesh/metrics.py Metrics.worker_result; "
        "mesh/inbox.py open_call; mesh/inbox.py _call_of; mesh/inbox.py after_commit_set; "
        "tests/integration/services_under_test/exit_after_commit.py ExitAfterCommit.worker_setup",
        "private attribute",
        (Source("nameko.containers.WorkerContext.__init__", "fa7d8add7231"),
         Source("nameko.containers.WorkerContext.context_data", "1678663ff8e8"))),
    # --- kombu ---------------------------------------------------------------------
    Row("kombu.mixins.ConsumerMixin.establish_connection", "kombu",
        "mesh/amqp.py FastReconnectQueueConsumer.establish_connection", "copies",
        (Source("kombu.mixins.ConsumerMixin.establish_connection", "81f1b607c2d2"),
         Source("kombu.mixins.ConsumerMixin.create_connection", "f4b545cfb7ce"),
         # its one caller, which uses it as a context manager
         Source("kombu.mixins.ConsumerMixin.Consumer", "1518a576ed30"),
         # nameko's QueueConsumer does not define its own: ours replaces kombu's
         Value("nameko.messaging.QueueConsumer.establish_connection",
               "kombu.mixins.ConsumerMixin.establish_connection"))),
    Row("kombu.mixins.ConsumerMixin.consume", "kombu",
        "mesh/amqp.py FastReconnectQueueConsumer.consume", "overrides",
        (Source("kombu.mixins.ConsumerMixin.consume", "16b4ba15bf61"),
         # nameko's QueueConsumer runs kombu's loop as is, and cancels a
         # stopping consumer's queues in on_iteration, between two wakes
         Source("kombu.mixins.ConsumerMixin.run", "72b1d52801a3"),
         Source("nameko.messaging.QueueConsumer.on_iteration", "35a4ce6af780"),
         Value("nameko.messaging.QueueConsumer.consume", "kombu.mixins.ConsumerMixin.consume"))),
    # --- nameko-sqlalchemy -----------------------------------------------------------
    Row("nameko_sqlalchemy.database.Database.setup", "nameko-sqlalchemy",
        "mesh/db.py MeshDatabase.setup", "overrides",
        (Source("nameko_sqlalchemy.database.Database.setup", "d866ae0b702e"),
         # they use the engine our setup makes
         Source("nameko_sqlalchemy.database.Database.stop", "3301a4851bf0"),
         Source("nameko_sqlalchemy.database.Database.kill", "ac75e9f12fbe"))),
    Row("nameko_sqlalchemy.database.Database.dbs", "nameko-sqlalchemy",
        "mesh/db.py MeshDatabase.get_dependency", "private attribute",
        (Source("nameko_sqlalchemy.database.Database.__init__", "0e0439d5d8e7"),
         Source("nameko_sqlalchemy.database.Database.get_dependency", "3a160b96ff88"),
         Source("nameko_sqlalchemy.database.Database.worker_teardown", "a61844020db3"))),
    Row("nameko_sqlalchemy.database.DatabaseWrapper", "nameko-sqlalchemy",
        "mesh/db.py database_wrapper", "calls",
        (Source("nameko_sqlalchemy.database.DatabaseWrapper", "38c3f079878e"),)),
    Row("nameko_sqlalchemy.database.Session", "nameko-sqlalchemy",
        "mesh/inbox.py CallSession; mesh/db.py MeshSession", "subclasses",
        (Source("nameko_sqlalchemy.database.Session", "2e1e06667b3a"),)),
    Row("nameko_sqlalchemy.database.Session.__exit__", "nameko-sqlalchemy",
        "mesh/inbox.py CallSession.__exit__", "overrides",
        (Source("nameko_sqlalchemy.database.Session.__exit__", "a00ba5617bc7"),)),
    # --- honcho ----------------------------------------------------------------------
    Row("honcho.manager.Manager._any_stopped", "honcho",
        "tools/run.py MeshManager._any_stopped", "overrides",
        (Source("honcho.manager.Manager._any_stopped", "e423ae1abda8"),)),
    Row("honcho.manager.Manager._terminating", "honcho",
        "tools/run.py MeshManager._any_stopped; tools/run.py announce_when_healthy",
        "private attribute",
        (Source("honcho.manager.Manager.__init__", "94c029a39076"),
         Source("honcho.manager.Manager.terminate", "f6003c1b6850"))),
    Row("honcho.manager.Manager.loop", "honcho",
        "tools/run.py MeshManager", "relies on internals",
        (Source("honcho.manager.Manager.loop", "1a921f8fa9eb"),)),
    Row("honcho.printer.Printer.write", "honcho",
        "tools/run.py LogFilePrinter.write", "overrides",
        (Source("honcho.printer.Printer.write", "79b2f6d719ad"),
         Value("honcho.printer.Message._fields", ("type", "data", "time", "name", "colour")))),
    # --- eventlet --------------------------------------------------------------------
    Row("eventlet.wsgi.Server.log_output", "eventlet",
        "mesh/http.py JsonWebServer.get_wsgi_server", "private attribute",
        # set after nameko built the server: only the access line reads it
        (Contains("eventlet.wsgi.Server.__init__", "self.log_output = log_output"),
         Contains("eventlet.wsgi.HttpProtocol.handle_one_response", "if self.server.log_output:"))),
    Row("eventlet.wsgi.Server.log", "eventlet",
        "mesh/http.py JsonWebServer.get_wsgi_server", "private attribute",
        # the logger nameko passes (nameko.web.server), kept as it is: ClientGone goes on it
        (Contains("eventlet.wsgi.Server.__init__", "self.log = get_logger(log, debug)"),
         Contains("eventlet.wsgi.get_logger", "return log"),
         Contains("nameko.web.server.WebServer.get_wsgi_server", "log=getLogger(__name__)"))),
    Row("eventlet.wsgi.HttpProtocol.handle_one_response", "eventlet",
        "mesh/http.py ClientGone.filter", "log message text",
        # an error while the answer is written is logged as its traceback's text, at info
        (Contains("eventlet.wsgi.HttpProtocol.handle_one_response", "tb = traceback.format_exc()"),
         Contains("eventlet.wsgi.HttpProtocol.handle_one_response", "self.server.log.info(tb)"))),
    Row("eventlet.hubs.hub.BaseHub.greenlet", "eventlet",
        "mesh/coroutines.py on_loop_greenlet", "private attribute",
        # asyncio code runs on the hub's own greenlet: where a proxy call must not block
        (Contains("eventlet.hubs.hub.BaseHub.__init__", "self.greenlet = greenlet.greenlet(self.run)"),)),
    Row("eventlet.hubs.asyncio.Hub._file_cb", "eventlet",
        "mesh/asyncio_hub.py Hub._file_cb", "overrides",
        # the loop registers it per file descriptor; it wakes the timer coroutine
        # that the override of run replaces
        (Contains("eventlet.hubs.asyncio.Hub.add", "self._file_cb, cb, fileno"),
         Contains("eventlet.hubs.asyncio.Hub._file_cb", "cb(fileno)"),
         Contains("eventlet.hubs.asyncio.Hub._file_cb", "self.sleep_event.set()"))),
    Row("eventlet.hubs.asyncio.Hub.add_timer", "eventlet",
        "mesh/asyncio_hub.py Hub.add_timer", "overrides",
        # BaseHub's add_timer (next_timers, the scheduled time), then a loop
        # callback instead of eventlet's sleep_event
        (Source("eventlet.hubs.asyncio.Hub.add_timer", "1f1dcfad60aa"),
         Source("eventlet.hubs.hub.BaseHub.add_timer", "e7fe34b025bf"))),
    Row("eventlet.hubs.asyncio.Hub.run", "eventlet",
        "mesh/asyncio_hub.py Hub.run; mesh/asyncio_hub.py Hub.run_timers", "overrides",
        # run_timers is one turn of eventlet's coroutine (closed listeners, timers,
        # stopping); run is loop.run_forever with the same bookkeeping around it
        (Source("eventlet.hubs.asyncio.Hub.run", "b779625606b5"),
         Source("eventlet.hubs.hub.BaseHub.run", "47bb7841f0bd"))),
    Row("eventlet.hubs.asyncio.Hub.add", "eventlet",
        "mesh/asyncio_hub.py Hub.add", "overrides",
        # a read keeps its registration with the loop: the override is eventlet's
        # add (its fstat, BaseHub.add's listener) with the loop registered once per file
        (Source("eventlet.hubs.asyncio.Hub.add", "10917d1c12ae"),
         Source("eventlet.hubs.hub.BaseHub.add", "5aa4447a94d4"))),
    Row("eventlet.hubs.asyncio.Hub.remove", "eventlet",
        "mesh/asyncio_hub.py Hub.remove", "overrides",
        # a woken read leaves the loop's registration; BaseHub.remove does the rest
        (Source("eventlet.hubs.asyncio.Hub.remove", "77bc9e4085fc"),
         Source("eventlet.hubs.hub.BaseHub.remove", "7af6377b6ec9"))),
    Row("eventlet.hubs.asyncio.Hub.remove_descriptor", "eventlet",
        "mesh/asyncio_hub.py Hub.remove_descriptor", "overrides",
        (Source("eventlet.hubs.asyncio.Hub.remove_descriptor", "91a123ba9e76"),)),
    Row("eventlet.hubs.hub.BaseHub._obsolete", "eventlet",
        "mesh/asyncio_hub.py Hub._obsolete", "overrides",
        # it queues the listeners on `closed`, which the run loop drains
        (Contains("eventlet.hubs.hub.BaseHub._obsolete", "self.closed.append(listener)"),
         Contains("eventlet.hubs.hub.BaseHub.close_one", "listener = self.closed.pop()"))),
    Row("eventlet.hubs.asyncio.Hub._post_initialize", "eventlet",
        "mesh/asyncio_hub.py Hub._post_initialize", "overrides",
        # eventlet makes its loop with asyncio.new_event_loop(), after it gave
        # asyncio its original modules; FileCheckedSelector reads asyncio's key
        # data as (reader, writer) (the running Python's asyncio, not a pin)
        (Contains("eventlet.hubs.asyncio.Hub._post_initialize", "_unmonkey_patch_asyncio_all()"),
         Contains("eventlet.hubs.asyncio.Hub._post_initialize", "self.loop = asyncio.new_event_loop()"),
         Contains("asyncio.selector_events.BaseSelectorEventLoop._add_reader", "(handle, writer)"),
         Contains("asyncio.selector_events.BaseSelectorEventLoop._add_writer", "(reader, handle)"))),
    Row("eventlet.hubs.asyncio.Hub.loop", "eventlet",
        "mesh/hub.py hub_name", "private attribute",
        (Contains("eventlet.hubs.asyncio.Hub._post_initialize", "self.loop = asyncio.new_event_loop()"),)),
    Row("eventlet.EventletDeprecationWarning", "eventlet",
        "tools/billing_mesh.pth", "log message text",
        # the .pth filters it by its message, before eventlet (and the class) is imported
        (Contains("eventlet", "\nEventlet is deprecated."),
         Contains("eventlet", "warnings.warn(_DEPRECATED, EventletDeprecationWarning, stacklevel=2)"))),
    Row("nameko.cli.run.run", "nameko",
        "mesh/hub.py StopOnSignal.install", "relies on internals",
        # its SIGTERM handler, defined in that module, takes (signum, frame) and spawns the stop
        (Contains("nameko.cli.run.run", "signal.signal(signal.SIGTERM, shutdown)"),
         Contains("nameko.cli.run.run", "eventlet.spawn_n(service_runner.stop)"))),
    # --- nameko: the test plugin ---------------------------------------------
    Row("nameko.testing.utils.ResourcePipeline.get", "nameko",
        "tests/vhosts.py VhostPipeline.get", "overrides",
        # _create ends at its first exception and get then waits on `ready` for
        # good; the override polls `ready` and asks `create_thread`
        (Source("nameko.testing.utils.ResourcePipeline.get", "d003d38f3a9b"),
         Source("nameko.testing.utils.ResourcePipeline._create", "ed811a89e793"),
         Source("nameko.testing.utils.ResourcePipeline._start", "2159055e90e5"))),
    Row("nameko.testing.pytest.vhost_pipeline", "nameko",
        "tests/vhosts.py vhost_maker; tests/vhosts.py vhost_dropper", "copies",
        # its create and destroy, retried; tests/integration/conftest.py's fixture
        # of the same name replaces it
        (Source("nameko.testing.pytest.vhost_pipeline", "d16d7a312172"),)),
    Row("nameko.cli.commands.Run.main", "nameko",
        "mesh/hub.py ensure_asyncio_hub", "relies on internals",
        # monkey-patches (and so picks the hub) before the service module is imported
        (Contains("nameko.cli.commands.Run.main", "eventlet.monkey_patch()"),)),
)


# --- looking things up -----------------------------------------------------------

def resolve(dotted):
    """The object a dotted name means: the longest importable module prefix,
    then attributes (``nameko.rpc.RpcConsumer.handle_result``)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError("nothing importable in {}".format(dotted))


def source_of(obj):
    if isinstance(obj, property):
        obj = obj.fget
    return inspect.getsource(obj)


def source_hash(obj):
    return hashlib.sha256(source_of(obj).encode()).hexdigest()[:12]


def shown(obj):
    """Classes and functions by their dotted name, instances of classes by
    their class, anything else as itself."""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return "{}.{}".format(obj.__module__, obj.__qualname__)
    if type(obj).__module__.split(".")[0] in UPSTREAM_PACKAGES:
        return "<{}.{} instance>".format(type(obj).__module__, type(obj).__qualname__)
    return obj


def installed(lib):
    return importlib.metadata.version(lib)


def versions(lib):
    now = installed(lib)
    if now == PINS[lib]:
        return "{} {}".format(lib, now)
    return "{} {} -> {}".format(lib, PINS[lib], now)


def problem(row, check):
    """What changed for one check of a row, or None."""
    try:
        obj = resolve(check.target)
    except (ImportError, AttributeError) as exc:
        return "{} is gone ({})".format(check.target, exc)
    of = "" if check.target == row.name else " of " + check.target
    if isinstance(check, Source):
        actual = source_hash(obj)
        if actual != check.sha:
            return "source hash{} {} -> {}".format(of, check.sha, actual)
    elif isinstance(check, Value):
        actual = shown(obj)
        if actual != check.expected:
            return "{} was {!r}, is now {!r}".format(check.target, check.expected, actual)
    elif isinstance(check, Contains):
        if check.text not in source_of(obj):
            return "{} no longer contains {!r}".format(check.target, check.text)
    return None


def changed_message(row, detail):
    return ("{} changed upstream ({}, {}): {} {} it; re-read it and update "
            "docs/upstream-internals.md and tests/unit/test_upstream.py").format(
                row.name, versions(row.lib), detail, row.where, HOW[row.how])


# --- the rows --------------------------------------------------------------------

@pytest.mark.parametrize("row", [pytest.param(row, id=row.name) for row in ROWS])
def test_upstream_unchanged(row):
    details = [d for d in (problem(row, check) for check in row.checks) if d]
    assert not details, changed_message(row, "; ".join(details))


@pytest.mark.parametrize("lib", sorted(PINS))
def test_pinned_version_installed(lib):
    # a moved pin fails here once; the rows above say which objects changed
    assert installed(lib) == PINS[lib], (
        "{} {} is installed but the rows of docs/upstream-internals.md were checked "
        "at {}: re-read every {} row (test_upstream_unchanged says which changed), "
        "then update PINS here and the versions in the doc".format(
            lib, installed(lib), PINS[lib], lib))


def requirement_pins():
    pins = {}
    for path in REQUIREMENTS:
        for line in path.read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;#]+)", line.strip())
            if match:
                # pip treats -, _ and . alike, and names case-insensitively
                pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_requirements_pin_the_checked_versions():
    pinned = requirement_pins()
    wrong = {lib: pinned.get(lib) for lib in PINS if pinned.get(lib) != PINS[lib]}
    assert not wrong, (
        "requirements*.txt pin {} but the rows were checked at {}: re-read those "
        "libraries' rows, then update PINS and docs/upstream-internals.md".format(
            wrong, {lib: PINS[lib] for lib in wrong}))


def test_every_row_is_well_formed():
    names = [row.name for row in ROWS]
    assert len(names) == len(set(names)), "a dotted name is listed twice"
    for row in ROWS:
        assert row.lib in PINS and row.how in HOW and row.checks, row


# --- the doc and the project's side of each row --------------------------------

def doc_rows():
    """``{dotted name: (library and version, where, how)}`` from the doc's table:
    ``| `name` | lib version | `file.py` `Qualname`; ... | how | why |``."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue  # prose, the header, the separator
        name, lib, where, how, _why = (cell.replace("`", "") for cell in cells)
        assert name not in rows, "{} is listed twice in {}".format(name, DOC.name)
        rows[name] = (lib, where, how)
    return rows


def test_doc_lists_the_same_objects():
    in_doc = doc_rows()
    in_test = {row.name: ("{} {}".format(row.lib, PINS[row.lib]), row.where, row.how)
               for row in ROWS}
    assert sorted(in_doc) == sorted(in_test), (
        "docs/upstream-internals.md and this test's ROWS name different upstream "
        "objects: only in the doc {}, only in the test {}".format(
            sorted(set(in_doc) - set(in_test)), sorted(set(in_test) - set(in_doc))))
    differ = {name: (in_doc[name], in_test[name]) for name in in_test
              if in_doc[name] != in_test[name]}
    assert not differ, ("docs/upstream-internals.md and ROWS disagree on (library, "
                        "where, how) of: {}".format(differ))


def project_object(path, qualname):
    name = path[:-len(".py")]
    if name.startswith("tests/"):
        # the tests' own modules are no package: they import by their own name
        # (tests/ is on sys.path, as its conftest.py's folder)
        name = name[len("tests/"):]
    module = importlib.import_module(name.replace("/", "."))
    obj = module
    for attr in qualname.split("."):
        obj = getattr(obj, attr)
    return obj


def test_project_locations_exist():
    # "where" must keep pointing at real code, or the list rots when code moves
    missing = []
    for row in ROWS:
        for place in row.where.split("; "):
            # "file.py Qualname", or a file that is no module (the .pth)
            path, _, qualname = place.partition(" ")
            try:
                assert (ROOT / path).is_file()
                if qualname:
                    project_object(path, qualname)
            except (AssertionError, ImportError, AttributeError) as exc:
                missing.append("{} ({}): {}".format(place, row.name, exc or "no such file"))
    assert not missing, "rows point at project code that is not there: {}".format(missing)


# --- nothing overridden goes unlisted ------------------------------------------

# Methods nameko documents for extensions to override (Writing Extensions; the
# HTTP section shows overriding response_from_exception; broadcast_identifier's
# docstring invites it). Constructors take the documented decorator arguments.
DOCUMENTED_HOOKS = {
    "setup", "start", "stop", "kill", "bind",
    "get_dependency", "worker_setup", "worker_result", "worker_teardown",
    "decorator", "response_from_exception", "broadcast_identifier", "__init__",
}


def project_classes():
    import mesh
    names = ["mesh." + info.name for info in pkgutil.iter_modules(mesh.__path__)]
    for name in names + ["tools.run"]:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name:
                yield cls


def is_upstream(cls):
    return cls.__module__.split(".")[0] in UPSTREAM_PACKAGES


def test_every_override_of_upstream_is_listed():
    """A project class that redefines a name an upstream base defines (method or
    class attribute) is either a documented hook or a row of the list."""
    listed = {row.name for row in ROWS}
    unlisted = []
    for cls in project_classes():
        for name in vars(cls):
            if name.startswith("__") and name != "__call__":
                continue  # __doc__, __module__, ...; __call__ is WsgiApp's API
            if name in DOCUMENTED_HOOKS:
                continue
            # the nearest base that defines the name: an upstream class means
            # this class overrides upstream (a project base was checked itself)
            owner = next((base for base in cls.__mro__[1:] if name in vars(base)), None)
            if owner is None or not is_upstream(owner):
                continue
            dotted = "{}.{}.{}".format(owner.__module__, owner.__qualname__, name)
            if dotted not in listed:
                unlisted.append("{}.{}.{} overrides {}".format(
                    cls.__module__, cls.__qualname__, name, dotted))
    assert not unlisted, (
        "overrides of upstream internals that docs/upstream-internals.md does not "
        "list (add a row there and to ROWS here): {}".format(unlisted))
