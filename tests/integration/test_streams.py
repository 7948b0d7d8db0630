"""The billing aggregator (streams/), the real thing:
``python -m streams`` as a subprocess against a fresh Tansu broker per test
(the ``kafka`` fixture). Expected results are computed here straight from the
produced events with Decimal, independently of streams.aggregate.
"""
import datetime
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.serializer import DefaultSerializer, JsonSerializer

from common.config import ROOT
from contracts.events import BILL_CANCELLED, bill_cancelled_event
from contracts.topics import (ALL_TOPICS, BILLS_TOPIC, CUSTOMER_STATS_TOPIC,
                              PARTITIONS, PRODUCT_STATS_TOPIC, REBUILD_TOPIC,
                              REVENUE_WINDOWS_TOPIC, ensure_topics)
from helpers import bill_event, wait_for

MARKER_CUSTOMER = 999  # an event of a customer and product of their own
MARKER_PRODUCT = 99
SETTLE_S = 0.5  # how long the outputs must stay equal once they are (a checkpoint)


def some_events(count, seed):
    """``count`` bills over 5 customers and 6 products (shared between customers;
    some bills list one product twice)."""
    rng = random.Random(seed)
    events = []
    for _ in range(count):
        items = [(rng.randint(1, 6), rng.randint(1, 4)) for _ in range(rng.randint(1, 3))]
        events.append(bill_event(rng.randint(1, 5), items))
    return events


def marker_event():
    return bill_event(MARKER_CUSTOMER, [(MARKER_PRODUCT, 1)])


def expected_results(events):
    """What the three topics must say, computed directly from the events
    (each event_id once; a cancellation takes its bill off)."""
    customers, products, revenue = {}, {}, Decimal(0)
    for event in {event["event_id"]: event for event in events}.values():
        bill = event["bill"]
        sign = -1 if event["type"] == BILL_CANCELLED else 1
        customer = customers.setdefault(str(bill["customer_id"]), {
            "customer_id": bill["customer_id"], "revenue": Decimal(0), "bills": 0})
        customer["revenue"] += sign * Decimal(bill["total"])
        customer["bills"] += sign
        revenue += sign * Decimal(bill["total"])
        for item in bill["items"]:
            product = products.setdefault(str(item["product_id"]), {
                "product_id": item["product_id"], "units": 0, "revenue": Decimal(0)})
            product["units"] += sign * item["quantity"]
            product["revenue"] += sign * Decimal(item["unit_price"]) * item["quantity"]
    for stats in list(customers.values()) + list(products.values()):
        stats["revenue"] = "{:.2f}".format(stats["revenue"])
    return customers, products, revenue


class Producer:
    def __init__(self, bootstrap):
        self.client = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)

    def send(self, *events):
        for event in events:
            self.client.send(BILLS_TOPIC, key=str(event["bill"]["customer_id"]).encode(),
                             value=json.dumps(event).encode())
        self.client.flush(timeout=10)

    def close(self):
        self.client.close(timeout=5)


class Latest:
    """The latest value per key of one output topic, read from its beginning
    (every partition)."""

    def __init__(self, bootstrap, topic):
        self.values = {}
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20,
            key_deserializer=DefaultSerializer(), value_deserializer=JsonSerializer())
        partitions = [TopicPartition(topic, number)
                      for number in sorted(self.consumer.partitions_for_topic(topic))]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)

    def poll(self, timeout_ms=20):
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                self.values[record.key] = record.value
        return self.values

    def close(self):
        self.consumer.close()


class Outputs:
    """The three result topics, kept up to date by ``poll()``."""

    def __init__(self, bootstrap):
        self.customers = Latest(bootstrap, CUSTOMER_STATS_TOPIC)
        self.products = Latest(bootstrap, PRODUCT_STATS_TOPIC)
        self.windows = Latest(bootstrap, REVENUE_WINDOWS_TOPIC)

    def poll(self):
        for latest in (self.customers, self.products, self.windows):
            latest.poll()
        return self

    def close(self):
        for latest in (self.customers, self.products, self.windows):
            latest.close()

    def window_revenue(self):
        return sum((Decimal(window["revenue"]) for window in self.windows.values.values()),
                   Decimal(0))

    def assert_match(self, aggregators, events, settle_s=SETTLE_S):
        """The outputs come to equal what ``events`` add up to, and still do
        ``settle_s`` later (a repeat counted late would change them).
        ``aggregators``: the running ones (one, or a list), which must stay alive."""
        customers, products, revenue = expected_results(events)
        aggregators = aggregators if isinstance(aggregators, list) else [aggregators]

        def equal():
            for aggregator in aggregators:
                aggregator.check_alive()
            self.poll()
            return (self.customers.values == customers and self.products.values == products
                    and self.window_revenue() == revenue)
        try:
            wait_for(equal, 60, "customer-stats, product-stats and revenue-windows equal to "
                     "the events")
        finally:  # say how they differ
            assert self.customers.values == customers
            assert self.products.values == products
            assert self.window_revenue() == revenue
        time.sleep(settle_s)
        assert equal(), "the outputs changed after they were equal: something counted twice"
        for window in self.windows.values.values():
            start = datetime.datetime.fromisoformat(window["start"])
            end = datetime.datetime.fromisoformat(window["end"])
            assert end - start == datetime.timedelta(seconds=5), window
            assert start.utcoffset() == datetime.timedelta(0), window


class Aggregator:
    """``python -m streams`` in a subprocess, logging to ``log_path``."""

    def __init__(self, bootstrap, state_dir, log_path):
        self.env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, KAFKA_TANSU="true",
                        STREAMS_STATE_DIR=str(state_dir), STREAMS_WINDOW_SECONDS="5")
        self.log_path = log_path
        self.process = None

    def start(self):
        """Start it and wait for its start line (the topics exist by then)."""
        starts = self.log_text().count("billing analytics: broker")
        with open(self.log_path, "ab") as log:
            # a session of its own: kill() takes the worker down with its supervisor
            self.process = subprocess.Popen([sys.executable, "-m", "streams"], cwd=ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

        def started():
            self.check_alive()
            return self.log_text().count("billing analytics: broker") > starts
        wait_for(started, 60, "`python -m streams` to log its start line")

    def log_text(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def check_alive(self):
        if self.process.poll() is not None:
            pytest.fail("`python -m streams` exited with {}:\n{}".format(
                self.process.returncode, self.log_text()[-3000:]), pytrace=False)

    def kill(self):
        """SIGKILL to the supervisor and its worker at once: the instance is gone."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        """SIGTERM, as a supervisor would: it must exit cleanly and soon."""
        if self.process is None or self.process.poll() is not None:
            return self.process and self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return "killed after SIGTERM was ignored for 20 s"


@pytest.fixture
def clients(kafka):
    """``producer = clients(Producer(...))``: closed before the broker stops."""
    made = []

    def keep(client):
        made.append(client)
        return client
    yield keep
    for client in made:
        client.close()


@pytest.fixture
def aggregator(kafka, tmp_path):
    agg = Aggregator(kafka.bootstrap, tmp_path / "state", tmp_path / "streams.log")
    yield agg
    code = agg.stop()
    print("--- streams.log (exit {})\n{}".format(code, agg.log_text()[-3000:]))
    assert code in (None, 0, -signal.SIGKILL), "the aggregator did not stop cleanly on SIGTERM"


# --- the broker -----------------------------------------------------------------------

def test_ensure_topics_is_repeatable_and_sets_retention_on_tansu(kafka):
    """Twice in a row is fine, and a topic a producer created first (Tansu creates
    it without settings) gets the retention settings quixstreams needs."""
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    producer.send(BILLS_TOPIC, b"{}").get(timeout=10)  # auto-created, no settings
    producer.close()
    ensure_topics(kafka.bootstrap, tansu=True)
    ensure_topics(kafka.bootstrap, tansu=True)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        assert set(ALL_TOPICS) <= set(admin.list_topics())
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in ALL_TOPICS],
            config_filter="all")["topic"]
    finally:
        admin.close()
    for name in ALL_TOPICS:
        configs = {key: entry["value"] for key, entry in described[name].items()}
        assert configs.get("retention.ms") == "-1", (name, configs)
        assert configs.get("retention.bytes") == "-1", (name, configs)


def test_topics_get_the_partitions_asked_and_existing_ones_are_kept_with_a_warning(
        kafka, caplog):
    ensure_topics(kafka.bootstrap, tansu=True, partitions=4)
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    try:
        found = {name: len(consumer.partitions_for_topic(name)) for name in ALL_TOPICS}
    finally:
        consumer.close()
    assert found == {name: 1 if name == REBUILD_TOPIC else 4 for name in ALL_TOPICS}
    caplog.clear()
    ensure_topics(kafka.bootstrap, tansu=True, partitions=6)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "{} has 4 partition(s), not the 6 asked (KAFKA_PARTITIONS)".format(BILLS_TOPIC) in \
        " ".join(warned), warned
    assert not [m for m in warned if REBUILD_TOPIC in m], warned


# --- the running aggregator -----------------------------------------------------------

def test_totals_match_the_events(kafka, aggregator, clients):
    aggregator.start()
    outputs = clients(Outputs(kafka.bootstrap))
    events = some_events(30, seed=1) + [marker_event()]
    clients(Producer(kafka.bootstrap)).send(*events)
    outputs.assert_match(aggregator, events)
    # the events reach all 5 customers and 6 products (plus the marker's)
    assert len(outputs.customers.values) == 6 and len(outputs.products.values) == 7


def test_a_repeated_event_counts_once(kafka, aggregator, clients):
    aggregator.start()
    outputs = clients(Outputs(kafka.bootstrap))
    repeated = bill_event(42, [(1, 2), (6, 1)])
    others = some_events(6, seed=2)
    # the same event_id three times, around other events (and its own key each time)
    events = [repeated] + others[:3] + [repeated] + others[3:] + [repeated, marker_event()]
    clients(Producer(kafka.bootstrap)).send(*events)
    outputs.assert_match(aggregator, events)
    assert outputs.customers.values["42"] == {"customer_id": 42, "revenue": "47.03", "bills": 1}


def at(event, when):
    """``event`` with its ``occurred_at`` (the window's event time) set to ``when``."""
    return dict(event, occurred_at=when.isoformat())


def test_cancelled_bills_are_taken_off_every_total_once(kafka, aggregator, clients):
    """A cancellation (and a repeat of it) subtracts its bill once per customer
    and product, and is booked negative in the window of its own time; one that
    arrives before its bill ends the same."""
    aggregator.start()
    outputs = clients(Outputs(kafka.bootstrap))
    # a window start ten minutes back: the marker (now) comes after, in a window of its own
    t0 = datetime.datetime.fromtimestamp((int(time.time()) - 600) // 5 * 5,
                                         datetime.timezone.utc)

    def second(n):
        return t0 + datetime.timedelta(seconds=n)

    kept = at(bill_event(5, [(1, 1)]), second(0))  # 19.99
    cancelled = at(bill_event(5, [(4, 3), (2, 1)]), second(1))  # 10.09
    early = at(bill_event(6, [(6, 2)]), second(2))  # 14.10, its cancel relayed first
    later = at(bill_event(6, [(3, 4)]), second(31))  # 0.80
    cancel = bill_cancelled_event(cancelled["bill"], second(32).isoformat())
    cancel_early = bill_cancelled_event(early["bill"], second(33).isoformat())
    events = [kept, cancelled, later, cancel, dict(cancel), cancel_early, early, cancel,
              marker_event()]
    clients(Producer(kafka.bootstrap)).send(*events)
    outputs.assert_match(aggregator, events)

    assert outputs.customers.values["5"] == {"customer_id": 5, "revenue": "19.99", "bills": 1}
    assert outputs.customers.values["6"] == {"customer_id": 6, "revenue": "0.80", "bills": 1}
    products = outputs.products.values
    assert (products["1"], products["4"], products["2"], products["6"], products["3"]) == (
        {"product_id": 1, "units": 1, "revenue": "19.99"},
        {"product_id": 4, "units": 0, "revenue": "0.00"},
        {"product_id": 2, "units": 0, "revenue": "0.00"},
        {"product_id": 6, "units": 0, "revenue": "0.00"},
        {"product_id": 3, "units": 4, "revenue": "0.80"})
    windows = {start: window["revenue"] for start, window in outputs.windows.values.items()
               if start < second(60).isoformat()}  # not the marker's (now)
    # the creations stay in their window; the cancellations net out in theirs: 0.80 - 24.19
    assert windows == {second(0).isoformat(): "44.18", second(30).isoformat(): "-23.39"}


def test_restart_after_kill_loses_nothing_and_counts_nothing_twice(kafka, aggregator, clients):
    """SIGKILL while bills are flowing (work done since the last checkpoint is
    then processed again), start again on the same state dir, then more bills,
    including repeats of bills counted before the kill."""
    aggregator.start()
    producer = clients(Producer(kafka.bootstrap))
    outputs = clients(Outputs(kafka.bootstrap))
    before, during, after = some_events(10, 3), some_events(40, 4), some_events(10, 5)
    producer.send(*before)
    customers, _, _ = expected_results(before)
    wait_for(lambda: outputs.poll().customers.values == customers, 30,
             "the first 10 bills in customer-stats")

    seen_at_kill = None
    for number, event in enumerate(during):
        producer.send(event)
        time.sleep(0.02)  # a steady stream, so the kill lands mid-way
        if seen_at_kill is None and number >= 5 and outputs.poll().customers.values != customers:
            aggregator.kill()
            seen_at_kill = number + 1
    assert seen_at_kill, "the aggregator never reflected the second batch before the kill"
    print("killed after {} of {} bills of the second batch were sent".format(
        seen_at_kill, len(during)))

    aggregator.start()
    events = before + during + after + [before[0], during[0], marker_event()]
    producer.send(*after, before[0], during[0], marker_event())
    outputs.assert_match(aggregator, events)


def test_restart_after_a_clean_stop_keeps_the_totals(kafka, aggregator, clients):
    """SIGTERM: a clean exit with state and offsets committed. The next start
    still has the totals and knows which events it counted (on Tansu its local
    state is rebuilt from the changelogs: starting on it fails there with
    InvalidStoreChangelogOffset, Tansu's ListOffsets being wrong)."""
    aggregator.start()
    producer = clients(Producer(kafka.bootstrap))
    outputs = clients(Outputs(kafka.bootstrap))
    first = some_events(20, 6) + [marker_event()]
    producer.send(*first)
    outputs.assert_match(aggregator, first)
    assert aggregator.stop() == 0, "SIGTERM must end the aggregator with exit code 0"

    aggregator.start()
    second = some_events(10, 7) + [first[0], first[7], marker_event()]
    producer.send(*second)
    outputs.assert_match(aggregator, first + second)


def test_a_new_bill_shows_within_a_second(kafka, aggregator, clients):
    aggregator.start()
    outputs = clients(Outputs(kafka.bootstrap))
    producer = clients(Producer(kafka.bootstrap))
    producer.send(bill_event(1, [(1, 1)]))  # warm up: running, assigned and caught up
    wait_for(lambda: "1" in outputs.poll().customers.values, 30,
             "the first bill in customer-stats")
    latencies = []
    for customer in range(2, 7):
        started = time.monotonic()
        producer.send(bill_event(customer, [(2, 1)]))
        while str(customer) not in outputs.customers.poll(timeout_ms=5):
            assert time.monotonic() - started < 5, "bill of customer {} not shown in 5 s".format(
                customer)
        latencies.append(time.monotonic() - started)
    print("produce -> customer-stats readable: {} s".format(
        ", ".join("{:.3f}".format(latency) for latency in latencies)))
    assert max(latencies) < 1.0


# --- scaled out: instances sharing billing.bills (make test-cluster) ---------------------

PROCESSING = re.compile(r"^(\S+ \S+) INFO streams: processing billing\.bills partition (\d+) ",
                        re.MULTILINE)


def partitions_processed(aggregator, since=""):
    """The billing.bills partitions an instance's log says it processed records
    of, at or after the log time ``since`` (``streams.app.PartitionsSeen``)."""
    return sorted({int(number) for when, number in PROCESSING.findall(aggregator.log_text())
                   if when >= since})


def log_time():
    """Now, as the log lines write it (local time, milliseconds with a comma)."""
    now = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + ",{:03d}".format(
        int(now % 1 * 1000))


def steady_stream(producer, events, pause_s=0.01):
    for event in events:
        producer.send(event)
        time.sleep(pause_s)


@pytest.mark.cluster
def test_instances_share_the_partitions_and_one_killed_loses_nothing(kafka, tmp_path, clients):
    """Two aggregators on one state folder (each claims its own) share billing.bills
    in one consumer group; one is SIGKILLed while bills flow, the other takes its
    partitions over, and the figures stay exact (per customer, per product, and
    the windows); the killed one comes back, the group rebalances again, still exact."""
    first = Aggregator(kafka.bootstrap, tmp_path / "state", tmp_path / "first.log")
    second = Aggregator(kafka.bootstrap, tmp_path / "state", tmp_path / "second.log")
    running = [first, second]
    every_partition = list(range(PARTITIONS))
    try:
        first.start()
        second.start()
        assert sorted(path.name for path in (tmp_path / "state").iterdir()) == [
            "instance-1", "instance-2"], "each instance claims a local state folder of its own"
        producer = clients(Producer(kafka.bootstrap))
        outputs = clients(Outputs(kafka.bootstrap))
        # 40 customers: every partition gets some
        before = [bill_event(n % 40 + 1, [(n % 6 + 1, 1)]) for n in range(120)]
        steady_stream(producer, before)
        outputs.assert_match(running, before)
        shares = [partitions_processed(first), partitions_processed(second)]
        print("partitions processed before the kill: {}".format(shares))
        assert all(shares) and sorted(set(shares[0]) | set(shares[1])) == every_partition, \
            "the two instances did not share billing.bills: {}".format(shares)

        during = some_events(200, seed=11)
        cancels = [bill_cancelled_event(event["bill"], event["occurred_at"])
                   for event in before[::7]]
        steady_stream(producer, during[:60] + cancels[:5])
        first_held = partitions_processed(first)
        killed_at, started = log_time(), time.monotonic()
        first.kill()
        running.remove(first)
        steady_stream(producer, during[60:] + cancels[5:] + before[:10])  # repeats too
        events = before + during + cancels + before[:10]
        outputs.assert_match(running, events)
        print("figures exact {:.1f} s after the kill".format(time.monotonic() - started))
        taken_over = partitions_processed(second, since=killed_at)
        assert set(first_held) <= set(taken_over), (
            "the survivor did not take over the killed instance's partitions {}: it processed "
            "{} since the kill".format(first_held, taken_over))

        restarted_at = log_time()
        first.start()  # it claims the free folder again, and the group rebalances
        running.append(first)
        # bills on every partition until the restarted instance processes some of them
        after, deadline = [], time.monotonic() + 60
        while not partitions_processed(first, since=restarted_at):
            assert time.monotonic() < deadline, "the restarted instance was given no partition"
            batch = [bill_event(n + 1, [(n % 6 + 1, 2)]) for n in range(40)]
            steady_stream(producer, batch)
            after += batch
        outputs.assert_match(running, events + after)
    finally:
        for aggregator in (first, second):
            code = aggregator.stop()
            print("--- {} (exit {})\n{}".format(aggregator.log_path.name, code,
                                                aggregator.log_text()[-2000:]))
