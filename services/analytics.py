"""analytics: what the stream aggregator (``streams/``) computed, queryable over RPC.

It follows the aggregator's output topics (``billing.customer-stats``,
``billing.product-stats``, ``billing.revenue-windows``) and keeps their latest
values in memory, so a new bill shows here as soon as the aggregator counted it.

    nameko run --config config.yaml services.analytics
    >>> n.rpc.analytics.get_customer_stats(1)
    {'customer_id': 1, 'revenue': Decimal('9899.00'), 'bills': 1}
"""
from decimal import Decimal

import mesh.service
from common.validation import validate
from contracts.wire import money
from contracts.services import ANALYTICS
from contracts.topics import CUSTOMER_STATS_TOPIC, PRODUCT_STATS_TOPIC, REVENUE_WINDOWS_TOPIC
from mesh.kafka import TopicTables, create_topics
from mesh.rpc import rpc
from services.analytics_schemas import WindowsIn


def with_money(value, *fields):
    """A copy of an aggregate with its money fields as ``Decimal``."""
    return dict(value, **{field: money(Decimal(value[field])) for field in fields})


class AnalyticsService(mesh.service.MeshService):
    name = ANALYTICS

    view = TopicTables({
        CUSTOMER_STATS_TOPIC: lambda value: value["customer_id"],
        PRODUCT_STATS_TOPIC: lambda value: value["product_id"],
        REVENUE_WINDOWS_TOPIC: lambda value: value["start"],
    }, prepare=create_topics)

    @rpc
    def list_customer_stats(self):
        """Revenue and number of bills per customer, highest revenue first.

            >>> n.rpc.analytics.list_customer_stats()
            {'items': [{'customer_id': 3, 'revenue': Decimal('29697.00'), 'bills': 1}, ...]}
        """
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
        table = self.view.table(PRODUCT_STATS_TOPIC)
        return {"items": [with_money(table[key], "revenue") for key in sorted(table)]}

    @rpc
    def list_revenue_windows(self, last=12):
        """The latest ``last`` revenue windows, oldest first, the open one included.

            >>> n.rpc.analytics.list_revenue_windows(last=2)
            {'items': [{'start': '2026-11-24T10:00:00+00:00', 'end': '...:05+00:00',
                        'revenue': Decimal('3897.00')}, ...]}
        """
        last = validate(WindowsIn, {"last": last}).last
        table = self.view.table(REVENUE_WINDOWS_TOPIC)
        return {"items": [with_money(table[start], "revenue") for start in sorted(table)[-last:]]}
