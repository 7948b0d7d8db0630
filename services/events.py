"""The mesh's events: who sends them, and the queues that must exist before
the first one is sent.

nameko drops an event when no queue is bound to its exchange yet, so billing
declares the bridge's queue itself (``EventDispatcher(declare=...)``): events
wait in RabbitMQ even before the bridge first starts.
"""
import uuid

from kombu import Queue
from nameko.events import EventDispatcher
from nameko.standalone.events import get_event_exchange

from mesh.wire import money_text, utc_now
from services.models import OutboxEvent

BILLING = "billing"
BILL_CREATED = "bill_created"

KAFKA_BRIDGE = "kafka_bridge"
BRIDGE_HANDLER = "forward_bill_created"


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


def add_bill_created_event(session, bill):
    """Write ``bill``'s ``bill_created`` event to the outbox; return its payload."""
    payload = bill_created_event(bill)
    session.add(OutboxEvent(event_id=payload["event_id"], event_type=BILL_CREATED,
                            payload=payload))
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
