"""Metrics as Prometheus scrapes them (``mesh.metrics``): a real ``nameko run``
process serving ``/metrics`` on its own ``METRICS_PORT``, a mesh in this
process whose counters move by exactly the calls made, and Kafka consumer lag
against a real (Tansu) broker. Every scrape is parsed with prometheus-client's
own parser."""
import json
import os
import subprocess
import sys

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from common.broker_users import vhost_of
from common.config import ROOT
from common.topology import declare_topology
from contracts.topics import (BILLS_TOPIC, CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC,
                              REVENUE_WINDOWS_TOPIC, ensure_topics)
from helpers import free_port, wait_for
from mesh.kafka import group_lag
from mesh.metrics import metrics_text

CALLS = 25


def parse(text):
    """``{(sample name, ((label, value), ...)): value}``."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


NOT_SERVED = ("nothing serves /metrics on {}: a service serves it from its Metrics "
              "provider (`metrics = mesh.metrics.Metrics()` on mesh.service.MeshService "
              "and services.gateway.GatewayService)")


def scrape(port):
    try:
        answer = requests.get("http://127.0.0.1:{}/metrics".format(port), timeout=10)
    except requests.ConnectionError:
        pytest.fail(NOT_SERVED.format(port), pytrace=False)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def exported(samples, name, service):
    """Fails naming the likely cause when a service exports nothing at all."""
    assert any(key[0] == name and ("service", service) in key[1] for key in samples), (
        "{} exports no {}: is `metrics = mesh.metrics.Metrics()` on its class?".format(
            service, name))


def test_a_service_process_serves_its_calls_on_its_own_port(
        mesh_config, service_processes, rpc, monkeypatch):
    """``nameko run services.customers`` (eventlet monkey patched, as in
    production) with METRICS_PORT: N calls move the counter by exactly N."""
    port = free_port()
    monkeypatch.setenv("METRICS_PORT", str(port))  # the process reads config.yaml's ${...}
    service_processes("customers", 1, mesh_config)
    wait_for(lambda: requests.get("http://127.0.0.1:{}/metrics".format(port), timeout=5), 30,
             NOT_SERVED.format(port))
    labels = {"service": "customers", "method": "get_customer"}
    before = scrape(port)
    exported(before, "mesh_max_workers", "customers")

    for _ in range(CALLS):
        assert rpc.customers.get_customer(1)["id"] == 1
    with pytest.raises(Exception) as raised:
        rpc.customers.get_customer(99)
    assert type(raised.value).__name__ == "CustomerNotFound"
    after = scrape(port)

    moved = {name: value(after, name, **labels) - value(before, name, **labels)
             for name in ("mesh_rpc_calls_total", "mesh_rpc_duration_seconds_count")}
    assert moved == {"mesh_rpc_calls_total": CALLS + 1,
                     "mesh_rpc_duration_seconds_count": CALLS + 1}
    assert value(after, "mesh_rpc_errors_total", code="CUSTOMER_NOT_FOUND", **labels) \
        - value(before, "mesh_rpc_errors_total", code="CUSTOMER_NOT_FOUND", **labels) == 1
    assert value(after, "mesh_rpc_duration_seconds_sum", **labels) > 0
    assert value(after, "mesh_max_workers", service="customers") == 10  # config.yaml's default
    assert value(after, "mesh_busy_workers", service="customers") == 0
    assert value(after, "process_resident_memory_bytes") > 0


def probe(port):
    """``python -m tools.probe`` (the Kubernetes readiness probe) against the
    process serving metrics on ``port``: (exit code, its output)."""
    done = subprocess.run([sys.executable, "-m", "tools.probe"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, METRICS_PORT=str(port)))
    return done.returncode, done.stdout + done.stderr


def test_the_readiness_probe_follows_the_broker_connection(
        mesh_config, service_processes, monkeypatch, rabbit_manager):
    """Ready while the process consumes its queues; not ready while its vhost
    is gone (its connection closed, every reconnection refused); ready again
    once it is back."""
    port = free_port()
    monkeypatch.setenv("METRICS_PORT", str(port))
    service_processes("customers", 1, mesh_config)
    wait_for(lambda: probe(port)[0] == 0, 30, lambda: "the probe saying ready: {}".format(
        probe(port)))
    assert "customers" in probe(port)[1]

    vhost = vhost_of(mesh_config["AMQP_URI"])
    rabbit_manager.delete_vhost(vhost)
    try:
        wait_for(lambda: probe(port)[0] == 1, 30, "the probe saying not ready")
        assert "not consuming" in probe(port)[1]
    finally:
        rabbit_manager.create_vhost(vhost)
        rabbit_manager.set_vhost_permissions(vhost, "guest", ".*", ".*", ".*")
    declare_topology(mesh_config["AMQP_URI"])
    wait_for(lambda: probe(port)[0] == 0, 30, lambda: "the probe ready again: {}".format(
        probe(port)))


def test_gateway_and_service_in_one_process_share_one_port(start_mesh, mesh_config):
    """Two containers of one process, one metrics server: an HTTP request is
    counted by the edge (by route pattern) and its RPC by the service."""
    port = free_port()
    mesh_config["METRICS_PORT"] = port
    mesh = start_mesh(mesh_config, "customers", "gateway")
    before = scrape(port)
    exported(before, "mesh_max_workers", "gateway")
    for _ in range(CALLS):
        assert mesh.http("GET", "/customers?size=2").status_code == 200
    assert mesh.http("GET", "/customers?size=1000").status_code == 400  # refused at the edge
    assert mesh.http("GET", "/no/such/route").status_code == 404
    after = scrape(port)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("mesh_http_requests_total", route="/customers", method="GET", status="200") \
        == CALLS
    assert moved("mesh_http_requests_total", route="/customers", method="GET", status="400") == 1
    assert moved("mesh_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert moved("mesh_http_duration_seconds_count", route="/customers", method="GET") \
        == CALLS + 1
    # the refused request never reached customers
    assert moved("mesh_rpc_calls_total", service="customers", method="list_customers") == CALLS
    assert value(after, "mesh_max_workers", service="gateway") == 10


def test_group_lag_is_end_minus_committed_offset(kafka):
    """Summed over the topic's partitions and over every other topic the group
    committed on (the aggregator's repartition topics: work between its steps)."""
    ensure_topics(kafka.bootstrap, tansu=True)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    for n in range(10):
        producer.send(BILLS_TOPIC, json.dumps({"n": n}).encode(), partition=n % 2).get(timeout=10)
    for n in range(3):
        producer.send(CUSTOMER_STATS_TOPIC, b"{}", partition=1).get(timeout=10)
    producer.close()
    # nothing committed yet: everything is behind
    assert group_lag(kafka.bootstrap, "metrics-test", BILLS_TOPIC) == 10

    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id="metrics-test",
                             enable_auto_commit=False)
    first, second = TopicPartition(BILLS_TOPIC, 0), TopicPartition(BILLS_TOPIC, 1)
    between = TopicPartition(CUSTOMER_STATS_TOPIC, 1)
    consumer.assign([first, second, between])
    consumer.commit({first: OffsetAndMetadata(4, "", -1), second: OffsetAndMetadata(5, "", -1),
                     between: OffsetAndMetadata(1, "", -1)})
    consumer.close()
    # billing.bills: 1 + 0 behind; the other topic the group reads: 2
    assert group_lag(kafka.bootstrap, "metrics-test", BILLS_TOPIC) == 3
    samples = parse(metrics_text()[0].decode())
    assert value(samples, "mesh_kafka_consumer_lag", group="metrics-test", topic=BILLS_TOPIC) == 1
    assert value(samples, "mesh_kafka_consumer_lag", group="metrics-test",
                 topic=CUSTOMER_STATS_TOPIC) == 2


def test_topic_tables_record_their_lag_down_to_zero(start_mesh, mesh_config, kafka, rpc):
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    ensure_topics(kafka.bootstrap, tansu=True)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    for customer_id in range(1, 51):
        producer.send(CUSTOMER_STATS_TOPIC, json.dumps(
            {"customer_id": customer_id, "revenue": "1.00", "bills": 1}).encode()).get(timeout=10)
    producer.close()
    start_mesh(mesh_config, "analytics")
    wait_for(lambda: len(rpc.analytics.list_customer_stats()["items"]) == 50, 30,
             "analytics holding the 50 customers")

    def lags():
        samples = parse(metrics_text()[0].decode())
        return {topic: samples.get(("mesh_kafka_consumer_lag",
                                    (("group", "analytics"), ("topic", topic))))
                for topic in (CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC)}
    wait_for(lambda: set(lags().values()) == {0.0}, 10,
             "every topic table's lag recorded, and 0 once read to the end")
