"""Kafka topics: their names, keys and values, and creating them.

``billing.bills``: ``bill_created`` and ``bill_cancelled`` events
(``contracts.events``), key the customer id, produced by kafka_bridge (and by
the rebuilder, giving billing's record again), read by the aggregator
(``streams/``). The aggregator writes three more, each the latest value per key:

- ``billing.customer-stats``, key customer id: ``{"customer_id", "revenue", "bills"}``;
- ``billing.product-stats``, key product id: ``{"product_id", "units", "revenue"}``;
- ``billing.revenue-windows``, key the window's start (ISO 8601 text):
  ``{"start", "end", "revenue"}`` (ISO 8601 UTC, money as text).

The analytics service follows those three, and ``billing.analytics-rebuilds``
(key ``rebuild``), where the rebuilder says how far a rebuild of them from
billing's record has got (``services.rebuilder``). kafka-python's admin client
creates them: no nameko here, the aggregator and the benchmarks use it too.
"""
import logging

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError, for_code

log = logging.getLogger(__name__)

BILLS_TOPIC = "billing.bills"
CUSTOMER_STATS_TOPIC = "billing.customer-stats"
PRODUCT_STATS_TOPIC = "billing.product-stats"
REVENUE_WINDOWS_TOPIC = "billing.revenue-windows"
# what the aggregator writes
AGGREGATES = (CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC)
# the rebuilder's progress, key "rebuild" (services.rebuilder; analytics follows it):
# {"state": "rebuilding" | "done" | "equal" (no rebuild yet), "reason",
#  "events_given", "events_total", "started_at", "finished_at"}
REBUILD_TOPIC = "billing.analytics-rebuilds"
REBUILD_KEY = "rebuild"
ALL_TOPICS = (BILLS_TOPIC,) + AGGREGATES + (REBUILD_TOPIC,)
# the aggregator's consumer group on billing.bills (analytics reads its lag)
AGGREGATOR_GROUP = "billing-analytics"

# One partition: the revenue windows are one global key anyway, and the aggregator
# deduplicates once for all its branches, which holds on one partition only
# (see streams/app.py). Replication 1 suits one broker (Tansu, compose).
PARTITIONS = 1
REPLICATION = 1

# Tansu's DescribeConfigs reports only settings set explicitly, and quixstreams
# needs retention.ms (KeyError otherwise) to derive its changelog and repartition
# topics from the input topic. Keep everything (-1): Tansu keeps it in memory
# and loses it on restart anyway.
TANSU_TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}


def topic_config(tansu):
    """Settings every topic is created with: explicit retention on Tansu,
    the broker's defaults on Apache Kafka."""
    return dict(TANSU_TOPIC_CONFIG) if tansu else {}


def ensure_topics(bootstrap, tansu=False, timeout=30):
    """Create the mesh's topics if missing; safe to call any number of times.

    On Tansu, topics that already exist (e.g. created by a producer's first
    send, without settings) get the retention settings too, so quixstreams can
    read them.
    """
    config = topic_config(tansu)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        answer = admin.create_topics(
            {name: {"num_partitions": PARTITIONS, "replication_factor": REPLICATION,
                    "configs": config} for name in ALL_TOPICS},
            raise_errors=False)
        existed = []
        for topic in answer["topics"]:
            if topic["error_code"] == TopicAlreadyExistsError.errno:
                existed.append(topic["name"])
            elif topic["error_code"]:
                raise for_code(topic["error_code"])(
                    "creating {}: {}".format(topic["name"], topic["error_message"]))
        created = sorted(set(ALL_TOPICS) - set(existed))
        if created:
            log.info("created topics %s", ", ".join(created))
        if tansu and existed:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=config)
                                 for name in existed],
                                raise_on_unknown=False, incremental=True)
        admin.wait_for_topics(list(ALL_TOPICS), timeout_ms=int(timeout * 1000))
    finally:
        admin.close()
