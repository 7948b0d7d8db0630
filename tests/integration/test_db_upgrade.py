"""Upgrading the databases of the code before migrations, in place, on SQLite
and PostgreSQL: every row kept, served by the mesh; and two instances starting
together on one database, fresh or made before migrations.

The databases of that code are built from its frozen DDL
(tests/integration/data/premigration_<service>[.postgresql].sql: what its
``metadata.create_all`` made) and filled with plain SQL, not with today's
models, so these tests stay true when the models move on.
"""
import datetime
import json
import logging
import os
import shutil
import uuid
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import inspect, text

from common.config import ROOT
from contracts.events import bill_created_event
from helpers import sqlite_uris, wait_for
from mesh.db import MIGRATIONS_DIR, alembic_config, bootstrap, make_engine, script_directory
from services.billing_schemas import BillIn
from services.billing_seed import CUSTOMER_IDS, UNIT_PRICES
from services.customers_seed import CUSTOMERS
from services.inventory_models import InventoryBase
from services.inventory_seed import PRODUCTS, seed_products

DATA = os.path.join(ROOT, "tests", "integration", "data")
KEYS = {"customers": "customers", "inventory": "inventory",
        "billing": "billing"}
EXTRA_CUSTOMERS = 7
EXTRA_BILLS = 50
LONG_AGO = datetime.datetime(2026, 1, 5, 10, 0, tzinfo=datetime.timezone.utc)


# --- databases of the code before migrations ----------------------------------------

def premigration_schema(engine, service):
    """Run the frozen DDL of ``service`` on an empty database."""
    suffix = ".sql" if engine.dialect.name == "sqlite" else ".postgresql.sql"
    with open(os.path.join(DATA, "premigration_" + service + suffix)) as handle:
        ddl = handle.read()
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.driver_connection.executescript(ddl)
        else:
            raw.cursor().execute(ddl)
        raw.commit()
    finally:
        raw.close()


def stored_time(engine, moment):
    """A time as that code stored it: SQLite text without zone, PostgreSQL aware."""
    if engine.dialect.name == "sqlite":
        return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def cents(amount):
    return int(Decimal(amount) * 100)


def fill_customers(engine):
    with engine.begin() as db:
        rows = list(CUSTOMERS) + [("Customer {}".format(n), "customer{}@example.com".format(n))
                                  for n in range(4, 4 + EXTRA_CUSTOMERS)]
        for name, email in rows:
            db.execute(text("INSERT INTO customers (name, email) VALUES (:name, :email)"),
                       {"name": name, "email": email})


def fill_inventory(engine, reservations=()):
    with engine.begin() as db:
        for name, price, stock in PRODUCTS:
            db.execute(text("INSERT INTO products (name, price, quantity) VALUES (:n, :p, :q)"),
                       {"n": name, "p": cents(price), "q": stock})
        for reservation_id, items in reservations:
            db.execute(text("INSERT INTO stock_reservations (id, status, items, created_at) "
                            "VALUES (:id, 'reserved', :items, :at)"),
                       {"id": reservation_id, "items": json.dumps(items),
                        "at": stored_time(engine, LONG_AGO)})


def fill_billing(engine):
    """The seed module's three bills (their outbox rows undispatched, as the
    seed leaves them), then EXTRA_BILLS bills with items, an idempotency key
    and a dispatched outbox row each. Returns ``{bill id: (customer, items,
    key, total)}`` of the extra bills and their reservations."""
    seeded = [(customer, [(product, customer) for product in UNIT_PRICES], None)
              for customer in CUSTOMER_IDS]
    extra = [(1 + n % (len(CUSTOMER_IDS) + EXTRA_CUSTOMERS),
              [(product, 1 + (n + product) % 4) for product in sorted(UNIT_PRICES)[: 1 + n % 3]],
              "key-{:03d}".format(n))
             for n in range(EXTRA_BILLS)]
    bills, reservations = {}, []
    with engine.begin() as db:
        for number, (customer, items, key) in enumerate(seeded + extra):
            when = LONG_AGO + datetime.timedelta(minutes=number)
            reservation_id = str(uuid.uuid4())
            bill_id = db.execute(text(
                "INSERT INTO bills (billing_date, customer_id, reservation_id) "
                "VALUES (:at, :customer, :reservation) RETURNING id"),
                {"at": stored_time(engine, when), "customer": customer,
                 "reservation": reservation_id}).scalar_one()
            lines = [{"product_id": product, "quantity": quantity,
                      "unit_price": UNIT_PRICES[product]} for product, quantity in items]
            for line in lines:
                db.execute(text("INSERT INTO product_items (bill_id, product_id, quantity, "
                                "unit_price) VALUES (:bill, :product, :quantity, :price)"),
                           {"bill": bill_id, "product": line["product_id"],
                            "quantity": line["quantity"], "price": cents(line["unit_price"])})
            event = bill_created_event({"id": bill_id, "customer_id": customer,
                                        "billing_date": when, "items": lines},
                                       occurred_at=when.isoformat())
            db.execute(text("INSERT INTO outbox_events (event_id, event_type, payload, "
                            "created_at, dispatched_at) VALUES (:id, :type, :payload, :at, :sent)"),
                       {"id": event["event_id"], "type": event["type"],
                        "payload": json.dumps(event), "at": stored_time(engine, when),
                        "sent": None if key is None else stored_time(engine, when)})
            if key is not None:
                request = BillIn(customer_id=customer, items=[
                    {"product_id": p, "quantity": q} for p, q in items], idempotency_key=key)
                db.execute(text("INSERT INTO idempotency_keys (key, request_hash, bill_id) "
                                "VALUES (:key, :hash, :bill)"),
                           {"key": key, "hash": request.fingerprint(), "bill": bill_id})
                bills[bill_id] = (customer, items, key, event["bill"]["total"])
            reservations.append((reservation_id, [{"product_id": p, "quantity": q}
                                                  for p, q in items]))
    return bills, reservations


def premigration_mesh(uris):
    """The three databases as the code before migrations left them, filled."""
    engines = {service: make_engine(uris[KEYS[service]]) for service in KEYS}
    for service, engine in engines.items():
        premigration_schema(engine, service)
    fill_customers(engines["customers"])
    bills, reservations = fill_billing(engines["billing"])
    fill_inventory(engines["inventory"], reservations)
    return engines, bills


# --- reading them back ---------------------------------------------------------

def table_rows(engine):
    """``{table: rows}`` of every table but alembic's (the outbox without
    ``dispatched_at``, which the relay sets; reservations without ``status``,
    which inventory's 0003 and its expiry sweep change: checked on their own)."""
    with engine.connect() as db:
        tables = sorted(t for t in inspect(db).get_table_names() if t != "alembic_version")
        found = {}
        for table in tables:
            columns = {"outbox_events": "event_id, event_type, payload, created_at",
                       "stock_reservations": "id, items, created_at"}.get(table, "*")
            found[table] = db.execute(text(
                'SELECT {} FROM "{}" ORDER BY 1'.format(columns, table))).fetchall()
        return found


def revision(engine):
    with engine.connect() as db:
        return db.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def head(service):
    return script_directory(service).get_current_head()


# --- the upgrade of the current main's databases ---------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def database_uris(request, tmp_path):
    if request.param == "sqlite":
        return sqlite_uris(tmp_path)
    make = request.getfixturevalue("postgres_db")
    return {key: make() for key in KEYS.values()}


def test_databases_of_the_current_main_are_upgraded_and_served(
        database_uris, start_mesh, mesh_config, caplog):
    engines, bills = premigration_mesh(database_uris)
    before = {service: table_rows(engine) for service, engine in engines.items()}
    counts = {service: {table: len(rows) for table, rows in tables.items()}
              for service, tables in before.items()}
    assert counts == {
        "customers": {"customers": 3 + EXTRA_CUSTOMERS},
        "inventory": {"products": 3, "stock_reservations": 3 + EXTRA_BILLS},
        "billing": {"bills": 3 + EXTRA_BILLS, "idempotency_keys": EXTRA_BILLS,
                    "outbox_events": 3 + EXTRA_BILLS,
                    "product_items": 9 + sum(len(items) for _, items, _, _ in bills.values())}}
    print("rows before the upgrade:", counts)

    mesh_config["DB_URIS"] = database_uris
    # the old outbox rows were dispatched long ago: the relay would prune them at
    # once (OUTBOX_RETENTION_S, tests/integration/test_pruning.py); here every row
    # must be seen kept by the upgrade
    mesh_config["OUTBOX_RETENTION_S"] = 10 * 365 * 86400
    with caplog.at_level(logging.INFO, logger="mesh.db"):
        mesh = start_mesh(mesh_config)

    said = sorted(r.getMessage() for r in caplog.records if r.name == "mesh.db")
    for service in sorted(KEYS):
        assert revision(engines[service]) == head(service)
        done = "{} database: made before migrations, stamped 0001".format(service)
        assert [line for line in said if line.startswith(service + " ")] == [
            done + (" (at head)" if head(service) == "0001"
                    else ", upgraded 0001 -> " + head(service))]
        after = table_rows(engines[service])
        assert {table: after[table] for table in before[service]} == as_upgraded(
            service, before[service]), service
    print("rows after the upgrade: every one kept;", said)

    # the mesh serves the old rows: a seeded bill, an extra one, their keys
    assert mesh.http("GET", "/bills/1/full").json()["total"] == "9899.00"
    bill_id, (customer, items, key, total) = sorted(bills.items())[-1]
    full = mesh.http("GET", "/bills/{}/full".format(bill_id)).json()
    assert full["total"] == total
    assert full["customer"]["id"] == customer
    assert [(line["product"]["id"], line["quantity"]) for line in full["items"]] == items
    assert mesh.http("GET", "/bills?size=1").json()["page"]["total_items"] == 3 + EXTRA_BILLS
    assert mesh.http("GET", "/customers").json()["page"]["total_items"] == 3 + EXTRA_CUSTOMERS

    body = {"customer_id": customer, "items": [{"product_id": p, "quantity": q} for p, q in items]}
    again = mesh.http("POST", "/bills", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.json()["id"] == bill_id, again.text
    reused = mesh.http("POST", "/bills", json={"customer_id": customer, "items": [
        {"product_id": 1, "quantity": 9}]}, headers={"Idempotency-Key": key})
    assert reused.status_code == 409 and reused.json()["error"] == "IDEMPOTENCY_KEY_REUSED"

    # and writes go on after the old rows (ids, stock, keys)
    created = mesh.http("POST", "/bills", headers={"Idempotency-Key": "after-the-upgrade"},
                        json={"customer_id": 2, "items": [{"product_id": 2, "quantity": 1}]})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == 3 + EXTRA_BILLS + 1 and created.json()["total"] == "1299.00"
    assert mesh.http("GET", "/products/2").json()["quantity"] == 9

    # every old reservation had a bill: 0003 made them held, and the expiry sweep
    # (they are older than RESERVATION_TTL) asked billing and confirmed each one,
    # giving no stock back (the new bill's is confirmed by its bill_created)
    def statuses():
        with engines["inventory"].connect() as db:
            return dict(db.execute(text(
                "SELECT status, count(*) FROM stock_reservations GROUP BY status")).fetchall())
    wait_for(lambda: statuses() == {"confirmed": 3 + EXTRA_BILLS + 1}, 15,
             "every reservation of a bill confirmed, none released")
    assert mesh.http("GET", "/products/2").json()["quantity"] == 9

    # an old bill can be cancelled: its stock comes back through its old reservation
    stock = {p: mesh.http("GET", "/products/{}".format(p)).json()["quantity"] for p, _ in items}
    cancelled = mesh.http("POST", "/bills/{}/cancel".format(bill_id))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    wait_for(lambda: all(mesh.http("GET", "/products/{}".format(p)).json()["quantity"]
                         == stock[p] + q for p, q in items), 10, "the old bill's stock back")
    assert statuses() == {"confirmed": 3 + EXTRA_BILLS, "returned": 1}
    for engine in engines.values():
        engine.dispose()


def as_upgraded(service, tables):
    """The rows of before the upgrade as the revisions change them on purpose:
    billing's 0003 makes every old bill ``active``, never cancelled, its 0004
    gives each the ``event_id`` of its ``bill_created`` (all still in the outbox),
    and its 0005 knows no one who made or cancelled it."""
    if service != "billing":
        return tables
    created = {}
    for event_id, event_type, payload, _ in tables["outbox_events"]:
        payload = json.loads(payload) if isinstance(payload, str) else payload
        if event_type == "bill_created":
            created[payload["bill"]["id"]] = event_id
    return dict(tables, bills=[tuple(row) + ("active", None, created[row[0]], None, None, None)
                               for row in tables["bills"]])


# --- two instances at once ---------------------------------------------------

@pytest.mark.parametrize("backend, start_from", [
    ("postgresql", "fresh"), ("postgresql", "premigration"), ("sqlite", "premigration")])
def test_two_instances_starting_together(backend, start_from, request, tmp_path, mesh_config,
                                         service_processes, rpc):
    uri = (request.getfixturevalue("postgres_db")() if backend == "postgresql"
           else "sqlite:///{}/inventory.db".format(tmp_path))
    engine = make_engine(uri)
    if start_from == "premigration":
        premigration_schema(engine, "inventory")
        fill_inventory(engine, [(str(uuid.uuid4()), [{"product_id": 1, "quantity": 1}])])
    mesh_config["DB_URIS"]["inventory"] = uri

    service_processes("inventory", 2, mesh_config)

    assert [p["name"] for p in rpc.inventory.list_products()["items"]] == [
        "Computer", "Printer", "Smart Phone"]  # one set of seed rows
    assert revision(engine) == head("inventory")
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM stock_reservations")).scalar_one() == (
            1 if start_from == "premigration" else 0)
    said = sorted(line.split(": ", 1)[1]
                  for n in range(2)
                  for line in (tmp_path / "inventory.{}.log".format(n)).read_text()
                  .splitlines() if "inventory database:" in line)
    first = ("inventory database: empty, created at head {} and seeded".format(head("inventory"))
             if start_from == "fresh" else
             "inventory database: made before migrations, stamped 0001")
    assert len(said) == 2, said
    assert said[0] == "inventory database: at head {}".format(head("inventory")), said
    assert said[1].startswith(first), said
    engine.dispose()


# --- one transaction -----------------------------------------------------------

def test_a_failed_upgrade_changes_nothing_on_postgresql(postgres_db, tmp_path):
    """Stamping and every revision run in the start's one transaction: a
    revision that fails half-way leaves the database made before migrations
    as it was (no alembic_version either), to be tried again."""
    history = tmp_path / "inventory"
    shutil.copytree(os.path.join(MIGRATIONS_DIR, "inventory"), history,
                    ignore=shutil.ignore_patterns("__pycache__"))
    new = "{:04d}".format(int(head("inventory")) + 1)  # the revision after the head
    broken = history / "versions" / "{}_broken.py".format(new)
    broken.write_text(
        "from alembic import op\nimport sqlalchemy as sa\n"
        "revision = '{}'\ndown_revision = '{}'\n".format(new, head("inventory")) +
        "def upgrade():\n"
        "    op.add_column('products', sa.Column('colour', sa.String(20)))\n"
        "    raise RuntimeError('the new revision is broken')\n"
        "def downgrade():\n    pass\n")
    engine = make_engine(postgres_db())
    premigration_schema(engine, "inventory")
    fill_inventory(engine)
    before = table_rows(engine)

    with pytest.raises(RuntimeError, match="the new revision is broken"):
        bootstrap(engine, InventoryBase.metadata, seed_products, migrations=str(history))

    assert table_rows(engine) == before
    columns = {c["name"] for c in inspect(engine).get_columns("products")}
    assert "colour" not in columns and "alembic_version" not in inspect(engine).get_table_names()
    broken.unlink()
    assert bootstrap(engine, InventoryBase.metadata, seed_products, migrations=str(history)) == (
        "inventory database: made before migrations, stamped 0001, upgraded 0001 -> {}".format(
            head("inventory")))
    engine.dispose()


def postgresql_schema(engine):
    """Columns, constraints (with PostgreSQL's names for the unnamed ones) and
    indexes, as the catalogue has them."""
    with engine.connect() as db:
        return {
            "columns": db.execute(text(
                "SELECT table_name, column_name, data_type, character_maximum_length, "
                "is_nullable, column_default FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name != 'alembic_version' "
                "ORDER BY 1, 2")).fetchall(),
            "constraints": db.execute(text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                "AND conrelid::regclass::text != 'alembic_version' ORDER BY 1, 2")).fetchall(),
            "indexes": db.execute(text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' AND tablename != 'alembic_version' "
                "ORDER BY 1, 2")).fetchall(),
        }


@pytest.mark.parametrize("service", sorted(KEYS))
def test_baseline_is_the_schema_made_before_migrations_on_postgresql(service, postgres_db):
    """0001 makes what ``create_all`` made before migrations, down to the names
    PostgreSQL gave the unnamed constraints (``bills_reservation_id_key``),
    which later revisions may have to name."""
    before, migrated = make_engine(postgres_db()), make_engine(postgres_db())
    premigration_schema(before, service)
    with migrated.begin() as connection:
        command.upgrade(alembic_config(service, connection), "0001")
    expected = postgresql_schema(before)
    assert expected["columns"] and postgresql_schema(migrated) == expected
    before.dispose()
    migrated.dispose()
