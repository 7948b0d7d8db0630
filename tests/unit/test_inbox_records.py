"""``mesh.inbox`` on a real SQLite file, no broker: the recorded answer is the
answer exactly (``Decimal``, aware ``datetime``), it commits with the effect or
not at all, and the work after the effect waits for that commit, its own
worker's call's only."""
import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from helpers import seeded_db
from mesh.db import session_factory
from mesh.inbox import (
    Call, CallData, CallDatabase, after_commit, decode_answer, encode_answer, finish_call,
    open_call, recorded_answer,
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


class Worker:
    """A stand-in for nameko's ``WorkerContext``: its context data, as an inbox
    method's entrypoint unpacks it (``mesh.inbox.call_data``), or a plain dict."""

    def __init__(self, call_id=None):
        self.data = CallData({}, identity=identity(call_id)) if call_id else {}


@pytest.fixture
def billing_db(tmp_path):
    engine, _ = seeded_db(tmp_path, BillingBase, seed_bills)
    make = session_factory(engine)

    def start(call_id="c-1", redelivered=False):
        call = Call(BillingInbox, identity(call_id, redelivered), make)
        return call, CallDatabase(call)

    start.read = lambda: make()
    start.make = make
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
    sent = []
    for outcome in ("commits", "fails"):
        worker = Worker(call_id=outcome)
        db = open_call(worker, BillingInbox, billing_db.make)
        with db.get_session() as session:
            session.add(Bill(customer_id=1))
        after_commit(worker, sent.append, outcome)
        assert sent == ([] if outcome == "commits" else ["commits"])
        if outcome == "commits":
            finish_call(worker, {"ok": True}, None)
        else:
            finish_call(worker, None, (RuntimeError, RuntimeError("no"), None))
            db.close()
    assert sent == ["commits"]


def test_each_worker_waits_for_its_own_call_only(billing_db):
    """A call lives on its worker's context data: another worker, a call with
    nothing uncommitted or a worker that is no call runs its work at once, and
    none of them releases the work of a call still open."""
    sent = []
    writing = Worker(call_id="c-1")
    db = open_call(writing, BillingInbox, billing_db.make)
    with db.get_session() as session:
        session.add(Bill(customer_id=1))
    after_commit(writing, sent.append, "after c-1")
    reading = Worker(call_id="c-2")
    assert open_call(reading, BillingInbox, billing_db.make) is not None
    after_commit(reading, sent.append, "c-2, nothing to commit")
    after_commit(Worker(), sent.append, "no call")
    assert open_call(Worker(), BillingInbox, billing_db.make) is None
    assert sent == ["c-2, nothing to commit", "no call"]
    assert finish_call(writing, {"id": 4}, None) == ({"id": 4}, None)
    assert sent == ["c-2, nothing to commit", "no call", "after c-1"]
    # finished: what the worker does next runs at once
    after_commit(writing, sent.append, "later")
    assert sent[-1] == "later"


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
