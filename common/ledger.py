"""Whether the analytics equal billing: billing's ledger (``billing.get_ledger``)
against the totals of what analytics show (``analytics.get_readiness``'s
``view``). Billing's database is the record; the Kafka side is a view of it.

    >>> view_equals_ledger({"bills": 2, "revenue": Decimal("5.00"), "events": 3},
    ...                    {"bills": 2, "revenue": Decimal("5.00"),
    ...                     "product_revenue": Decimal("5.00")})
    True
"""
from decimal import Decimal


def view_equals_ledger(ledger, view):
    """Active bills and their revenue per customer, and revenue per product,
    add up to billing's own figures."""
    revenue = Decimal(ledger["revenue"])
    return (view["bills"] == ledger["bills"] and Decimal(view["revenue"]) == revenue
            and Decimal(view["product_revenue"]) == revenue)


def difference(ledger, view):
    """What a log line says of the two: ``billing 10 bills 2,000.00; analytics 0
    bills 0.00``."""
    return "billing {} bills {}; analytics {} bills {} (by product {})".format(
        ledger["bills"], ledger["revenue"], view["bills"], view["revenue"],
        view["product_revenue"])
