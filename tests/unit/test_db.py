"""The database layer (``mesh.db``) alone, on SQLite."""
import time

import pytest
from nameko.testing.services import worker_factory

from helpers import seeded_db, stock
from contracts.errors import DeadlineExceeded
from services.inventory import InventoryService
from services.inventory_models import InventoryBase
from services.inventory_seed import seed_products


def test_no_commit_after_the_callers_deadline(tmp_path):
    engine, late_db = seeded_db(tmp_path, InventoryBase, seed_products, deadline=time.time() - 1)
    late = worker_factory(InventoryService, db=late_db)
    with pytest.raises(DeadlineExceeded):
        late.reserve_stock([{"product_id": 1, "quantity": 1}])
    assert stock(engine)[1] == 11
