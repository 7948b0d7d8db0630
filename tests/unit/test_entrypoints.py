"""One way to write a service: every service consumes through the mesh's one
fast-reconnect consumer, and its entrypoints take domain errors as answers."""
import logging
import sys

import pytest
from nameko.containers import ServiceContainer
from nameko.messaging import QueueConsumer
from nameko.timer import Timer

from contracts.errors import MeshError
from helpers import ALL_SERVICES, service_classes
from mesh.amqp import FastReconnectQueueConsumer
from mesh.errors import WithoutTraceback
from mesh.events import EventHandler
from mesh.http import JsonHttpEntrypoint
from mesh.rpc import DeadlineRpc



@pytest.mark.parametrize("service_cls", service_classes(*ALL_SERVICES),
                         ids=lambda cls: cls.name)
def test_services_consume_through_the_fast_reconnect_consumer_only(service_cls):
    # binding the extensions reads no config and opens no connection
    container = ServiceContainer(service_cls, {"AMQP_URI": "memory://"})
    consumers = {type(ext) for ext in container.extensions if isinstance(ext, QueueConsumer)}
    assert consumers <= {FastReconnectQueueConsumer}, consumers
    for entrypoint in container.entrypoints:
        # the mesh's own, or nameko's timer (no caller to answer)
        assert isinstance(entrypoint, (DeadlineRpc, JsonHttpEntrypoint, EventHandler, Timer)), \
            entrypoint
        if not isinstance(entrypoint, Timer):
            assert issubclass(MeshError, entrypoint.expected_exceptions), entrypoint


def record(message, exc_info):
    return logging.LogRecord("nameko.containers", logging.WARNING, __file__, 1, message,
                             ("worker", "customer 7 does not exist"), exc_info)


def test_expected_errors_are_one_line_without_traceback():
    try:
        raise MeshError("customer 7 does not exist")
    except MeshError:
        exc_info = sys.exc_info()
    expected = record("(expected) error handling worker %s: %s", exc_info)
    assert WithoutTraceback().filter(expected) and expected.exc_info is None
    crash = record("error handling worker %s: %s", exc_info)
    assert WithoutTraceback().filter(crash) and crash.exc_info is exc_info


def test_a_route_is_compiled_with_the_garbage_collector_paused(monkeypatch):
    # Python 3.11's AST builder fails when a collection inside ast.parse switches
    # to another greenthread that compiles a rule too (mesh.http.bound_rule)
    import gc
    import mesh.http
    from werkzeug.routing import Map
    seen = []

    def recording_map(rules):
        seen.append(gc.isenabled())
        return Map(rules)

    monkeypatch.setattr(mesh.http, "Map", recording_map)
    rule = mesh.http.bound_rule("/customers/<int:customer_id>/bills/<int:bill_id>")
    assert sorted(rule.arguments) == ["bill_id", "customer_id"]
    assert seen == [False], "the rule was compiled with the collector running"
    assert gc.isenabled(), "the collector stays paused after the rule"


def test_the_gateways_url_map_is_compiled_with_the_garbage_collector_paused():
    # nameko's WsgiApp compiles every route of the web server at its start
    import gc
    from types import SimpleNamespace
    from werkzeug.routing import Map, Rule
    from mesh.http import JsonWsgiApp
    seen = []

    def make_url_map():
        seen.append(gc.isenabled())
        return Map([Rule("/bills/<int:bill_id>")])

    server = SimpleNamespace(make_url_map=make_url_map, container=SimpleNamespace(config={}))
    app = JsonWsgiApp(server)
    assert app.url_map.bind("localhost").match("/bills/7") == (None, {"bill_id": 7})
    assert seen == [False], "the routes were compiled with the collector running"
    assert gc.isenabled(), "the collector stays paused after the routes"


class MessageOnAResetConnection:
    """A delivered message whose connection the broker reset (a node killed):
    the socket write of its ack or requeue fails."""

    class channel:
        connection = object()  # not yet marked closed: the reset is found by writing

    def ack(self):
        raise ConnectionResetError(104, "Connection reset by peer")

    requeue = ack


@pytest.mark.parametrize("settle", ["ack_message", "requeue_message"])
def test_settling_a_message_on_a_reset_connection_does_not_end_the_service(settle, caplog):
    # raised, the error ends the consumer's thread, and nameko then kills the
    # whole service; the broker gives the message again on its own
    consumer = FastReconnectQueueConsumer()
    with caplog.at_level(logging.INFO, logger="mesh.amqp"):
        getattr(consumer, settle)(MessageOnAResetConnection())
    assert "the broker connection is gone" in caplog.text
