"""Money and time on the wire: the one place that decides their text form.
Part of the contract: every process (services, the aggregator, HTTP clients)
reads and writes money as a string with two decimals and times as ISO 8601 UTC.

Inside the mesh (RPC and events between nameko services) ``Decimal`` and
``datetime`` travel as themselves: kombu >= 5.3's JSON serializer tags them
(``{"__type__": "decimal", "__value__": "19.99"}``) and restores them, so prices
stay exact across hops. At the edges (HTTP answers, Kafka records) they become
plain JSON: money a string with two decimals, times ISO 8601.
"""
import datetime
import json
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


def money(value):
    """Exact money with two decimals: ``money("3") == Decimal("3.00")``."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def money_text(value):
    """``Decimal("59.97") -> "59.97"``, ``Decimal("3200") -> "3200.00"``."""
    return format(money(value), "f")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def _encode(value):
    if isinstance(value, Decimal):
        return money_text(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError("{!r} is not JSON serializable".format(value))


def to_json(payload):
    """Edge JSON: ``{"price": Decimal("3200")}`` -> ``'{"price":"3200.00"}'``."""
    return json.dumps(payload, default=_encode, separators=(",", ":"))
