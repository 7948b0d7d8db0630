"""``QUEUE_TYPE``: every durable queue the mesh declares takes it (services'
RPC queues, event handler queues, the topology step's), reply and broadcast
queues stay classic; a wrong value is an error, not a queue of an unknown type.
(On a real cluster: tests/integration/test_cluster.py.)"""
import pytest
from kombu import Queue
from nameko.containers import ServiceContainer

from common.topology import queue_type_of, topology_queues, with_queue_type
from mesh.events import EventHandler
from mesh.rpc import MeshReplyListener, MeshRpcConsumer
from services.billing import BillingService
from services.inventory import InventoryService

QUORUM = {"x-queue-type": "quorum"}


def test_the_setting_is_classic_or_quorum():
    assert queue_type_of({}) == "classic"
    assert queue_type_of({"QUEUE_TYPE": " Quorum "}) == "quorum"
    with pytest.raises(ValueError, match="QUEUE_TYPE must be one of classic, quorum"):
        queue_type_of({"QUEUE_TYPE": "mirrored"})


def test_only_durable_shared_queues_take_the_type():
    assert with_queue_type(Queue("a", durable=True), "quorum").queue_arguments == QUORUM
    assert not with_queue_type(Queue("a", durable=True), "classic").queue_arguments
    assert not with_queue_type(Queue("b", exclusive=True), "quorum").queue_arguments
    assert not with_queue_type(Queue("c", auto_delete=True), "quorum").queue_arguments
    kept = with_queue_type(Queue("d", queue_arguments={"x-expires": 1}), "quorum")
    assert kept.queue_arguments == dict(QUORUM, **{"x-expires": 1})


def test_the_topology_step_declares_handler_queues_with_the_type():
    quorum = topology_queues(queue_type="quorum")
    assert quorum and all(queue.queue_arguments == QUORUM for queue in quorum)
    assert not any(queue.queue_arguments for queue in topology_queues())


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_a_service_declares_its_queues_with_the_configured_type(queue_type):
    container = ServiceContainer(InventoryService, {
        "AMQP_URI": "memory://", "QUEUE_TYPE": queue_type,
        "DB_URIS": {"inventory": "sqlite://"}})
    expected = QUORUM if queue_type == "quorum" else None
    [consumer] = {ext for ext in container.subextensions if isinstance(ext, MeshRpcConsumer)}
    consumer.setup()
    assert consumer.queue.name == "rpc-inventory"
    assert (consumer.queue.queue_arguments or None) == expected
    handlers = [ext for ext in container.entrypoints if isinstance(ext, EventHandler)]
    assert handlers
    for handler in handlers:
        handler.setup()
        shared = not handler.queue.exclusive and not handler.queue.auto_delete
        assert (handler.queue.queue_arguments or None) == (expected if shared else None), \
            handler.queue.name


def test_reply_queues_are_transient_classic_and_named_anew_at_each_connection():
    container = ServiceContainer(BillingService, {
        "AMQP_URI": "memory://", "QUEUE_TYPE": "quorum",
        "DB_URIS": {"billing": "sqlite://"}})
    listeners = {ext for ext in container.subextensions if isinstance(ext, MeshReplyListener)}
    for dependency in container.dependencies:
        listeners |= {ext for ext in getattr(dependency, "nested_extensions", ())
                      if isinstance(ext, MeshReplyListener)}
    assert listeners, "billing calls other services: it has a reply listener"
    for listener in listeners:
        listener.setup()
        assert not listener.queue.durable
        assert listener.queue.auto_delete
        assert "x-queue-type" not in (listener.queue.queue_arguments or {})
        # read at each (re)connection: a new name, never the dead node's copy;
        # the same routing key, the reply_to of every call
        first, second = listener.queue, listener.queue
        assert first.name != second.name
        assert first.name.startswith("rpc.reply-billing-")
        assert first.routing_key == second.routing_key == listener.routing_key
