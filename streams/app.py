"""The aggregator's wiring: settings, client configuration and the dataframe.

``billing.bills`` (``bill_created`` and ``bill_cancelled`` events; other types
are skipped) is first settled per bill (``streams.aggregate.settle``: delivery
is at least once, and a rebuild gives every bill again), then feeds three
branches, where a cancellation counts as its bill negated
(``streams.aggregate.sign``):

- per customer (the message key): add the bill (or take it off), publish the
  totals;
- per product: explode the bill into one signed line per product, re-key by
  product (``group_by``), add the line, publish the totals;
- all bills (``group_by`` one constant key): add the signed total to its
  tumbling window, publish the window at every update (the open window included).

Because a cancellation is a negative amount rather than an edit, the customer
and product totals do not depend on the order of a bill's two events: billing's
outbox may relay the creation after the cancellation, which then waits (parked
in the state) for its creation and never takes a total below zero. (Windows:
see below.)

One settling step before the branches is enough because ``billing.bills`` has one
partition: ``group_by`` then re-keys in place, and every store is committed in the
same checkpoint as the input offset, so a replay after a crash starts from state
that matches it. With more partitions ``group_by`` goes through repartition
topics that a replay can fill twice; ``build_app`` refuses to start then.

Windows use event time: the event's ``occurred_at`` (via the input topic's
timestamp extractor), not the Kafka record's timestamp, so a bill redelivered or
delayed by the bridge still lands in the window it happened in. A bill whose
window ended more than ``WINDOW_GRACE_MS`` before the newest one seen misses its
(closed) window; it still counts per customer and per product.

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
    from quixstreams import Application

from common.config import ROOT, as_bool
from streams.aggregate import (add_bill, add_product_line, add_to_window,
                               event_time_ms, is_bill_event, product_lines, settle)
from contracts.topics import (AGGREGATOR_GROUP, BILLS_TOPIC, CUSTOMER_STATS_TOPIC,
                             PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC, ensure_topics)

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



@dataclasses.dataclass(frozen=True)
class Settings:
    bootstrap: str
    tansu: bool
    window_seconds: float
    state_dir: str

    @classmethod
    def from_config(cls, config):
        """From ``common.config.load_config()``; a relative state dir is relative
        to the repository root, like the SQLite paths."""
        return cls(bootstrap=str(config["KAFKA_BOOTSTRAP_SERVERS"]),
                   tansu=as_bool(config["KAFKA_TANSU"]),
                   window_seconds=float(config["STREAMS_WINDOW_SECONDS"]),
                   state_dir=os.path.join(ROOT, str(config["STREAMS_STATE_DIR"])))


def settled(event, state):
    """Stateful step (the message key's state): the events to count for this
    one (``streams.aggregate.settle``), zero, one or two."""
    return settle(state, event)


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
    released by its creation shares the creation's message, not its time)."""
    def step(event, state):
        return add_to_window(state, event, event_time_ms(event), window_ms, WINDOW_GRACE_MS)
    return step


def build_app(settings):
    """Create the topics if missing and return the quixstreams ``Application``."""
    ensure_topics(settings.bootstrap, tansu=settings.tansu)
    app = Application(
        broker_address=settings.bootstrap,
        consumer_group=CONSUMER_GROUP,
        auto_offset_reset="earliest",  # a first start counts every bill already there
        # Transactions are unsafe on Tansu; settling per bill makes replays harmless.
        processing_guarantee="at-least-once",
        commit_interval=COMMIT_INTERVAL,
        state_dir=settings.state_dir,
        consumer_extra_config={**CONSUMER_CONFIG,
                               **(TANSU_CONSUMER_CONFIG if settings.tansu else {})},
        producer_extra_config=PRODUCER_CONFIG,
        loglevel=None,  # our logging configuration, not quixstreams' own handler
    )
    if settings.tansu:
        app.clear_state()  # rebuilt from the changelogs: Tansu work-around 3 above
    bills_topic = app.topic(BILLS_TOPIC, key_deserializer="str",
                            timestamp_extractor=lambda value, *_: event_time_ms(value))
    partitions = bills_topic.broker_config.num_partitions
    if partitions != 1:
        raise SystemExit("{} has {} partitions; the aggregator needs exactly 1 (see "
                         "streams/app.py)".format(BILLS_TOPIC, partitions))
    customers_topic, products_topic, windows_topic = (
        app.topic(name, key_serializer="str")
        for name in (CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC))

    bills = (app.dataframe(bills_topic)
             .filter(is_bill_event)
             .apply(settled, stateful=True, expand=True))

    (bills.apply(accumulate(add_bill), stateful=True)
     .to_topic(customers_topic, key=lambda totals: str(totals["customer_id"])))

    (bills.apply(product_lines, expand=True)
     .group_by(lambda line: str(line["product_id"]), name="product")
     .apply(accumulate(add_product_line), stateful=True)
     .to_topic(products_topic))

    (bills.group_by(lambda event: "all", name="all")
     .apply(windowed(int(settings.window_seconds * 1000)), stateful=True)
     .filter(lambda window: window is not None)  # too late for its window
     .to_topic(windows_topic, key=lambda window: window["start"]))
    return app
