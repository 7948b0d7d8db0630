"""Stream benchmark: what the Kafka half of the mesh costs.

    .venv/bin/python -m bench.stream_bench [--events 20000] [--rate 100] [--seconds 20]

(``make bench`` takes the same figures, beside the HTTP and RPC ones.)

1. Throughput: ``--events`` bill_created events are produced to billing.bills on a
   fresh local Tansu broker; a plain kafka-python consumer summing revenue per
   customer into a dict, then the quixstreams aggregator (``python -m streams``,
   fresh state), each read all of them. Both figures come from the same run.
2. Latency: the whole mesh (``python -m mesh.run`` in its own RabbitMQ vhost, ports
   and data folder) takes ``--rate`` bills/s through the gateway for ``--seconds``;
   a poller reads ``/analytics/customers`` every 20 ms and notes when each bill
   became visible. Prints p50/p99 of bill (POST sent) -> visible: the POST's own
   time included, so an upper bound.

Prints a table; exits non-zero only if something failed to run. Targets (issue 3):
aggregator >= 0.4x the plain consumer, p99 < 1 s.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from decimal import Decimal

import requests

from bench.harness import ROOT, BenchMesh, percentile, start_tansu
from streams.topics import BILLS_TOPIC, CUSTOMER_STATS_TOPIC, ensure_topics


def synthetic_event(n, customers=50):
    customer = n % customers + 1
    price = Decimal("19.99") + n % 7
    return customer, {"event_id": str(uuid.uuid4()), "type": "bill_created",
                      "occurred_at": "2026-11-24T10:00:{:02d}+00:00".format(n % 60),
                      "bill": {"id": n + 1, "customer_id": customer,
                               "billing_date": "2026-11-24T10:00:00+00:00",
                               "items": [{"product_id": n % 5 + 1, "quantity": 2,
                                          "unit_price": str(price)}],
                               "total": str(price * 2)}}


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


def aggregator(bootstrap, count, folder):
    """events/s of ``python -m streams``: first to last customer-stats output."""
    from kafka import KafkaConsumer
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap,
               STREAMS_STATE_DIR=os.path.join(folder, "state"))
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


def bill_latency(url, rate, seconds):
    """Bills through the gateway of a running mesh at ``rate`` per second for
    ``seconds``; when each became visible in ``/analytics/customers``.

    Returns ``(delays in s, bills not visible, errors, bills/s achieved)``.
    """
    session = requests.Session()
    total_bills = max(1, int(rate * seconds))
    product = session.post(url + "/products", timeout=10, json={
        "name": "Latency bench", "price": "1.00", "quantity": total_bills + 10}).json()
    customers = [session.post(url + "/customers", timeout=10, json={
        "name": "Latency {}".format(n), "email": "latency-{}@mail.com".format(uuid.uuid4().hex)}
    ).json()["id"] for n in range(10)]
    # warm: the aggregator has counted the bills made so far
    while sum(c["bills"] for c in session.get(url + "/analytics/customers", timeout=5)
              .json()["items"]) < 3:
        time.sleep(0.1)

    posted = {}  # (customer, k) -> time the POST was sent, for bills made
    visible = {}
    done = threading.Event()
    errors = []

    def poll():
        poller = requests.Session()
        while not done.is_set():
            try:
                stats = poller.get(url + "/analytics/customers", timeout=10).json()["items"]
            except requests.RequestException:
                continue  # a slow answer must not end the measurement
            now = time.perf_counter()
            for stat in stats:
                for k in range(1, stat["bills"] + 1):
                    visible.setdefault((stat["customer_id"], k), now)
            time.sleep(0.02)

    def post(customer, k):
        sent = time.perf_counter()
        try:
            answer = requests.post(url + "/bills", timeout=10, json={
                "customer_id": customer, "items": [{"product_id": product["id"], "quantity": 1}]})
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)
            return
        if answer.status_code == 201:
            posted[(customer, k)] = sent
        else:
            errors.append(answer.status_code)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    senders = []
    started = time.perf_counter()
    for n in range(total_bills):
        customer = customers[n % len(customers)]
        k = n // len(customers) + 1
        while time.perf_counter() < started + n / rate:
            time.sleep(0.001)
        sender = threading.Thread(target=post, args=(customer, k))
        sender.start()
        senders.append(sender)
    for sender in senders:
        sender.join()
    achieved = len(posted) / (time.perf_counter() - started)
    wait_until = time.time() + 30
    while time.time() < wait_until and not all(key in visible for key in posted):
        time.sleep(0.05)
    done.set()
    delays = sorted(visible[key] - posted[key] for key in posted if key in visible)
    return delays, len(posted) - len(delays), errors, achieved


def aggregator_throughput(events, folder):
    """``(plain consumer events/s, aggregator events/s)`` over ``events`` events
    on a broker of their own; both sums checked against what was produced."""
    bootstrap, tansu = start_tansu(folder)
    try:
        ensure_topics(bootstrap, tansu=True)
        expected = produce(bootstrap, events)
        plain_rate, plain_totals = plain_consumer(bootstrap, events)
        aggregator_rate, aggregator_totals = aggregator(bootstrap, events, folder)
    finally:
        tansu.kill()
    if plain_totals != expected:
        sys.exit("the plain consumer's sums are wrong")
    if aggregator_totals != expected:
        sys.exit("the aggregator's sums are wrong")
    return plain_rate, aggregator_rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="stream-bench-")
    plain_rate, aggregator_rate = aggregator_throughput(args.events, folder)
    bootstrap, tansu = start_tansu(folder)  # the mesh gets a broker of its own
    try:
        with BenchMesh(folder, bootstrap, LOG_LEVEL="WARNING") as mesh:
            delays, missing, errors, achieved = bill_latency(mesh.url, args.rate, args.seconds)
    finally:
        tansu.kill()
    ratio = aggregator_rate / plain_rate
    p50, p99 = percentile(delays, 0.50), percentile(delays, 0.99)
    rows = [
        ("plain kafka-python consumer", "{:,.0f} events/s".format(plain_rate), ""),
        ("quixstreams aggregator", "{:,.0f} events/s".format(aggregator_rate),
         "{:.2f}x plain (target >= 0.40x) {}".format(ratio, "PASS" if ratio >= 0.4 else "FAIL")),
        ("bills posted", "{:.0f} bills/s".format(achieved),
         "{} bills, {} errors, {} not visible".format(len(delays) + missing, len(errors), missing)),
        ("bill -> analytics p50", "{:.0f} ms".format(p50 * 1000), ""),
        ("bill -> analytics p99", "{:.0f} ms".format(p99 * 1000),
         "target < 1000 ms {}".format("PASS" if p99 < 1 else "FAIL")),
    ]
    width = max(len(row[0]) for row in rows)
    print("\nstream benchmark ({} events; {} bills/s for {} s)".format(args.events, args.rate, args.seconds))
    for name, value, note in rows:
        print("  {:<{}}  {:>16}  {}".format(name, width, value, note))
    shutil.rmtree(folder, ignore_errors=True)
    if errors or missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
