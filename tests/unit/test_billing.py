"""billing alone (``worker_factory``, SQLite, its outbox real, customers and
inventory mocked)."""
from decimal import Decimal
from unittest.mock import call

import pytest

from contracts.errors import BillNotFound, CustomerNotFound, InsufficientStock, ServiceUnavailable
from mesh.db import session_factory
from services.billing import BillingService
from services.billing_models import Bill, OutboxEvent


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
    billing.outbox.publish.side_effect = lambda *args: seen_at_dispatch.append(bills_in(billing))

    bill = billing.create_bill(2, [{"product_id": 4, "quantity": 3}])

    assert bill["total"] == Decimal("59.97")
    assert [(i["product"]["id"], i["line_total"]) for i in bill["items"]] == [(4, Decimal("59.97"))]
    assert seen_at_dispatch == [4]  # the bill was committed before the event left
    name, payload = billing.outbox.publish.call_args.args
    assert name == "bill_created"
    assert payload["bill"] == {
        "id": bill["id"], "customer_id": 2, "billing_date": bill["billing_date"].isoformat(),
        "items": [{"product_id": 4, "quantity": 3, "unit_price": "19.99"}], "total": "59.97"}
    assert payload["type"] == "bill_created" and len(payload["event_id"]) == 36
    billing.inventory_compensation.release_stock.assert_not_called()


def test_create_bill_gives_stock_back_when_storing_fails(billing, monkeypatch):
    billing.inventory.reserve_stock.return_value = reservation((4, 3, Decimal("19.99")))
    def store_fails(self, *args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(BillingService, "_store", store_fails)
    with pytest.raises(RuntimeError):
        billing.create_bill(2, [{"product_id": 4, "quantity": 3}])
    reservation_id = billing.inventory.reserve_stock.call_args.args[1]
    assert billing.inventory_compensation.release_stock.call_args == call(reservation_id)
    billing.outbox.publish.assert_not_called()


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
    billing.customers.get_customer.return_value = {"id": 3, "name": "Yassine"}
    billing.inventory.get_products.return_value = {"items": [
        {"id": 1, "name": "Computer"}, {"id": 2, "name": "Printer"}, {"id": 3, "name": "Smart Phone"}]}
    full = billing.get_full_bill(3)
    billing.customers.get_customer.assert_awaited_once_with(3)
    billing.inventory.get_products.assert_awaited_once_with([1, 2, 3])
    assert full["customer"]["name"] == "Yassine"
    assert full["total"] == Decimal("3") * (Decimal("3200") + Decimal("1299") + Decimal("5400"))


def test_count_bills_by_customer_and_product(billing):
    assert billing.count_bills(customer_id=2) == 1
    assert billing.count_bills(product_id=3) == 3
    assert billing.count_bills(customer_id=7) == 0


def test_seeded_bills_have_their_events_in_the_outbox(billing):
    with session_factory(billing.engine)() as session:
        events = session.query(OutboxEvent).order_by(OutboxEvent.created_at).all()
    assert [e.payload["bill"]["customer_id"] for e in events] == [1, 2, 3]
    assert [e.payload["bill"]["total"] for e in events] == ["9899.00", "19798.00", "29697.00"]
    assert all(e.dispatched_at is None for e in events)


def test_outbox_relay_sends_what_is_left_then_marks_it(billing, monkeypatch):
    billing.outbox.grace_s = -1  # seeded events count as old
    billing.relay_outbox()
    sent = [call.args[1]["bill"]["id"] for call in billing.outbox.publish.call_args_list]
    assert sent == [1, 2, 3]
    billing.relay_outbox()  # marks what the first run sent
    with session_factory(billing.engine)() as session:
        assert all(e.dispatched_at is not None for e in session.query(OutboxEvent))
    assert billing.outbox.dispatched == set()
    billing.relay_outbox()
    assert billing.outbox.publish.call_count == 3  # nothing sent twice once marked


def test_new_bill_event_leaves_at_once_and_the_relay_marks_it(billing):

    def event_of(bill):
        with session_factory(billing.engine)() as session:
            return session.query(OutboxEvent).filter(
                OutboxEvent.payload["bill"]["id"].as_integer() == bill["id"]).one()

    billing.inventory.reserve_stock.return_value = reservation((1, 1, Decimal("3200.00")))
    bill = billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    event = event_of(bill)
    assert billing.outbox.publish.call_args.args[1]["event_id"] == event.event_id
    assert event.dispatched_at is None and billing.outbox.dispatched == {event.event_id}
    billing.relay_outbox()  # within the grace period: marks it, sends it not again
    assert event_of(bill).dispatched_at is not None
    sent = [call.args[1]["event_id"] for call in billing.outbox.publish.call_args_list]
    assert sent.count(event.event_id) == 1


def test_seeded_events_are_relayed_at_once(billing):
    """No request dispatches the seeded bills' events: the first relay sends
    them, without the grace period a request's event gets."""
    billing.relay_outbox()
    sent = [call.args[1]["bill"]["id"] for call in billing.outbox.publish.call_args_list]
    assert sent == [1, 2, 3]
    assert billing.get_outbox_backlog() == 3  # sent, marked by the next run
    billing.relay_outbox()
    assert billing.get_outbox_backlog() == 0


def test_events_dispatched_but_not_yet_marked_are_not_relayed_again(billing, monkeypatch):
    billing.outbox.grace_s = -1
    billing.inventory.reserve_stock.return_value = reservation((1, 1, Decimal("3200.00")))
    billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    billing.relay_outbox()
    sent = [call.args[1]["bill"]["id"] for call in billing.outbox.publish.call_args_list]
    assert sent == [4, 1, 2, 3]  # the new bill once, then the seeded ones


def test_a_failed_dispatch_does_not_fail_a_committed_bill(billing):
    billing.inventory.reserve_stock.return_value = reservation((1, 1, Decimal("3200.00")))
    billing.outbox.publish.side_effect = ConnectionError("broker away")
    bill = billing.create_bill(2, [{"product_id": 1, "quantity": 1}])
    assert bill["total"] == Decimal("3200.00")
    with session_factory(billing.engine)() as session:
        waiting = session.query(OutboxEvent).filter(OutboxEvent.dispatched_at.is_(None)).count()
    assert waiting == 4  # the three seeded events and this bill's, left for the relay
    billing.inventory_compensation.release_stock.assert_not_called()


def test_cancel_bill_keeps_the_bill_and_sends_bill_cancelled_once(billing):
    seen_at_dispatch = []

    def status_at_dispatch(*args):
        with session_factory(billing.engine)() as session:
            seen_at_dispatch.append(session.get(Bill, 1).status)

    billing.outbox.publish.side_effect = status_at_dispatch
    cancelled = billing.cancel_bill(1)
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] is not None
    assert seen_at_dispatch == ["cancelled"]  # committed before the event left
    name, payload = billing.outbox.publish.call_args.args
    assert name == "bill_cancelled"
    assert payload["bill"]["id"] == 1 and payload["bill"]["status"] == "cancelled"
    assert payload["occurred_at"] == cancelled["cancelled_at"].isoformat()

    again = billing.cancel_bill(1)
    assert again == cancelled  # the same bill, and no second event
    assert billing.outbox.publish.call_count == 1
    assert billing.get_bill(2)["status"] == "active"
    with session_factory(billing.engine)() as session:
        assert session.query(OutboxEvent).filter_by(event_type="bill_cancelled").count() == 1


def test_cancel_unknown_bill_is_not_found(billing):
    with pytest.raises(BillNotFound):
        billing.cancel_bill(999)
    billing.outbox.publish.assert_not_called()


def test_the_ledger_counts_active_bills_revenue_and_events(billing):
    seeded = billing.get_ledger()
    assert seeded == {"bills": 3, "revenue": Decimal("59394.00"), "events": 3}
    billing.cancel_bill(2)
    assert billing.get_ledger() == {"bills": 2, "revenue": Decimal("59394.00") - 2 * Decimal("19798.00") / 2,
                                    "events": 4}


def test_bill_events_are_given_again_as_they_first_left(billing):
    billing.inventory.reserve_stock.return_value = reservation((4, 3, Decimal("19.99")))
    billing.create_bill(2, [{"product_id": 4, "quantity": 3}])
    billing.cancel_bill(1)
    sent = [call.args[1] for call in billing.outbox.publish.call_args_list]
    pages, after = [], None
    while True:
        page = billing.list_bill_events(after=after, size=2)
        pages.append(page["items"])
        after = page["next"]
        if after is None:
            break
    given = [event for page in pages for event in page]
    assert [len(page) for page in pages] == [2, 2, 1]
    # in time order: the three seeded bills, bill 4, then bill 1's cancellation
    assert [(event["type"], event["bill"]["id"]) for event in given] == [
        ("bill_created", 1), ("bill_created", 2), ("bill_created", 3),
        ("bill_created", 4), ("bill_cancelled", 1)]
    assert given[3:] == sent  # the same ids, times and payloads as they first left
    with session_factory(billing.engine)() as session:
        seeded = [row.payload for row in session.query(OutboxEvent).order_by(OutboxEvent.created_at)]
    assert given[:3] == seeded[:3]
    until = given[3]["occurred_at"]
    assert [event["bill"]["id"] for event in billing.list_bill_events(until=until)["items"]] == [
        1, 2, 3, 4]
