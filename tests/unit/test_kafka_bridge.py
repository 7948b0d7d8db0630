"""kafka_bridge alone (``worker_factory``, Kafka mocked): both bill events go
to ``billing.bills`` keyed by customer, from handlers whose queues are the
declared ones (contracts.services); the Kafka producer made once however many
workers send first, and closed when the container stops or is killed."""
from unittest.mock import Mock

import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import worker_factory

from contracts.events import BILL_CREATED, bill_cancelled_event, bill_created_event
from contracts.services import KAFKA_BRIDGE, declared
from contracts.topics import BILLS_TOPIC
from mesh.events import EventHandler
from services.kafka_bridge import KafkaBridgeService

BILL = {"id": 4, "customer_id": 12, "billing_date": "2026-11-24T10:00:00+00:00",
        "items": [{"product_id": 2, "quantity": 3, "unit_price": "1299.00"}]}


@pytest.mark.parametrize("event", [
    bill_created_event(BILL), bill_cancelled_event(BILL, "2026-11-24T11:00:00+00:00")],
    ids=lambda event: event["type"])
def test_each_bill_event_goes_to_the_bills_topic_keyed_by_customer(event):
    bridge = worker_factory(KafkaBridgeService, kafka=Mock())
    bridge.kafka.send.return_value = Mock(partition=0, offset=7)
    handler = (bridge.forward_bill_created if event["type"] == BILL_CREATED
               else bridge.forward_bill_cancelled)
    handler(event)
    bridge.kafka.send.assert_called_once_with(BILLS_TOPIC, key="12", value=event)


def test_the_handlers_queues_are_the_declared_ones():
    container = ServiceContainer(KafkaBridgeService, {"AMQP_URI": "memory://"})
    handlers = {ext.method_name: ext for ext in container.entrypoints
                if isinstance(ext, EventHandler)}
    declared_queues = {handles.method: (handles.event, queue)
                       for handles, queue in declared(KAFKA_BRIDGE).handler_queues()}
    assert set(handlers) == set(declared_queues)
    for name, handler in handlers.items():
        assert handler.requeue_on_error  # Kafka away: the event waits in RabbitMQ
        handler.setup()
        assert (handler.event_type, handler.queue.name) == declared_queues[name]


def test_concurrent_first_sends_make_one_producer_and_stop_closes_it(monkeypatch):
    # making the producer waits on the network (prepare creates the topics): the
    # workers that send meanwhile use the one being made, none is left unclosed
    import eventlet
    import kafka
    from types import SimpleNamespace
    from mesh.kafka import KafkaProducer as KafkaDependency
    made = []

    class RecordingProducer:
        def __init__(self, **options):
            eventlet.sleep(0.05)  # kafka-python's bootstrap
            self.sent, self.closed = [], False
            made.append(self)

        def send(self, topic, key, value):
            self.sent.append(key)
            return SimpleNamespace(get=lambda timeout: (topic, key))

        def close(self, timeout=None):
            self.closed = timeout

    monkeypatch.setattr(kafka, "KafkaProducer", RecordingProducer)
    dependency = KafkaDependency(prepare=lambda config: eventlet.sleep(0.05))
    dependency.container = SimpleNamespace(config={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    dependency.setup()
    senders = [eventlet.spawn(dependency.send, BILLS_TOPIC, str(n), {}) for n in range(5)]
    assert sorted(sender.wait()[1] for sender in senders) == ["0", "1", "2", "3", "4"]
    assert len(made) == 1, "{} producers made for one dependency".format(len(made))
    assert sorted(made[0].sent) == ["0", "1", "2", "3", "4"]
    dependency.stop()
    assert made[0].closed == 2


def test_a_killed_container_closes_its_producer_at_once(monkeypatch):
    # nameko kills without stopping (a crashed container, its test fixtures'
    # teardown): the producer and its network thread must not outlive it
    import kafka
    from types import SimpleNamespace
    from mesh.kafka import KafkaProducer as KafkaDependency
    closed = []
    monkeypatch.setattr(kafka, "KafkaProducer", lambda **options: SimpleNamespace(
        send=lambda topic, key, value: SimpleNamespace(get=lambda timeout: key),
        close=lambda timeout=None: closed.append(timeout)))
    dependency = KafkaDependency()
    dependency.container = SimpleNamespace(config={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    dependency.setup()
    assert dependency.send(BILLS_TOPIC, "7", {}) == "7"
    dependency.kill()
    assert closed == [0], "the producer was not closed when its container was killed"
