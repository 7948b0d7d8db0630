"""Each service's RabbitMQ user (``common.broker_users``), made from the
declarations as ``make run`` makes them (``tools.topology.prepare_broker``),
against the real broker: the mesh serves with each service logged in as its
own, and a service's user is refused what belongs to another service."""
import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Producer, Queue

from common.broker_users import broker_services, new_password, vhost_of
from common.topology import event_exchange, rpc_exchange
from contracts.services import BILLING, CUSTOMERS, GATEWAY, INVENTORY
from helpers import Mesh, connected_users, service_class, wait_for
from tools.topology import prepare_broker


@pytest.fixture
def broker_uris(mesh_config):
    """``{service: its AMQP URI}`` in this test's vhost, users and topology made."""
    _, uris = prepare_broker(mesh_config, {service.name: new_password()
                                           for service in broker_services()})
    return uris


def refused(uri, action):
    """``action(channel)`` on a fresh connection as ``uri``'s user: the
    broker's refusal (403 ACCESS_REFUSED), or None if it was allowed."""
    with Connection(uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        try:
            action(channel)
            channel.basic_qos(0, 1, False)  # a round trip: an asynchronous refusal arrives first
        except AccessRefused as exc:
            return exc
    return None


def publish(exchange, routing_key):
    def action(channel):
        Producer(channel).publish({"x": 1}, exchange=exchange, routing_key=routing_key,
                                  serializer="json")
    return action


def test_each_service_is_refused_what_belongs_to_another(broker_uris):
    customers, billing = broker_uris[CUSTOMERS], broker_uris[BILLING]
    rpc = rpc_exchange()
    reply_key = "reply-customers-00000000-0000-4000-8000-000000000000"
    own_queue = Queue("rpc.reply-customers-00000000-0000-4000-8000-000000000000",
                      exchange=rpc, routing_key=reply_key, auto_delete=True, exclusive=True)

    # what customers does: allowed (the refusals below are the broker's, not a broken user)
    assert refused(customers, publish("nameko-rpc", "billing.get_bill")) is None
    assert refused(customers, publish("customers.events", "customer_updated")) is None
    assert refused(customers, lambda channel: Queue("rpc-customers", durable=True)(channel)
                   .queue_declare()) is None
    assert refused(customers, lambda channel: (  # its own reply queue, bound to its own key
        own_queue(channel).queue_declare(),
        channel.queue_bind(own_queue.name, "nameko-rpc", reply_key))) is None
    assert refused(billing, publish("nameko-rpc", reply_key)) is None  # an answer to customers
    assert refused(billing, publish("billing.events", "bill_created")) is None

    refusals = {
        "consume billing's RPC queue": lambda channel: channel.basic_consume(
            "rpc-billing", callback=lambda message: None),
        "read billing's RPC queue": lambda channel: channel.basic_get("rpc-billing"),
        "declare billing's RPC queue": lambda channel: channel.queue_declare(
            "rpc-billing", durable=True),
        "declare inventory's handler queue": lambda channel: channel.queue_declare(
            "evt-billing-bill_created--inventory.confirm_reservation", durable=True),
        "publish as billing (billing.events)": publish("billing.events", "bill_created"),
        "call a method of a service it does not call (topic)": publish(
            "nameko-rpc", "inventory.release_stock"),
        "bind its own queue to billing's calls (topic)": lambda channel: (
            own_queue(channel).queue_declare(),
            channel.queue_bind(own_queue.name, "nameko-rpc", "billing.*")),
        "bind its own queue to the replies billing receives (topic)": lambda channel: (
            own_queue(channel).queue_declare(),
            channel.queue_bind(own_queue.name, "nameko-rpc",
                               "reply-billing-00000000-0000-4000-8000-000000000000")),
        "declare an exchange": lambda channel: Exchange("nameko-rpc", "topic", durable=True)(
            channel).declare(),
        "delete the RPC exchange": lambda channel: channel.exchange_delete("nameko-rpc"),
        "delete billing's events exchange": lambda channel: channel.exchange_delete(
            "billing.events"),
    }
    allowed = [what for what, action in refusals.items() if refused(customers, action) is None]
    assert not allowed, "customers' broker user was allowed to: {}".format(allowed)
    # and billing's user may not read customers' calls, nor publish as customers
    assert refused(billing, lambda channel: channel.basic_get("rpc-customers")) is not None
    assert refused(billing, publish("customers.events", "customer_updated")) is not None


def test_the_mesh_serves_with_each_service_as_its_own_user(
        broker_uris, mesh_config, runner_factory, rabbit_manager):
    """customers, inventory, billing and the gateway, each logged in as its
    own user: a bill is made and cancelled (RPC, billing's outbox event handled
    by inventory), and no connection in the vhost is guest's."""
    started = (CUSTOMERS, INVENTORY, BILLING, GATEWAY)
    for name in started:
        runner_factory(dict(mesh_config, AMQP_URI=broker_uris[name]), service_class(name)).start()
    mesh = Mesh(mesh_config)

    def stock():
        return mesh.http("GET", "/products/1").json()["quantity"]

    before = stock()
    created = mesh.http("POST", "/bills", json={"customer_id": 1, "items": [
        {"product_id": 1, "quantity": 2}]})
    assert created.status_code == 201, created.text
    assert stock() == before - 2
    cancelled = mesh.http("POST", "/bills/{}/cancel".format(created.json()["id"]))
    assert cancelled.status_code == 200, cancelled.text
    # billing's outbox event, handled by inventory from its durable queue
    wait_for(lambda: stock() == before, 10, "inventory giving the cancelled bill's stock back")

    vhost = vhost_of(mesh_config["AMQP_URI"])
    everyone = set(started)
    # the management API lists connections a few seconds late
    wait_for(lambda: everyone <= connected_users(rabbit_manager, vhost), 30,
             lambda: "every service's user connected to {}: {}".format(
                 vhost, connected_users(rabbit_manager, vhost)))
    assert connected_users(rabbit_manager, vhost) <= everyone
    # billing's events exchange exists (the topology step made it, not billing)
    with Connection(broker_uris[INVENTORY]) as connection:
        event_exchange(BILLING)(connection.channel()).declare(passive=True)
