"""Each service's migration history (``migrations/<service>/``) and how a start
applies it (``mesh.db.bootstrap``), on SQLite: the models and head agree, the
baseline is the schema the code before migrations made, a database of that
code is stamped and upgraded, and a new revision written the documented way
upgrades a database with rows in it."""
import ast
import os
import shutil
import sqlite3
import sys
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, String, inspect
from sqlalchemy.orm import declarative_base

from common.config import ROOT
from mesh.db import (MIGRATIONS_DIR, alembic_config, bootstrap, database_state, make_engine,
                     migrations_of, script_directory)
from services.billing_models import BillingBase
from services.billing_seed import seed_bills
from services.customers_models import CustomersBase
from services.customers_seed import CUSTOMERS, seed_customers
from services.inventory_models import InventoryBase
from services.inventory_seed import PRODUCTS, seed_products
from tools import db as db_tool

SERVICES = {"customers": (CustomersBase, seed_customers),
            "inventory": (InventoryBase, seed_products),
            "billing": (BillingBase, seed_bills)}
DATA = os.path.join(ROOT, "tests", "integration", "data")

each_service = pytest.mark.parametrize("name", sorted(SERVICES))


def engine_at(tmp_path, name):
    return make_engine("sqlite:///{}/{}.db".format(tmp_path, name))


def premigration_db(tmp_path, name):
    """A database as the code before migrations made it (its frozen DDL), with
    the seed modules' rows written in plain SQL (today's models may have moved
    on): two bills with items, a key and an outbox row each in billing's."""
    path = tmp_path / "{}.db".format(name)
    with open(os.path.join(DATA, "premigration_{}.sql".format(name))) as ddl:
        connection = sqlite3.connect(path)
        connection.executescript(ddl.read())
    with connection:
        for statement, values in PREMIGRATION_ROWS[name]:
            connection.executemany(statement, values)
    connection.close()
    return make_engine("sqlite:///{}".format(path))


LONG_AGO = "2026-01-05 10:00:00.000000"
PREMIGRATION_ROWS = {
    "customers": [("INSERT INTO customers (name, email) VALUES (?, ?)", CUSTOMERS)],
    "inventory": [
        ("INSERT INTO products (name, price, quantity) VALUES (?, ?, ?)",
         [(name, int(price * 100), stock) for name, price, stock in PRODUCTS]),
        ("INSERT INTO stock_reservations (id, status, items, created_at) VALUES (?, ?, ?, ?)",
         [("r-1", "reserved", '[{"product_id": 1, "quantity": 1}]', LONG_AGO)])],
    "billing": [
        ("INSERT INTO bills (billing_date, customer_id, reservation_id) VALUES (?, ?, ?)",
         [(LONG_AGO, 1, "r-1"), (LONG_AGO, 2, "r-2")]),
        ("INSERT INTO product_items (bill_id, product_id, quantity, unit_price) "
         "VALUES (?, ?, ?, ?)", [(1, 1, 1, 320000), (1, 2, 1, 129900), (2, 3, 2, 540000)]),
        ("INSERT INTO idempotency_keys (key, request_hash, bill_id) VALUES (?, ?, ?)",
         [("key-1", "0" * 64, 1), ("key-2", "1" * 64, 2)]),
        ("INSERT INTO outbox_events (event_id, event_type, payload, created_at, dispatched_at) "
         "VALUES (?, 'bill_created', '{}', ?, ?)",
         [("e-1", LONG_AGO, LONG_AGO), ("e-2", LONG_AGO, None)])],
}


def rows(engine):
    """Every row of every table but alembic's, ``{table: [row, ...]}``."""
    with engine.connect() as connection:
        names = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
        return {t: connection.exec_driver_sql('SELECT * FROM "{}" ORDER BY 1'.format(t)).fetchall()
                for t in names}


def revision_of(engine):
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ddl(engine):
    """The schema as SQLite keeps it: ``CREATE ...`` statements, in order."""
    with engine.connect() as connection:
        found = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND tbl_name != 'alembic_version' ORDER BY rowid").fetchall()
    return [sql.strip() for (sql,) in found]


def frozen_ddl(name):
    with open(os.path.join(DATA, "premigration_{}.sql".format(name))) as handle:
        text = "\n".join(line for line in handle.read().splitlines() if not line.startswith("--"))
    return [statement.strip() for statement in text.split(";") if statement.strip()]


# --- the histories ---------------------------------------------------------------

@each_service
def test_one_head_one_base_numbered_in_order(name):
    script = script_directory(name)
    assert len(script.get_heads()) == 1, "migrations/{}/ has heads {}".format(
        name, script.get_heads())
    assert script.get_bases() == ["0001"]
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")][::-1]
    assert chain == ["{:04d}".format(n) for n in range(1, len(chain) + 1)]
    for rev in script.walk_revisions():
        assert os.path.basename(rev.path).startswith(rev.revision + "_"), rev.path


@each_service
def test_revisions_import_no_project_code(name):
    """History never changes with the code: a revision imports alembic,
    SQLAlchemy and the standard library only (types are written as their
    storage types, ``sa.BigInteger()`` for money)."""
    allowed = {"alembic", "sqlalchemy"} | set(sys.stdlib_module_names)
    folder = os.path.join(MIGRATIONS_DIR, name, "versions")
    for file_name in sorted(os.listdir(folder)):
        if file_name.endswith(".py"):
            imported = imports(os.path.join(folder, file_name))
            assert imported <= allowed, "{}: imports {}".format(file_name, imported - allowed)


@each_service
def test_env_imports_mesh_db_and_its_own_models(name):
    assert imports(os.path.join(MIGRATIONS_DIR, name, "env.py"), full=True) == {
        "mesh.db", "services.{}_models".format(name)}


def imports(path, full=False):
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) else [])
        found.update(n if full else n.split(".")[0] for n in names)
    return found


def test_a_service_base_finds_its_history():
    assert migrations_of(BillingBase) == "billing"
    assert migrations_of(InventoryBase.metadata) == "inventory"
    assert migrations_of(declarative_base()) is None  # a test's tables: create_all


# --- upgrading ------------------------------------------------------------------

@each_service
def test_upgrade_from_empty_is_the_models(tmp_path, name):
    engine = engine_at(tmp_path, name)
    base, _seed = SERVICES[name]
    assert bootstrap(engine, base.metadata) == "{} database: empty, created at head {}".format(
        name, script_directory(name).get_current_head())
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, base.metadata) == []


@each_service
def test_baseline_is_the_schema_made_before_migrations(tmp_path, name):
    """0001 makes, statement for statement, what ``create_all`` made before
    migrations (tests/integration/data/premigration_<service>.sql)."""
    engine = engine_at(tmp_path, name)
    with engine.begin() as connection:
        command.upgrade(alembic_config(name, connection), "0001")
    assert ddl(engine) == frozen_ddl(name)


@each_service
def test_a_database_made_before_migrations_is_stamped_and_upgraded(tmp_path, name):
    engine = premigration_db(tmp_path, name)
    before = rows(engine)
    base, seed = SERVICES[name]
    head = script_directory(name).get_current_head()

    done = bootstrap(engine, base.metadata, seed)

    assert done.startswith("{} database: made before migrations, stamped 0001".format(name))
    assert done.endswith("(at head)" if head == "0001" else "upgraded 0001 -> " + head)
    assert revision_of(engine) == head
    after = rows(engine)
    # every row kept, no second seed
    assert {t: after[t] for t in before} == as_upgraded(name, before)
    assert bootstrap(engine, base.metadata, seed) == "{} database: at head {}".format(name, head)


def as_upgraded(name, tables):
    """``tables`` (``rows()``) as the migrations change their values on purpose:
    inventory's 0003 makes the old ``reserved`` reservations ``held``; billing's
    0003 makes every bill ``active``, never cancelled, its 0004 gives each
    bill the id of its ``bill_created`` (none is in the outbox here: derived),
    and its 0005 knows no one who made or cancelled it."""
    if name == "billing":
        return dict(tables, bills=[tuple(row) + ("active", None, derived_event_id(row[0]), None,
                                                 None, None)
                                   for row in tables["bills"]])
    if name != "inventory":
        return tables
    return dict(tables, stock_reservations=[
        (row[0], "held" if row[1] == "reserved" else row[1]) + tuple(row[2:])
        for row in tables["stock_reservations"]])


def derived_event_id(bill_id):
    return str(uuid.uuid5(uuid.UUID("6f1d3c52-2f0e-4d8e-9a57-1d1b0f3a5c21"),
                          "billing/{}/bill_created".format(bill_id)))


def test_seeded_once(tmp_path):
    engine = engine_at(tmp_path, "customers")
    bootstrap(engine, CustomersBase.metadata, seed_customers)
    bootstrap(engine, CustomersBase.metadata, seed_customers)
    assert len(rows(engine)["customers"]) == 3


def test_a_revision_it_does_not_know_is_refused(tmp_path):
    """A newer release's database (or another service's): never touched."""
    engine = engine_at(tmp_path, "billing")
    bootstrap(engine, BillingBase.metadata)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(RuntimeError, match="revision '9999', which migrations/billing/ does not"):
        bootstrap(engine, BillingBase.metadata)


def test_tables_that_are_not_the_baseline_are_not_stamped(tmp_path):
    engine = engine_at(tmp_path, "billing")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE bills (id INTEGER PRIMARY KEY)")
    with pytest.raises(RuntimeError, match="not idempotency_keys, outbox_events, product_items"):
        bootstrap(engine, BillingBase.metadata)
    assert revision_of(engine) is None


# --- a new revision, the documented way ---------------------------------------------

def changed_history(tmp_path):
    """A copy of billing's history whose models have moved on: bills get a
    ``note``, and a wider ``reservation_id`` (SQLite copies the table for that,
    which ``product_items`` and ``idempotency_keys`` reference)."""
    folder = tmp_path / "billing"
    shutil.copytree(os.path.join(MIGRATIONS_DIR, "billing"), folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "env.py").write_text(
        "from sqlalchemy import Column, MetaData, String\n"
        "from mesh.db import run_migrations\n"
        "from services.billing_models import BillingBase\n"
        "metadata = MetaData()\n"
        "for table in BillingBase.metadata.sorted_tables:\n"
        "    table.to_metadata(metadata)\n"
        "bills = metadata.tables['bills']\n"
        "bills.append_column(Column('note', String(200), nullable=True))\n"
        "bills.c.reservation_id.type = String(40)\n"
        "run_migrations(metadata)\n")
    return str(folder)


def test_a_new_revision_upgrades_a_database_with_bills(tmp_path):
    history = changed_history(tmp_path)
    head = script_directory("billing").get_current_head()  # the copy's, before the new one
    new = "{:04d}".format(int(head) + 1)
    path = db_tool.revision(history, "note on bills")
    assert os.path.basename(path) == new + "_note_on_bills.py"
    written = open(path).read()
    assert "batch_op.add_column(sa.Column('note', sa.String(length=200)" in written
    assert "imports" not in written and "common" not in written

    engine = premigration_db(tmp_path, "billing")
    before = rows(engine)
    assert bootstrap(engine, BillingBase.metadata, seed_bills, migrations=history) == (
        "billing database: made before migrations, stamped 0001, upgraded 0001 -> " + new)
    after = rows(engine)
    assert {t: len(after[t]) for t in before} == {t: len(before[t]) for t in before}
    assert [row[:4] for row in after["bills"]] == [row[:4] for row in before["bills"]]
    columns = {c["name"]: c for c in inspect(engine).get_columns("bills")}
    assert "note" in columns and columns["reservation_id"]["type"].length == 40
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    # nothing left to generate once the database is at the new head
    assert db_tool.revision(history, "again") is None


# --- python -m tools.db -----------------------------------------------------------

def test_status_and_upgrade(tmp_path, capsys):
    premigration_db(tmp_path, "customers").dispose()
    bootstrap(engine_at(tmp_path, "billing"), BillingBase.metadata, seed_bills)
    config = {"DB_URIS": {
        "customers": "sqlite:///{}/customers.db".format(tmp_path),
        "inventory": "sqlite:///{}/inventory.db".format(tmp_path),
        "billing": "sqlite:///{}/billing.db".format(tmp_path)}}
    head = {name: script_directory(name).get_current_head()
            for name in ("customers", "inventory", "billing")}

    assert db_tool.status(config) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["DATABASE", "REVISION", "HEAD", "STATE"]
    assert lines[1].split()[:5] == ["customers", "-", head["customers"], "made", "before"]
    assert lines[2].split()[:5] == ["inventory", "-", head["inventory"], "no", "database"]
    assert lines[3].split()[:5] == ["billing", head["billing"], head["billing"], "at", "head"]

    assert db_tool.upgrade(config) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(
        "customers database: made before migrations, stamped 0001")
    assert not (tmp_path / "inventory.db").exists()  # its service creates and seeds it
    db_tool.status(config, ("customers",))
    assert capsys.readouterr().out.splitlines()[1].split()[:5] == [
        "customers", head["customers"], head["customers"], "at", "head"]


def test_the_state_of_a_database(tmp_path):
    engine = engine_at(tmp_path, "inventory")
    with engine.connect() as connection:
        assert database_state(connection, "inventory") == (
            "empty", None, script_directory("inventory").get_current_head())
    bootstrap(engine, InventoryBase.metadata, seed_products)
    with engine.connect() as connection:
        assert database_state(connection, "inventory")[0] == "at head"


def test_tables_without_history_get_create_all(tmp_path):
    Base = declarative_base()

    class Thing(Base):
        __tablename__ = "things"
        id = Column(Integer, primary_key=True)
        label = Column(String(10))

    engine = engine_at(tmp_path, "things")
    assert bootstrap(engine, Base.metadata) == "created tables things"
    assert bootstrap(engine, Base.metadata) is None
    assert "alembic_version" not in inspect(engine).get_table_names()
