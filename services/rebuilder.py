"""rebuilder: gives billing's record to the Kafka side again when the analytics
no longer equal it.

Billing's database is the record; ``billing.bills``, the aggregator's state and
analytics' tables are a view derived from it. A Kafka that loses its log (the
local broker restarted, a topic deleted, recreated or past its retention, the
aggregator's changelog gone) leaves the view short of the record, and nothing
else would bring the missing bills back.

Every ``CHECK_INTERVAL_S`` the rebuilder compares billing's ledger
(``billing.get_ledger``) with the totals analytics show
(``analytics.get_readiness``, ``common.ledger``). When they differ while
nothing is on its way (billing's outbox and the bridge's queues are empty, the
aggregator has read every bill on ``billing.bills``, analytics' tables are
read to the end) and neither side changed, for ``STRIKES`` checks in a row, it
rebuilds: it reads every bill's events from
billing in time order (``billing.list_bill_events``, up to the moment it
started; later ones arrive the usual way) and produces them to
``billing.bills`` in batches, with the event ids they first left with. The
aggregator counts each bill once whatever it already holds
(``streams.aggregate.settle``), so a bill it had counted changes nothing and
new bills keep flowing meanwhile. Progress goes to
``billing.analytics-rebuilds``: analytics answers ``ANALYTICS_REBUILDING``
and ``/health`` says ``rebuilding`` until the aggregator has counted the last
event given again. A rebuild that fails half way (billing or Kafka away)
starts again from the beginning at the next check.

A broker that lost its whole log is noticed at once, under load or not: the
first time the view equals the record the rebuilder leaves a mark on
``billing.analytics-rebuilds`` (state ``equal``; each rebuild's status
replaces it), and a mark read back once and then gone means Kafka lost it.

    nameko run --config config.yaml services.rebuilder
    >>> n.rpc.rebuilder.rebuild()        # what make rebuild-analytics calls
    {'requested': True, 'rebuild': None}
"""
import logging
import time

import eventlet

import mesh.service
from common.ledger import difference, view_equals_ledger
from contracts.errors import MeshError
from contracts.services import ANALYTICS, BILLING, DECLARATIONS, REBUILDER, STREAMS
from contracts.topics import BILLS_TOPIC, REBUILD_KEY, REBUILD_TOPIC
from contracts.wire import utc_now
from mesh.amqp import CONNECTION_ERRORS
from mesh.kafka import KafkaProducer, create_topics
from mesh.proxy import MeshRpcProxy
from mesh.registry import Registry
from mesh.rpc import rpc
from mesh.shared import Shared
from mesh.timer import timer

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 2.0
# checks in a row that found the view short with nothing moving: an event on
# its way between two services cannot stay unseen that long
STRIKES = 3
BATCH = 1000  # events read from billing and produced in one go
SETTLE_POLL_S = 0.5
# the durable queues events wait in on their way to Kafka (the bridge's)
TO_KAFKA = tuple(queue for service in DECLARATIONS if service.kafka
                 for _, queue in service.handler_queues())
SETTLED_IN_A_ROW = 5
EQUAL = "equal"  # the state of the mark left before any rebuild
# a rebuild after which the analytics still differ is not repeated at once: the
# pause doubles with each such rebuild, up to this
MOST_PAUSE_S = 600.0


class RebuildJob:
    """What every worker of the instance shares: the last status published,
    a rebuild asked for, and the recent checks that found the view short."""

    def __init__(self):
        self.status = None
        self.requested = None  # the reason, until the watcher starts it
        self.short = []  # (ledger, view) of the last checks, while unchanged
        self.finished = None  # monotonic time the last rebuild finished
        self.judged = True  # whether a check has since found the view equal or not
        self.seen_in_kafka = False  # a status (or the mark) read back from Kafka
        self.fruitless = 0  # rebuilds in a row after which the view still differed

    def pause_s(self):
        """How long after the last rebuild another may start by itself."""
        if self.fruitless == 0:
            return 0.0
        return min(CHECK_INTERVAL_S * STRIKES * 2 ** self.fruitless, MOST_PAUSE_S)


class RebuilderService(mesh.service.MeshService):
    name = REBUILDER

    billing = MeshRpcProxy(BILLING)
    analytics = MeshRpcProxy(ANALYTICS)
    kafka = KafkaProducer(prepare=create_topics, batched=True)
    registry = Registry()
    job = Shared(RebuildJob)

    @rpc
    def rebuild(self):
        """Rebuild the analytics from billing's record now, whatever the checks
        say (it starts within ``CHECK_INTERVAL_S``); ``get_rebuild`` follows it.

            >>> n.rpc.rebuilder.rebuild()
            {'requested': True, 'rebuild': {'state': 'done', ...}}
        """
        self.job.requested = "asked for (rebuilder.rebuild)"
        return {"requested": True, "rebuild": self.job.status}

    @rpc
    def get_rebuild(self):
        """The latest rebuild's progress, as published to
        ``billing.analytics-rebuilds``: ``state`` is ``rebuilding`` or ``done``,
        or ``equal`` before the first rebuild (the view was found equal to the
        record); None before the rebuilder's first check.

            >>> n.rpc.rebuilder.get_rebuild()
            {'state': 'rebuilding', 'reason': '...', 'events_given': 2000,
             'events_total': 5120, 'started_at': '...', 'finished_at': None}
        """
        return self.job.status

    @timer(interval=CHECK_INTERVAL_S)
    def watch_analytics(self):
        """Rebuild when asked to, when the last rebuild was interrupted, or when
        the analytics stay short of billing's ledger with nothing moving."""
        reason, self.job.requested = self.job.requested, None
        reason = reason or self._why_rebuild()
        if reason is None:
            return
        try:
            self._rebuild(reason)
        except Exception:
            self.job.requested = "the rebuild started for '{}' failed: again".format(reason)
            raise

    def _why_rebuild(self):
        try:
            ledger = self.billing.get_ledger()
            readiness = self.analytics.get_readiness()
            on_their_way = (self.billing.get_outbox_backlog()
                            + sum(self.registry.messages(queue) for queue in TO_KAFKA))
        except (MeshError, *CONNECTION_ERRORS):
            self.job.short.clear()  # cannot tell now
            return None
        published = readiness.get("rebuild")
        if self.job.status is None and published and published["state"] == "rebuilding":
            return "the rebuild started at {} did not finish".format(published["started_at"])
        view = readiness.get("view")
        settled = readiness.get(ANALYTICS) == "up" and readiness.get(STREAMS) == "up"
        if settled and published is None and self.job.seen_in_kafka:
            # the record of rebuilds (or the first-equal mark), read back from
            # Kafka before, is gone: the broker lost its log. No need to wait
            # for a pause in the load.
            self.job.seen_in_kafka = False
            return "{} no longer holds the record it held: Kafka lost its log".format(
                REBUILD_TOPIC)
        if published is not None:
            self.job.seen_in_kafka = True
            if self.job.status is None:
                self.job.status = published  # a rebuilder started again: what Kafka holds
        if view is not None and settled and view_equals_ledger(ledger, view):
            self.job.fruitless, self.job.judged = 0, True
            if published is None and self.job.status is None:
                self._mark_equal(ledger)
        if view is None or not settled or on_their_way or view_equals_ledger(ledger, view):
            self.job.short.clear()
            return None
        seen = (ledger, view)
        if self.job.short and self.job.short[-1] != seen:
            self.job.short.clear()  # something moved: maybe only late
        self.job.short.append(seen)
        if len(self.job.short) < STRIKES:
            return None
        self.job.short.clear()
        if self.job.finished is not None:
            if not self.job.judged:  # the first verdict on the last rebuild: it did not do
                self.job.judged = True
                self.job.fruitless += 1
                log.error("the analytics still differ from billing's record after a rebuild "
                          "(%s); the next one in %.0f s", difference(ledger, view),
                          self.job.pause_s())
            if time.monotonic() - self.job.finished < self.job.pause_s():
                return None
        return "the analytics differ from billing's record with nothing on its way ({})".format(
            difference(ledger, view))

    def _rebuild(self, reason):
        started, clock = utc_now(), time.monotonic()
        status = {"state": "rebuilding", "reason": reason, "events_given": 0,
                  "events_total": self.billing.get_ledger()["events"],
                  "started_at": started.isoformat(), "finished_at": None}
        log.warning("rebuilding the analytics from billing's record: %s", reason)
        self._publish(status)
        after = None
        while True:
            page = self.billing.list_bill_events(after=after, until=status["started_at"],
                                                 size=BATCH)
            events = page["items"]
            if events:
                self.kafka.send_many(BILLS_TOPIC, [(str(event["bill"]["customer_id"]), event)
                                                   for event in events])
            given = status["events_given"] + len(events)
            self._publish(dict(status, events_given=given,
                               events_total=max(status["events_total"], given)))
            status = self.job.status
            after = page["next"]
            if after is None:
                break
        log.info("gave %d events again in %.1f s; waiting for the aggregator to count them",
                 status["events_given"], time.monotonic() - clock)
        self._wait_until_settled()
        self._publish(dict(status, state="done", finished_at=utc_now().isoformat()))
        self.job.finished, self.job.judged = time.monotonic(), False
        log.warning("analytics rebuilt from billing's record: %d events in %.1f s",
                    status["events_given"], time.monotonic() - clock)

    def _wait_until_settled(self):
        """Until the aggregator has read all of ``billing.bills`` (what was just
        given included) and analytics' tables are read to the end,
        ``SETTLED_IN_A_ROW`` answers in a row: analytics keeps an all-up answer
        for a moment, and its tables measure their lag once a second."""
        in_a_row, last_log = 0, time.monotonic()
        while in_a_row < SETTLED_IN_A_ROW:
            eventlet.sleep(SETTLE_POLL_S)
            try:
                readiness = self.analytics.get_readiness()
            except MeshError:
                readiness = {}
            settled = readiness.get(ANALYTICS) == "up" and readiness.get(STREAMS) == "up"
            in_a_row = in_a_row + 1 if settled else 0
            if time.monotonic() - last_log > 30:
                log.info("still waiting for the aggregator (%s)", readiness)
                last_log = time.monotonic()

    def _mark_equal(self, ledger):
        """Leave a mark in Kafka the first time the view equals the record (no
        rebuild yet): if the mark goes, Kafka lost its log."""
        now = utc_now().isoformat()
        self._publish({"state": EQUAL, "reason": "the analytics equal billing's record",
                       "events_given": 0, "events_total": ledger["events"],
                       "started_at": now, "finished_at": now})

    def _publish(self, status):
        self.kafka.send(REBUILD_TOPIC, key=REBUILD_KEY, value=status)
        self.job.status = status
