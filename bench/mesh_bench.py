"""``make bench``: what the mesh's hops cost, against the physical limit.

    .venv/bin/python -m bench.mesh_bench              # what `make bench` runs
    .venv/bin/python -m bench.mesh_bench --smoke      # seconds, no targets (make test)
    .venv/bin/python -m bench.mesh_bench --hub epolls # the whole mesh on another hub

Starts the mesh as ``make run`` does (in a vhost, port and folder of its own,
``bench.harness``), measures, stops it, prints a table and writes
``bench/results.json``: ``{"run": {"hub", "python", ...}, "metrics": {"metric":
{"value", "unit", "baseline", "against", "ratio", "target", "pass"}}}``. HTTP
load comes from wrk at 64 connections.

The hub: ``--hub`` (or ``BENCH_HUB``) ``asyncio`` (the default, the mesh's) or
``epolls`` (eventlet's own default, on which the mesh's ``async def`` routes
cannot run: the run stops saying so). Every process started here gets ``EVENTLET_HUB`` for
it, the benchmark's own RPC client runs on it too, and the hub every instance
reports (``GET /services``, and ``/hub`` of the no-hop servers) is checked,
then printed with the Python they run.

Every figure with a limit is a ratio to a baseline measured in the same run, on
the same hub (``against`` names it), so figures are compared within one run:

1. ``GET /customers/1`` through the gateway (read cache on: answered from
   memory) against the memory no-hop limit (``bench/nohop.py --memory``: one
   eventlet WSGI process answering a fixed body, the gateway's own answer, from
   memory); and with a second gateway whose cache is off, so the RPC path's own
   cost stays visible, against the SQLite no-hop limit (``bench/nohop.py``: the
   same row read from the same SQLite file on every request). And with a
   third gateway that checks a bearer token (every other mesh of the
   benchmarks runs with ``AUTH=off``, to measure the hops alone):
   ``token_check_added_p50_ms`` is what the check adds to the cached read;
   ``token_check_signature_us`` and ``token_check_cached_us`` time the check
   alone, in this process: a signature verified, and a token checked already.
2. ``GET /bills/{id}/full`` (three items) against the single read, cached and not.
   Each read's wrk timeouts (answers slower than ``timeout``) are a figure of
   their own (``<read>_timeouts``, target 0): the run goes on and measures the
   rest; any other error (refused, reset, a status >= 400) fails the run.
3. ``POST /bills`` for 30 s: bills/s, p99, errors (socket errors and timeouts
   count); then the bills stored and the stock taken are checked against the
   201s answered. Meanwhile the CPU every process of the mesh, Tansu and the
   local RabbitMQ node used, per bill answered (``post_bills_cpu_ms``, and
   ``post_bills_cpu_ms_<process>``): on two cores that sum is the limit.
4. RPC calls/s through nameko's ``ClusterRpcProxy``, one at a time and 100 in flight.
5. The Kafka half (``bench.stream_bench``): aggregator vs a plain consumer,
   the aggregator's events/s with 1, 2 and 3 instances in one group (full run
   only), bill -> analytics latency at 100 bills/s.
6. Peak RSS of every process of the mesh.
"""
import argparse
import collections
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import requests
from nameko.standalone.rpc import ClusterRpcProxy
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from contracts.scopes import CUSTOMERS_READ
from mesh.auth import Authenticator
from tools.issuer import LocalIssuer, serve

from bench.harness import (
    HUBS, ROOT, BenchMesh, add_hub_argument, cpu_seconds, free_port, peak_rss_mb, percentile,
    python_version, rabbitmq_pid, start_tansu, stop, use_hub_here, wrk,
)
from mesh.hub import HUB_VARIABLE, hub_name
from bench.stream_bench import aggregator_scale_out, aggregator_throughput, bill_latency
from tools.net import wait_until_ok

RESULTS = os.path.join(ROOT, "bench", "results.json")
BILLS_LUA = os.path.join(ROOT, "bench", "wrk", "bills.lua")
CONNECTIONS = 64
RSS_LIMIT_MB = 150

# timeout: wrk's per request (a slower answer counts as an error). Smoke mode only
# checks that every path answers, on a machine perhaps busy with other work: seconds
# enough for answers that take one or two under 64 connections, and a timeout only a
# route that hangs reaches.
FULL = dict(seconds=10, warmup=2, timeout=2, bill_seconds=30, rpc_seconds=5, stream_rate=100,
            stream_seconds=20, events=50000,  # 50k: the issue's measured basis
            aggregator_instances=(1, 2, 3))
SMOKE = dict(seconds=3, warmup=1, timeout=10, bill_seconds=2, rpc_seconds=1, stream_rate=20,
             stream_seconds=2, events=500, aggregator_instances=())


# the two no-hop limits (bench/nohop.py), and what the table calls each baseline
MEMORY_LIMIT = "nohop_memory_read_rps"
SQLITE_LIMIT = "nohop_sqlite_read_rps"
BASELINES = {
    MEMORY_LIMIT: "memory no-hop",
    SQLITE_LIMIT: "SQLite no-hop",
    "mesh_read_rps": "cached read",
    "mesh_read_uncached_rps": "uncached read",
    "stream_plain_consumer_events_per_s": "plain consumer",
}


class Results:
    """The figures, in the shape of ``bench/results.json``'s ``metrics``."""

    def __init__(self, judge):
        self.judge = judge  # False in smoke mode: figures only, no verdicts
        self.metrics = collections.OrderedDict()
        self.problems = []  # wrong answers (not slow ones): the run fails

    def add(self, name, value, unit, against=None, target=None, passed=None):
        """``against``: the name of the metric (added before) this one is a
        ratio to."""
        baseline = self.metrics[against]["value"] if against else None
        ratio = value / baseline if baseline else None
        self.metrics[name] = {
            "value": round(value, 3), "unit": unit,
            "baseline": baseline, "against": against,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "target": target if self.judge else None,
            "pass": (bool(passed(value, ratio)) if passed else None) if self.judge else None,
        }

    def table(self):
        lines = ["{:<36} {:>12} {:<9} {:>27}  {:<32} {}".format(
            "metric", "value", "unit", "ratio (to what, this run)", "target", "")]
        for name, m in self.metrics.items():
            verdict = {True: "PASS", False: "FAIL", None: ""}[m["pass"]]
            ratio = "" if m["ratio"] is None else "{:.3f}x {}".format(
                m["ratio"], BASELINES.get(m["against"], m["against"]))
            lines.append("{:<36} {:>12,.1f} {:<9} {:>27}  {:<32} {}".format(
                name, m["value"], m["unit"], ratio, m["target"] or "", verdict))
        return "\n".join(lines)


def token_check_us(issuer, token, scope, rounds=20000):
    """``(signature check, cached check)`` in microseconds: ``common.tokens``
    verifying ``token`` each time, and ``mesh.auth`` answering it from the
    tokens it checked already (what each request to the gateway pays)."""
    auth = Authenticator({"AUTH": "on", "AUTH_ISSUER": issuer.url})
    environ = EnvironBuilder(path="/customers/1",
                             headers={"Authorization": "Bearer " + token}).get_environ()
    auth.caller(Request(environ, shallow=True), scope)  # the keys read once
    started = time.perf_counter()
    for _ in range(rounds):
        auth.verifier.verify(token)
    signature = (time.perf_counter() - started) / rounds
    requests_only = time.perf_counter()
    for _ in range(rounds):
        Request(environ, shallow=True)
    requests_only = time.perf_counter() - requests_only
    started = time.perf_counter()
    for _ in range(rounds):
        auth.caller(Request(environ, shallow=True), scope)
    cached = (time.perf_counter() - started - requests_only) / rounds
    return signature * 1e6, cached * 1e6


def read_load(url, plan, threads, headers=None):
    wrk(url, plan["warmup"], CONNECTIONS, threads, timeout=plan["timeout"], headers=headers)
    return wrk(url, plan["seconds"], CONNECTIONS, threads, timeout=plan["timeout"],
               headers=headers)


def wrong_answers(figures):
    """Errors that are not slowness: refused or broken connections and answers
    >= 400. (wrk's timeouts are answers slower than ``timeout``: counted apart.)"""
    errors = figures["socket_errors"]
    return errors["connect"] + errors["read"] + errors["write"] + errors["status"]


def add_read_errors(results, metric, name, figures):
    """A read's errors as a figure (``<metric>_errors``: 0 expected). Timeouts
    leave the run going, as ``POST /bills``' do, so every later figure is still
    measured; any other error is a wrong answer, and fails the run."""
    results.add(metric + "_timeouts", figures["socket_errors"]["timeout"], "errors", None,
                "== 0", lambda v, r: v == 0)
    if wrong_answers(figures):
        results.problems.append("{}: {} errors under load ({}); see the mesh's logs".format(
            name, wrong_answers(figures), figures["socket_errors"]))


def add_cpu_per_bill(results, cpu_used, bills):
    """``post_bills_cpu_ms``: the CPU the mesh, Tansu and RabbitMQ (the local
    node, shared with anything else using it) used during ``POST /bills``, per
    bill answered; and each process's share, ``post_bills_cpu_ms_<name>``."""
    if not bills:
        return
    results.add("post_bills_cpu_ms", sum(cpu_used.values()) * 1000 / bills, "ms/bill")
    for name, used in sorted(cpu_used.items()):
        results.add("post_bills_cpu_ms_{}".format(name), used * 1000 / bills, "ms/bill")


def start_process(command, env, folder, name, ready_url):
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.STDOUT,
                               stdout=open(os.path.join(folder, name + ".log"), "ab"))
    ready, _ = wait_until_ok(ready_url, 60, give_up=lambda: process.poll() is not None)
    if ready:
        return process
    stop(process)
    sys.exit("{} did not start; see {}/{}.log".format(name, folder, name))


def start_gateway(mesh, folder, name, port, **settings):
    """Another gateway of ``mesh`` on ``port``, with the workers the declaration
    gives the mesh's own and ``settings`` over its environment."""
    env = dict(mesh.env, MAX_WORKERS="100", WEB_SERVER_ADDRESS="127.0.0.1:{}".format(port),
               **settings)
    return start_process(["nameko", "run", "--config", "config.yaml", "services.gateway"],
                         env, folder, name, "http://127.0.0.1:{}/health/live".format(port))


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


def answer_of(url):
    """The body of ``GET url`` (200 expected)."""
    answer = requests.get(url, timeout=10)
    answer.raise_for_status()
    return answer.content


def nohop_hub(port):
    """``{"hub", "python"}`` a no-hop server reports."""
    return requests.get("http://127.0.0.1:{}/hub".format(port), timeout=10).json()


def check_nohop(name, port, mesh, body, results):
    """A no-hop server runs on the mesh's hub and answers ``/customers/1``
    with a body as long as the gateway's (else the comparison is unfair)."""
    ran = nohop_hub(port)["hub"]
    if ran != HUBS[mesh.hub].reported:
        results.problems.append("{} runs on the {} hub, not {}".format(name, ran, mesh.hub))
    answered = answer_of("http://127.0.0.1:{}/customers/1".format(port))
    if len(answered) != len(body):
        results.problems.append("{} answers {} bytes for /customers/1, the gateway {}".format(
            name, len(answered), len(body)))
    return ran


def measure(plan, threads, folder, results, hub, run):
    bootstrap, tansu = start_tansu(folder)
    try:
        with BenchMesh(folder, bootstrap, hub=hub) as mesh:
            product, customers, bill = make_bench_data(mesh.url)
            # the memory limit answers exactly what the cached read answers
            body = answer_of(mesh.url + "/customers/1")
            body_path = os.path.join(folder, "customer-1.json")
            with open(body_path, "wb") as handle:
                handle.write(body)
            sqlite_port, memory_port, uncached_port = free_port(), free_port(), free_port()
            sqlite_nohop = start_process(
                [sys.executable, "-m", "bench.nohop", mesh.db_path("customers"),
                 "127.0.0.1:{}".format(sqlite_port)], mesh.env, folder, "nohop-sqlite",
                "http://127.0.0.1:{}/customers/1".format(sqlite_port))
            memory_nohop = start_process(
                [sys.executable, "-m", "bench.nohop", "--memory", body_path,
                 "127.0.0.1:{}".format(memory_port)], mesh.env, folder, "nohop-memory",
                "http://127.0.0.1:{}/customers/1".format(memory_port))
            uncached = start_gateway(mesh, folder, "gateway-uncached", uncached_port,
                                     GATEWAY_CACHE="false")
            uncached_url = "http://127.0.0.1:{}".format(uncached_port)
            # a third gateway, the same as the first but checking tokens: what
            # a token check adds to the cached read
            issuer_port, token_port = free_port(), free_port()
            issuer = LocalIssuer(os.path.join(folder, "issuer"),
                                 "http://127.0.0.1:{}".format(issuer_port))
            issuer_server = serve(issuer, "127.0.0.1", issuer_port)
            with_token = start_gateway(mesh, folder, "gateway-token", token_port,
                                       AUTH="on", AUTH_ISSUER=issuer.url)
            token_url = "http://127.0.0.1:{}".format(token_port)
            bearer = {"Authorization": "Bearer " + issuer.token("bench", [CUSTOMERS_READ])}
            try:
                run["instances"] = mesh.check_hubs(uncached_url)
                run["instances"]["nohop-sqlite"] = check_nohop(
                    "the SQLite no-hop server", sqlite_port, mesh, body, results)
                run["instances"]["nohop-memory"] = check_nohop(
                    "the memory no-hop server", memory_port, mesh, body, results)
                run["read_body_bytes"] = len(body)
                memory_limit = read_load(
                    "http://127.0.0.1:{}/customers/1".format(memory_port), plan, threads)
                read = read_load(mesh.url + "/customers/1", plan, threads)
                refused = requests.get(token_url + "/customers/1", timeout=10).status_code
                if refused != 401:
                    sys.exit("the gateway checking tokens answered {} without one".format(refused))
                read_token = read_load(token_url + "/customers/1", plan, threads, headers=bearer)
                signature_us, cached_us = token_check_us(
                    issuer, bearer["Authorization"].split(" ", 1)[1], CUSTOMERS_READ)
                sqlite_limit = read_load(
                    "http://127.0.0.1:{}/customers/1".format(sqlite_port), plan, threads)
                read_uncached = read_load(uncached_url + "/customers/1", plan, threads)
                full = read_load(mesh.url + "/bills/{}/full".format(bill), plan, threads)
                full_uncached = read_load(uncached_url + "/bills/{}/full".format(bill), plan, threads)
                rss_extra = {"gateway-uncached": peak_rss_mb(uncached.pid)}
            finally:
                stop(sqlite_nohop)
                stop(memory_nohop)
                stop(uncached)
                stop(with_token)
                issuer_server.shutdown()

            # the cached read answers from memory: its limit does too
            results.add(MEMORY_LIMIT, memory_limit["rps"], "req/s")
            results.add("nohop_memory_read_p99_ms", memory_limit["p99_ms"], "ms")
            results.add("mesh_read_rps", read["rps"], "req/s", MEMORY_LIMIT,
                        ">= 0.35x memory no-hop", lambda v, r: r >= 0.35)
            results.add("mesh_read_p50_ms", read["p50_ms"], "ms")
            results.add("mesh_read_p99_ms", read["p99_ms"], "ms", None, "<= 60 ms",
                        lambda v, r: v <= 60)
            # the same read through the gateway checking a bearer token
            results.add("mesh_read_token_rps", read_token["rps"], "req/s", "mesh_read_rps")
            results.add("mesh_read_token_p50_ms", read_token["p50_ms"], "ms")
            results.add("mesh_read_token_p99_ms", read_token["p99_ms"], "ms")
            results.add("token_check_added_p50_ms", read_token["p50_ms"] - read["p50_ms"], "ms")
            results.add("token_check_signature_us", signature_us, "us")
            results.add("token_check_cached_us", cached_us, "us")
            # the uncached read reads the row from SQLite: so does its limit
            results.add(SQLITE_LIMIT, sqlite_limit["rps"], "req/s")
            results.add("nohop_sqlite_read_p99_ms", sqlite_limit["p99_ms"], "ms")
            results.add("mesh_read_uncached_rps", read_uncached["rps"], "req/s", SQLITE_LIMIT,
                        ">= 0.2x SQLite no-hop", lambda v, r: r >= 0.2)
            results.add("mesh_read_uncached_p99_ms", read_uncached["p99_ms"], "ms")
            results.add("full_bill_rps", full["rps"], "req/s", "mesh_read_rps",
                        ">= 0.5x cached read", lambda v, r: r >= 0.5)
            results.add("full_bill_p99_ms", full["p99_ms"], "ms")
            results.add("full_bill_uncached_rps", full_uncached["rps"], "req/s",
                        "mesh_read_uncached_rps", ">= 0.5x uncached read", lambda v, r: r >= 0.5)

            for metric, name, figures in [
                    ("nohop_memory_read", "memory no-hop", memory_limit),
                    ("mesh_read", "read", read), ("nohop_sqlite_read", "SQLite no-hop", sqlite_limit),
                    ("mesh_read_token", "read with a token", read_token),
                    ("mesh_read_uncached", "uncached read", read_uncached),
                    ("full_bill", "full bill", full),
                    ("full_bill_uncached", "uncached full bill", full_uncached)]:
                add_read_errors(results, metric, name, figures)

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
            # what each process spends per bill: the two cores are the limit
            busy = dict(mesh.processes(), tansu=tansu.process.pid, rabbitmq=rabbitmq_pid())
            busy = {name: pid for name, pid in busy.items() if pid and name != "launcher"}
            cpu_before = {name: cpu_seconds(pid) for name, pid in busy.items()}
            posts = wrk(mesh.url + "/bills", plan["bill_seconds"], CONNECTIONS, threads,
                        script=BILLS_LUA, timeout=plan["timeout"],
                        env={"BENCH_PRODUCT": str(product),
                             "BENCH_CUSTOMERS": ",".join(map(str, customers))})
            cpu_after = {name: cpu_seconds(pid) for name, pid in busy.items()}
            cpu_used = {name: cpu_after[name] - cpu_before[name] for name in busy
                        if cpu_before[name] is not None and cpu_after[name] is not None}
            made, taken = settled_counts(mesh, product, bills_before, stock_before)
            answered = posts["statuses"].get(201, 0)
            add_cpu_per_bill(results, cpu_used, answered)
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

    plain, aggregated = aggregator_throughput(plan["events"], folder, hub)
    results.add("stream_plain_consumer_events_per_s", plain, "events/s")
    results.add("stream_aggregator_events_per_s", aggregated, "events/s",
                "stream_plain_consumer_events_per_s", ">= 0.4x plain consumer",
                lambda v, r: r >= 0.4)
    scale = aggregator_scale_out(plan["events"], folder, plan["aggregator_instances"], hub)
    for count, rate in sorted(scale.items()):
        results.add("stream_aggregator_{}_instances_events_per_s".format(count), rate, "events/s")
    return answered, made, taken


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds per figure, no targets (run by make test)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--out", default=None,
                        help="where to write the results (default bench/results.json; "
                             "smoke runs write nowhere unless given)")
    add_hub_argument(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("the benchmark needs wrk: apt-get install -y wrk (make bench installs it)")
    use_hub_here(args.hub)  # the RPC client of the RPC figures: the same hub as the mesh
    plan = SMOKE if args.smoke else FULL
    results = Results(judge=not args.smoke)
    folder = tempfile.mkdtemp(prefix="mesh-bench-")
    run = {"mode": "smoke" if args.smoke else "full", "hub": args.hub,
           HUB_VARIABLE: HUBS[args.hub].variable, "hub_reported": HUBS[args.hub].reported,
           "python": python_version(), "python_executable": sys.executable,
           "eventlet": importlib.metadata.version("eventlet"),
           "wrk_connections": CONNECTIONS, "wrk_threads": args.threads, "cores": os.cpu_count()}
    answered, made, taken = measure(plan, args.threads, folder, results, args.hub, run)
    run["instances"]["benchmark (RPC client)"] = hub_name()
    print("\nbilling-mesh benchmark ({}; hub {}, Python {}; wrk {} connections, {} threads; "
          "{} cores)".format(run["mode"], run["hub_reported"], run["python"], CONNECTIONS,
                             args.threads, os.cpu_count()))
    print("hub {} ({}={}, eventlet {}) checked in {} processes: {}".format(
        run["hub_reported"], HUB_VARIABLE, run[HUB_VARIABLE], run["eventlet"],
        len(run["instances"]), ", ".join(sorted(run["instances"]))))
    print(results.table())
    print("limits, measured in this run on the same hub (compare ratios within one run):\n"
          "  {:<22} bench/nohop.py --memory: a fixed {}-byte body from memory, the cached "
          "read's limit\n"
          "  {:<22} bench/nohop.py: the row read from the same SQLite file, the uncached "
          "read's limit".format(MEMORY_LIMIT, run["read_body_bytes"], SQLITE_LIMIT))
    print("POST /bills: {} answered 201, {} bills stored, {} units taken".format(
        answered, made, taken))
    out = args.out or (None if args.smoke else RESULTS)
    if out:
        with open(out, "w") as handle:
            json.dump({"run": run, "metrics": results.metrics}, handle, indent=2)
            handle.write("\n")
        print("written to {}".format(os.path.relpath(out, ROOT)))
    if results.problems:
        sys.exit("\n".join(results.problems) + "\n(the mesh's logs and databases: {})".format(folder))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
