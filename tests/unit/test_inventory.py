"""inventory alone (``worker_factory``, SQLite, billing mocked)."""
from decimal import Decimal
from unittest.mock import call

import pytest

from helpers import stock
from contracts.errors import InsufficientStock, InvalidInput, ProductNotFound, ReservationReleased


def test_reserve_stock_is_all_or_nothing(inventory, inventory_db):
    engine = inventory_db[0]
    with pytest.raises(InsufficientStock, match=r"product 3 \(Smart Phone\): 9 requested, 8 in stock"):
        inventory.reserve_stock([{"product_id": 1, "quantity": 5}, {"product_id": 3, "quantity": 9}])
    with pytest.raises(ProductNotFound, match="product 7"):
        inventory.reserve_stock([{"product_id": 1, "quantity": 5}, {"product_id": 7, "quantity": 1}])
    assert stock(engine) == {1: 11, 2: 10, 3: 8}

    reservation = inventory.reserve_stock(
        [{"product_id": 3, "quantity": 8}, {"product_id": 1, "quantity": 1}], "r-1")
    assert [(line["product"]["id"], line["quantity"], line["unit_price"])
            for line in reservation["items"]] == [(3, 8, Decimal("5400.00")), (1, 1, Decimal("3200.00"))]
    assert stock(engine) == {1: 10, 2: 10, 3: 0}


def test_reserve_stock_repeated_id_takes_stock_once(inventory, inventory_db):
    first = inventory.reserve_stock([{"product_id": 2, "quantity": 4}], "r-2")
    again = inventory.reserve_stock([{"product_id": 2, "quantity": 4}], "r-2")
    assert again["reservation_id"] == first["reservation_id"] == "r-2"
    assert stock(inventory_db[0])[2] == 6


def test_release_stock_gives_back_once_and_blocks_late_reservations(inventory, inventory_db):
    engine = inventory_db[0]
    inventory.reserve_stock([{"product_id": 2, "quantity": 4}], "r-3")
    assert inventory.release_stock("r-3")["restocked"] is True
    assert inventory.release_stock("r-3")["restocked"] is False
    assert stock(engine)[2] == 10
    with pytest.raises(ReservationReleased):
        inventory.reserve_stock([{"product_id": 2, "quantity": 4}], "r-3")

    # released before it was ever made (the reservation request was late)
    assert inventory.release_stock("r-late")["restocked"] is False
    with pytest.raises(ReservationReleased):
        inventory.reserve_stock([{"product_id": 1, "quantity": 1}], "r-late")
    assert stock(engine) == {1: 11, 2: 10, 3: 8}


def test_stock_changes_leave_as_one_event_naming_every_product(inventory):
    inventory.reserve_stock([{"product_id": 2, "quantity": 1}], "r-a")
    inventory.reserve_stock([{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": 1}])
    inventory.release_stock("r-a")
    inventory.changes.assert_not_called()  # nothing yet: the timer sends them
    inventory.publish_stock_changes()
    inventory.changes.assert_called_once_with("stock_changed", {"product_ids": [1, 2]})
    inventory.publish_stock_changes()  # nothing changed since: nothing sent
    assert inventory.changes.call_count == 1
    inventory.reserve_stock([{"product_id": 3, "quantity": 1}])
    inventory.publish_stock_changes()
    assert inventory.changes.call_args == call("stock_changed", {"product_ids": [3]})


def test_product_validation(inventory):
    with pytest.raises(InvalidInput, match="price"):
        inventory.create_product({"name": "X", "price": "-0.01", "quantity": 1})
    with pytest.raises(InvalidInput, match="quantity"):
        inventory.create_product({"name": "X", "price": "1", "quantity": True})
    product = inventory.create_product({"name": "X", "price": "0.1", "quantity": 0})
    assert product["price"] == Decimal("0.10")


def cancelled(bill_id, reservation_id, *lines):
    return {"event_id": "e-{}".format(bill_id), "type": "bill_cancelled",
            "reservation_id": reservation_id,
            "bill": {"id": bill_id, "items": [{"product_id": pid, "quantity": qty,
                                               "unit_price": "1.00"} for pid, qty in lines]}}


def test_a_cancelled_bills_stock_comes_back_once(inventory, inventory_db):
    engine = inventory_db[0]
    inventory.reserve_stock([{"product_id": 2, "quantity": 4}], "r-c")
    inventory.confirm_reservation({"reservation_id": "r-c"})
    inventory.confirm_reservations()
    assert stock(engine)[2] == 6
    inventory.return_cancelled_stock(cancelled(5, "r-c", (2, 4)))
    inventory.return_cancelled_stock(cancelled(5, "r-c", (2, 4)))  # at least once
    assert stock(engine)[2] == 10
    assert inventory.release_stock("r-c") == {"reservation_id": "r-c", "status": "returned",
                                              "restocked": False}
    assert stock(engine)[2] == 10


def test_a_held_reservation_cancelled_before_its_confirmation_comes_back_once(inventory, inventory_db):
    engine = inventory_db[0]
    inventory.reserve_stock([{"product_id": 1, "quantity": 2}], "r-h")
    inventory.return_cancelled_stock(cancelled(6, "r-h", (1, 2)))
    inventory.confirm_reservation({"reservation_id": "r-h"})  # late: it stays returned
    inventory.confirm_reservations()
    assert stock(engine)[1] == 11


def test_a_bill_made_without_a_reservation_gets_its_stock_back_once(inventory, inventory_db):
    engine = inventory_db[0]
    for _ in range(2):
        inventory.return_cancelled_stock(cancelled(1, None, (1, 1), (3, 2)))
    assert stock(engine) == {1: 12, 2: 10, 3: 10}


def status_of(engine, reservation_id):
    with engine.connect() as db:
        return db.exec_driver_sql("SELECT status FROM stock_reservations WHERE id = ?",
                                  (reservation_id,)).scalar()


def test_confirmations_are_gathered_into_one_statement(inventory, inventory_db):
    engine = inventory_db[0]
    for reservation_id in ("r-1", "r-2"):
        inventory.reserve_stock([{"product_id": 1, "quantity": 1}], reservation_id)
        inventory.confirm_reservation({"reservation_id": reservation_id})
    inventory.confirm_reservation({"reservation_id": "r-1"})  # at least once
    assert status_of(engine, "r-1") == "held"  # not yet: the timer confirms
    statements = []
    real = inventory._confirm
    inventory._confirm = lambda ids: statements.append(sorted(ids)) or real(ids)
    inventory.confirm_reservations()
    inventory.confirm_reservations()  # nothing gathered since: nothing done
    assert statements == [["r-1", "r-2"]]
    assert {status_of(engine, r) for r in ("r-1", "r-2")} == {"confirmed"}


def test_confirmations_that_fail_wait_for_the_next_run(inventory):
    inventory.confirm_reservation({"reservation_id": "r-9"})

    def locked(ids):
        raise RuntimeError("database is locked")

    real, inventory._confirm = inventory._confirm, locked
    with pytest.raises(RuntimeError):
        inventory.confirm_reservations()
    assert inventory.confirmations == {"r-9"}
    inventory._confirm = real
    inventory.confirm_reservations()
    assert not inventory.confirmations
