"""Stream benchmark: what the Kafka half of the mesh costs.

    .venv/bin/python -m bench.stream_bench [--events 50000] [--rate 100] [--seconds 20]
                                           [--instances 1,2,3] [--hub asyncio|epolls]

(``make bench`` takes the same figures, beside the HTTP and RPC ones.) Every
process it starts gets ``EVENTLET_HUB`` for ``--hub`` (``BENCH_HUB``, default
``asyncio``), as ``bench.mesh_bench`` does.

1. Throughput: ``--events`` bill_created events are produced to billing.bills on a
   fresh local Tansu broker; a plain kafka-python consumer summing revenue per
   customer into a dict, then the quixstreams aggregator (``python -m streams``,
   fresh state), each read all of them. Both figures come from the same run.
   Then the aggregator scaled out: 1, 2 and 3 instances in one consumer group
   (``--instances``), each count on a fresh broker, the group left to settle and
   warmed up before the same number of events is produced (``aggregators``).
2. Latency: the whole mesh (``python -m tools.run`` in its own RabbitMQ vhost, ports
   and data folder) takes ``--rate`` bills/s through the gateway for ``--seconds``;
   a poller reads ``/analytics/customers`` every 50 ms and notes when each bill
   became visible. Prints p50/p99 of bill (POST sent) -> visible: the POST's own
   time included, so an upper bound.

Prints a table; exits non-zero only if something failed to run. Targets:
aggregator >= 0.4x the plain consumer, p99 < 1 s.
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from decimal import Decimal

import requests

from bench.harness import (
    DEFAULT_HUB, HUBS, ROOT, BenchMesh, add_hub_argument, hub_environment, percentile,
    python_version, start_tansu,
)
from contracts.events import bill_created_event
from contracts.topics import BILLS_TOPIC, CUSTOMER_STATS_TOPIC, PARTITIONS, ensure_topics


def synthetic_event(n, customers=50):
    customer = n % customers + 1
    price = Decimal("19.99") + n % 7
    return customer, bill_created_event(
        {"id": n + 1, "customer_id": customer, "billing_date": "2026-11-24T10:00:00+00:00",
         "items": [{"product_id": n % 5 + 1, "quantity": 2, "unit_price": price}]},
        occurred_at="2026-11-24T10:00:{:02d}+00:00".format(n % 60))


def produce(bootstrap, count):
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             enable_idempotence=False, key_serializer=str.encode,
                             value_serializer=lambda value: json.dumps(value).encode())
    expected = defaultdict(Decimal)
    for n in range(count):
        customer, event = synthetic_event(n)
        expected[customer] += Decimal(event["bill"]["total"])
        producer.send(BILLS_TOPIC, key=str(customer), value=event)
    producer.flush()
    producer.close()
    return expected


def plain_consumer(bootstrap, count):
    """events/s of a kafka-python consumer summing revenue per customer."""
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(BILLS_TOPIC, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    totals, seen, started = defaultdict(Decimal), 0, None
    for record in consumer:
        if started is None:
            started = time.perf_counter()
        event = json.loads(record.value)
        totals[event["bill"]["customer_id"]] += Decimal(event["bill"]["total"])
        seen += 1
        if seen == count:
            break
    elapsed = time.perf_counter() - started
    consumer.close()
    return count / elapsed, totals


def aggregator(bootstrap, count, folder, hub=DEFAULT_HUB):
    """events/s of ``python -m streams``: first to last customer-stats output."""
    from kafka import KafkaConsumer
    env = hub_environment(dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap,
                               STREAMS_STATE_DIR=os.path.join(folder, "state")), hub)
    process = subprocess.Popen([sys.executable, "-m", "streams"], cwd=ROOT, env=env,
                               stdout=open(os.path.join(folder, "streams.log"), "ab"),
                               stderr=subprocess.STDOUT)
    consumer = KafkaConsumer(CUSTOMER_STATS_TOPIC, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=60000)
    seen, first, last, totals = 0, None, None, {}
    try:
        for record in consumer:
            now = time.perf_counter()
            first = first or now
            last = now
            value = json.loads(record.value)
            totals[value["customer_id"]] = Decimal(value["revenue"])
            seen += 1
            if seen == count:
                break
    finally:
        consumer.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    if seen < count:
        sys.exit("the aggregator produced {} of {} results; see {}".format(seen, count, folder))
    return count / (last - first), totals


STEADY_S = 12.0  # no aggregator started for this long: the group is settled (2 session timeouts)
WARM_UP_CUSTOMER = 100_000  # warm-up bills' customers: apart from the measured ones


def instance_starts(folder, count):
    """Start lines logged so far by each instance of ``aggregators``."""
    total = 0
    for number in range(count):
        path = os.path.join(folder, "streams-{}.log".format(number + 1))
        if os.path.exists(path):
            with open(path, errors="replace") as handle:
                total += handle.read().count("billing analytics: broker")
    return total


def aggregators(bootstrap, count, events, folder, hub=DEFAULT_HUB, timeout=300):
    """events/s of ``count`` instances of ``python -m streams`` in one group:
    started on empty topics and left to settle (on Tansu each rebalance starts
    the instances that keep partitions again: streams/app.py, work-around 4),
    warmed up with a bill on every partition, then ``events`` bills produced;
    first to last of their customer-stats outputs, the sums checked."""
    from kafka import KafkaConsumer, KafkaProducer
    env = hub_environment(dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap,
                               STREAMS_STATE_DIR=os.path.join(folder, "state")), hub)
    processes = []
    for number in range(count):
        log = open(os.path.join(folder, "streams-{}.log".format(number + 1)), "ab")
        processes.append(subprocess.Popen([sys.executable, "-m", "streams"], cwd=ROOT, env=env,
                                          stdout=log, stderr=subprocess.STDOUT))
    consumer = KafkaConsumer(CUSTOMER_STATS_TOPIC, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", fetch_max_wait_ms=50)
    try:
        deadline = time.monotonic() + timeout
        starts, steady_since = -1, time.monotonic()
        while time.monotonic() - steady_since < STEADY_S or starts < count:
            if time.monotonic() > deadline:
                sys.exit("{} aggregators never settled; see {}".format(count, folder))
            now = instance_starts(folder, count)
            if now != starts:
                starts, steady_since = now, time.monotonic()
            time.sleep(0.5)
        warm = KafkaProducer(bootstrap_servers=bootstrap, key_serializer=str.encode,
                             value_serializer=lambda value: json.dumps(value).encode())
        for partition in range(PARTITIONS):
            _, event = synthetic_event(partition)
            event["bill"]["customer_id"] = WARM_UP_CUSTOMER + partition
            warm.send(BILLS_TOPIC, key=str(WARM_UP_CUSTOMER + partition), value=event,
                      partition=partition)
        warm.flush()
        warm.close()
        warmed = set()
        while len(warmed) < PARTITIONS:
            if time.monotonic() > deadline:
                sys.exit("the warm-up bills were not all counted; see {}".format(folder))
            for records in consumer.poll(timeout_ms=200).values():
                warmed |= {json.loads(r.value)["customer_id"] for r in records}
        expected = produce(bootstrap, events)
        seen, first, last, totals = 0, None, None, {}
        while seen < events:
            if time.monotonic() > deadline:
                sys.exit("{} aggregators produced {} of {} results; see {}".format(
                    count, seen, events, folder))
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    value = json.loads(record.value)
                    if value["customer_id"] >= WARM_UP_CUSTOMER:
                        continue
                    now = time.perf_counter()
                    first, last = first or now, now
                    totals[value["customer_id"]] = Decimal(value["revenue"])
                    seen += 1
    finally:
        consumer.close()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    if totals != expected:
        sys.exit("{} aggregators' sums are wrong; see {}".format(count, folder))
    return events / (last - first)


def aggregator_scale_out(events, folder, counts=(1, 2, 3), hub=DEFAULT_HUB):
    """``{instances: events/s}``, each count on a fresh broker of its own."""
    rates = {}
    for count in counts:
        run = os.path.join(folder, "scale-{}".format(count))
        os.makedirs(run, exist_ok=True)
        bootstrap, tansu = start_tansu(run)
        try:
            ensure_topics(bootstrap, tansu=True)
            rates[count] = aggregators(bootstrap, count, events, run, hub)
        finally:
            tansu.kill()
    return rates


POLL_S = 0.05  # how often the poller asks the gateway for /analytics/customers


class KeepAliveHttp:
    """A minimal HTTP/1.1 client on one kept-alive asyncio connection.

    Written here rather than taken from requests or httpx because the load
    generator shares the machine's two cores with the mesh it measures: a
    thread and a client object per bill spend CPU that would be counted
    against the mesh (docs/benchmarks.md has the figures). One kept-alive
    connection on one loop spends little. It only speaks what the gateway
    answers: a status line, headers, a Content-Length body.
    """

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method, path, payload=None):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = b"" if payload is None else json.dumps(payload).encode()
        self.writer.write("{} {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
                          "Content-Length: {}\r\n\r\n".format(method, path, self.host, self.port,
                                                             len(body)).encode() + body)
        try:
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
            answer = await self.reader.readexactly(int(headers["content-length"]))
        except Exception:
            self.close()  # a half-read answer leaves the connection unusable
            raise
        if headers.get("connection") == "close":
            self.close()
        return int(head[0].split()[1]), answer

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def analytics_bills(session, url):
    """Bills counted in /analytics/customers; 0 while analytics is not up."""
    answer = session.get(url + "/analytics/customers", timeout=5)
    if answer.status_code != 200:
        return 0
    return sum(stat["bills"] for stat in answer.json()["items"])


def bill_latency(url, rate, seconds):
    """Bills through the gateway of a running mesh at ``rate`` per second for
    ``seconds`` (open loop: a bill is sent on time whatever the earlier ones
    are doing, each on a kept-alive connection that is free); when each became
    visible in ``/analytics/customers``, polled every ``POLL_S``.

    Returns ``(delays in s, bills not visible, errors, bills/s achieved)``.
    """
    session = requests.Session()
    total_bills = max(1, int(rate * seconds))
    product = session.post(url + "/products", timeout=10, json={
        "name": "Latency bench", "price": "1.00", "quantity": total_bills + 10}).json()
    customers = [session.post(url + "/customers", timeout=10, json={
        "name": "Latency {}".format(n), "email": "latency-{}@mail.com".format(uuid.uuid4().hex)}
    ).json()["id"] for n in range(10)]
    # warm: analytics answers (/health does not wait for it) and the aggregator
    # has counted the seeded bills
    deadline = time.time() + 60
    while analytics_bills(session, url) < 3:
        if time.time() > deadline:
            sys.exit("analytics did not count the seeded bills within 60 s")
        time.sleep(0.1)
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return asyncio.run(_bill_latency(host, int(port), rate, total_bills, customers,
                                     product["id"]))


async def _bill_latency(host, port, rate, total_bills, customers, product_id):
    posted = {}  # (customer, k) -> time the POST was sent, for bills made
    visible = {}  # (customer, k) -> when the poller first saw the k-th bill
    errors = []
    idle = []  # connections free for the next bill
    done = asyncio.Event()

    async def poll():
        connection = KeepAliveHttp(host, port)
        while not done.is_set():
            try:
                _, answer = await asyncio.wait_for(
                    connection.request("GET", "/analytics/customers"), 10)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                connection.close()  # its answer may still arrive: never read it as the next
                answer = b'{"items": []}'  # a slow answer must not end the measurement
            now = time.perf_counter()
            for stat in json.loads(answer)["items"]:
                for k in range(1, stat["bills"] + 1):
                    visible.setdefault((stat["customer_id"], k), now)
            await asyncio.sleep(POLL_S)
        connection.close()

    async def post(customer, k):
        connection = idle.pop() if idle else KeepAliveHttp(host, port)
        sent = time.perf_counter()
        try:
            status, _ = await asyncio.wait_for(connection.request("POST", "/bills", {
                "customer_id": customer, "items": [{"product_id": product_id, "quantity": 1}]}), 10)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            connection.close()
            errors.append(type(exc).__name__)
            return
        idle.append(connection)
        if status == 201:
            posted[(customer, k)] = sent
        else:
            errors.append(status)

    poller = asyncio.create_task(poll())
    senders = []
    started = time.perf_counter()
    for n in range(total_bills):
        customer = customers[n % len(customers)]
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        senders.append(asyncio.create_task(post(customer, n // len(customers) + 1)))
    await asyncio.gather(*senders)
    achieved = len(posted) / (time.perf_counter() - started)
    wait_until = time.perf_counter() + 30
    while time.perf_counter() < wait_until and not all(key in visible for key in posted):
        await asyncio.sleep(0.05)
    done.set()
    await poller
    for connection in idle:
        connection.close()
    delays = sorted(visible[key] - posted[key] for key in posted if key in visible)
    return delays, len(posted) - len(delays), errors, achieved


def aggregator_throughput(events, folder, hub=DEFAULT_HUB):
    """``(plain consumer events/s, aggregator events/s)`` over ``events`` events
    on a broker of their own; both sums checked against what was produced
    (the aggregator's process on ``hub``)."""
    bootstrap, tansu = start_tansu(folder)
    try:
        ensure_topics(bootstrap, tansu=True)
        expected = produce(bootstrap, events)
        plain_rate, plain_totals = plain_consumer(bootstrap, events)
        aggregator_rate, aggregator_totals = aggregator(bootstrap, events, folder, hub)
    finally:
        tansu.kill()
    if plain_totals != expected:
        sys.exit("the plain consumer's sums are wrong")
    if aggregator_totals != expected:
        sys.exit("the aggregator's sums are wrong")
    return plain_rate, aggregator_rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--instances", default="1,2,3",
                        help="aggregator instances to measure side by side (comma-separated)")
    add_hub_argument(parser)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="stream-bench-")
    plain_rate, aggregator_rate = aggregator_throughput(args.events, folder, args.hub)
    scale = aggregator_scale_out(args.events, folder,
                                 [int(n) for n in args.instances.split(",")], args.hub)
    bootstrap, tansu = start_tansu(folder)  # the mesh gets a broker of its own
    try:
        with BenchMesh(folder, bootstrap, hub=args.hub, LOG_LEVEL="WARNING") as mesh:
            instances = mesh.check_hubs()
            delays, missing, errors, achieved = bill_latency(mesh.url, args.rate, args.seconds)
    finally:
        tansu.kill()
    ratio = aggregator_rate / plain_rate
    p50, p99 = percentile(delays, 0.50), percentile(delays, 0.99)
    rows = [
        ("plain kafka-python consumer", "{:,.0f} events/s".format(plain_rate), ""),
        ("quixstreams aggregator", "{:,.0f} events/s".format(aggregator_rate),
         "{:.2f}x plain (target >= 0.40x) {}".format(ratio, "PASS" if ratio >= 0.4 else "FAIL")),
    ] + [
        ("aggregator, {} instance{}".format(count, "" if count == 1 else "s"),
         "{:,.0f} events/s".format(rate),
         "{:.2f}x one instance, settled group".format(rate / scale[min(scale)]))
        for count, rate in sorted(scale.items())
    ] + [
        ("bills posted", "{:.0f} bills/s".format(achieved),
         "{} bills, {} errors, {} not visible".format(len(delays) + missing, len(errors), missing)),
        ("bill -> analytics p50", "{:.0f} ms".format(p50 * 1000), ""),
        ("bill -> analytics p99", "{:.0f} ms".format(p99 * 1000),
         "target < 1000 ms {}".format("PASS" if p99 < 1 else "FAIL")),
    ]
    width = max(len(row[0]) for row in rows)
    print("\nstream benchmark ({} events; {} bills/s for {} s; hub {} in {} instances, "
          "Python {})".format(args.events, args.rate, args.seconds, HUBS[args.hub].reported,
                              len(instances), python_version()))
    for name, value, note in rows:
        print("  {:<{}}  {:>16}  {}".format(name, width, value, note))
    shutil.rmtree(folder, ignore_errors=True)
    if errors or missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
