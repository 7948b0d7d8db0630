"""inventory's seed data, written on the first start of an empty database:
products 1, 2, 3. The seeded bills are past sales: the stock below is what remains."""
from decimal import Decimal

from services.inventory_models import Product

PRODUCTS = [("Computer", Decimal("3200"), 11), ("Printer", Decimal("1299"), 10),
            ("Smart Phone", Decimal("5400"), 8)]


def seed_products(session):
    session.add_all(Product(name=name, price=price, quantity=stock)
                    for name, price, stock in PRODUCTS)
