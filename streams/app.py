"""The aggregator's wiring: settings, client configuration and the dataframe.

Three branches read ``billing.bills`` (``bill_created`` events only):

- per customer (the message key): drop repeats, add the bill, publish the totals;
- per product: explode the bill into one line per product, re-key by product
  (``group_by``), drop repeats, add the line, publish the totals;
- all bills (``group_by`` one constant key): drop repeats, add the total to its
  tumbling window, publish the window at every update (``.current()``).

Each branch deduplicates where it keeps its state, by ``event_id``: delivery is at
least once, and with more than one partition a replay after a crash can also
repeat records in quixstreams' repartition topics, so a single check upstream
would not be enough.

Windows use event time: the event's ``occurred_at`` (via the input topic's
timestamp extractor), not the Kafka record's timestamp, so a bill redelivered or
delayed by the bridge still lands in the window it happened in. Bills later than
``WINDOW_GRACE_MS`` behind the newest one seen miss their (closed) window; they
still count per customer and per product.
"""
import dataclasses
import logging
import os

from quixstreams import Application

from mesh.config import ROOT
from streams.aggregate import (ZERO, add_bill, add_product_line, add_revenue,
                               event_time_ms, first_delivery, is_bill_created,
                               product_lines, window_record)
from streams.topics import (BILLS_TOPIC, CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC,
                            REVENUE_WINDOWS_TOPIC, ensure_topics)

log = logging.getLogger(__name__)

CONSUMER_GROUP = "billing-analytics"
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
# Tansu does not answer a waiting fetch when records arrive: it sits out a good
# part of fetch.wait.max.ms (librdkafka's 500 ms gave 75 ms per bill, 1000 ms
# 200 ms; 25 ms gives 5-20 ms). Apache Kafka answers at once, so keep its default.
TANSU_CONSUMER_CONFIG = {"fetch.wait.max.ms": 25}
# Send results at once rather than batching them: a bill must show within 1 s.
PRODUCER_CONFIG = {"linger.ms": 5}
# Tansu answers ListOffsets LATEST with the first offset of the last batch + 1:
# with batches of one record that is the true end of a changelog, so a restart
# with local state kept does not fail with InvalidStoreChangelogOffset.
TANSU_PRODUCER_CONFIG = {"batch.num.messages": 1}


def as_bool(value):
    """YAML gives ``true``/``false`` as bool; an environment override may give text."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclasses.dataclass(frozen=True)
class Settings:
    bootstrap: str
    tansu: bool
    window_seconds: float
    state_dir: str

    @classmethod
    def from_config(cls, config):
        """From ``mesh.config.load_config()``; a relative state dir is relative
        to the repository root, like the SQLite paths."""
        return cls(bootstrap=str(config["KAFKA_BOOTSTRAP_SERVERS"]),
                   tansu=as_bool(config["KAFKA_TANSU"]),
                   window_seconds=float(config["STREAMS_WINDOW_SECONDS"]),
                   state_dir=os.path.join(ROOT, str(config["STREAMS_STATE_DIR"])))


def consumer_config(tansu):
    return {**CONSUMER_CONFIG, **(TANSU_CONSUMER_CONFIG if tansu else {})}


def producer_config(tansu):
    return {**PRODUCER_CONFIG, **(TANSU_PRODUCER_CONFIG if tansu else {})}


def once(value, state):
    """Stateful filter: pass an event (or product line) the first time only."""
    return first_delivery(state, value["event_id"])


def accumulate(add):
    """Stateful step keeping running totals per message key: ``add(totals, value)``
    gives the new totals, which are stored and passed downstream."""
    def step(value, state):
        totals = add(state.get("totals"), value)
        state.set("totals", totals)
        return totals
    return step


def build_app(settings):
    """Create the topics if missing and return the quixstreams ``Application``."""
    ensure_topics(settings.bootstrap, tansu=settings.tansu)
    app = Application(
        broker_address=settings.bootstrap,
        consumer_group=CONSUMER_GROUP,
        auto_offset_reset="earliest",  # a first start counts every bill already there
        # Transactions are unsafe on Tansu; deduplication makes replays harmless.
        processing_guarantee="at-least-once",
        commit_interval=COMMIT_INTERVAL,
        state_dir=settings.state_dir,
        consumer_extra_config=consumer_config(settings.tansu),
        producer_extra_config=producer_config(settings.tansu),
        loglevel=None,  # our logging configuration, not quixstreams' own handler
    )
    bills_topic = app.topic(BILLS_TOPIC, key_deserializer="str",
                            timestamp_extractor=lambda value, *_: event_time_ms(value))
    customers_topic, products_topic, windows_topic = (
        app.topic(name, key_serializer="str")
        for name in (CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC))

    bills = app.dataframe(bills_topic).filter(is_bill_created)

    (bills.filter(once, stateful=True)
     .apply(accumulate(add_bill), stateful=True)
     .to_topic(customers_topic, key=lambda totals: str(totals["customer_id"])))

    (bills.apply(product_lines, expand=True)
     .group_by(lambda line: str(line["product_id"]), name="product")
     .filter(once, stateful=True)
     .apply(accumulate(add_product_line), stateful=True)
     .to_topic(products_topic))

    (bills.group_by(lambda event: "all", name="all")
     .filter(once, stateful=True)
     .tumbling_window(int(settings.window_seconds * 1000), grace_ms=WINDOW_GRACE_MS)
     .reduce(add_revenue, lambda event: add_revenue(ZERO, event))
     .current()
     .apply(window_record)
     .to_topic(windows_topic, key=lambda window: window["start"]))
    return app
