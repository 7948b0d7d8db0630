"""The seed data of DESIGN.md, written on the first start of an empty database.

Each service seeds its own part. Rows are inserted in order into empty tables,
so customers and products get ids 1, 2, 3, which the seeded bills refer to.
The bills are past sales: the stock figures below are what remains.
"""
from decimal import Decimal

from services.events import add_bill_created_event
from services.models import Bill, Customer, Product, ProductItem

CUSTOMERS = [("Mohamed", "med@gmail.com"), ("Imane", "imane@gmail.com"),
             ("Yassine", "yassine@gmail.com")]
PRODUCTS = [("Computer", Decimal("3200"), 11), ("Printer", Decimal("1299"), 10),
            ("Smart Phone", Decimal("5400"), 8)]


def seed_customers(session):
    session.add_all(Customer(name=name, email=email) for name, email in CUSTOMERS)


def seed_products(session):
    session.add_all(Product(name=name, price=price, quantity=stock)
                    for name, price, stock in PRODUCTS)


def seed_bills(session):
    """Customer n bought n of each product at its price. Their ``bill_created``
    events go to the outbox like any bill's, so analytics count them too."""
    for customer_id in range(1, len(CUSTOMERS) + 1):
        bill = Bill(customer_id=customer_id, items=[
            ProductItem(product_id=product_id, quantity=customer_id, unit_price=price)
            for product_id, (_name, price, _stock) in enumerate(PRODUCTS, start=1)])
        session.add(bill)
        session.flush()  # keep bill ids in customer order
        add_bill_created_event(session, bill.as_dict())
