"""Billing events into Kafka: every bill, seeded ones included, reaches
billing.bills through the bridge, also when Kafka was away for a while."""
import json
import signal
import time

import pytest
from kafka import KafkaConsumer

from helpers import wait_for

CORE = ("customers", "inventory", "billing", "gateway")


@pytest.fixture
def config(mesh_config, kafka):
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    mesh_config["KAFKA_RETRY_SECONDS"] = 3
    return mesh_config


class BillsTopic:
    """Everything on billing.bills, read from the start."""

    def __init__(self, bootstrap):
        self.consumer = KafkaConsumer(
            "billing.bills", bootstrap_servers=bootstrap, group_id=None,
            auto_offset_reset="earliest", consumer_timeout_ms=200)
        self.records = []

    def read(self):
        self.records.extend(self.consumer)
        return self.records

    def bill_ids(self):
        return {json.loads(record.value)["bill"]["id"] for record in self.read()}

    def close(self):
        self.consumer.close()


@pytest.fixture
def bills_topic(config):
    """``topic = bills_topic()``: a reader of billing.bills, closed after the test."""
    opened = []

    def open_topic():
        opened.append(BillsTopic(config["KAFKA_BOOTSTRAP_SERVERS"]))
        return opened[-1]
    yield open_topic
    for topic in opened:
        topic.close()


def post_bill(mesh, customer_id, product_id, quantity=1):
    response = mesh.http("POST", "/bills", json={
        "customer_id": customer_id, "items": [{"product_id": product_id, "quantity": quantity}]})
    assert response.status_code == 201, response.text
    return response.json()


def test_every_bill_reaches_kafka_with_key_and_payload(start_mesh, config, bills_topic):
    mesh = start_mesh(config, *CORE, "kafka_bridge")
    made = [post_bill(mesh, 2, 1, 2), post_bill(mesh, 3, 2)]
    topic = bills_topic()
    wait_for(lambda: topic.bill_ids() == {1, 2, 3, 4, 5}, 20,
             "the three seeded bills and the two new ones on billing.bills")

    by_bill = {json.loads(r.value)["bill"]["id"]: r for r in topic.records}
    record = by_bill[made[0]["id"]]
    event = json.loads(record.value)
    assert record.key == b"2"
    assert event["type"] == "bill_created" and len(event["event_id"]) == 36
    assert event["bill"] == {
        "id": made[0]["id"], "customer_id": 2, "billing_date": made[0]["billing_date"],
        "items": [{"product_id": 1, "quantity": 2, "unit_price": "3200.00"}], "total": "6400.00"}
    seeded = json.loads(by_bill[3].value)["bill"]
    assert (seeded["customer_id"], seeded["total"]) == (3, "29697.00")


def test_bills_are_made_while_kafka_is_frozen_and_their_events_follow(start_mesh, config, kafka,
                                                                     bills_topic):
    mesh = start_mesh(config, *CORE, "kafka_bridge")
    topic = bills_topic()
    wait_for(lambda: topic.bill_ids() == {1, 2, 3}, 20, "seeded bills on billing.bills")

    kafka.process.send_signal(signal.SIGSTOP)
    try:
        for customer_id in (1, 2, 3):
            started = time.time()
            post_bill(mesh, customer_id, 3)
            took = time.time() - started
            assert took < 2, "bill creation waited {:.2f} s on Kafka".format(took)
        time.sleep(4)  # longer than the bridge's retry window: events go back to RabbitMQ
    finally:
        kafka.process.send_signal(signal.SIGCONT)
    wait_for(lambda: topic.bill_ids() == {1, 2, 3, 4, 5, 6}, 30,
             "the bills made while Kafka was frozen on billing.bills")


def test_events_sent_before_the_bridge_ever_ran_are_kept(start_mesh, config, container_factory,
                                                        bills_topic):
    from services.kafka_bridge import KafkaBridgeService
    mesh = start_mesh(config, *CORE)
    post_bill(mesh, 1, 2)
    time.sleep(0.5)  # the event is dispatched now, with no bridge running
    container_factory(KafkaBridgeService, config).start()
    topic = bills_topic()
    wait_for(lambda: topic.bill_ids() == {1, 2, 3, 4}, 20,
             "events dispatched before the bridge started, on billing.bills")
