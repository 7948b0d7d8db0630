"""Kafka for nameko services: a producer that waits for acknowledgements, and
topic tables kept up to date. (The local broker of ``make run`` and the tests
is started by ``tools.local_kafka``.)

Consumer lag, ``mesh_kafka_consumer_lag{group,topic}`` (``mesh.metrics``): the
topic tables record their own; ``group_lag`` reads a consumer group's (the
aggregator's) from the broker.
"""
import asyncio
import collections
import functools
import json
import logging
import time

import eventlet
import eventlet.patcher
from eventlet.semaphore import Semaphore
from kafka.errors import KafkaError
from nameko.extensions import DependencyProvider

from common.config import as_bool
from contracts.topics import PARTITIONS, ensure_topics
from mesh.coroutines import in_greenthread, run_coroutine
from mesh.metrics import set_kafka_lag

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 3
_native_thread_id = eventlet.patcher.original("_thread").get_ident


class ThreadSafeLog:
    """The ``logger`` of a confluent-kafka client, which may call it from a
    native thread: librdkafka's lines are served by the call that polls its
    queue, and the blocking calls (``list_topics``, ``close``) run in asyncio's
    executor, on a native thread. Logging there takes the handlers' locks, which
    are green once eventlet has patched threading: a native thread waiting on
    one made a hub of its own, and the release, from the hub's thread, failed
    with "Cannot switch to a different thread" and hung the process (seen as a
    test's timeout while Kafka was gone at teardown). Lines from another thread
    wait here (a deque: safe across native threads) until ``flush`` logs them
    from the hub's thread; lines from the hub's thread are logged at once.

        kafka_log = ThreadSafeLog(log)
        consumer = Consumer({..., "logger": kafka_log})
        kafka_log.flush()         # in the hub's thread, now and then
    """

    def __init__(self, logger):
        self.logger = logger
        self.thread = _native_thread_id()  # made in the thread the hub runs in
        self.waiting = collections.deque()

    def log(self, level, msg, *args):
        if _native_thread_id() == self.thread:
            self.logger.log(level, msg, *args)
        else:
            self.waiting.append((level, msg, args))

    def flush(self):
        while self.waiting:
            level, msg, args = self.waiting.popleft()
            self.logger.log(level, msg, *args)


def create_topics(config):
    """The mesh's topics (``contracts.topics``) with the settings they need: the
    ``prepare`` of the bridge's producer and of analytics' tables."""
    ensure_topics(config["KAFKA_BOOTSTRAP_SERVERS"], tansu=as_bool(config.get("KAFKA_TANSU")),
                  partitions=int(config.get("KAFKA_PARTITIONS", PARTITIONS)))


# Tansu, just started again (empty) and given the bridge's backlog in batches
# of several records from several workers, gave some records offsets already
# given (0..6 then 3..6 again); the aggregator then stopped on offsets going
# backwards. One record per batch there (a batch is at most 1 byte, so each
# record is a batch of its own). The rebuilder, the one writer of its large
# batches while it gives billing's record again, keeps them (``batched``): one
# record per request made a rebuild several times slower (docs/benchmarks.md).
TANSU_PRODUCER_CONFIG = {"batch_size": 1}


# a discarded producer's records are sent or expire within its delivery timeout
DELIVERY_TIMEOUT_S = REQUEST_TIMEOUT_S * 2 + 1


def close_quietly(producer):
    """Close a producer given up on, once its records are sent or expired: its
    ``close`` first flushes, and a flush that times out (``close(timeout=0)``
    with records pending) raised and left its network thread running."""
    try:
        producer.close(timeout=DELIVERY_TIMEOUT_S + 1)
    except KafkaError:
        log.warning("a discarded Kafka producer did not close", exc_info=True)


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge a record within the retry window."""


class KafkaProducer(DependencyProvider):
    """``self.kafka.send(topic, key, value)``: produce one JSON record and return
    once Kafka acknowledged it (``acks="all"``).

    While Kafka does not answer, it retries with a growing back-off (no hot loop)
    for up to ``KAFKA_RETRY_SECONDS``, then raises ``KafkaUnavailable``. kafka-python
    is pure Python, so under eventlet the wait yields instead of blocking.
    ``prepare(config)`` runs before the first record (create topics, say).
    """

    def __init__(self, prepare=None, batched=False):
        self.prepare = prepare
        self.batched = batched  # a bulk writer (send_many) keeps batches on Tansu too

    def setup(self):
        config = self.container.config
        self.bootstrap = config["KAFKA_BOOTSTRAP_SERVERS"]
        self.retry_seconds = float(config.get("KAFKA_RETRY_SECONDS", 10))
        self._producer = None
        # the first sends of concurrent workers all find no producer, and making
        # one waits on the network (prepare, the bootstrap): one is made, the
        # others wait for it. Each used to make its own, and all but the last
        # were dropped unclosed: kafka-python's __del__ then closed them from
        # whichever greenthread the garbage collector ran in, waiting there on
        # their IO threads
        self._producer_made = Semaphore()

    def stop(self):
        self._close(timeout=2)

    def kill(self):
        # a container killed (a crash; nameko's test fixtures kill at teardown)
        # is never stopped: without this its producer's network thread went on
        # for good, retrying a broker that may be gone
        self._close(timeout=0)

    def _close(self, timeout):
        with self._producer_made:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=timeout)

    def get_dependency(self, worker_ctx):
        return self

    def send(self, topic, key, value):
        return self._acknowledged(topic, "the record", lambda producer: producer.send(
            topic, key=key, value=value).get(timeout=REQUEST_TIMEOUT_S + 1))

    def send_many(self, topic, records):
        """Produce ``[(key, value)]`` in one go and return once Kafka acknowledged
        every one; retried whole like ``send`` (so some may be produced twice:
        consumers count by bill and event id)."""
        def produce(producer):
            futures = [producer.send(topic, key=key, value=value) for key, value in records]
            producer.flush(timeout=REQUEST_TIMEOUT_S * 2 + 1)
            return [future.get(timeout=REQUEST_TIMEOUT_S + 1) for future in futures]
        return self._acknowledged(topic, "{} records".format(len(records)), produce)

    def _acknowledged(self, topic, what, produce):
        """``produce(producer)``, again with a growing back-off (and a new
        producer) while Kafka does not take it, for up to ``retry_seconds``."""
        give_up_at = time.monotonic() + self.retry_seconds
        backoff = 0.25
        while True:
            producer = None
            try:
                producer = self._ensure_producer()
                return produce(producer)
            except KafkaError as exc:
                self._discard(producer)
                if time.monotonic() + backoff > give_up_at:
                    raise KafkaUnavailable("{} to {} not acknowledged within {:.0f} s: {}".format(
                        what, topic, self.retry_seconds, exc))
                log.warning("Kafka at %s did not take %s (%s); retrying in %.2f s",
                            self.bootstrap, what, exc, backoff)
                eventlet.sleep(backoff)
                backoff = min(backoff * 2, 5)

    def _discard(self, producer):
        """A failed send makes the next one start from a new producer: after the
        broker came back empty, kafka-python's producer could not update its
        metadata for good ("Failed to update metadata")."""
        if producer is None:
            return
        with self._producer_made:
            if self._producer is not producer:
                return  # another worker already did
            self._producer = None
        eventlet.spawn_n(close_quietly, producer)

    def _ensure_producer(self):
        producer = self._producer
        if producer is not None:
            return producer
        with self._producer_made:
            if self._producer is None:
                self._producer = self._make_producer()
            return self._producer

    def _make_producer(self):
        if self.prepare is not None:
            self.prepare(self.container.config)
        from kafka import KafkaProducer as Producer
        from kafka.serializer import DefaultSerializer, JsonSerializer
        return Producer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=0,
            # dedup happens downstream by event_id; Tansu has no safe transactions
            enable_idempotence=False, retries=2,
            # one request at a time: a retry cannot reorder records
            max_in_flight_requests_per_connection=1,
            metrics_enabled=False,  # nobody reads them, and keeping them costs CPU per record
            request_timeout_ms=REQUEST_TIMEOUT_S * 1000, max_block_ms=REQUEST_TIMEOUT_S * 1000,
            delivery_timeout_ms=DELIVERY_TIMEOUT_S * 1000,
            # kafka-python's own (plain functions are deprecated there): str as
            # UTF-8, values as json.dumps
            key_serializer=DefaultSerializer(), value_serializer=JsonSerializer(),
            **(TANSU_PRODUCER_CONFIG if as_bool(self.container.config.get("KAFKA_TANSU"))
               and not self.batched else {}))


class TopicTables(DependencyProvider):
    """The latest value per key of some topics, kept in memory and up to date:
    a table view of a changelog, like Kafka Streams' KTable.

        view = TopicTables({"billing.customer-stats": lambda value: value["customer_id"]})
        self.view.table("billing.customer-stats")  # {1: {...}, 2: {...}}

    Every instance reads each topic from its start (partitions assigned, no
    consumer group joined, nothing committed), so any number of instances hold
    the same tables. ``prepare(config)`` runs first (create the topics, so there
    is something to read).

    It reads with confluent-kafka (librdkafka, which quixstreams is built on),
    not kafka-python: librdkafka fetches in its own native threads, and a green
    loop only takes what it has buffered, without blocking. kafka-python's fetch
    loop runs in Python on the hub: it spent CPU even while idle (an empty fetch
    many times a second, the short wait Tansu needs) and more per bill under load
    (docs/benchmarks.md).
    Following the topics is a coroutine (``mesh.coroutines``): calls that can
    block (metadata, close) run in asyncio's thread pool (real threads), the
    topic creation (kafka-python, green) in a greenthread.

    Each reading (a start, or a start over after the broker went away) fills
    tables of its own, served once it has read every topic to its end: a
    broker that came back empty leaves no value from before it.

    Every ``LAG_INTERVAL_S`` it sets ``mesh_kafka_consumer_lag`` per topic
    (``group`` is the service: the tables join no consumer group) from what
    librdkafka already knows (``table_lag``): no request, nothing blocks.
    """

    IDLE_SLEEP_S = 0.01  # how long the loop rests when nothing was buffered
    LAG_INTERVAL_S = 1.0

    def __init__(self, topics, prepare=None):
        self.key_of = dict(topics)
        self.prepare = prepare

    def setup(self):
        self.bootstrap = self.container.config["KAFKA_BOOTSTRAP_SERVERS"]
        self.group = self.container.service_name  # the lag gauge's label
        self.tables = {topic: {} for topic in self.key_of}
        self.lag = {}  # topic -> records not read yet, as last measured (caught_up)
        self._running = True

    def start(self):
        self.container.spawn_managed_thread(lambda: run_coroutine(self._follow()),
                                            identifier="TopicTables")

    def stop(self):
        self._running = False

    def get_dependency(self, worker_ctx):
        return self

    def table(self, topic):
        return self.tables[topic]

    def caught_up(self):
        """Whether every table has read its topic to the end, as last measured
        (False until the end of every topic is known)."""
        return set(self.lag) == set(self.key_of) and not any(self.lag.values())

    async def _follow(self):
        while self._running:
            try:
                await self._consume()
            except Exception:  # noqa: BLE001  the broker went away: start over
                log.warning("reading %s from %s failed; retrying", ", ".join(self.key_of),
                            self.bootstrap, exc_info=True)
                await asyncio.sleep(1)

    async def _consume(self):
        from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                                     TopicPartition)
        loop = asyncio.get_running_loop()
        if self.prepare is not None:
            await in_greenthread(self.prepare, self.container.config)  # kafka-python: green
        kafka_log = ThreadSafeLog(log)
        gone = []  # librdkafka's word that no broker answers any more
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            # required by librdkafka, unused: partitions are assigned, never committed
            "group.id": "topic-tables", "enable.auto.commit": False,
            # short: Tansu sits out much of a fetch's wait even when records arrive
            "fetch.wait.max.ms": 25, "auto.offset.reset": "earliest",
            "logger": kafka_log,
            "error_cb": lambda error: gone.append(error)
            if error.code() == KafkaError._ALL_BROKERS_DOWN else None,
        })
        # this reading's tables: served once read to the end, so that a broker
        # that came back empty (or a topic recreated) leaves no stale value
        tables, served = {topic: {} for topic in self.key_of}, False
        self.lag = {}  # not caught up until this reading says so
        try:
            metadata = await loop.run_in_executor(
                None, functools.partial(consumer.list_topics, timeout=REQUEST_TIMEOUT_S + 2))
            partitions = [TopicPartition(topic, partition) for topic in self.key_of
                          for partition in sorted(metadata.topics[topic].partitions)]
            consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING)
                             for tp in partitions])
            lag_due = 0.0
            while self._running:
                kafka_log.flush()
                if gone:
                    # start over with a new client once a broker answers again:
                    # librdkafka reconnecting to a broker that came back empty
                    # took the whole process down (SIGSEGV) with the local broker
                    raise KafkaException(gone[0])
                if time.monotonic() >= lag_due:
                    self.lag = table_lag(consumer, partitions)
                    for topic, lag in self.lag.items():
                        set_kafka_lag(self.group, topic, lag)
                    lag_due = time.monotonic() + self.LAG_INTERVAL_S
                    if not served and self.caught_up():
                        self.tables, served = tables, True
                # what librdkafka has buffered: never blocks (timeout 0)
                messages = consumer.consume(num_messages=500, timeout=0)
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.fatal():
                            raise KafkaException(error)
                        continue  # librdkafka retries transient errors itself
                    if message.value():
                        value = json.loads(message.value())
                        tables[message.topic()][self.key_of[message.topic()](value)] = value
                if not messages:
                    await asyncio.sleep(self.IDLE_SLEEP_S)
        finally:
            await loop.run_in_executor(None, consumer.close)
            kafka_log.flush()


def table_lag(consumer, partitions):
    """``{topic: records not read yet}`` of a confluent-kafka ``consumer``'s
    assigned ``partitions``, summed per topic: the end offset librdkafka last
    heard from the broker (``get_watermark_offsets(cached=True)``: updated by
    every fetch, no request) minus the next offset to read (``position``, also
    local). A topic none of whose end offsets is known yet is left out.

        >>> table_lag(consumer, [TopicPartition("billing.customer-stats", 0)])
        {'billing.customer-stats': 0}
    """
    lag = {}
    for position in consumer.position(partitions):
        low, high = consumer.get_watermark_offsets(position, cached=True)
        if high < 0:  # OFFSET_INVALID: no fetch answered for it yet
            continue
        # before the first record the position is OFFSET_INVALID: all is unread
        next_offset = position.offset if position.offset >= 0 else max(low, 0)
        lag[position.topic] = lag.get(position.topic, 0) + max(high - next_offset, 0)
    return lag


def group_lag(bootstrap, group, topic, timeout=REQUEST_TIMEOUT_S):
    """Records the consumer group ``group`` has not committed yet: of ``topic``
    (every partition; one without a commit counts from its first offset) and of
    every other topic the group has committed on (the aggregator's repartition
    topics: work on its way between its steps), summed. End offset minus
    committed offset, read from the broker with kafka-python's admin client
    (pure Python: green under eventlet; a few round trips to the broker per
    call, which is why ``analytics.get_readiness`` keeps an all-up answer for a
    moment). Also sets ``mesh_kafka_consumer_lag{group,topic}`` per topic.
    Raises ``KafkaError`` when Kafka does not answer within ``timeout`` s.

        >>> group_lag("127.0.0.1:9092", "billing-analytics", "billing.bills")
        0
    """
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient, OffsetSpec
    from kafka.errors import for_code
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000),
                             bootstrap_timeout_ms=int(timeout * 1000))  # else 30 s when down
    try:
        [description] = admin.describe_topics([topic])
        if description["error_code"]:
            raise for_code(description["error_code"])("describing {}".format(topic))
        committed = dict(admin.list_group_offsets(group).get(group, {}))
        partitions = sorted(set(committed) | {TopicPartition(topic, p["partition_index"])
                                              for p in description["partitions"]})
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        uncommitted = [tp for tp in partitions
                       if committed.get(tp) is None or committed[tp].offset < 0]
        starts = admin.list_partition_offsets(
            {tp: OffsetSpec.EARLIEST for tp in uncommitted}) if uncommitted else {}
    finally:
        admin.close()
    lags = {}
    for tp in partitions:
        read = (starts[tp] if tp in starts else committed[tp]).offset
        lags[tp.topic] = lags.get(tp.topic, 0) + max(ends[tp].offset - read, 0)
    for name, lag in lags.items():
        set_kafka_lag(group, name, lag)
    return sum(lags.values())

