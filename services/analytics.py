"""analytics: what the stream aggregator (``streams/``) computed, queryable over RPC.

It follows the aggregator's output topics (``billing.customer-stats``,
``billing.product-stats``, ``billing.revenue-windows``) and keeps their latest
values in memory, so a new bill shows here as soon as the aggregator counted it.

    nameko run --config config.yaml services.analytics
    >>> n.rpc.analytics.get_customer_stats(1)
    {'customer_id': 1, 'revenue': Decimal('9899.00'), 'bills': 1}
"""
import time
from decimal import Decimal

from kafka.errors import KafkaError

import mesh.service
from common.validation import validate
from contracts.wire import money
from contracts.services import ANALYTICS, STREAMS
from contracts.errors import AnalyticsRebuilding
from contracts.topics import (
    AGGREGATOR_GROUP, BILLS_TOPIC, CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC, REBUILD_KEY,
    REBUILD_TOPIC, REVENUE_WINDOWS_TOPIC,
)
from mesh.kafka import TopicTables, create_topics, group_lag
from mesh.rpc import rpc
from services.analytics_schemas import WindowsIn


def with_money(value, *fields):
    """A copy of an aggregate with its money fields as ``Decimal``."""
    return dict(value, **{field: money(Decimal(value[field])) for field in fields})


# /health asks often (the launcher four times a second): while all is up, Kafka is
# asked at most this often
READINESS_CACHE_S = 1.0
READINESS_TIMEOUT_S = 0.5  # inside the gateway's HEALTH_TIMEOUT
# The aggregator is "down" when bills wait for it and its lag has not shrunk for
# this long. (Tansu reports no members of a consumer group, so "is anybody in
# the group" cannot be asked; progress can.)
STALLED_S = 10.0
_readiness = {}  # bootstrap -> (asked at, answer): one per process
_progress = {}  # bootstrap -> (lag, when it last shrank or was 0)


def aggregator_state(bootstrap, lag, now):
    """``up`` / ``catching_up`` / ``down`` from the aggregator's lag now and how
    it moved (see ``STALLED_S``)."""
    last_lag, progressed_at = _progress.get(bootstrap, (lag, now))
    if lag == 0 or lag < last_lag:
        progressed_at = now
    _progress[bootstrap] = (lag, progressed_at)
    if lag == 0:
        return "up"
    return "down" if now - progressed_at > STALLED_S else "catching_up"


class AnalyticsService(mesh.service.MeshService):
    name = ANALYTICS

    view = TopicTables({
        CUSTOMER_STATS_TOPIC: lambda value: value["customer_id"],
        PRODUCT_STATS_TOPIC: lambda value: value["product_id"],
        REVENUE_WINDOWS_TOPIC: lambda value: value["start"],
        REBUILD_TOPIC: lambda value: REBUILD_KEY,
    }, prepare=create_topics)

    @rpc
    def list_customer_stats(self):
        """Revenue and number of bills per customer, highest revenue first.

            >>> n.rpc.analytics.list_customer_stats()
            {'items': [{'customer_id': 3, 'revenue': Decimal('29697.00'), 'bills': 1}, ...]}
        """
        self._refuse_while_rebuilding()
        stats = [with_money(value, "revenue")
                 for value in self.view.table(CUSTOMER_STATS_TOPIC).values()]
        stats.sort(key=lambda stat: (-stat["revenue"], stat["customer_id"]))
        return {"items": stats}

    @rpc
    def get_customer_stats(self, customer_id):
        """One customer's revenue and bills (zero when nothing was billed yet).

            >>> n.rpc.analytics.get_customer_stats(2)
            {'customer_id': 2, 'revenue': Decimal('19798.00'), 'bills': 1}
        """
        self._refuse_while_rebuilding()
        value = self.view.table(CUSTOMER_STATS_TOPIC).get(customer_id)
        if value is None:
            return {"customer_id": customer_id, "revenue": money(0), "bills": 0}
        return with_money(value, "revenue")

    @rpc
    def list_product_stats(self):
        """Units sold and revenue per product, by product id.

            >>> n.rpc.analytics.list_product_stats()
            {'items': [{'product_id': 1, 'units': 6, 'revenue': Decimal('19200.00')}, ...]}
        """
        self._refuse_while_rebuilding()
        table = self.view.table(PRODUCT_STATS_TOPIC)
        return {"items": [with_money(table[key], "revenue") for key in sorted(table)]}

    @rpc
    def list_revenue_windows(self, last=12):
        """The latest ``last`` revenue windows, oldest first, the open one included.

            >>> n.rpc.analytics.list_revenue_windows(last=2)
            {'items': [{'start': '2026-11-24T10:00:00+00:00', 'end': '...:05+00:00',
                        'revenue': Decimal('3897.00')}, ...]}
        """
        self._refuse_while_rebuilding()
        last = validate(WindowsIn, {"last": last}).last
        table = self.view.table(REVENUE_WINDOWS_TOPIC)
        return {"items": [with_money(table[start], "revenue") for start in sorted(table)[-last:]]}

    @rpc
    def get_readiness(self):
        """How far the Kafka side has got: ``analytics`` is ``up`` once its tables
        have read their topics to the end (else ``catching_up``); ``streams``
        (the aggregator) is ``up`` when it has committed every bill on
        ``billing.bills``, ``catching_up`` while bills wait for it and its lag
        shrinks, ``down`` when they wait and it has not shrunk for ``STALLED_S``;
        ``unknown`` when Kafka does not answer. ``/health`` shows both. Also
        what the tables add up to (``view``: to compare with billing's ledger)
        and the last rebuild's progress (``rebuild``, ``services.rebuilder``).

            >>> n.rpc.analytics.get_readiness()
            {'analytics': 'up', 'streams': 'up', 'view': {'bills': 3,
             'revenue': Decimal('59394.00'), 'product_revenue': Decimal('59394.00')},
             'rebuild': None}
        """
        return dict(pipeline_states(self.view), view=view_totals(self.view),
                    rebuild=latest_rebuild(self.view))

    def _refuse_while_rebuilding(self):
        rebuild = latest_rebuild(self.view)
        if rebuild is not None and rebuild["state"] == "rebuilding":
            raise AnalyticsRebuilding(
                "the analytics are being rebuilt from billing's record ({} of {} events "
                "given again); their figures are partial until then".format(
                    rebuild["events_given"], rebuild["events_total"]))


def pipeline_states(view):
    """``{"analytics": ..., "streams": ...}`` of ``get_readiness``, an all-up
    answer kept ``READINESS_CACHE_S``."""
    bootstrap = view.bootstrap
    asked_at, answer = _readiness.get(bootstrap, (0.0, None))
    if answer is not None and time.monotonic() - asked_at < READINESS_CACHE_S:
        return answer
    answer = {ANALYTICS: "up" if view.caught_up() else "catching_up"}
    try:
        lag = group_lag(bootstrap, AGGREGATOR_GROUP, BILLS_TOPIC, timeout=READINESS_TIMEOUT_S)
    except KafkaError:
        answer[STREAMS] = "unknown"
    else:
        answer[STREAMS] = aggregator_state(bootstrap, lag, time.monotonic())
    # only an answer that all is up is kept: a part behind is asked again
    # next time, so that an instance never answers "behind" from its cache
    # after another one (or it, a moment ago) found all up
    if all(state == "up" for state in answer.values()):
        _readiness[bootstrap] = (time.monotonic(), answer)
    else:
        _readiness.pop(bootstrap, None)
    return answer


def view_totals(view):
    """What the tables add up to, to compare with billing's ledger
    (``common.ledger``): bills and revenue over the customers, revenue over the
    products."""
    customers = view.table(CUSTOMER_STATS_TOPIC).values()
    products = view.table(PRODUCT_STATS_TOPIC).values()
    return {"bills": sum(value["bills"] for value in customers),
            "revenue": money(sum((Decimal(value["revenue"]) for value in customers), Decimal(0))),
            "product_revenue": money(sum((Decimal(value["revenue"]) for value in products),
                                         Decimal(0)))}


def latest_rebuild(view):
    """The rebuilder's last word on ``billing.analytics-rebuilds``, or None."""
    return view.table(REBUILD_TOPIC).get(REBUILD_KEY)
