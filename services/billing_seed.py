"""billing's seed data, written on the first start of an empty database:
customer n (1, 2, 3) bought n of each of products 1, 2, 3, at the prices
inventory seeds them with. A bill keeps the prices it was made with: these
are billing's own rows, not read from inventory."""
import uuid
from decimal import Decimal

from contracts.wire import utc_now
from mesh.outbox import write_event
from services.billing_models import Bill, OutboxEvent, ProductItem, bill_created_event_of

CUSTOMER_IDS = (1, 2, 3)
UNIT_PRICES = {1: Decimal("3200"), 2: Decimal("1299"), 3: Decimal("5400")}


def seed_bills(session):
    """Rows are inserted in order, so bill n is customer n's. Their
    ``bill_created`` events go to the outbox like any bill's, so analytics
    count them too."""
    for customer_id in CUSTOMER_IDS:
        bill = Bill(customer_id=customer_id, billing_date=utc_now(),
                    created_event_id=str(uuid.uuid4()), items=[
                        ProductItem(product_id=product_id, quantity=customer_id,
                                    unit_price=price)
                        for product_id, price in UNIT_PRICES.items()])
        session.add(bill)
        session.flush()  # keep bill ids in customer order
        write_event(session, OutboxEvent, bill_created_event_of(bill), relay_at_once=True)
