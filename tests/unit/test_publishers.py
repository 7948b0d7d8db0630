"""Confirmed and unconfirmed publishers side by side in one process: each keeps
its own transport options, so an event is never published unconfirmed because
an RPC publisher published last (nameko's ``Publisher.transport_options`` is a
dict shared by every publisher; see mesh.amqp.MeshPublisher)."""
from contextlib import contextmanager
from unittest import mock

from mesh.amqp import MeshPublisher, RpcPublisher

AMQP_URI = "pyamqp://guest:guest@127.0.0.1:5672/"


def test_each_publisher_keeps_its_own_confirm_setting():
    used = []

    @contextmanager
    def fake_producer(amqp_uri, confirms, ssl, login_method, transport_options):
        used.append(transport_options)  # what kombu's pooled connection would keep
        yield mock.Mock()

    events = MeshPublisher(AMQP_URI)  # confirmed, as the outbox's
    rpc = RpcPublisher(AMQP_URI)
    with mock.patch("nameko.amqp.publish.get_producer", fake_producer):
        events.publish({"event": 1}, exchange=None, routing_key="bill_created")
        rpc.publish({"args": []}, exchange=None, routing_key="customers.get_customer")
    event_options, rpc_options = used
    assert event_options is not rpc_options
    assert event_options["confirm_publish"] is True  # still, after the RPC publish
    assert rpc_options["confirm_publish"] is False
