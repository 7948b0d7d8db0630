"""``mesh.inbox`` on a real SQLite file, no broker: the recorded answer is the
answer exactly (``Decimal``, aware ``datetime``), it commits with the effect or
not at all, and the work after the effect waits for that commit."""
import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from helpers import seeded_db
from mesh.db import session_factory
from mesh.inbox import (
    CALL_KEY, Call, CallDatabase, _calls, after_commit, decode_answer, encode_answer,
    recorded_answer,
)
from services.billing_models import Bill, BillingBase, BillingInbox
from services.billing_seed import seed_bills

JSON = "application/json"
FULL_BILL = {
    "id": 4, "billing_date": datetime.datetime(2026, 12, 1, 14, 3, 55, 123456,
                                               tzinfo=datetime.timezone.utc),
    "customer": {"id": 1, "name": "Mohamed", "email": "med@gmail.com"},
    "items": [{"id": 10, "product": {"id": 2, "name": "Printer", "price": Decimal("1299.00"),
                                     "quantity": 7},
               "quantity": 3, "unit_price": Decimal("1299.00"), "line_total": Decimal("3897.00")}],
    "total": Decimal("3897.00")}


def identity(call_id="c-1", redelivered=False):
    return {"id": call_id, "method": "billing.create_bill", "content_type": JSON,
            "redelivered": redelivered}


@pytest.fixture
def billing_db(tmp_path):
    engine, _ = seeded_db(tmp_path, BillingBase, seed_bills)
    make = session_factory(engine)

    def start(call_id="c-1", redelivered=False):
        call = Call(BillingInbox, identity(call_id, redelivered),
                    lambda: make(info={CALL_KEY: call}))
        return call, CallDatabase(call)

    start.read = lambda: make()
    return start


def bills(session):
    return session.scalar(select(func.count()).select_from(Bill))


def test_the_answer_keeps_decimal_and_datetime_exactly():
    again = decode_answer(encode_answer(FULL_BILL, JSON), JSON)
    assert again == FULL_BILL
    assert type(again["total"]) is Decimal and str(again["total"]) == "3897.00"
    assert again["billing_date"].utcoffset() == datetime.timedelta(0)
    assert again["billing_date"].microsecond == 123456


def test_the_answer_commits_with_the_effect_and_reads_back_exactly(billing_db):
    call, db = billing_db()
    with db.get_session() as session:
        session.add(Bill(customer_id=1, billing_date=FULL_BILL["billing_date"]))
    # the block flushed, nothing is committed until the call finishes
    with billing_db.read() as other:
        assert bills(other) == 3
    assert call.finish(FULL_BILL, None) == (FULL_BILL, None)
    with billing_db.read() as other:
        assert bills(other) == 4
        found, answer = recorded_answer(other, BillingInbox, "c-1")
    assert found and answer == FULL_BILL
    assert [type(v) for v in (answer["total"], answer["items"][0]["unit_price"])] == [Decimal] * 2


def test_an_error_commits_nothing_and_records_nothing(billing_db):
    call, db = billing_db()
    with db.get_session() as session:
        session.add(Bill(customer_id=1))
    error = RuntimeError("the method failed after its block")
    result, exc_info = call.finish(None, (RuntimeError, error, None))
    assert exc_info[1] is error
    db.close()
    with billing_db.read() as other:
        assert bills(other) == 3
        assert recorded_answer(other, BillingInbox, "c-1") == (False, None)


def test_an_answer_handed_in_the_block_commits_at_its_exit(billing_db):
    call, db = billing_db()
    with db.get_session() as session:
        session.add(Bill(customer_id=1))
        session.answer_call({"id": 4})
    with billing_db.read() as other:
        assert bills(other) == 4 and recorded_answer(other, BillingInbox, "c-1") == (True, {"id": 4})
    assert call.finish({"id": 4}, None) == ({"id": 4}, None)


def test_work_after_the_block_waits_for_the_commit_and_is_dropped_on_rollback(billing_db):
    class Worker:  # a stand-in for nameko's WorkerContext (a weak key)
        pass

    sent = []
    for outcome in ("commits", "fails"):
        worker = Worker()
        call, db = billing_db(call_id=outcome)
        _calls[worker] = call
        with db.get_session() as session:
            session.add(Bill(customer_id=1))
        after_commit(worker, sent.append, outcome)
        assert sent == ([] if outcome == "commits" else ["commits"])
        if outcome == "commits":
            call.finish({"ok": True}, None)
        else:
            call.finish(None, (RuntimeError, RuntimeError("no"), None))
            db.close()
    assert sent == ["commits"]


def test_a_twin_that_committed_first_is_answered(billing_db):
    first, db = billing_db()
    with db.get_session() as session:
        session.add(Bill(customer_id=1))
    first.finish({"id": 4}, None)
    # the same call again (a publisher's retry: not flagged redelivered), run again
    twin, db = billing_db()
    with db.get_session() as session:
        session.add(Bill(customer_id=1))
    assert twin.finish({"id": 5}, None) == ({"id": 4}, None)  # the inbox's key refused it
    db.close()
    with billing_db.read() as other:
        assert bills(other) == 4
