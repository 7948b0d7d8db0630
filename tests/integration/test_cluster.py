"""The mesh on a three-node RabbitMQ cluster (``tools.cluster``, ports of its
own), as ``AMQP_URI=<the three nodes> QUEUE_TYPE=quorum make run`` runs it:
every durable queue it declares is a quorum queue (read from RabbitMQ's
management API), a process whose first node is down fails over to the next,
and the node holding the queues' leaders SIGKILLed, or cut off by the network,
under a load of bills loses no bill, makes none twice, keeps stock equal to the
units billed and analytics equal to billing, and the mesh serves again within
10 s; requests sent right after that node is killed all reach their queue.

Minutes long: ``make test-cluster`` runs them (and ``.ci/run``), not ``make test``.
The network cut is marked ``partition`` too, to run the others alone.
"""
import sqlite3
import time
import urllib.parse

import pytest
import requests
from kombu import Connection, Queue
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy

from contracts.services import DECLARATIONS, RPC
from helpers import run_service_process, wait_for
from launcher import Launcher, Load, all_bills, figures, same
from mesh.amqp import CONNECTION_ERRORS
from mesh.proxy import MeshRpcProxy
from mesh.registry import queue_consumers, queue_counts
from tools.cluster import Cluster, ClusterError, free_base_port

pytestmark = pytest.mark.cluster

LOAD_STOCK = 1_000_000  # each load product's stock (launcher.Load)
LOAD_CLIENTS = 3  # so that calls asked for during the failover do not wait on those in flight
# a reservation whose bill failed and whose release was lost with the node comes
# back with inventory's expiry sweep; its shortest TTL (2 x RPC_TIMEOUT) keeps the wait short
RESERVATION_TTL_S = 10


def started_cluster(folder, isolated=False):
    base_port = free_base_port()
    started = Cluster(folder, base_port, name="billing-mesh-test-{}".format(base_port),
                      isolated=isolated)
    try:
        started.start()
    except ClusterError as exc:
        started.stop()  # its folder stays, with the nodes' logs
        if started.network is not None:
            started.network.remove()
        pytest.fail("could not start a local RabbitMQ cluster: {}".format(exc), pytrace=False)
    return started


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = started_cluster(tmp_path_factory.mktemp("cluster"))
    yield started
    started.remove()


@pytest.fixture(scope="module")
def isolated_cluster(tmp_path_factory):
    """Each node in a network namespace of its own (``tools.cluster.NodeNetwork``),
    so that one can be cut off from the others."""
    started = started_cluster(tmp_path_factory.mktemp("isolated"), isolated=True)
    yield started
    started.remove()


def management(cluster, path, node=None):
    answer = requests.get((node or cluster.nodes[0]).management_url + "/api" + path,
                          timeout=10)
    answer.raise_for_status()
    return answer.json()


def queues(cluster, vhost="/"):
    return management(cluster, "/queues/" + urllib.parse.quote(vhost, safe=""))


def launched_on(cluster, mesh_config, tmp_path):
    """``AMQP_URI=<the cluster's nodes> QUEUE_TYPE=quorum make run``, stopped after."""
    launched = Launcher(dict(mesh_config, AMQP_URI=cluster.amqp_uri,
                             RABBITMQ_MANAGEMENT=cluster.management_url), tmp_path)
    launched.env.update(QUEUE_TYPE="quorum", RESERVATION_TTL=str(RESERVATION_TTL_S))
    yield launched
    launched.stop()


@pytest.fixture
def cluster_launcher(cluster, mesh_config, tmp_path):
    yield from launched_on(cluster, mesh_config, tmp_path)


@pytest.fixture
def isolated_launcher(isolated_cluster, mesh_config, tmp_path):
    yield from launched_on(isolated_cluster, mesh_config, tmp_path)


def survives(launcher, cluster, fault, repair, what):
    """Bills made through the gateway by a few clients while the node holding
    ``rpc-billing``'s leader suffers ``fault(node)``, then ``repair(node)``:
    a bill asked for after the fault is answered within 10 s of it, 503 at
    worst meanwhile, no bill lost or made twice, stock and analytics exact."""
    with Load(launcher.url, clients=LOAD_CLIENTS) as load:
        wait_for(lambda: load.made >= 20, 30, "bills made on the cluster")
        node = cluster.leader_node("rpc-billing")
        leader = node.name
        struck_at = time.monotonic()
        fault(node)
        wait_for(lambda: load.first_asked_after(struck_at), 30,
                 "a bill asked for and made after the leader's node was {}".format(what))
        serving_after = load.first_asked_after(struck_at) - struck_at
        made = load.made
        wait_for(lambda: load.made >= made + 20, 30, "bills made on the two nodes left")
        repair(node)
        made = load.made
        wait_for(lambda: load.made >= made + 10, 60, "bills made with the node back")
    print("the mesh served again {:.1f} s after {} was {}; {} bills made, failures: {}"
          .format(serving_after, leader, what, load.made, sorted(set(map(str, load.failed)))))
    assert serving_after < 10, "served again {:.1f} s after the node was {}".format(
        serving_after, what)
    assert not [f for f in load.failed if f != 503], load.failed[:10]  # 503 at worst

    wait_for(lambda: same(*figures(launcher.url)), 90, "analytics equal to billing")
    assert_no_bill_lost_or_made_twice(launcher, load)


@pytest.mark.timeout(400)
def test_make_run_on_the_cluster_uses_quorum_queues_and_survives_the_leader_killed_under_load(
        cluster, cluster_launcher):
    launcher = cluster_launcher
    launcher.start()

    # every durable queue the mesh declared is a quorum queue; the rest (reply
    # queues, which expire with their process, and broadcast handlers') classic
    declared = queues(cluster)
    durable = [q for q in declared if q["durable"] and not q["exclusive"]
               and not q["auto_delete"] and not q["name"].startswith("rpc.reply-")]
    assert {"rpc-" + service.name for service in DECLARATIONS if service.kind == RPC} <= \
        {q["name"] for q in durable}, sorted(q["name"] for q in declared)
    assert any(q["name"].startswith("evt-") for q in durable)
    assert [q["name"] for q in durable if q.get("type") != "quorum"] == []
    others = [q for q in declared if q not in durable]
    assert others and all(q.get("type") == "classic" for q in others), others

    def restart(node):
        node.start()
        node.wait_started()

    survives(launcher, cluster, lambda node: node.kill(), restart, "killed")


@pytest.mark.partition
@pytest.mark.timeout(400)
def test_the_leaders_node_cut_off_from_the_others_under_load_then_healed(
        isolated_cluster, isolated_launcher):
    """The node holding the leaders loses its link to the other two (its
    clients still reach it): with pause_minority it stops serving them, they
    fail over, the majority elects new leaders; healed, it rejoins."""
    network = isolated_cluster.network
    isolated_launcher.start()

    def healed(node):
        network.heal(node.number)
        wait_for(lambda: rejoined(isolated_cluster, node), 90,
                 "{} running again with no partition".format(node.name))

    survives(isolated_launcher, isolated_cluster, lambda node: network.cut(node.number),
             healed, "cut off")


def rejoined(cluster, node):
    """Every node, asked through another one, runs and sees no partition."""
    other = next(n for n in cluster.nodes if n is not node)
    try:
        nodes = management(cluster, "/nodes", node=other)
    except requests.RequestException:
        return False
    return len(nodes) == len(cluster.nodes) and all(
        n["running"] and not n.get("partitions") for n in nodes)


def assert_no_bill_lost_or_made_twice(launcher, load):
    """Every bill answered 201 is stored (and cancelled if its cancellation
    was answered 200); the bills of the load's products no 201 answered are
    at most the requests that failed; each product's stock taken is the units
    of its active bills, once no reservation is held past ``RESERVATION_TTL``
    (a failed bill whose release was lost gets its stock back from the sweep)."""
    url = launcher.url
    bills = all_bills(url)
    by_id = {bill["id"]: bill for bill in bills}
    assert len(set(load.bills)) == len(load.bills)
    missing = [bill_id for bill_id in load.bills if bill_id not in by_id]
    assert not missing, "bills answered 201 and not stored: {}".format(missing[:10])
    assert all(by_id[bill_id]["status"] == "cancelled" for bill_id in load.cancelled)
    mine = [bill for bill in bills
            if {item["product_id"] for item in bill["items"]} & set(load.products)]
    unanswered = len(mine) - len(load.bills)
    assert 0 <= unanswered <= len(load.failed), (unanswered, len(load.failed))
    units = {product_id: sum(item["quantity"] for bill in mine if bill["status"] == "active"
                             for item in bill["items"] if item["product_id"] == product_id)
             for product_id in load.products}

    def taken():
        return {product_id: LOAD_STOCK - requests.get(
            url + "/products/{}".format(product_id), timeout=10).json()["quantity"]
            for product_id in load.products}

    wait_for(lambda: taken() == units, RESERVATION_TTL_S + 20,
             lambda: "stock taken {} equal to the units of active bills {}; reservations "
             "not confirmed: {}".format(taken(), units, unconfirmed_reservations(launcher)))


def unconfirmed_reservations(launcher):
    """inventory's reservations that are not ``confirmed``, read from its database."""
    path = launcher.db_uris["inventory"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, status, items, created_at FROM stock_reservations "
                          "WHERE status != 'confirmed'").fetchall()


@pytest.mark.timeout(180)
def test_a_process_whose_first_node_is_down_fails_over_to_the_next(
        cluster, mesh_config, tmp_path, monkeypatch):
    first = cluster.nodes[0]
    second_uri = cluster.nodes[1].amqp_uri
    first.ctl("stop_app")  # its AMQP port closes; the VM stays in the cluster
    try:
        wait_for(lambda: not first.serving(), 30, "the first node's AMQP port closed")
        config = dict(mesh_config, AMQP_URI=cluster.amqp_uri)
        monkeypatch.setenv("QUEUE_TYPE", "quorum")
        process = run_service_process("customers", config, tmp_path / "customers.log")
        try:
            wait_for(lambda: queue_consumers(second_uri, "rpc-customers") >= 1, 60,
                     lambda: "customers consuming through the second node; its log: "
                     + (tmp_path / "customers.log").read_text()[-3000:])
            with ClusterRpcProxy({"AMQP_URI": second_uri}, timeout=10) as rpc:
                customer = rpc.customers.get_customer(1)
            assert customer["id"] == 1
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        first.ctl("start_app")
        first.wait_started()


class FailoverCaller:
    """A service whose only dependency is a client of ``failover_probe``."""
    name = "failover_caller"
    probe = MeshRpcProxy("failover_probe")


@pytest.mark.timeout(180)
def test_requests_sent_right_after_the_leaders_node_is_killed_all_reach_the_queue(cluster):
    """A request sent on a connection (re)made while a quorum queue's leader is
    being replaced reaches the queue: RabbitMQ 3.10 dropped unconfirmed ones
    sent on such a channel for as long as it lived, so the mesh's client
    confirms its requests over quorum queues (``mesh.proxy``)."""
    container = ServiceContainer(FailoverCaller, {"AMQP_URI": cluster.amqp_uri,
                                                  "QUEUE_TYPE": "quorum"})
    [client] = [dep for dep in container.dependencies if isinstance(dep, MeshRpcProxy)]
    client.setup()
    queue = Queue("rpc-failover_probe", client.exchange, routing_key="failover_probe.*",
                  durable=True, queue_arguments={"x-queue-type": "quorum"})
    first = cluster.nodes[0]
    with Connection(first.amqp_uri) as connection:  # its leader on the first node
        queue(connection.default_channel).declare()
    second_uri = cluster.nodes[1].amqp_uri
    try:
        assert cluster.leader_node(queue.name) is first
        for n in range(5):  # the client's pooled connection, to the first node
            client.send_request("failover_probe.ping", {"args": [n], "kwargs": {}}, 60)
        first.kill()
        sent, refused = 5, []
        for n in range(60):
            try:
                client.send_request("failover_probe.ping", {"args": [n], "kwargs": {}}, 60)
                sent += 1
            except CONNECTION_ERRORS as exc:  # a caller answers 503: not sent
                refused.append(exc)
            time.sleep(0.05)
        assert sent >= 5 + 30, "only {} of 60 requests sent after the kill: {}".format(
            sent - 5, refused[:3])
        wait_for(lambda: queue_counts(second_uri, queue.name)[0] == sent, 15,
                 lambda: "{} requests in the queue, {} sent".format(
                     queue_counts(second_uri, queue.name)[0], sent))
    finally:
        if not first.alive():
            first.start()
            first.wait_started()
        with Connection(second_uri) as connection:
            queue(connection.default_channel).delete()
