"""The contracts package: what crosses a process boundary, defined once."""
import datetime
import os
from decimal import Decimal

from honcho.environ import parse_procfile

from common.config import ROOT
from contracts import errors, events, services, topics
from contracts.events import (
    BRIDGE_CANCEL_HANDLER, BRIDGE_CANCEL_QUEUE, BRIDGE_HANDLER, BRIDGE_QUEUE, CONFIRM_HANDLER,
    CONFIRM_QUEUE, RETURN_HANDLER, RETURN_QUEUE, bill_cancelled_event, bill_created_event,
)
from services.inventory import InventoryService
from services.kafka_bridge import KafkaBridgeService


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


def test_the_bridge_queue_is_the_bridge_handlers_queue():
    """billing's outbox declares the queue nameko derives from the bridge's
    handler: the names must agree."""
    assert KafkaBridgeService.forward_bill_created.__name__ == BRIDGE_HANDLER
    assert BRIDGE_QUEUE == "evt-billing-bill_created--kafka_bridge.forward_bill_created"


def test_the_confirm_queue_is_inventorys_handlers_queue():
    assert InventoryService.confirm_reservation.__name__ == CONFIRM_HANDLER
    assert CONFIRM_QUEUE == "evt-billing-bill_created--inventory.confirm_reservation"


def test_the_cancellation_queues_are_their_handlers_queues():
    assert KafkaBridgeService.forward_bill_cancelled.__name__ == BRIDGE_CANCEL_HANDLER
    assert BRIDGE_CANCEL_QUEUE == "evt-billing-bill_cancelled--kafka_bridge.forward_bill_cancelled"
    assert InventoryService.return_cancelled_stock.__name__ == RETURN_HANDLER
    assert RETURN_QUEUE == "evt-billing-bill_cancelled--inventory.return_cancelled_stock"


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
    assert all(cls.status in (400, 401, 403, 404, 405, 409, 413, 415, 500, 503)
               for cls in errors.all_errors())
    assert errors.CustomerNotFound("x").status == 404


def test_names_are_consistent():
    assert set(services.REQUIRED_SERVICES) <= set(services.RPC_SERVICES)
    assert {source for source, _ in events.EVENTS} <= set(services.RPC_SERVICES)
    assert topics.ALL_TOPICS[0] == topics.BILLS_TOPIC


def test_the_procfile_runs_every_named_process():
    """The Procfile (and so docker-compose.yml, tests/unit/test_compose.py) names
    processes as contracts.services does."""
    with open(os.path.join(ROOT, "Procfile")) as handle:
        processes = set(parse_procfile(handle.read()).processes)
    assert processes == set(services.RPC_SERVICES) | {services.GATEWAY, services.STREAMS}
