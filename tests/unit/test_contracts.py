"""The contracts package: what crosses a process boundary, defined once."""
import datetime
from decimal import Decimal

from contracts import errors, services, topics
from contracts.events import bill_cancelled_event, bill_created_event


def test_bill_created_payload():
    bill = {"id": 4, "customer_id": 1,
            "billing_date": datetime.datetime(2026, 11, 24, 10, 0, tzinfo=datetime.timezone.utc),
            "items": [{"id": 9, "product_id": 2, "quantity": 3, "unit_price": Decimal("1299.00")},
                      {"id": 10, "product_id": 3, "quantity": 1, "unit_price": Decimal("0.10")}]}
    event = bill_created_event(bill, event_id="e-1", occurred_at="2026-11-24T10:00:01+00:00")
    assert event == {
        "event_id": "e-1", "type": "bill_created", "occurred_at": "2026-11-24T10:00:01+00:00",
        "reservation_id": None,
        "bill": {"id": 4, "customer_id": 1, "billing_date": "2026-11-24T10:00:00+00:00",
                 "items": [{"product_id": 2, "quantity": 3, "unit_price": "1299.00"},
                           {"product_id": 3, "quantity": 1, "unit_price": "0.10"}],
                 "total": "3897.10"}}
    assert len(bill_created_event(bill)["event_id"]) == 36
    assert bill_created_event(bill, reservation_id="r-1")["reservation_id"] == "r-1"


def test_bill_cancelled_payload_is_the_bill_at_the_cancellations_time():
    bill = {"id": 4, "customer_id": 1, "billing_date": datetime.datetime(
                2026, 11, 24, 10, 0, tzinfo=datetime.timezone.utc),
            "items": [{"product_id": 2, "quantity": 3, "unit_price": Decimal("1299")}]}
    cancelled_at = datetime.datetime(2026, 11, 24, 11, 0, tzinfo=datetime.timezone.utc)
    event = bill_cancelled_event(bill, cancelled_at, event_id="e-2", reservation_id="r-1")
    assert event == {
        "event_id": "e-2", "type": "bill_cancelled", "occurred_at": "2026-11-24T11:00:00+00:00",
        "reservation_id": "r-1",
        "bill": {"id": 4, "customer_id": 1, "billing_date": "2026-11-24T10:00:00+00:00",
                 "items": [{"product_id": 2, "quantity": 3, "unit_price": "1299.00"}],
                 "total": "3897.00", "status": "cancelled",
                 "cancelled_at": "2026-11-24T11:00:00+00:00"}}


def test_every_error_code_is_unique_and_has_a_status():
    codes = [cls.code for cls in errors.all_errors()]
    assert len(codes) == len(set(codes)), codes
    assert all(cls.status in (400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503)
               for cls in errors.all_errors())
    assert errors.CustomerNotFound("x").status == 404


def test_names_are_consistent():
    assert set(services.REQUIRED_SERVICES) <= set(services.RPC_SERVICES)
    assert {source for source, _ in services.EVENTS} <= set(services.RPC_SERVICES)
    assert topics.ALL_TOPICS[0] == topics.BILLS_TOPIC
