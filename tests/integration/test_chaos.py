"""``make chaos`` (issue 12, point 6) cannot rot: its smoke version kills each
process of the mesh once under a short load of bills and cancellations, then
the Kafka broker (started again empty: the analytics are rebuilt), and must
pass every check (the whole mesh killed at once is left to ``make chaos`` and
to tests/integration/test_day_two.py's power cut); and each check fails on the damage it guards against
(fabricated states, no mesh needed)."""
import json
import subprocess
import sys
from decimal import Decimal

import pytest

from common.config import ROOT
from tools import chaos
from tools.chaos import Attempt, Bill, Op


SMOKE_KILLS = [name for name in chaos.KILL_ORDER if name != chaos.WHOLE_MESH]


@pytest.mark.long
@pytest.mark.timeout(240)
def test_the_smoke_version_kills_each_process_once_and_every_check_passes(
        rabbitmq_running, tmp_path):
    out = tmp_path / "chaos.json"
    run = subprocess.run(
        [sys.executable, "-m", "tools.chaos", "--duration", "10", "--clients", "8",
         "--kill", ",".join(SMOKE_KILLS), "--folder", str(tmp_path), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=230)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-3000:]
    [result] = json.loads(out.read_text())["runs"]
    assert result["passed"] and result["settled"], result
    assert [check["name"][:3] for check in result["checks"]] == ["a) ", "b) ", "b')", "c) ",
                                                                  "d) "]
    assert all(check["passed"] for check in result["checks"]), result["checks"]
    # every process was killed once, in turn, and served again
    assert [kill["process"] for kill in result["kills"]] == list(SMOKE_KILLS)
    assert all(kill["serving_after_start_s"] is not None for kill in result["kills"]), \
        result["kills"]
    assert all(kill["pid"] != kill["new_pid"] for kill in result["kills"])
    # the checks had something to check
    requests = result["requests"]
    assert requests["bill"]["answered"] > 50 and requests["cancel"]["answered"] > 5, requests
    assert result["cancelled"] > 5 and result["has_status"]
    for figure in ("a) stock taken == units of active bills", "b) bills vs answers",
                   "c) analytics == billing database", "run 1: PASS", "chaos: 1/1 runs passed"):
        assert figure in run.stdout, run.stdout[-4000:]


# --- each check fails on what it guards (no mesh) -----------------------------------

def bill_op(number, *outcomes, bill_id=None, key=None):
    op = Op("bill", number, key=key)
    for n, outcome in enumerate(outcomes, 1):
        answer = {"id": bill_id} if outcome == "201" else None
        op.attempts.append(Attempt("chaos-r1-b{}-{}".format(number, n), 0, 0, outcome, answer))
    op.bill_id = bill_id if "201" in outcomes else None
    return op


def cancel_op(number, bill_id, outcome, status="cancelled", repeat=False, cancelled_at="t1"):
    op = Op("cancel", number, bill_id=bill_id, repeat=repeat)
    answer = ({"id": bill_id, "status": status, "cancelled_at": cancelled_at}
              if outcome == "200" else None)
    op.attempts.append(Attempt("chaos-r1-c{}-1".format(number), 0, 0, outcome, answer))
    return op


BILLS = {  # 1: seeded; 4 and 5 made by the load, 5 then cancelled
    1: Bill(1, 1, "active", [(1, 1, 320000)]),
    4: Bill(4, 7, "active", [(10, 2, 250)], "r-4"),
    5: Bill(5, 7, "cancelled", [(10, 1, 250), (11, 1, 1999)], "r-5"),
}


def test_stock_fails_when_stock_is_lost_or_held():
    reservations = {"r-4": "confirmed", "r-5": "returned", "r-x": "released"}
    ok = chaos.check_stock([10], {10: 100}, {10: 98}, BILLS, reservations)
    assert ok.passed and not ok.notes, ok
    lost = chaos.check_stock([10], {10: 100}, {10: 97}, BILLS,
                             {**reservations, "r-5": "confirmed"}, {5: "chaos-r1-c9-1"})
    assert not lost.passed and "(+1)" in lost.problems[0]
    assert "bill 5 is cancelled (cancellation chaos-r1-c9-1) but its reservation r-5 is " \
           "confirmed" in lost.notes[0]
    held = chaos.check_stock([10], {10: 100}, {10: 98}, BILLS, {**reservations, "r-y": "held"})
    assert not held.passed and "still held" in held.problems[0]


def test_bills_fail_when_unanswered_beyond_the_lost_answers_or_billed_twice():
    answered = [bill_op(1, "201", bill_id=4)]
    # bill 5 answered to nobody: allowed only while some request's answer was lost
    assert chaos.check_bills(answered + [bill_op(2, "503")], BILLS, 4, {}, {}).passed
    assert chaos.check_bills(answered + [bill_op(2, "reset")], BILLS, 4, {}, {}).passed
    refused = chaos.check_bills(answered + [bill_op(2, "refused")], BILLS, 4, {}, {})
    assert not refused.passed and "only 0 requests lost" in refused.problems[0]
    # billing's log names the request a bill was made for
    made_for_409 = chaos.check_bills(answered + [bill_op(2, "409"), bill_op(3, "503")],
                                     BILLS, 4, {5: ["chaos-r1-b2-1"]}, {})
    assert not made_for_409.passed and "answered 409" in made_for_409.problems[0]
    twice = chaos.check_bills(answered + [bill_op(3, "503")], BILLS, 4, {5: ["chaos-r1-b1-1"]}, {})
    assert not twice.passed and "billed twice" in twice.problems[0]
    # a 201 for a bill the database does not have, or for two requests
    missing = chaos.check_bills([bill_op(1, "201", bill_id=9)], BILLS, 4, {}, {})
    assert not missing.passed and "not in the database" in missing.problems[0]
    one_for_two = chaos.check_bills(answered + [bill_op(2, "201", bill_id=4),
                                                bill_op(3, "503")], BILLS, 4, {}, {})
    assert not one_for_two.passed and "to 2 different requests" in one_for_two.problems[0]
    # a keyed request sent again after a lost answer has its one bill
    keyed = [bill_op(1, "201", bill_id=4), bill_op(2, "503", "201", bill_id=5, key="k")]
    assert chaos.check_bills(keyed, BILLS, 4, {5: ["chaos-r1-b2-1"]}, {"k": 5}).passed
    assert not chaos.check_bills(keyed, BILLS, 4, {}, {"k": 4}).passed


def test_cancellations_fail_when_an_answer_and_the_database_disagree():
    ok = [cancel_op(1, 5, "200"), cancel_op(2, 5, "200", repeat=True)]
    assert chaos.check_cancels(ok, BILLS, True).passed
    not_stored = chaos.check_cancels([cancel_op(1, 4, "200")], BILLS, True)
    assert not not_stored.passed and "bill 4 answered cancelled but active" in \
        not_stored.problems[0]
    unasked = chaos.check_cancels([cancel_op(1, 5, "refused")], BILLS, True)
    assert not unasked.passed and "no cancellation of it was answered" in unasked.problems[0]
    assert chaos.check_cancels([cancel_op(1, 5, "timeout")], BILLS, True).passed
    changed = chaos.check_cancels([cancel_op(1, 5, "200"),
                                   cancel_op(2, 5, "200", repeat=True, cancelled_at="t2")],
                                  BILLS, True)
    assert not changed.passed and "repeated cancellation" in changed.problems[0]
    assert not chaos.check_cancels([cancel_op(1, 5, "500")], BILLS, True).passed


def test_analytics_fail_on_a_cent_off():
    customers = {1: (Decimal("3200.00"), 1), 7: (Decimal("5.00"), 1)}
    products = {1: (1, Decimal("3200.00")), 10: (2, Decimal("5.00"))}
    assert chaos.check_analytics(BILLS, (customers, products)).passed
    # a zero entry is the same as none (the cancelled bill's product 11)
    assert chaos.check_analytics(BILLS, (customers, {**products, 11: (0, Decimal(0))}))\
        .passed
    off = chaos.check_analytics(BILLS, ({**customers, 7: (Decimal("5.01"), 1)}, products))
    assert not off.passed and "customer 7" in off.problems[0]
    counted = chaos.check_analytics(BILLS, (customers, {**products, 11: (1, Decimal("19.99"))}))
    assert not counted.passed and "product 11" in counted.problems[0]
    assert not chaos.check_analytics(BILLS, None).passed


def event(kind, bill_id, event_id, customer_id=7, total="5.00"):
    return {"type": kind, "event_id": event_id,
            "bill": {"id": bill_id, "customer_id": customer_id, "total": total}}


def test_kafka_fails_on_a_missing_or_doubled_event_not_on_a_repeated_record():
    events = [event("bill_created", 1, "e1", 1, "3200.00"), event("bill_created", 4, "e4"),
              event("bill_created", 5, "e5", total="22.49"), event("bill_cancelled", 5, "c5")]
    assert chaos.check_kafka(BILLS, events).passed
    assert chaos.check_kafka(BILLS, events + [event("bill_created", 4, "e4")]).passed
    doubled = chaos.check_kafka(BILLS, events + [event("bill_created", 4, "e4-again")])
    assert not doubled.passed and "bill 4: 2 distinct bill_created" in doubled.problems[0]
    missing = chaos.check_kafka(BILLS, events[:-1])
    assert not missing.passed and "bill 5 (cancelled): 0 distinct bill_cancelled" in \
        missing.problems[0]
    stray = chaos.check_kafka(BILLS, events + [event("bill_cancelled", 4, "c4"),
                                               event("bill_created", 9, "e9")])
    assert not stray.passed and len(stray.problems) == 2
    wrong_total = chaos.check_kafka(BILLS, [event("bill_created", 4, "e4", total="5.01")]
                                    + events[:1] + events[2:])
    assert not wrong_total.passed and "total 5.01" in wrong_total.problems[0]
