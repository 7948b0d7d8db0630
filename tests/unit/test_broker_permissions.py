"""Each service's RabbitMQ permissions (``common.broker_users``) against the
names its own code uses, read from its nameko container: every queue it
declares, exchange it binds to or publishes to, and routing key it binds or
publishes with is allowed, and the same names of other services are not.
Against the real broker: tests/integration/test_broker_users.py."""
import re
import uuid

import pytest
from nameko.containers import ServiceContainer
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE

from common.broker_users import broker_services, permissions, vhost_of, with_credentials
from common.topology import REPLY_ROUTING_KEY
from contracts.services import RPC
from helpers import service_class
from mesh.events import EventHandler
from mesh.proxy import MeshRpcProxy

BROKER_SERVICES = broker_services()


def allowed(pattern, name):
    return re.match(pattern, name) is not None


def queues_of(service):
    """``[(queue name, exchange, binding key)]`` its container declares."""
    container = ServiceContainer(service_class(service.name), {"AMQP_URI": "memory://"})
    found = []
    for extension in list(container.entrypoints) + list(container.dependencies):
        if isinstance(extension, EventHandler):
            extension.setup()
            queue = extension.queue
            found.append((queue.name, queue.exchange.name, queue.routing_key))
        if isinstance(extension, MeshRpcProxy):
            listener = extension.rpc_reply_listener
            listener.setup()
            queue = listener.queue
            found.append((queue.name, queue.exchange.name, queue.routing_key))
    if service.kind == RPC:
        found.append(("rpc-" + service.name, "nameko-rpc", service.name + ".*"))
    return found


@pytest.mark.parametrize("service", BROKER_SERVICES, ids=lambda service: service.name)
def test_what_its_code_declares_and_binds_is_allowed(service):
    allowed_to = permissions(service)
    for queue, exchange, key in queues_of(service):
        assert allowed(allowed_to.configure, queue), (service.name, "configure", queue)
        assert allowed(allowed_to.write, queue) and allowed(allowed_to.read, queue), queue
        assert allowed(allowed_to.read, exchange), (service.name, "bind to", exchange)
        if exchange == "nameko-rpc":
            assert allowed(allowed_to.topic_read, key), (service.name, "bind with", key)
    if service.events:
        assert allowed(allowed_to.write, service.name + ".events")
    for called in service.called():
        assert allowed(allowed_to.topic_write, called + ".get_thing")
    assert allowed(allowed_to.topic_write, REPLY_ROUTING_KEY.format("anyone", uuid.uuid4()))
    assert allowed(allowed_to.topic_write, str(uuid.uuid4())), "nameko shell's replies"


@pytest.mark.parametrize("service", BROKER_SERVICES, ids=lambda service: service.name)
def test_nothing_of_another_service_is_allowed(service):
    allowed_to = permissions(service)
    for other in BROKER_SERVICES:
        if other is service:
            continue
        reply_queue = RPC_REPLY_QUEUE_TEMPLATE.format(other.name, uuid.uuid4())
        for pattern in (allowed_to.configure, allowed_to.read, allowed_to.write):
            assert not allowed(pattern, "rpc-" + other.name)
            assert not allowed(pattern, reply_queue)
        for _, queue in other.handler_queues():
            assert not allowed(allowed_to.configure, queue) and not allowed(allowed_to.read, queue)
        assert not allowed(allowed_to.write, other.name + ".events")
        assert not allowed(allowed_to.topic_read, other.name + ".*")
        assert not allowed(allowed_to.topic_read, REPLY_ROUTING_KEY.format(other.name,
                                                                           uuid.uuid4()))
        if other.name not in service.called():
            assert not allowed(allowed_to.topic_write, other.name + ".cancel_bill")
    for pattern in (allowed_to.configure, allowed_to.write, allowed_to.read):
        assert not allowed(pattern, "amq.topic") and not allowed(pattern, "")
    assert not allowed(allowed_to.configure, "nameko-rpc")


def test_uris_take_the_users_credentials_on_every_node():
    assert with_credentials("pyamqp://guest:guest@h1:5672/v;pyamqp://guest:guest@h2/v",
                            "billing", "p@ss:/") == (
        "pyamqp://billing:p%40ss%3A%2F@h1:5672/v;pyamqp://billing:p%40ss%3A%2F@h2/v")
    assert vhost_of("pyamqp://guest:guest@h1:5672/") == "/"
    assert vhost_of("pyamqp://guest:guest@h1:5672") == "/"
    assert vhost_of("pyamqp://g:g@h1/nameko%2Ftest;pyamqp://g:g@h2/other") == "nameko/test"
