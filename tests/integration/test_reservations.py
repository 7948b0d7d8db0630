"""Reservation states (issue 12, point 2) against the real RabbitMQ: a held
reservation no bill confirms comes back after RESERVATION_TTL; a bill's
reservation is confirmed by its bill_created, and one whose confirmation is
late is never given back, also while billing is down."""
import logging
import time

from sqlalchemy.orm import Session

from contracts.wire import utc_now
from helpers import query, wait_for
from mesh.db import make_engine
import services.inventory as inventory
from services.billing_models import Bill

TTL_S = 2


def short_ttl(config):
    config.update(RPC_TIMEOUT=1, RESERVATION_TTL=TTL_S)
    return config


def status_of(config, reservation_id):
    rows = query(config, "inventory", "SELECT status FROM stock_reservations WHERE id = '{}'"
                 .format(reservation_id))
    return rows[0][0] if rows else None


def stock_of(config, product_id):
    return query(config, "inventory", "SELECT quantity FROM products WHERE id = {}"
                 .format(product_id))[0][0]


def test_a_held_reservation_without_a_bill_comes_back_after_the_ttl(start_mesh, mesh_config,
                                                                     rpc):
    config = short_ttl(mesh_config)
    start_mesh(config, "inventory", "billing")
    before = stock_of(config, 1)
    rpc.inventory.reserve_stock([{"product_id": 1, "quantity": 2}], "r-abandoned")
    assert status_of(config, "r-abandoned") == "held"
    assert rpc.inventory.get_product(1)["quantity"] == before - 2  # shown: not held
    wait_for(lambda: status_of(config, "r-abandoned") == "released", TTL_S + 10,
             "the abandoned reservation given back after RESERVATION_TTL")
    assert stock_of(config, 1) == before
    assert rpc.inventory.get_product(1)["quantity"] == before


def test_a_bills_reservation_is_confirmed_by_bill_created(start_mesh, mesh_config, rpc):
    mesh_config["RESERVATION_TTL"] = 600  # the event confirms it, not the sweep
    start_mesh(mesh_config, "customers", "inventory", "billing")
    before = stock_of(mesh_config, 2)
    bill = rpc.billing.create_bill(1, [{"product_id": 2, "quantity": 3}])
    (reservation_id,) = query(mesh_config, "billing",
                              "SELECT reservation_id FROM bills WHERE id = {}".format(bill["id"]))[0]
    wait_for(lambda: status_of(mesh_config, reservation_id) == "confirmed", 10,
             "the reservation confirmed by the bill's bill_created")
    assert stock_of(mesh_config, 2) == before - 3
    # a late release (a compensation arriving after the commit) keeps the stock sold
    answer = rpc.inventory.release_stock(reservation_id)
    assert answer == {"reservation_id": reservation_id, "status": "confirmed",
                      "restocked": False}
    assert stock_of(mesh_config, 2) == before - 3


def test_a_committed_bills_reservation_is_never_given_back_while_billing_is_down(
        start_mesh, mesh_config, rpc, service_processes, caplog, monkeypatch):
    config = short_ttl(mesh_config)
    # the sweep's warning is said at most every 30 s per process: say it here
    monkeypatch.setattr(inventory, "_last_sweep_warning", [float("-inf")])
    (billing,) = service_processes("billing", 1, config)  # makes billing's database
    billing.terminate()
    billing.wait(timeout=30)
    start_mesh(config, "inventory")
    before = stock_of(config, 3)
    rpc.inventory.reserve_stock([{"product_id": 3, "quantity": 1}], "r-late")
    # its bill committed, but its bill_created has not reached inventory
    engine = make_engine(config["DB_URIS"]["billing"])
    with Session(engine) as session:
        session.add(Bill(customer_id=1, billing_date=utc_now(), reservation_id="r-late"))
        session.commit()
    engine.dispose()

    with caplog.at_level(logging.WARNING, logger="services.inventory"):
        wait_for(lambda: any("kept until billing answers" in r.getMessage()
                             for r in caplog.records), TTL_S + 10,
                 "the sweep finding billing down")
    assert status_of(config, "r-late") == "held"
    assert stock_of(config, 3) == before - 1

    service_processes("billing", 1, config)
    wait_for(lambda: status_of(config, "r-late") == "confirmed", 15,
             "the reservation confirmed once billing said it has a bill")
    assert stock_of(config, 3) == before - 1


def test_a_cancellation_handled_long_after_its_request_gives_the_stock_back(
        start_mesh, service_processes, mesh_config):
    """inventory down while a bill is cancelled through the gateway: the event
    waits in its queue past the request's deadline, and when inventory comes
    back it still gives the stock back (an event is not bound by the deadline
    of the request that sent it)."""
    config = dict(mesh_config, RPC_TIMEOUT=1, RESERVATION_TTL=600)
    (first,) = service_processes("inventory", 1, config)
    mesh = start_mesh(config, "customers", "billing", "gateway")
    before = stock_of(config, 2)
    made = mesh.http("POST", "/bills", json={"customer_id": 1, "items": [
        {"product_id": 2, "quantity": 3}]})
    assert made.status_code == 201, made.text
    (reservation_id,) = query(config, "billing", "SELECT reservation_id FROM bills WHERE id = {}"
                              .format(made.json()["id"]))[0]
    wait_for(lambda: status_of(config, reservation_id) == "confirmed", 10, "confirmed")
    first.kill()
    first.wait()

    cancelled = mesh.http("POST", "/bills/{}/cancel".format(made.json()["id"]))
    assert cancelled.status_code == 200, cancelled.text
    time.sleep(config["RPC_TIMEOUT"] + 1)  # the request's deadline is long past
    service_processes("inventory", 1, config)
    wait_for(lambda: status_of(config, reservation_id) == "returned", 15,
             "the cancelled bill's stock returned once inventory is back")
    assert stock_of(config, 2) == before
