"""The mesh's events: who sends them, and the queues that must exist before
the first one is sent.

``billing.bill_created`` (to Kafka, through the bridge): nameko drops an event
when no queue is bound to its exchange yet, so billing declares the bridge's
queue itself (``EventDispatcher(declare=...)``): events wait in RabbitMQ even
before the bridge first starts.

Change events, for the read caches of the gateway and billing (``mesh.cache``),
sent after the change committed: ``customers.customer_updated`` / ``customer_deleted``
``{"customer_id": 4}``; ``inventory.product_updated`` / ``product_deleted`` /
``stock_changed`` ``{"product_ids": [1, 2]}`` (gathered: at most one per 50 ms,
naming every product changed meanwhile). They only say "read it again":
nobody is harmed if one is lost while no cache listens.
"""
import uuid

from kombu import Queue
from nameko.constants import NON_PERSISTENT
from nameko.events import EventDispatcher
from nameko.standalone.events import get_event_exchange
from sqlalchemy import insert

from mesh.wire import money_text, utc_now
from services.models import OutboxEvent

BILLING = "billing"
BILL_CREATED = "bill_created"

CUSTOMERS = "customers"
CUSTOMER_UPDATED, CUSTOMER_DELETED = "customer_updated", "customer_deleted"
INVENTORY = "inventory"
PRODUCT_UPDATED, PRODUCT_DELETED = "product_updated", "product_deleted"
STOCK_CHANGED = "stock_changed"

KAFKA_BRIDGE = "kafka_bridge"
BRIDGE_HANDLER = "forward_bill_created"


def customer_tag(customer_id):
    """The cache tag of what shows this customer (``mesh.cache``)."""
    return "customer:{}".format(customer_id)


def product_tag(product_id):
    """The cache tag of what shows this product."""
    return "product:{}".format(product_id)


def bridge_queue(config):
    """The queue of ``KafkaBridgeService.forward_bill_created``, exactly as
    nameko's ``@event_handler`` declares it (any difference is an AMQP error)."""
    return Queue(
        "evt-{}-{}--{}.{}".format(BILLING, BILL_CREATED, KAFKA_BRIDGE, BRIDGE_HANDLER),
        exchange=get_event_exchange(BILLING, config), routing_key=BILL_CREATED,
        durable=True, auto_delete=False, exclusive=False)


class BillingEvents(EventDispatcher):
    """billing's ``EventDispatcher``, declaring the bridge's queue before the
    first dispatch."""

    def setup(self):
        self.declare.append(bridge_queue(self.container.config))
        super().setup()


class ChangeEvents(EventDispatcher):
    """The change events above: transient and unconfirmed, like RPC messages
    (``mesh.rpc.RpcPublisher``), so a write does not wait on a disk write for a
    hint. ``self.changes(PRODUCT_UPDATED, {"product_ids": [4]})``."""

    def __init__(self, **options):
        super().__init__(use_confirms=False, delivery_mode=NON_PERSISTENT, **options)


def add_bill_created_event(db, bill):
    """Write ``bill``'s ``bill_created`` event to the outbox, through ``db`` (the
    session or connection of the bill's transaction); return its payload."""
    payload = bill_created_event(bill)
    db.execute(insert(OutboxEvent).values(
        event_id=payload["event_id"], event_type=BILL_CREATED, payload=payload))
    return payload


def bill_created_event(bill):
    """The ``bill_created`` payload of DESIGN.md: plain JSON, money as text."""
    items = [{"product_id": item["product_id"], "quantity": item["quantity"],
              "unit_price": money_text(item["unit_price"])} for item in bill["items"]]
    total = sum(item["unit_price"] * item["quantity"] for item in bill["items"])
    return {"event_id": str(uuid.uuid4()), "type": BILL_CREATED,
            "occurred_at": utc_now().isoformat(),
            "bill": {"id": bill["id"], "customer_id": bill["customer_id"],
                     "billing_date": bill["billing_date"].isoformat(),
                     "items": items, "total": money_text(total)}}
