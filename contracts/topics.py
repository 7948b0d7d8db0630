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

# Partitions of each topic but the rebuilder's (config KAFKA_PARTITIONS): as many
# aggregator instances as this can share billing.bills (keyed by customer, so a
# customer's events stay in order). The rebuilder's topic has one key: one
# partition. Replication 1 suits one broker (Tansu, compose).
PARTITIONS = 6
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


def partitions_of(name, partitions):
    """How many partitions topic ``name`` is created with, ``partitions`` asked."""
    return 1 if name == REBUILD_TOPIC else partitions


def ensure_topics(bootstrap, tansu=False, partitions=PARTITIONS, timeout=30):
    """Create the mesh's topics if missing, ``partitions`` each (the rebuilder's:
    one); safe to call any number of times.

    On Tansu, topics that already exist (e.g. created by a producer's first
    send, without settings) get the retention settings too, so quixstreams can
    read them. A topic that exists with another number of partitions is used as
    it is, with a warning: the mesh is exact on any number, and Kafka cannot
    move a customer's events already written to the partition its key now maps to.
    """
    config = topic_config(tansu)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        answer = admin.create_topics(
            {name: {"num_partitions": partitions_of(name, partitions),
                    "replication_factor": REPLICATION, "configs": config}
             for name in ALL_TOPICS},
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
        if existed:
            warn_of_other_partitions(admin, existed, partitions)
    finally:
        admin.close()


def warn_of_other_partitions(admin, names, partitions):
    """Log each topic of ``names`` whose partitions are not the ones asked."""
    for description in admin.describe_topics(names):
        found = len(description["partitions"])
        asked = partitions_of(description["name"], partitions)
        if found != asked:
            log.warning("%s has %d partition(s), not the %d asked (KAFKA_PARTITIONS): used as "
                        "it is; to change it, see docs/operations.md#scaling-the-aggregator",
                        description["name"], found, asked)
