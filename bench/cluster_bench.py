"""``make bench-cluster``: what a RabbitMQ cluster with quorum queues costs and
buys, in one run on this machine.

    make bench-cluster
    .venv/bin/python -m bench.cluster_bench --seconds 20

1. bills/s and latency of ``POST /bills`` (wrk, 64 connections) on one node
   with classic queues (a vhost of the local RabbitMQ), then on a three-node
   cluster of the benchmark's own (``tools.cluster``) with ``QUEUE_TYPE=quorum``:
   the same mesh, the same load, one after the other;
2. on the cluster, under a steady stream of bills, the node holding
   ``rpc-billing``'s leader SIGKILLed: the time from the kill to the first bill
   answered 201 again, and what the calls in flight answered.

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


def bills_per_second(url, seconds, product, customers):
    env = {"BENCH_PRODUCT": str(product), "BENCH_CUSTOMERS": ",".join(map(str, customers))}
    wrk(url + "/bills", 2, script=BILLS_LUA, env=env)  # warm up
    return wrk(url + "/bills", seconds, script=BILLS_LUA, env=env)


def failover(url, cluster, product, customers):
    """Kill the leader's node under a stream of bills: (seconds until a bill is
    answered 201 again, {answer: count} from the kill until then)."""
    made, answered, stop = [], {}, threading.Event()
    killed = []

    def load():
        session = requests.Session()
        while not stop.is_set():
            try:
                status = session.post(url + "/bills", timeout=10, json={
                    "customer_id": customers[0],
                    "items": [{"product_id": product, "quantity": 1}]}).status_code
            except requests.RequestException as exc:
                status, session = type(exc).__name__, requests.Session()
            if killed and not made:
                if status == 201:
                    made.append(time.monotonic())
                else:
                    answered[status] = answered.get(status, 0) + 1

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    time.sleep(3)
    node = cluster.leader_node("rpc-billing")
    killed.append(time.monotonic())
    node.kill()
    deadline = time.monotonic() + 60
    while not made and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
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
                       amqp_uri=cluster.amqp_uri, QUEUE_TYPE="quorum") as mesh:
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
    print("leader's node ({}) SIGKILLed under bills: {}; answers meanwhile: {}".format(
        leader, "first 201 again after {:.1f} s".format(took) if took is not None
        else "no 201 within 60 s", answered or "none"))
    return 0 if took is not None else 1


if __name__ == "__main__":
    sys.exit(main())
