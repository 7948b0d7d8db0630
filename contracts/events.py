"""The mesh's events: who sends them, their names and their payloads.

Who sends and who handles each event is declared in ``contracts.services``.

``billing.bill_created``: one per committed bill, through billing's outbox, at
least once (consumers deduplicate by ``event_id``); forwarded to Kafka by
``kafka_bridge`` (topic ``billing.bills``, see ``contracts.topics``)::

    {"event_id": "<uuid4>", "type": "bill_created", "occurred_at": "<ISO 8601 UTC>",
     "reservation_id": "<uuid4>",
     "bill": {"id": 4, "customer_id": 1, "billing_date": "<ISO 8601 UTC>",
              "items": [{"product_id": 2, "quantity": 3, "unit_price": "1299.00"}],
              "total": "3897.00"}}

``billing.bill_cancelled``: one per cancelled bill (the first cancellation; a
repeated one sends nothing), the same way and to the same topic. The same bill,
with its status and the time of the cancellation, which is also the event's
``occurred_at``; inventory gives the bill's stock back with it::

    {"event_id": "<uuid4>", "type": "bill_cancelled", "occurred_at": "<cancelled_at>",
     "reservation_id": "<uuid4>",
     "bill": {"id": 4, ..., "total": "3897.00", "status": "cancelled",
              "cancelled_at": "<ISO 8601 UTC>"}}

Change events, for the read caches of the gateway and billing, sent after the
change committed, transient (a hint: "read it again"; nobody is harmed if one
is lost while no cache listens)::

    customers.customer_updated / customer_deleted   {"customer_id": 4}
    inventory.product_updated / product_deleted     {"product_ids": [4]}
    inventory.stock_changed                         {"product_ids": [1, 2]}

``stock_changed`` is gathered: at most one per 50 ms, naming every product
changed meanwhile.

``<service>.heartbeat``, from every instance of every RPC service every
``HEARTBEAT_INTERVAL_S`` (transient, like Eureka's lease renewals): the
gateway's registry lists an instance while its heartbeats arrive::

    {"service": "customers", "instance": "host-a:4242", "host": "host-a", "pid": 4242,
     "python": "3.13.1", "hub": "asyncio", "started_at": "<ISO 8601 UTC>",
     "metrics": {"calls": 12, "errors": 1, "seconds": 0.084, "busy": 0}}
"""
import uuid
from decimal import Decimal

from contracts.wire import money_text, utc_now

BILL_CREATED = "bill_created"
BILL_CANCELLED = "bill_cancelled"
BILL_EVENTS = (BILL_CREATED, BILL_CANCELLED)  # what goes to Kafka, on billing.bills
ACTIVE, CANCELLED = "active", "cancelled"  # a bill's status
CUSTOMER_UPDATED, CUSTOMER_DELETED = "customer_updated", "customer_deleted"
PRODUCT_UPDATED, PRODUCT_DELETED = "product_updated", "product_deleted"
STOCK_CHANGED = "stock_changed"
HEARTBEAT = "heartbeat"
HEARTBEAT_INTERVAL_S = 2.0
# an instance silent for this long has left the registry
HEARTBEAT_EXPIRY_S = 3 * HEARTBEAT_INTERVAL_S


def handler_queue_name(source_service, event_type, service, method):
    """The queue of ``service.method`` handling ``source_service.event_type``,
    named as nameko names a service-pool event handler's queue."""
    return "evt-{}-{}--{}.{}".format(source_service, event_type, service, method)


def bill_created_event(bill, event_id=None, occurred_at=None, reservation_id=None):
    """The ``bill_created`` payload of ``bill``: ``{"id", "customer_id",
    "billing_date", "items": [{"product_id", "quantity", "unit_price"}]}``, as
    ``billing.get_bill`` answers it (``Decimal`` prices, ``datetime`` date) or as
    text. Plain JSON out: money with two decimals, times ISO 8601 UTC.
    ``reservation_id``: the inventory reservation the bill's stock came from
    (inventory confirms it; None for bills made without one, the seeded ones).

        >>> bill_created_event({"id": 4, "customer_id": 1, "billing_date": "2026-11-24T10:00:00+00:00",
        ...                     "items": [{"product_id": 2, "quantity": 3, "unit_price": "1299"}]})["bill"]["total"]
        '3897.00'
    """
    occurred_at = occurred_at or utc_now().isoformat()
    return {"event_id": event_id or str(uuid.uuid4()), "type": BILL_CREATED,
            "occurred_at": occurred_at, "reservation_id": reservation_id,
            "bill": _bill_payload(bill, default_date=occurred_at)}


def bill_cancelled_event(bill, cancelled_at, event_id=None, reservation_id=None):
    """The ``bill_cancelled`` payload: the bill as in ``bill_created``, with
    ``"status": "cancelled"`` and ``cancelled_at``, which is also the event's
    ``occurred_at`` (the revenue windows book the cancellation at that time).

        >>> bill_cancelled_event({"id": 4, "customer_id": 1, "billing_date": "2026-11-24T10:00:00+00:00",
        ...                       "items": [{"product_id": 2, "quantity": 3, "unit_price": "1299"}]},
        ...                      "2026-11-24T11:00:00+00:00")["bill"]["status"]
        'cancelled'
    """
    cancelled_at = cancelled_at if isinstance(cancelled_at, str) else cancelled_at.isoformat()
    payload = _bill_payload(bill, default_date=cancelled_at)
    payload.update(status=CANCELLED, cancelled_at=cancelled_at)
    return {"event_id": event_id or str(uuid.uuid4()), "type": BILL_CANCELLED,
            "occurred_at": cancelled_at, "reservation_id": reservation_id, "bill": payload}


def _bill_payload(bill, default_date):
    billing_date = bill.get("billing_date") or default_date
    items = [{"product_id": item["product_id"], "quantity": item["quantity"],
              "unit_price": money_text(item["unit_price"])} for item in bill["items"]]
    total = sum((Decimal(item["unit_price"]) * item["quantity"] for item in items), Decimal(0))
    return {"id": bill["id"], "customer_id": bill["customer_id"],
            "billing_date": billing_date if isinstance(billing_date, str)
            else billing_date.isoformat(),
            "items": items, "total": money_text(total)}


def heartbeat(service, instance, host, pid, python, hub, started_at, metrics):
    """The payload of ``<service>.heartbeat`` (``started_at``: ISO 8601 UTC;
    ``hub``: the event loop the instance runs on, ``"asyncio"``)."""
    return {"service": service, "instance": instance, "host": host, "pid": pid,
            "python": python, "hub": hub, "started_at": started_at, "metrics": dict(metrics)}


def customer_changed(customer_id):
    """The payload of ``customer_updated`` and ``customer_deleted``."""
    return {"customer_id": customer_id}


def products_changed(product_ids):
    """The payload of ``product_updated``, ``product_deleted`` and ``stock_changed``."""
    return {"product_ids": sorted(product_ids)}
