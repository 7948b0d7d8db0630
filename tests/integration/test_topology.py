"""Consumers own their queues: every declared handler's durable queue exists
before any service starts (common.topology), so an event published before its
handler's service ever ran waits for it. No producer's code names them."""
import json
import os
import subprocess
import sys

from kafka import KafkaConsumer
from nameko.standalone.events import event_dispatcher

from common.config import ROOT
from common.topology import declare_topology
from contracts.events import BILL_CREATED
from contracts.services import BILLING, KAFKA_BRIDGE, declared, handler_queues
from helpers import bill_event, wait_for
from mesh.registry import queue_counts


def test_an_event_published_before_its_handlers_service_ever_ran_is_handled(
        mesh_config, kafka, container_factory):
    from services.kafka_bridge import KafkaBridgeService
    config = dict(mesh_config, KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap)
    queues = declare_topology(config["AMQP_URI"])
    assert sorted(queues) == sorted(name for name, _, _ in handler_queues())

    # published as any producer would, while no service of the mesh runs
    event = bill_event(7, [(1, 2)])
    event_dispatcher(config)(BILLING, BILL_CREATED, event)
    bridge_queue = next(queue for handles, queue in declared(KAFKA_BRIDGE).handler_queues()
                        if handles.event == BILL_CREATED)
    wait_for(lambda: queue_counts(config["AMQP_URI"], bridge_queue)[0] == 1, 10,
             "the event waiting in {}".format(bridge_queue))

    container_factory(KafkaBridgeService, config).start()
    consumer = KafkaConsumer("billing.bills", bootstrap_servers=kafka.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=200)
    try:
        seen = []
        wait_for(lambda: seen.extend(json.loads(r.value)["event_id"] for r in consumer)
                 or event["event_id"] in seen, 20,
                 "the event published before the bridge ever ran, on billing.bills")
    finally:
        consumer.close()


def test_wait_declares_nothing_and_waits_for_the_topology(mesh_config):
    """``python -m tools.topology --wait`` (the Kubernetes manifests' init
    container) fails, naming what is missing, until the topology step ran."""
    env = dict(os.environ, AMQP_URI=mesh_config["AMQP_URI"])
    waited = subprocess.run([sys.executable, "-m", "tools.topology", "--wait", "1"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert waited.returncode == 1 and "still missing" in waited.stderr, waited
    assert "nameko-rpc" in waited.stderr and "evt-billing-bill_created" in waited.stderr
    declare_topology(mesh_config["AMQP_URI"])
    waited = subprocess.run([sys.executable, "-m", "tools.topology", "--wait", "10"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert waited.returncode == 0 and "ready" in waited.stdout, waited
