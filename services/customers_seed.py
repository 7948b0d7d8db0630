"""customers' seed data, written on the first start of an empty database: ids
1, 2, 3, which billing's seeded bills name."""
from services.customers_models import Customer

CUSTOMERS = [("Mohamed", "med@gmail.com"), ("Imane", "imane@gmail.com"),
             ("Yassine", "yassine@gmail.com")]


def seed_customers(session):
    session.add_all(Customer(name=name, email=email) for name, email in CUSTOMERS)
