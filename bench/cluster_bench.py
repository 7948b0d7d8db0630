"""``make bench-cluster``: what a RabbitMQ cluster with quorum queues costs and
buys, in one run on this machine.

    make bench-cluster
    .venv/bin/python -m bench.cluster_bench --seconds 20

1. bills/s and latency of ``POST /bills`` (wrk, 64 connections) on one node
   with classic queues (a vhost of the local RabbitMQ), then on a three-node
   cluster of the benchmark's own (``tools.cluster``) with ``QUEUE_TYPE=quorum``:
   the same mesh, the same load, one after the other;
2. on the cluster, under a steady stream of bills from three clients, the node
   holding ``rpc-billing``'s leader SIGKILLed: the time from the kill until a
   bill asked for after it is answered 201, and what the calls answered meanwhile.

Both meshes run as ``make run`` runs them (``bench.harness.BenchMesh``).
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

import requests

from bench.harness import BenchMesh, add_hub_argument, start_tansu, wrk
from bench.mesh_bench import BILLS_LUA, make_bench_data
from tools.cluster import Cluster, ClusterError, free_base_port

# clients sending bills one after another while the leader's node is killed
FAILOVER_CLIENTS = 3


def bills_per_second(url, seconds, product, customers):
    env = {"BENCH_PRODUCT": str(product), "BENCH_CUSTOMERS": ",".join(map(str, customers))}
    wrk(url + "/bills", 2, script=BILLS_LUA, env=env)  # warm up
    return wrk(url + "/bills", seconds, script=BILLS_LUA, env=env)


def failover(url, cluster, product, customers, clients=FAILOVER_CLIENTS):
    """Kill the leader's node under a stream of bills from ``clients`` clients:
    (seconds from the kill until a bill asked for after it is answered 201,
    {answer: count} of the calls answered from the kill until then). A call
    in flight at the kill may wait for its deadline whatever the mesh does
    meanwhile, so the figure counts the calls asked after it."""
    made, answered, stop = [], {}, threading.Event()
    killed = []
    lock = threading.Lock()

    def load():
        session = requests.Session()
        while not stop.is_set():
            asked = time.monotonic()
            try:
                status = session.post(url + "/bills", timeout=10, json={
                    "customer_id": customers[0],
                    "items": [{"product_id": product, "quantity": 1}]}).status_code
            except requests.RequestException as exc:
                status, session = type(exc).__name__, requests.Session()
            with lock:
                if killed and not made:
                    if status == 201 and asked > killed[0]:
                        made.append(time.monotonic())
                    else:
                        answered[status] = answered.get(status, 0) + 1

    threads = [threading.Thread(target=load, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    node = cluster.leader_node("rpc-billing")
    killed.append(time.monotonic())
    node.kill()
    deadline = time.monotonic() + 60
    while not made and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    node.start()
    node.wait_started()
    return (made[0] - killed[0] if made else None), answered, node.name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    add_hub_argument(parser)
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="billing-mesh-cluster-bench-")
    for mesh_folder in ("classic", "quorum"):
        os.makedirs(os.path.join(folder, mesh_folder))
    bootstrap, broker = start_tansu(folder)
    base_port = free_base_port()
    cluster = Cluster(os.path.join(folder, "cluster"), base_port,
                      name="billing-mesh-bench-{}".format(base_port))
    try:
        with BenchMesh(os.path.join(folder, "classic"), bootstrap, hub=args.hub) as mesh:
            product, customers, _ = make_bench_data(mesh.url)
            classic = bills_per_second(mesh.url, args.seconds, product, customers)
        try:
            cluster.start()
        except ClusterError as exc:
            cluster.stop()
            sys.exit("could not start the cluster: {}".format(exc))
        with BenchMesh(os.path.join(folder, "quorum"), bootstrap, hub=args.hub,
                       amqp_uri=cluster.amqp_uri, QUEUE_TYPE="quorum",
                       RABBITMQ_MANAGEMENT=cluster.management_url) as mesh:
            product, customers, _ = make_bench_data(mesh.url)
            quorum = bills_per_second(mesh.url, args.seconds, product, customers)
            took, answered, leader = failover(mesh.url, cluster, product, customers)
    finally:
        cluster.remove()
        broker.kill()
        shutil.rmtree(folder, ignore_errors=True)
    print("POST /bills, {:g} s each, 64 connections:".format(args.seconds))
    for label, figures in (("1 node, classic queues", classic),
                           ("3 nodes, quorum queues", quorum)):
        print("  {:<24} {:>7.1f} bills/s  p50 {:>6.1f} ms  p99 {:>7.1f} ms  errors {}".format(
            label, figures["rps"], figures["p50_ms"], figures["p99_ms"], figures["errors"]))
    after = ("a bill asked after the kill answered 201 {:.1f} s after it".format(took)
             if took is not None else "no bill asked after the kill answered 201 within 60 s")
    print("leader's node ({}) SIGKILLed under bills ({} clients): {}; answers meanwhile: {}"
          .format(leader, FAILOVER_CLIENTS, after, answered or "none"))
    return 0 if took is not None else 1


if __name__ == "__main__":
    sys.exit(main())
