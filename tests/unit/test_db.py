"""The database layer (``mesh.db``) alone, on SQLite: late commits, and how
a start brings the database up to date (the migrations themselves:
test_migrations.py)."""
import os
import shutil
import time

import pytest
from alembic.runtime.migration import MigrationContext
from nameko.testing.services import worker_factory
from sqlalchemy import inspect

from helpers import seeded_db, stock
from contracts.errors import DeadlineExceeded
from mesh.db import MIGRATIONS_DIR, bootstrap, make_engine, script_directory
from services.billing_models import BillingBase
from services.billing_seed import seed_bills
from services.customers_models import CustomersBase
from services.customers_seed import seed_customers
from services.inventory import InventoryService
from services.inventory_models import InventoryBase
from services.inventory_seed import seed_products


def test_no_commit_after_the_callers_deadline(tmp_path):
    engine, late_db = seeded_db(tmp_path, InventoryBase, seed_products, deadline=time.time() - 1)
    late = worker_factory(InventoryService, db=late_db)
    with pytest.raises(DeadlineExceeded):
        late.reserve_stock([{"product_id": 1, "quantity": 1}])
    assert stock(engine)[1] == 11


def broken_history(tmp_path):
    """A copy of inventory's history whose next revision (after its head)
    adds a column, then fails."""
    folder = tmp_path / "inventory"
    shutil.copytree(os.path.join(MIGRATIONS_DIR, "inventory"), folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    head = script_directory("inventory").get_current_head()
    new = "{:04d}".format(int(head) + 1)
    (folder / "versions" / "{}_broken.py".format(new)).write_text(
        "from alembic import op\nimport sqlalchemy as sa\n"
        "revision = '{}'\ndown_revision = '{}'\n".format(new, head) +
        "def upgrade():\n"
        "    with op.batch_alter_table('products', recreate='always') as batch_op:\n"
        "        batch_op.add_column(sa.Column('colour', sa.String(20)))\n"
        "    raise RuntimeError('the new revision is broken')\n"
        "def downgrade():\n    pass\n")
    return str(folder)


def test_a_failed_upgrade_changes_nothing(tmp_path):
    """The whole upgrade is one transaction: a revision that fails half-way
    leaves the database as it was, and the service does not start."""
    engine, _db = seeded_db(tmp_path, InventoryBase, seed_products)
    with pytest.raises(RuntimeError, match="the new revision is broken"):
        bootstrap(engine, InventoryBase.metadata, seed_products, migrations=broken_history(tmp_path))
    assert "colour" not in {c["name"] for c in inspect(engine).get_columns("products")}
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == (
            script_directory("inventory").get_current_head())
    assert stock(engine) == {1: 11, 2: 10, 3: 8}


def test_foreign_keys_are_on_again_after_a_start(tmp_path):
    """Migrations run with SQLite's foreign keys off (batch copies of
    referenced tables); the connections the services then use have them on."""
    engine, _db = seeded_db(tmp_path, BillingBase, seed_bills)
    engine.pool.dispose()  # the next connection may be the one bootstrap used, or new
    for _ in range(3):
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_seed_that_fails_leaves_the_database_empty(tmp_path):
    engine = make_engine("sqlite:///{}/customers.db".format(tmp_path))

    def failing_seed(session):
        seed_customers(session)
        session.flush()
        raise RuntimeError("seed failed")

    with pytest.raises(RuntimeError, match="seed failed"):
        bootstrap(engine, CustomersBase.metadata, failing_seed)
    assert inspect(engine).get_table_names() == []
    assert bootstrap(engine, CustomersBase.metadata, seed_customers) == (
        "customers database: empty, created at head {} and seeded".format(
            script_directory("customers").get_current_head()))
