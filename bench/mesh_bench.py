"""``make bench``: what the mesh's hops cost, against the physical limit.

    .venv/bin/python -m bench.mesh_bench            # what `make bench` runs
    .venv/bin/python -m bench.mesh_bench --smoke    # seconds, no targets (make test)

Starts the mesh as ``make run`` does (in a vhost, port and folder of its own,
``bench.harness``), measures, stops it, prints a table and writes
``bench/results.json``: ``{"metric": {"value", "unit", "baseline", "ratio",
"target", "pass"}}``. HTTP load comes from wrk at 64 connections. Every figure
with a limit is a ratio to a baseline measured in the same run:

1. ``GET /customers/1`` through the gateway (read cache on) against the no-hop
   limit (``bench/nohop.py``: one eventlet WSGI process reading the same row
   from the same SQLite file); and with a second gateway whose cache is off,
   so the RPC path's own cost stays visible.
2. ``GET /bills/{id}/full`` (three items) against the single read, cached and not.
3. ``POST /bills`` for 30 s: bills/s, p99, errors (socket errors and timeouts
   count); then the bills stored and the stock taken are checked against the
   201s answered.
4. RPC calls/s through nameko's ``ClusterRpcProxy``, one at a time and 100 in flight.
5. The Kafka half (``bench.stream_bench``): aggregator vs a plain consumer,
   bill -> analytics latency at 100 bills/s.
6. Peak RSS of every process of the mesh.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import requests
from nameko.standalone.rpc import ClusterRpcProxy

from bench.harness import (
    ROOT, BenchMesh, free_port, peak_rss_mb, percentile, start_tansu, stop, wrk,
)
from bench.stream_bench import aggregator_throughput, bill_latency
from tools.net import wait_until_ok

RESULTS = os.path.join(ROOT, "bench", "results.json")
BILLS_LUA = os.path.join(ROOT, "bench", "wrk", "bills.lua")
CONNECTIONS = 64
RSS_LIMIT_MB = 150

FULL = dict(seconds=10, warmup=2, bill_seconds=30, rpc_seconds=5, stream_rate=100,
            stream_seconds=20, events=50000)  # 50k: the measured basis
SMOKE = dict(seconds=1, warmup=1, bill_seconds=2, rpc_seconds=1, stream_rate=20,
             stream_seconds=2, events=500)


class Results:
    """The figures, in the shape of ``bench/results.json``."""

    def __init__(self, judge):
        self.judge = judge  # False in smoke mode: figures only, no verdicts
        self.metrics = collections.OrderedDict()
        self.problems = []  # wrong answers (not slow ones): the run fails

    def add(self, name, value, unit, baseline=None, target=None, passed=None):
        ratio = value / baseline if baseline else None
        self.metrics[name] = {
            "value": round(value, 3), "unit": unit,
            "baseline": round(baseline, 3) if baseline is not None else None,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "target": target if self.judge else None,
            "pass": (bool(passed(value, ratio)) if passed else None) if self.judge else None,
        }

    def table(self):
        lines = ["{:<32} {:>12} {:<10} {:>8}  {:<26} {}".format(
            "metric", "value", "unit", "ratio", "target", "")]
        for name, m in self.metrics.items():
            verdict = {True: "PASS", False: "FAIL", None: ""}[m["pass"]]
            lines.append("{:<32} {:>12,.1f} {:<10} {:>8}  {:<26} {}".format(
                name, m["value"], m["unit"],
                "{:.3f}x".format(m["ratio"]) if m["ratio"] is not None else "",
                m["target"] or "", verdict))
        return "\n".join(lines)


def read_load(url, seconds, warmup, threads):
    wrk(url, warmup, CONNECTIONS, threads)
    return wrk(url, seconds, CONNECTIONS, threads)


def require_no_errors(name, figures):
    if figures["errors"]:
        sys.exit("{}: {} errors under load ({}); see the mesh's logs".format(
            name, figures["errors"], figures["socket_errors"]))


def start_process(command, env, folder, name, ready_url):
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.STDOUT,
                               stdout=open(os.path.join(folder, name + ".log"), "ab"))
    ready, _ = wait_until_ok(ready_url, 60, give_up=lambda: process.poll() is not None)
    if ready:
        return process
    stop(process)
    sys.exit("{} did not start; see {}/{}.log".format(name, folder, name))


def make_bench_data(url):
    """A product with stock for every bill the benchmark makes, 10 customers,
    and a bill with three items for the full-bill read."""
    session = requests.Session()
    product = session.post(url + "/products", timeout=10, json={
        "name": "Bench", "price": "1.00", "quantity": 10 ** 9}).json()
    extras = [session.post(url + "/products", timeout=10, json={
        "name": "Bench extra {}".format(n), "price": "2.50", "quantity": 1000}).json()
        for n in range(2)]
    customers = [session.post(url + "/customers", timeout=10, json={
        "name": "Bench {}".format(n), "email": "bench{}@mail.com".format(n)}).json()["id"]
        for n in range(10)]
    bill = session.post(url + "/bills", timeout=10, json={
        "customer_id": customers[0],
        "items": [{"product_id": p["id"], "quantity": 1} for p in [product] + extras]}).json()
    return product["id"], customers, bill["id"]


def rpc_calls(amqp_uri, seconds, in_flight):
    """Calls/s of ``customers.get_customer(1)`` through ``ClusterRpcProxy``, with
    ``in_flight`` calls outstanding at any time."""
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cluster:
        pending = collections.deque()
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            while len(pending) < in_flight:
                pending.append(cluster.customers.get_customer.call_async(1))
            if pending.popleft().result()["id"] != 1:
                sys.exit("customers.get_customer(1) answered another customer")
            done += 1
        for reply in pending:
            reply.result()
        return done / (time.perf_counter() - started)


def bill_count(amqp_uri, product_id):
    """Bills holding the product (other bills may still land from earlier phases)."""
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30) as cluster:
        return cluster.billing.count_bills(product_id=product_id)


def stock_of(url, product_id):
    return requests.get(url + "/products/{}".format(product_id), timeout=10).json()["quantity"]


def settled_counts(mesh, product, bills_before, stock_before, seconds=10):
    """``(bills made, units taken)`` once both stopped moving: requests wrk
    stopped waiting for are still being answered for a moment."""
    deadline, last = time.time() + seconds, None
    while True:
        counts = (bill_count(mesh.vhost.amqp_uri, product) - bills_before,
                  stock_before - stock_of(mesh.url, product))
        if counts == last or time.time() > deadline:
            return counts
        last = counts
        time.sleep(0.5)


def measure(plan, threads, folder, results):
    bootstrap, tansu = start_tansu(folder)
    try:
        with BenchMesh(folder, bootstrap) as mesh:
            product, customers, bill = make_bench_data(mesh.url)
            nohop_port, uncached_port = free_port(), free_port()
            nohop = start_process(
                [sys.executable, "-m", "bench.nohop", mesh.db_path("customers"),
                 "127.0.0.1:{}".format(nohop_port)], mesh.env, folder, "nohop",
                "http://127.0.0.1:{}/customers/1".format(nohop_port))
            uncached_env = dict(mesh.env, GATEWAY_CACHE="false", MAX_WORKERS="100",
                                WEB_SERVER_ADDRESS="127.0.0.1:{}".format(uncached_port))
            uncached = start_process(
                ["nameko", "run", "--config", "config.yaml", "services.gateway"],
                uncached_env, folder, "gateway-uncached",
                "http://127.0.0.1:{}/health/live".format(uncached_port))
            uncached_url = "http://127.0.0.1:{}".format(uncached_port)
            try:
                s, w = plan["seconds"], plan["warmup"]
                limit = read_load("http://127.0.0.1:{}/customers/1".format(nohop_port), s, w, threads)
                read = read_load(mesh.url + "/customers/1", s, w, threads)
                read_uncached = read_load(uncached_url + "/customers/1", s, w, threads)
                full = read_load(mesh.url + "/bills/{}/full".format(bill), s, w, threads)
                full_uncached = read_load(uncached_url + "/bills/{}/full".format(bill), s, w, threads)
                for name, figures in [("no-hop", limit), ("read", read),
                                      ("uncached read", read_uncached), ("full bill", full),
                                      ("uncached full bill", full_uncached)]:
                    require_no_errors(name, figures)
                rss_extra = {"gateway-uncached": peak_rss_mb(uncached.pid)}
            finally:
                stop(nohop)
                stop(uncached)

            results.add("nohop_read_rps", limit["rps"], "req/s")
            results.add("nohop_read_p99_ms", limit["p99_ms"], "ms")
            results.add("mesh_read_rps", read["rps"], "req/s", limit["rps"], ">= 0.35x no-hop",
                        lambda v, r: r >= 0.35)
            results.add("mesh_read_p50_ms", read["p50_ms"], "ms")
            results.add("mesh_read_p99_ms", read["p99_ms"], "ms", None, "<= 60 ms",
                        lambda v, r: v <= 60)
            results.add("mesh_read_uncached_rps", read_uncached["rps"], "req/s", limit["rps"],
                        ">= 0.2x no-hop", lambda v, r: r >= 0.2)
            results.add("mesh_read_uncached_p99_ms", read_uncached["p99_ms"], "ms")
            results.add("full_bill_rps", full["rps"], "req/s", read["rps"],
                        ">= 0.5x read", lambda v, r: r >= 0.5)
            results.add("full_bill_p99_ms", full["p99_ms"], "ms")
            results.add("full_bill_uncached_rps", full_uncached["rps"], "req/s",
                        read_uncached["rps"], ">= 0.5x uncached read", lambda v, r: r >= 0.5)

            results.add("rpc_sequential_calls_per_s", rpc_calls(mesh.vhost.amqp_uri, plan["rpc_seconds"], 1), "calls/s")
            results.add("rpc_100_in_flight_calls_per_s", rpc_calls(mesh.vhost.amqp_uri, plan["rpc_seconds"], 100), "calls/s")

            delays, missing, errors, achieved = bill_latency(
                mesh.url, plan["stream_rate"], plan["stream_seconds"])
            if not delays:
                sys.exit("bill -> analytics: no bill became visible ({} errors)".format(len(errors)))
            # a bill refused or timed out under this rate counts against the target
            results.add("bill_to_analytics_rate", achieved, "bills/s", None,
                        ">= {:.0f}/s asked".format(plan["stream_rate"] * 0.95),
                        lambda v, r: v >= plan["stream_rate"] * 0.95)
            results.add("bill_to_analytics_p50_ms", percentile(delays, 0.5) * 1000, "ms")
            results.add("bill_to_analytics_p99_ms", percentile(delays, 0.99) * 1000, "ms",
                        None, "< 1000 ms, 0 errors", lambda v, r: v < 1000 and not errors)
            results.add("bill_to_analytics_errors", len(errors) + missing, "errors", None,
                        "== 0", lambda v, r: v == 0)

            bills_before = bill_count(mesh.vhost.amqp_uri, product)
            stock_before = stock_of(mesh.url, product)
            posts = wrk(mesh.url + "/bills", plan["bill_seconds"], CONNECTIONS, threads,
                        script=BILLS_LUA, timeout=2,
                        env={"BENCH_PRODUCT": str(product),
                             "BENCH_CUSTOMERS": ",".join(map(str, customers))})
            made, taken = settled_counts(mesh, product, bills_before, stock_before)
            answered = posts["statuses"].get(201, 0)
            # wrk stops with requests in flight: those bills exist, unanswered
            counts_ok = made == taken and answered <= made <= answered + CONNECTIONS
            results.add("post_bills_per_s", answered / plan["bill_seconds"], "bills/s", None,
                        ">= 200/s, 0 errors, counts match",
                        lambda v, r: v >= 200 and posts["errors"] == 0 and counts_ok)
            results.add("post_bills_p99_ms", posts["p99_ms"], "ms")
            results.add("post_bills_errors", posts["errors"], "errors", None, "== 0",
                        lambda v, r: v == 0)
            if not counts_ok:
                results.problems.append(
                    "POST /bills: {} answered 201, {} bills stored, {} units of stock taken: "
                    "they must agree".format(answered, made, taken))

            rss = dict(mesh.peak_rss_mb(), **rss_extra)
    finally:
        tansu.kill()

    for name, mb in sorted(rss.items()):
        if name != "launcher":
            results.add("peak_rss_{}_mb".format(name), mb, "MB", None,
                        "< {} MB".format(RSS_LIMIT_MB), lambda v, r: v < RSS_LIMIT_MB)

    plain, aggregated = aggregator_throughput(plan["events"], folder)
    results.add("stream_plain_consumer_events_per_s", plain, "events/s")
    results.add("stream_aggregator_events_per_s", aggregated, "events/s", plain,
                ">= 0.4x plain consumer", lambda v, r: r >= 0.4)
    return answered, made, taken


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds per figure, no targets (run by make test)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--out", default=None,
                        help="where to write the results (default bench/results.json; "
                             "smoke runs write nowhere unless given)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("the benchmark needs wrk: apt-get install -y wrk (make bench installs it)")
    plan = SMOKE if args.smoke else FULL
    results = Results(judge=not args.smoke)
    folder = tempfile.mkdtemp(prefix="mesh-bench-")
    answered, made, taken = measure(plan, args.threads, folder, results)
    print("\nbilling-mesh benchmark ({}; wrk {} connections, {} threads; {} cores)".format(
        "smoke" if args.smoke else "full", CONNECTIONS, args.threads, os.cpu_count()))
    print(results.table())
    print("POST /bills: {} answered 201, {} bills stored, {} units taken".format(
        answered, made, taken))
    out = args.out or (None if args.smoke else RESULTS)
    if out:
        with open(out, "w") as handle:
            json.dump(results.metrics, handle, indent=2)
            handle.write("\n")
        print("written to {}".format(os.path.relpath(out, ROOT)))
    if results.problems:
        sys.exit("\n".join(results.problems) + "\n(the mesh's logs and databases: {})".format(folder))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
