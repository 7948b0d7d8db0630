"""Each service's logic alone: ``worker_factory`` with a real SQLite session and
mocks for the other services (no broker)."""
import time
from decimal import Decimal
from unittest.mock import call

import pytest
from nameko.testing.services import worker_factory

from mesh.cache import TaggedCache
from mesh.db import bootstrap, database_wrapper, make_engine, session_factory
from mesh.errors import DeadlineExceeded, InvalidInput, ServiceUnavailable
from services.billing import BillingService
from services.customers import CustomersService
from services.exceptions import (
    CustomerHasBills, CustomerNotFound, EmailTaken, InsufficientStock,
    ProductNotFound, ReservationReleased,
)
from services.inventory import InventoryService
from services.models import Bill, BillingBase, CustomersBase, InventoryBase, Product
from services.seed import seed_bills, seed_customers, seed_products


def seeded_db(tmp_path, base, seed, deadline=None):
    engine = make_engine("sqlite:///{}/{}.db".format(tmp_path, base.__name__))
    bootstrap(engine, base.metadata, seed)
    return engine, database_wrapper(session_factory(engine), deadline)


@pytest.fixture
def customers(tmp_path):
    _engine, db = seeded_db(tmp_path, CustomersBase, seed_customers)
    return worker_factory(CustomersService, db=db)


@pytest.fixture
def inventory_db(tmp_path):
    return seeded_db(tmp_path, InventoryBase, seed_products)


@pytest.fixture
def inventory(inventory_db):
    return worker_factory(InventoryService, db=inventory_db[1], stock_changes=set())


def stock(engine):
    with session_factory(engine)() as session:
        return {p.id: p.quantity for p in session.query(Product)}


# customers -----------------------------------------------------------------

def test_customers_create_validates_and_keeps_emails_unique(customers):
    created = customers.create_customer({"name": " Ali ", "email": "ali@mail.com"})
    assert created == {"id": 4, "name": "Ali", "email": "ali@mail.com"}
    with pytest.raises(EmailTaken, match="ali@mail.com"):
        customers.create_customer({"name": "Other", "email": "ali@mail.com"})
    with pytest.raises(InvalidInput, match="email"):
        customers.create_customer({"name": "X", "email": "x"})
    with pytest.raises(InvalidInput, match="name"):
        customers.create_customer({"name": "", "email": "y@mail.com"})
    assert customers.list_customers()["page"]["total_items"] == 4


def test_customers_get_many_in_one_call(customers):
    assert [c["id"] for c in customers.get_customers([3, 1, 42])["items"]] == [1, 3]
    with pytest.raises(CustomerNotFound):
        customers.get_customer(42)


def test_customers_delete_asks_billing_first(customers):
    customers.billing.count_bills.return_value = 2
    with pytest.raises(CustomerHasBills):
        customers.delete_customer(1)
    customers.billing.count_bills.assert_called_once_with(customer_id=1)
    assert customers.get_customer(1)["name"] == "Mohamed"
    customers.billing.count_bills.return_value = 0
    assert customers.delete_customer(1) == {"id": 1, "deleted": True}
    with pytest.raises(CustomerNotFound):
        customers.get_customer(1)


# inventory -----------------------------------------------------------------

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


def test_no_commit_after_the_callers_deadline(tmp_path):
    engine, late_db = seeded_db(tmp_path, InventoryBase, seed_products, deadline=time.time() - 1)
    late = worker_factory(InventoryService, db=late_db)
    with pytest.raises(DeadlineExceeded):
        late.reserve_stock([{"product_id": 1, "quantity": 1}])
    assert stock(engine)[1] == 11


def test_product_validation(inventory):
    with pytest.raises(InvalidInput, match="price"):
        inventory.create_product({"name": "X", "price": "-0.01", "quantity": 1})
    with pytest.raises(InvalidInput, match="quantity"):
        inventory.create_product({"name": "X", "price": "1", "quantity": True})
    product = inventory.create_product({"name": "X", "price": "0.1", "quantity": 0})
    assert product["price"] == Decimal("0.10")


# billing -------------------------------------------------------------------

@pytest.fixture
def billing(tmp_path):
    engine, db = seeded_db(tmp_path, BillingBase, seed_bills)
    service = worker_factory(BillingService, db=db, dispatched=set(),
                             customer_cache=TaggedCache(ttl=30, size=100))
    service.customers.get_customer.return_value = {"id": 2, "name": "Imane", "email": "imane@gmail.com"}
    service.engine = engine
    return service


def reservation(*lines):
    return {"reservation_id": "r", "items": [
        {"product": {"id": pid, "name": "P{}".format(pid), "price": price, "quantity": 0},
         "quantity": qty, "unit_price": price} for pid, qty, price in lines]}


def bills_in(billing):
    with session_factory(billing.engine)() as session:
        return session.query(Bill).count()


def test_create_bill_stores_prices_and_dispatches_after_commit(billing):
    billing.inventory.reserve_stock.return_value = reservation((4, 3, Decimal("19.99")))
    seen_at_dispatch = []
    billing.dispatch.side_effect = lambda *args: seen_at_dispatch.append(bills_in(billing))

    bill = billing.create_bill(2, [{"product_id": 4, "quantity": 3}])

    assert bill["total"] == Decimal("59.97")
    assert [(i["product"]["id"], i["line_total"]) for i in bill["items"]] == [(4, Decimal("59.97"))]
    assert seen_at_dispatch == [4]  # the bill was committed before the event left
    name, payload = billing.dispatch.call_args.args
    assert name == "bill_created"
    assert payload["bill"] == {
        "id": bill["id"], "customer_id": 2, "billing_date": bill["billing_date"].isoformat(),
        "items": [{"product_id": 4, "quantity": 3, "unit_price": "19.99"}], "total": "59.97"}
    assert payload["type"] == "bill_created" and len(payload["event_id"]) == 36
    billing.inventory_compensation.release_stock.assert_not_called()


def test_create_bill_gives_stock_back_when_storing_fails(billing, monkeypatch):
    billing.inventory.reserve_stock.return_value = reservation((4, 3, Decimal("19.99")))
    def store_fails(self, request, reservation):
        raise RuntimeError("disk full")

    monkeypatch.setattr(BillingService, "_store", store_fails)
    with pytest.raises(RuntimeError):
        billing.create_bill(2, [{"product_id": 4, "quantity": 3}])
    reservation_id = billing.inventory.reserve_stock.call_args.args[1]
    assert billing.inventory_compensation.release_stock.call_args == call(reservation_id)
    billing.dispatch.assert_not_called()


def test_create_bill_releases_when_inventory_does_not_answer(billing):
    billing.inventory.reserve_stock.side_effect = ServiceUnavailable("inventory.reserve_stock did not answer")
    with pytest.raises(ServiceUnavailable):
        billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    billing.inventory_compensation.release_stock.assert_called_once()
    assert bills_in(billing) == 3


def test_create_bill_refused_stock_needs_no_release(billing):
    billing.inventory.reserve_stock.side_effect = InsufficientStock("product 1 (Computer): 99 requested")
    with pytest.raises(InsufficientStock):
        billing.create_bill(2, [{"product_id": 1, "quantity": 99}])
    billing.inventory_compensation.release_stock.assert_not_called()
    assert bills_in(billing) == 3


def test_create_bill_checks_the_customer_first(billing):
    billing.customers.get_customer.side_effect = CustomerNotFound("customer 9 does not exist")
    with pytest.raises(CustomerNotFound):
        billing.create_bill(9, [{"product_id": 1, "quantity": 1}])
    billing.inventory.reserve_stock.assert_not_called()


def test_billing_asks_customers_once_per_customer_until_evicted(billing):
    billing.inventory.reserve_stock.side_effect = lambda items, reservation_id: dict(
        reservation((1, 1, Decimal("3200.00"))), reservation_id=reservation_id)
    for _ in range(3):
        billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    assert billing.customers.get_customer.call_count == 1
    billing.evict_customer({"customer_id": 2})
    billing.customers.get_customer.return_value = {"id": 2, "name": "Imane B",
                                                   "email": "imane@gmail.com"}
    bill = billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    assert bill["customer"]["name"] == "Imane B"
    assert billing.customers.get_customer.call_count == 2


def test_unknown_customers_are_not_cached(billing):
    billing.customers.get_customer.side_effect = CustomerNotFound("customer 9 does not exist")
    for _ in range(2):
        with pytest.raises(CustomerNotFound):
            billing.create_bill(9, [{"product_id": 1, "quantity": 1}])
    assert billing.customers.get_customer.call_count == 2


def test_full_bill_makes_one_call_per_service(billing):
    billing.customers.get_customer.call_async.return_value.result.return_value = {"id": 3, "name": "Yassine"}
    billing.inventory.get_products.call_async.return_value.result.return_value = {"items": [
        {"id": 1, "name": "Computer"}, {"id": 2, "name": "Printer"}, {"id": 3, "name": "Smart Phone"}]}
    full = billing.get_full_bill(3)
    billing.customers.get_customer.call_async.assert_called_once_with(3)
    billing.inventory.get_products.call_async.assert_called_once_with([1, 2, 3])
    assert full["customer"]["name"] == "Yassine"
    assert full["total"] == Decimal("3") * (Decimal("3200") + Decimal("1299") + Decimal("5400"))


def test_count_bills_by_customer_and_product(billing):
    assert billing.count_bills(customer_id=2) == 1
    assert billing.count_bills(product_id=3) == 3
    assert billing.count_bills(customer_id=7) == 0


def test_seeded_bills_have_their_events_in_the_outbox(billing):
    from services.models import OutboxEvent
    with session_factory(billing.engine)() as session:
        events = session.query(OutboxEvent).order_by(OutboxEvent.created_at).all()
    assert [e.payload["bill"]["customer_id"] for e in events] == [1, 2, 3]
    assert [e.payload["bill"]["total"] for e in events] == ["9899.00", "19798.00", "29697.00"]
    assert all(e.dispatched_at is None for e in events)


def test_outbox_relay_sends_what_is_left_then_marks_it(billing, monkeypatch):
    import services.billing as billing_module
    from services.models import OutboxEvent
    monkeypatch.setattr(billing_module, "OUTBOX_GRACE_S", -1)  # seeded events count as old
    billing.relay_outbox()
    sent = [call.args[1]["bill"]["id"] for call in billing.dispatch.call_args_list]
    assert sent == [1, 2, 3]
    billing.relay_outbox()  # marks what the first run sent
    with session_factory(billing.engine)() as session:
        assert all(e.dispatched_at is not None for e in session.query(OutboxEvent))
    assert billing.dispatched == set()
    billing.relay_outbox()
    assert billing.dispatch.call_count == 3  # nothing sent twice once marked


def test_new_bill_event_leaves_at_once_and_the_relay_marks_it(billing):
    from services.models import OutboxEvent

    def event_of(bill):
        with session_factory(billing.engine)() as session:
            return session.query(OutboxEvent).filter(
                OutboxEvent.payload["bill"]["id"].as_integer() == bill["id"]).one()

    billing.inventory.reserve_stock.return_value = reservation((1, 1, Decimal("3200.00")))
    bill = billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    event = event_of(bill)
    assert billing.dispatch.call_args.args[1]["event_id"] == event.event_id
    assert event.dispatched_at is None and billing.dispatched == {event.event_id}
    billing.relay_outbox()  # within the grace period: marks it, sends nothing again
    assert event_of(bill).dispatched_at is not None
    assert billing.dispatch.call_count == 1


def test_events_dispatched_but_not_yet_marked_are_not_relayed_again(billing, monkeypatch):
    import services.billing as billing_module
    monkeypatch.setattr(billing_module, "OUTBOX_GRACE_S", -1)
    billing.inventory.reserve_stock.return_value = reservation((1, 1, Decimal("3200.00")))
    billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    billing.relay_outbox()
    sent = [call.args[1]["bill"]["id"] for call in billing.dispatch.call_args_list]
    assert sent == [4, 1, 2, 3]  # the new bill once, then the seeded ones


def test_a_failed_dispatch_does_not_fail_a_committed_bill(billing):
    from services.models import OutboxEvent
    billing.inventory.reserve_stock.return_value = reservation((1, 1, Decimal("3200.00")))
    billing.dispatch.side_effect = ConnectionError("broker away")
    bill = billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    assert bill["total"] == Decimal("3200.00")
    with session_factory(billing.engine)() as session:
        waiting = session.query(OutboxEvent).filter(OutboxEvent.dispatched_at.is_(None)).count()
    assert waiting == 4  # the three seeded events and this bill's, left for the relay
    billing.inventory_compensation.release_stock.assert_not_called()
