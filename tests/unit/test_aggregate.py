"""The aggregator's arithmetic (``streams.aggregate``) and settings, no broker."""
import itertools
import os

from common.config import ROOT
from contracts.events import bill_cancelled_event
from helpers import bill_event
from streams import aggregate
from streams.app import Settings


class FakeState(dict):
    def exists(self, key):
        return key in self

    def set(self, key, value):
        self[key] = value

    def delete(self, key):
        del self[key]


def test_settle_counts_each_bill_event_once():
    state = FakeState()
    created = bill_event(1, [(1, 1)])
    assert aggregate.settle(state, created) == [created]
    again = dict(created, event_id="another id")
    assert aggregate.settle(state, again) == [aggregate.restated(again)]
    cancel = cancel_of(created)
    assert aggregate.settle(state, cancel) == [cancel]
    assert aggregate.settle(state, cancel) == [aggregate.restated(cancel)]
    # a replay of a cancelled bill
    assert aggregate.settle(state, created) == [aggregate.restated(created)]
    assert aggregate.sign(aggregate.restated(created)) == 0


def test_a_repeat_publishes_the_figures_it_touches_again_unchanged():
    """A rebuild given to an aggregator that kept its state (only a results
    topic was lost): every figure is published again as it stands, none changes."""
    early, late = bill_event(5, [(1, 2)]), bill_event(6, [(3, 1)])
    early["occurred_at"] = "2026-11-24T10:00:00+00:00"
    late["occurred_at"] = "2026-11-24T10:05:00+00:00"  # closes early's window
    events = [early, late, cancel_of(late, at="2026-11-24T10:05:01+00:00")]
    counted = totals(events, grace_ms=10_000)
    assert sorted(counted[2]) == ["2026-11-24T10:00:00+00:00", "2026-11-24T10:05:00+00:00"]
    replayed = totals(events + events, grace_ms=10_000, published=True)
    assert replayed[:3] == counted  # nothing counted twice
    # and the replay alone published every figure again, the closed window too
    assert replayed[3] == counted


def test_a_cancellation_before_its_creation_is_parked_until_the_creation():
    state = FakeState()
    created = bill_event(2, [(1, 1)])
    cancel = cancel_of(created)
    assert aggregate.settle(state, cancel) == []
    assert aggregate.settle(state, cancel) == []  # parked once
    assert aggregate.settle(state, created) == [created, cancel]
    assert aggregate.settle(state, cancel) == [aggregate.restated(cancel)]
    assert aggregate.settle(state, created) == [aggregate.restated(created)]
    assert not any(key.startswith("parked:") for key in state)


def test_bills_are_remembered_whatever_their_age():
    state = FakeState()
    old = bill_event(3, [(1, 1)])
    old["occurred_at"] = "2020-01-01T00:00:00+00:00"
    aggregate.settle(state, old)
    for _ in range(100):
        aggregate.settle(state, bill_event(3, [(1, 1)]))
    # a rebuild years later counts it once
    assert aggregate.settle(state, old) == [aggregate.restated(old)]


def test_add_bill_keeps_exact_money_and_counts():
    stats = None
    for _ in range(3):
        stats = aggregate.add_bill(stats, bill_event(7, [(2, 1)]))  # 0.10 each
    assert stats == {"customer_id": 7, "revenue": "0.30", "bills": 3}  # 0.1*3 != 0.3 in floats
    stats = aggregate.add_bill(stats, bill_event(7, [(5, 2)]))
    assert stats == {"customer_id": 7, "revenue": "2500.30", "bills": 4}


def test_product_lines_explode_a_bill_and_merge_repeated_products():
    event = bill_event(1, [(1, 3), (2, 1), (1, 2)])
    lines = sorted(aggregate.product_lines(event), key=lambda line: line["product_id"])
    assert lines == [{"product_id": 1, "units": 5, "revenue": "99.95"},
                     {"product_id": 2, "units": 1, "revenue": "0.10"}]


def test_add_product_line_accumulates():
    first = {"product_id": 3, "units": 2, "revenue": "0.40"}
    second = {"product_id": 3, "units": 1, "revenue": "0.20"}
    stats = aggregate.add_product_line(aggregate.add_product_line(None, first), second)
    assert stats == {"product_id": 3, "units": 3, "revenue": "0.60"}


def test_window_sum_and_record():
    revenue = aggregate.ZERO
    for product in (2, 3, 4):  # 0.10 + 0.20 + 3.33
        revenue = aggregate.add_revenue(revenue, bill_event(1, [(product, 1)]))
    assert revenue == "3.63"
    assert aggregate.window_record({"start": 5000, "end": 10000, "value": revenue}) == {
        "start": "1970-01-01T00:00:05+00:00", "end": "1970-01-01T00:00:10+00:00",
        "revenue": "3.63"}


class DictState(dict):
    """The part of quixstreams' ``State`` the windows use."""

    def set(self, key, value):
        self[key] = value

    def delete(self, key):
        del self[key]


def test_tumbling_windows_by_event_time_with_grace():
    state, one = DictState(), bill_event(1, [(2, 1)])  # 0.10 each

    def add(at_ms):
        return aggregate.add_to_window(state, one, at_ms, window_ms=5000, grace_ms=10000)

    assert add(6000) == {"start": "1970-01-01T00:00:05+00:00",
                         "end": "1970-01-01T00:00:10+00:00", "revenue": "0.10"}
    assert add(9999)["revenue"] == "0.20"  # same window
    assert add(10000)["start"] == "1970-01-01T00:00:10+00:00"  # the next one
    assert add(19999)["revenue"] == "0.10"  # 10 s past the first window's end: still open
    assert add(7000)["revenue"] == "0.30"  # a late bill within grace counts in its window
    assert add(20000)["start"] == "1970-01-01T00:00:20+00:00"  # first window now closed
    assert add(5000) is None  # too late: counts in no window
    assert state["newest"] == {"0": 20000}
    assert state["windows"] == [5000, 10000, 15000, 20000]
    # closed windows keep their revenue, for a restated event (a rebuild)
    assert {key: value for key, value in state.items() if key.startswith("window:")} == {
        "window:5000": "0.30", "window:10000": "0.10", "window:15000": "0.10",
        "window:20000": "0.10"}
    assert aggregate.add_to_window(state, aggregate.restated(one), 5000, 5000, 10000)[
        "revenue"] == "0.30"
    assert aggregate.add_to_window(state, aggregate.restated(one), 0, 5000, 10000) is None


def test_only_the_newest_windows_are_kept():
    state, one = DictState(), bill_event(1, [(2, 1)])
    for at_ms in range(0, 60_000, 5000):  # twelve windows, each closed by the next
        aggregate.add_to_window(state, one, at_ms, 5000, 0, keep=3)
    assert sorted(key for key in state if key.startswith("window:")) == [
        "window:45000", "window:50000", "window:55000"]
    assert state["windows"] == [45000, 50000, 55000]
    # a window older than every kept one, from a partition far behind: in none,
    # rather than started again from zero over what was published for it
    assert aggregate.add_to_window(state, one, 10_000, 5000, 60_000, source=1, keep=3) is None
    assert "window:10000" not in state


def test_lateness_is_judged_by_the_clock_of_the_events_own_partition():
    """A rebuild reads partitions at their own pace: partition 1 an hour ahead
    does not make partition 0's bills late."""
    state, one = DictState(), bill_event(1, [(2, 1)])  # 0.10
    hour = 3_600_000
    assert aggregate.add_to_window(state, one, hour, 5000, 10_000, source=1)["revenue"] == "0.10"
    assert aggregate.add_to_window(state, one, 6000, 5000, 10_000, source=0)["revenue"] == "0.10"
    assert aggregate.add_to_window(state, one, 7000, 5000, 10_000, source=0)["revenue"] == "0.20"
    # partition 0 moves on past grace: its own late bill counts in no window
    assert aggregate.add_to_window(state, one, 30_000, 5000, 10_000, source=0) is not None
    assert aggregate.add_to_window(state, one, 8000, 5000, 10_000, source=0) is None
    assert state["newest"] == {"0": 30_000, "1": hour}


def test_first_sight_lets_each_origin_through_once_per_partition():
    state = DictState()
    assert aggregate.first_sight(state, [0, 10, 0, 1])
    assert aggregate.first_sight(state, [0, 10, 1, 0])  # the record's next output
    assert aggregate.first_sight(state, [3, 2, 0])  # another partition has its own order
    # a replay of partition 0 from offset 9: everything up to what was seen is a repeat
    assert not aggregate.first_sight(state, [0, 9, 0, 0])
    assert not aggregate.first_sight(state, [0, 10, 0, 1])
    assert not aggregate.first_sight(state, [0, 10, 1, 0])
    assert aggregate.first_sight(state, [0, 11, 0, 0])  # then new work again
    assert state["origins"] == {"0": [11, 0, 0], "3": [2, 0]}


def test_event_time_is_occurred_at():
    event = {"occurred_at": "2026-01-02T03:04:05.678000+00:00"}
    assert aggregate.event_time_ms(event) == 1767323045678
    assert aggregate.event_time_ms({"occurred_at": "2026-01-02T03:04:05.678"}) == 1767323045678
    assert aggregate.event_time_ms({"occurred_at": "2026-01-02T04:04:05.678+01:00"}) == \
        1767323045678


def test_other_event_types_are_skipped():
    assert aggregate.is_bill_event(bill_event(1, [(1, 1)]))
    assert aggregate.is_bill_event({"type": "bill_cancelled"})
    assert not aggregate.is_bill_event({"type": "bill_refunded"})
    assert not aggregate.is_bill_event({})


# --- cancellations ---------------------------------------------------------------------

def cancel_of(created, at="2026-11-24T11:00:00+00:00", event_id=None):
    """The ``bill_cancelled`` event of the bill ``created`` made (a new event_id)."""
    return bill_cancelled_event(created["bill"], at, event_id=event_id)


def totals(events, window_ms=5000, grace_ms=60_000, published=False):
    """Customer, product and window totals after ``events``, wired as streams/app.py
    wires them (settled first, then the three branches). With ``published``,
    also what the second half of ``events`` alone published, as the same triple."""
    seen, windows = FakeState(), DictState()
    customers, products, shown = {}, {}, {}
    late_half = ({}, {}, {})
    arrived = list(filter(aggregate.is_bill_event, events))
    for n, event in enumerate(arrived):
        in_late_half = n >= len(arrived) // 2
        for counted in aggregate.settle(seen, event):
            key = counted["bill"]["customer_id"]
            customers[key] = aggregate.add_bill(customers.get(key), counted)
            if in_late_half:
                late_half[0][key] = customers[key]
            for line in aggregate.product_lines(counted):
                products[line["product_id"]] = aggregate.add_product_line(
                    products.get(line["product_id"]), line)
                if in_late_half:
                    late_half[1][line["product_id"]] = products[line["product_id"]]
            window = aggregate.add_to_window(windows, counted,
                                             aggregate.event_time_ms(counted),
                                             window_ms, grace_ms)
            if window is not None:
                shown[window["start"]] = window["revenue"]
                if in_late_half:
                    late_half[2][window["start"]] = window["revenue"]
    if published:
        return customers, products, shown, late_half
    return customers, products, shown


def test_a_cancellation_subtracts_its_bill_from_the_customer():
    kept, cancelled = bill_event(7, [(2, 1)]), bill_event(7, [(5, 2), (4, 1)])  # 0.10, 2503.33
    customers, _, _ = totals([kept, cancelled, cancel_of(cancelled)])
    assert customers[7] == {"customer_id": 7, "revenue": "0.10", "bills": 1}
    assert aggregate.bill_delta(cancel_of(cancelled)) == {"revenue": aggregate.money("-2503.33"),
                                                          "bills": -1}


def test_a_cancellation_subtracts_each_line_from_its_product():
    kept, cancelled = bill_event(1, [(1, 1)]), bill_event(2, [(1, 3), (2, 1), (1, 2)])
    assert sorted(aggregate.product_lines(cancel_of(cancelled)),
                  key=lambda line: line["product_id"]) == [
        {"product_id": 1, "units": -5, "revenue": "-99.95"},
        {"product_id": 2, "units": -1, "revenue": "-0.10"}]
    _, products, _ = totals([kept, cancelled, cancel_of(cancelled)])
    assert products == {1: {"product_id": 1, "units": 1, "revenue": "19.99"},
                        2: {"product_id": 2, "units": 0, "revenue": "0.00"}}


def test_a_cancellation_is_booked_negative_in_the_window_of_its_own_time():
    created = bill_event(1, [(4, 3)])  # 9.99
    created["occurred_at"] = "2026-11-24T10:00:01+00:00"
    other = bill_event(2, [(2, 1)])  # 0.10, in the cancellation's window
    other["occurred_at"] = "2026-11-24T10:00:31+00:00"
    cancel = cancel_of(created, at="2026-11-24T10:00:32+00:00")
    _, _, windows = totals([created, other, cancel])
    # the bill's window keeps what was published for it; the cancellation's nets out
    assert windows == {"2026-11-24T10:00:00+00:00": "9.99", "2026-11-24T10:00:30+00:00": "-9.89"}


def test_a_window_with_only_a_cancellation_is_negative():
    created = bill_event(1, [(6, 1)])
    created["occurred_at"] = "2026-11-24T10:00:00+00:00"
    state = DictState()
    cancel = cancel_of(created, at="2026-11-24T10:00:07+00:00")
    aggregate.add_to_window(state, created, aggregate.event_time_ms(created), 5000, 60_000)
    record = aggregate.add_to_window(state, cancel, aggregate.event_time_ms(cancel), 5000, 60_000)
    assert record == {"start": "2026-11-24T10:00:05+00:00", "end": "2026-11-24T10:00:10+00:00",
                      "revenue": "-7.05"}


def test_a_repeated_cancellation_subtracts_once():
    created = bill_event(3, [(1, 2), (3, 1)])  # 40.18
    cancel = cancel_of(created, event_id="c-1")
    once = totals([created, cancel])
    assert totals([created, cancel, dict(cancel), cancel_of(created, event_id="c-1")]) == once
    customers, products, windows = once
    assert customers[3] == {"customer_id": 3, "revenue": "0.00", "bills": 0}
    assert products[1] == {"product_id": 1, "units": 0, "revenue": "0.00"}


def test_a_cancellation_before_its_creation_never_goes_below_zero():
    created = bill_event(4, [(5, 1), (2, 3)])
    created["occurred_at"] = "2026-11-24T10:00:00+00:00"
    cancel = cancel_of(created, at="2026-11-24T10:00:20+00:00")
    customers, products, windows = totals([cancel])
    assert customers == {} and products == {} and windows == {}
    customers, products, windows = totals([cancel, created])
    assert customers[4] == {"customer_id": 4, "revenue": "0.00", "bills": 0}
    assert products == {5: {"product_id": 5, "units": 0, "revenue": "0.00"},
                        2: {"product_id": 2, "units": 0, "revenue": "0.00"}}
    # inside the grace, each lands in its own window whatever the order
    assert windows == totals([created, cancel])[2]
    assert sorted(windows.values()) == ["-1250.30", "1250.30"]


def test_totals_do_not_depend_on_the_order():
    bills = [bill_event(1, [(1, 1), (4, 2)]), bill_event(1, [(6, 3)]), bill_event(2, [(2, 7)])]
    events = bills + [cancel_of(bills[0]), cancel_of(bills[2])]
    expected = totals(events)[:2]
    assert expected[0] == {1: {"customer_id": 1, "revenue": "21.15", "bills": 1},
                           2: {"customer_id": 2, "revenue": "0.00", "bills": 0}}
    for order in itertools.permutations(events):
        assert totals(order)[:2] == expected


def test_no_negative_zero_in_the_state():
    free = bill_event(1, [(7, 0)])  # a bill of 0.00
    customers, products, windows = totals([free, cancel_of(free)])
    assert customers[1]["revenue"] == "0.00" and products[7]["revenue"] == "0.00"
    assert sorted(windows.values()) == ["0.00"]


def test_settings_from_config():
    config = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "KAFKA_TANSU": "false",
              "STREAMS_WINDOW_SECONDS": 5, "STREAMS_STATE_DIR": "var/streams"}
    settings = Settings.from_config(config)
    assert settings == Settings("kafka:9092", False, 5.0, os.path.join(ROOT, "var/streams"))
    config.update(KAFKA_TANSU=True, STREAMS_STATE_DIR="/data/streams")
    assert Settings.from_config(config).tansu is True
    assert Settings.from_config(config).state_dir == "/data/streams"


