"""Fixtures of the unit tests: each service's logic alone, ``worker_factory``
with a real SQLite file (in a temporary folder, no server) and mocks for the
other services. No broker."""
from unittest.mock import AsyncMock, Mock

import pytest
from nameko.testing.services import worker_factory

from common.cache import TaggedCache
from helpers import seeded_db
from mesh.outbox import OutboxClient
from services.billing import BillingService
from services.billing_models import BillingBase, OutboxEvent
from services.billing_seed import seed_bills
from services.customers import CustomersService
from services.customers_models import CustomersBase
from services.customers_seed import seed_customers
from services.inventory import InventoryService
from services.inventory_models import InventoryBase
from services.inventory_seed import seed_products


@pytest.fixture
def customers(tmp_path):
    _engine, db = seeded_db(tmp_path, CustomersBase, seed_customers)
    return worker_factory(CustomersService, db=db)


@pytest.fixture
def inventory_db(tmp_path):
    return seeded_db(tmp_path, InventoryBase, seed_products)


@pytest.fixture
def inventory(inventory_db):
    return worker_factory(InventoryService, db=inventory_db[1], stock_changes=set(),
                          confirmations=set())


@pytest.fixture
def billing(tmp_path):
    """billing with a real outbox on its SQLite file; ``billing.outbox.publish``
    is the mock events go to."""
    engine, db = seeded_db(tmp_path, BillingBase, seed_bills)
    outbox = OutboxClient(OutboxEvent, publish=Mock())
    service = worker_factory(BillingService, db=db, outbox=outbox,
                             customer_cache=TaggedCache(ttl=30, size=100),
                             # awaited by its coroutines, as the real proxies are
                             customers=AsyncMock(), inventory=AsyncMock())
    service.customers.get_customer.return_value = {"id": 2, "name": "Imane", "email": "imane@gmail.com"}
    service.engine = engine
    return service
