"""The aggregator's wiring: settings, client configuration and the dataframe.

``billing.bills`` (``bill_created`` and ``bill_cancelled`` events; other types
are skipped) is first settled per bill (``streams.aggregate.settle``: delivery
is at least once, and a rebuild gives every bill again), then feeds three
branches, where a cancellation counts as its bill negated
(``streams.aggregate.sign``):

- per customer (the message key): add the bill (or take it off), publish the
  totals;
- per product: explode the bill into one signed line per product, re-key by
  product, add the line, publish the totals;
- all bills (re-keyed to one constant key, ``WINDOWS_KEY``): add the signed
  total to its tumbling window, publish the window at every update (the open
  window included).

The last two share one re-keying step (``group_by``) and one stateful step,
whose results then part for their two topics.

Because a cancellation is a negative amount rather than an edit, the customer
and product totals do not depend on the order of a bill's two events: billing's
outbox may relay the creation after the cancellation, which then waits (parked
in the state) for its creation and never takes a total below zero. (Windows:
see below.)

``billing.bills`` has ``KAFKA_PARTITIONS`` partitions (any number works), keyed
by customer, so each customer's events stay in one partition and in order; the
settling and the customer totals need no more. As many instances as there are
partitions share them in one consumer group (``claim_state_dir``: each its own
local state). The product lines and the windows re-key (one ``group_by``: by
product, and one key for all windows), which on more than one partition goes
through a repartition topic: a product's lines come from every partition, and
all windows are one key. An upstream replay
(after a crash or a rebalance, the work since its last checkpoint is done
again) writes the same lines to the repartition topic again; each is tagged
with its origin (partition, offset, index of the ``billing.bills`` record that
made it) and a re-keyed step counts only origins newer than the newest it has
seen from that partition (``streams.aggregate.first_sight``). Every store is
committed in the same checkpoint as its own input offset, so a replay of a
step starts from state that matches it. So per-product totals and windows stay
exact across partitions and instances.

Windows use event time: the event's ``occurred_at`` (via the input topic's
timestamp extractor), not the Kafka record's timestamp, so a bill redelivered or
delayed by the bridge still lands in the window it happened in. A bill whose
window ended more than ``WINDOW_GRACE_MS`` before the newest one seen in its own
partition misses its (closed) window; it still counts per customer and per
product.

A cancellation's ``occurred_at`` is the time of the cancellation, so it is booked
(negative) in the window it happened in, not in the bill's: a window that was
published and charted never changes afterwards, the way a credit note is dated
when it is issued instead of rewriting the invoice. A window's revenue is the net
revenue booked in it and may be negative (more cancelled than billed in those
seconds). A cancellation too late for its own window counts in no window, like a
late bill.

The windows are a stateful step (``streams.aggregate.add_to_window``) rather than
quixstreams' ``tumbling_window().reduce().current()``: same event-time tumbling
windows with grace, same changelog-backed state, without quixstreams' window
store, whose per-message expiry scans and window bookkeeping were much of the
aggregator's time (``make bench-stream``; the figures are in docs/benchmarks.md).
"""
import dataclasses
import fcntl
import logging
import os
import warnings

with warnings.catch_warnings():
    # quixstreams imports confluent-kafka's schema registry (unused here), which
    # imports Authlib's httpx client: Authlib warns that its httpx module is
    # deprecated, after putting an "always" filter for its own warnings first in
    # line. So: that filter first, then exactly this warning ignored in front of
    # it; both end with this block.
    try:
        from authlib.deprecate import AuthlibDeprecationWarning
    except ImportError:  # a confluent-kafka without Authlib: nothing to hide
        AuthlibDeprecationWarning = Warning
    warnings.filterwarnings("ignore", message=r"The httpx module is deprecated",
                            category=AuthlibDeprecationWarning)
    from quixstreams import Application, message_context
    # for streams.__main__, imported here under the filter above
    from quixstreams.state.exceptions import InvalidStoreChangelogOffset  # noqa: F401

from common.config import ROOT, as_bool
from streams.aggregate import (add_bill, add_product_line, add_to_window, event_time_ms,
                               first_sight, is_bill_event, product_lines, settle)
from contracts.topics import (AGGREGATOR_GROUP, BILLS_TOPIC, CUSTOMER_STATS_TOPIC, PARTITIONS,
                              PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC, ensure_topics)

log = logging.getLogger("streams")

CONSUMER_GROUP = AGGREGATOR_GROUP
# A bill arriving up to this long after a newer one still counts in its window.
WINDOW_GRACE_MS = 60_000
# Seconds between checkpoints (state flushed to the changelog, input offsets
# committed): what a crash makes the aggregator read again. Results are produced
# as each bill is processed, not at the checkpoint.
COMMIT_INTERVAL = 0.5

CONSUMER_CONFIG = {
    # Tansu's group join waits half the session timeout: keep that short.
    # Both values are valid on Apache Kafka too.
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 2000,
}
# Send results at once rather than batching them: a bill must show within 1 s.
# Never create a topic by producing to it: librdkafka's producer would, with the
# broker's default partitions, and a worker still running when its broker came
# back empty made the changelog topics so, before the next worker could make
# them as quixstreams needs (it then refused to start: "expected 1, got 4").
PRODUCER_CONFIG = {"linger.ms": 5, "allow.auto.create.topics": False}

# --- Tansu work-arounds, all behind KAFKA_TANSU (Settings.tansu) ---------------
# 1. Topic retention set explicitly: see contracts.topics.TANSU_TOPIC_CONFIG.
# 2. Tansu does not answer a waiting fetch when records arrive: it sits out a good
#    part of fetch.wait.max.ms, so every bill's delay grows with it (librdkafka's
#    default makes it far too slow for "within a second"; docs/benchmarks.md).
#    Apache Kafka answers at once: keep its default.
TANSU_CONSUMER_CONFIG = {"fetch.wait.max.ms": 25}
# 3. Tansu answers ListOffsets LATEST with the first offset of the last batch + 1,
#    so a restart on kept local state fails with InvalidStoreChangelogOffset. The
#    local state is therefore deleted at each start and rebuilt from the changelog
#    topics (the recovery reads them to their real end). The other fix (producer
#    batch.num.messages=1: one request per changelog and result record) cost most
#    of the aggregator's throughput; the price of this one is a rebuild at each
#    start, which grows with the changelogs (docs/benchmarks.md).
# 4. The same wrong answer stops a running instance at a rebalance (another
#    instance joins or leaves): every partition is taken back and given out again,
#    and one it keeps has local state "ahead" of Tansu's changelog end. The worker
#    then exits with RESTART_EXIT_CODE and its supervisor starts it again at once,
#    on a cleared state (``streams/__main__.py``): a rebalance costs the instances
#    that keep partitions a restart. Apache Kafka rebalances without it.
RESTART_EXIT_CODE = 75  # EX_TEMPFAIL: start again at once, nothing is wrong



@dataclasses.dataclass(frozen=True)
class Settings:
    bootstrap: str
    tansu: bool
    window_seconds: float
    state_dir: str
    partitions: int = PARTITIONS

    @classmethod
    def from_config(cls, config):
        """From ``common.config.load_config()``; a relative state dir is relative
        to the repository root, like the SQLite paths."""
        return cls(bootstrap=str(config["KAFKA_BOOTSTRAP_SERVERS"]),
                   tansu=as_bool(config["KAFKA_TANSU"]),
                   window_seconds=float(config["STREAMS_WINDOW_SECONDS"]),
                   state_dir=os.path.join(ROOT, str(config["STREAMS_STATE_DIR"])),
                   partitions=int(config.get("KAFKA_PARTITIONS", PARTITIONS)))


def claim_state_dir(base):
    """The first ``<base>/instance-<n>`` no other live aggregator holds, held
    (an exclusive lock on its ``.lock`` file) until this process ends: instances
    on one machine (``INSTANCES=2 make run``) must not share local state, and on
    Tansu each clears its own at start. A restarted instance takes a free one
    again; where each instance has a disk of its own (compose, Kubernetes) it
    is always ``instance-1``."""
    number = 1
    while True:
        folder = os.path.join(base, "instance-{}".format(number))
        os.makedirs(folder, exist_ok=True)
        handle = open(os.path.join(folder, ".lock"), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            number += 1
            continue
        claim_state_dir.held = handle  # the lock lives as long as the process
        return folder


def settled(event, state):
    """Stateful step (the message key's state): the events to count for this
    one (``streams.aggregate.settle``), zero, one or two, each tagged with its
    ``origin`` (``streams.aggregate.first_sight``)."""
    context = message_context()
    return [dict(counted, origin=[context.partition, context.offset, index])
            for index, counted in enumerate(settle(state, event))]


def lines_of(event):
    """The event's signed product lines (``streams.aggregate.product_lines``),
    each tagged with its own origin: the event's and its index."""
    return [dict(line, origin=event["origin"] + [index])
            for index, line in enumerate(product_lines(event))]


WINDOWS_KEY = "all"  # every bill's window step shares one key: the windows are global


def lines_and_window(event):
    """What the re-keyed step gets of one bill event: its product lines
    (``lines_of``) and the event itself, for its window."""
    return lines_of(event) + [event]


def rekey(item):
    """A product line's key is its product id (the key of billing.product-stats);
    a bill event's is ``WINDOWS_KEY``."""
    return WINDOWS_KEY if "bill" in item else str(item["product_id"])


def product_or_window(window_ms):
    """The re-keyed stateful step: a product line updates its product's totals,
    a bill event its window (``windowed``); each key's state is its own."""
    add_line, book = accumulate(add_product_line), windowed(window_ms)

    def step(item, state):
        return book(item, state) if "bill" in item else add_line(item, state)
    return step


def once(step):
    """A stateful step behind a repartition: ``step(value, state)`` for each
    value seen the first time (by its ``origin``), None for a repeat."""
    def guarded(value, state):
        if not first_sight(state, value["origin"]):
            return None
        return step(value, state)
    return guarded


def accumulate(add):
    """Stateful step keeping running totals per message key: ``add(totals, value)``
    gives the new totals, which are stored and passed downstream."""
    def step(value, state):
        totals = add(state.get("totals"), value)
        state.set("totals", totals)
        return totals
    return step


def windowed(window_ms):
    """Stateful step booking each bill event in its tumbling window at the event's
    own time (a cancellation's is the time of the cancellation; a parked one
    released by its creation shares the creation's message, not its time),
    late or not by the clock of its own partition."""
    def step(event, state):
        return add_to_window(state, event, event_time_ms(event), window_ms, WINDOW_GRACE_MS,
                             source=event["origin"][0])
    return step


class PartitionsSeen:
    """``on_message_processed``: logs the first record of each ``billing.bills``
    partition this process handles, so its log says which partitions it was given
    (an instance's share of the consumer group; Tansu's group description lists
    no members)."""

    def __init__(self):
        self.seen = set()

    def __call__(self, topic, partition, offset):
        if topic == BILLS_TOPIC and partition not in self.seen:
            self.seen.add(partition)
            log.info("processing %s partition %d (from offset %d); partitions here: %s",
                     topic, partition, offset, sorted(self.seen))


def build_app(settings, state_dir=None):
    """Create the topics if missing and return the quixstreams ``Application``,
    its local state in ``state_dir`` (default: one claimed under the settings')."""
    ensure_topics(settings.bootstrap, tansu=settings.tansu, partitions=settings.partitions)
    app = Application(
        broker_address=settings.bootstrap,
        consumer_group=CONSUMER_GROUP,
        auto_offset_reset="earliest",  # a first start counts every bill already there
        # Transactions are unsafe on Tansu; settling per bill makes replays harmless.
        processing_guarantee="at-least-once",
        commit_interval=COMMIT_INTERVAL,
        state_dir=state_dir or claim_state_dir(settings.state_dir),
        consumer_extra_config={**CONSUMER_CONFIG,
                               **(TANSU_CONSUMER_CONFIG if settings.tansu else {})},
        producer_extra_config=PRODUCER_CONFIG,
        on_message_processed=PartitionsSeen(),
        loglevel=None,  # our logging configuration, not quixstreams' own handler
    )
    if settings.tansu:
        app.clear_state()  # rebuilt from the changelogs: Tansu work-around 3 above
    bills_topic = app.topic(BILLS_TOPIC, key_deserializer="str",
                            timestamp_extractor=lambda value, *_: event_time_ms(value))
    customers_topic, products_topic, windows_topic = (
        app.topic(name, key_serializer="str")
        for name in (CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC))

    bills = (app.dataframe(bills_topic)
             .filter(is_bill_event)
             .apply(settled, stateful=True, expand=True))

    (bills.apply(accumulate(add_bill), stateful=True)
     .to_topic(customers_topic, key=lambda totals: str(totals["customer_id"])))

    # products and windows re-keyed in one step: one repartition topic and one
    # changelog rather than two of each (quixstreams creates each topic apart,
    # waiting a second for each, at every start on an empty broker)
    rekeyed = (bills.apply(lines_and_window, expand=True)
               .group_by(rekey, name="product-or-window")
               .apply(once(product_or_window(int(settings.window_seconds * 1000))),
                      stateful=True)
               .filter(lambda result: result is not None))  # a repeat, or a late bill
    (rekeyed.filter(lambda result: "product_id" in result)
     .to_topic(products_topic))
    (rekeyed.filter(lambda result: "start" in result)
     .to_topic(windows_topic, key=lambda window: window["start"]))
    return app
