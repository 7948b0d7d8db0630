"""The arithmetic of the billing analytics, as pure functions.

No Kafka here: ``streams/app.py`` wires these into the dataframe, and the unit
tests call them directly. Money is ``Decimal`` while computing and text with
two decimals ("59.97") in state and on the wire, never a float.

Two event types count: ``bill_created`` adds its bill, ``bill_cancelled``
subtracts the same bill. Each function works on signed amounts (``sign``,
``bill_delta``, signed ``product_lines``): a cancellation is the creation with
every amount negated, so customer and product totals are plain sums and the
order the two arrive in does not matter. That order is not guaranteed: billing's
outbox may relay a creation after the cancellation; a cancellation seen first
leaves its customer and products a bill short (below zero if it was their only
one) until the creation brings them to where they would have been. Repeats
(same ``event_id``) are dropped before any of this by ``first_delivery``;
billing sends at most one cancellation per bill, so nothing here has to
remember which bills were cancelled.

Revenue windows book a cancellation negative in the window of its own time (the
event's ``occurred_at``, the cancellation time), not in the window the bill was
created in: a window already published and charted never changes, like a credit
note dated the day it is issued rather than a rewritten invoice. A window's
revenue is therefore the net revenue booked in it, and may be negative. Each
event lands in its own window whatever the order, as long as that window is
still open when the event arrives; one that comes after its window closed
counts in no window, creation or cancellation alike (``add_to_window``), so
after such a late event the windows no longer add up to the customer totals.
"""
import datetime
import functools
from decimal import Decimal

from contracts.wire import money, money_text
from contracts.events import BILL_CANCELLED, BILL_EVENTS

ZERO = "0.00"


def is_bill_event(event):
    """``bill_created`` and ``bill_cancelled`` count (``contracts.events.BILL_EVENTS``);
    any other type on the topic is skipped, so a newer sender cannot break the sums."""
    return event.get("type") in BILL_EVENTS


def sign(event):
    """+1 for a creation, -1 for a cancellation: a cancellation is booked as the
    creation negated, never as an edit of what the creation added, so the sums
    stay commutative.

        >>> sign({"type": "bill_cancelled"})
        -1
    """
    return -1 if event["type"] == BILL_CANCELLED else 1


def signed(amount, event):
    """``amount`` (Decimal) with the event's sign. ``0 - amount`` rather than
    ``-amount``: Decimal keeps a negative zero, which would show as "-0.00"."""
    return amount if sign(event) > 0 else Decimal(0) - amount


def bill_delta(event):
    """What the event changes in its customer's totals: ``{"revenue": Decimal,
    "bills": +1 or -1}``.

        >>> bill_delta(cancelled)  # a cancelled bill of 3897.00
        {'revenue': Decimal('-3897.00'), 'bills': -1}
    """
    return {"revenue": signed(money(event["bill"]["total"]), event), "bills": sign(event)}


# how many slices of the retention the seen ids are filed in: the oldest slice is
# forgotten whole once it is a full retention older than the newest event
DEDUP_SLICES = 24


def first_delivery(state, event_id, at_ms=None, retention_ms=None):
    """Dedup decision: True the first time ``event_id`` is seen (and remember it),
    False on every repeat; delivery is at least once, a repeat must count zero times.

    ``state`` is anything with ``exists``, ``get``, ``set`` and ``delete``: in the
    application a quixstreams ``State`` (changelog-backed, scoped to the message
    key), one entry per event so a check never loads the whole history.

    With ``retention_ms`` (and the event's time ``at_ms``), ids are forgotten once
    their events are more than ``retention_ms`` older than the newest event of
    the key, so the state stays bounded; a repeat inside the retention is still
    caught. Each id is filed in a slice (``DEDUP_SLICES`` per retention): a new
    id costs a few entries, and a slice is dropped whole, so no step ever loads
    the list of every id.

        >>> first_delivery(state, "e-1", at_ms=0, retention_ms=86_400_000)
        True
    """
    key = "seen:" + event_id
    if state.exists(key):
        return False
    state.set(key, True)
    if retention_ms is not None and at_ms is not None:
        _file_seen(state, event_id, at_ms, retention_ms)
    return True


def _file_seen(state, event_id, at_ms, retention_ms):
    # two entries per id (its slot, the slices' counts), beside its "seen:" entry
    width = max(1, retention_ms // DEDUP_SLICES)
    slice_ = at_ms // width
    counts = state.get("slices", {})  # {slice number as text: ids filed in it}
    filed = counts.get(str(slice_), 0)
    state.set("slice:{}:{}".format(slice_, filed), event_id)
    counts[str(slice_)] = filed + 1
    if not filed:  # a new slice: the only time the oldest can fall out of the retention
        newest = max(int(number) for number in counts)
        for oldest in sorted(int(number) for number in counts):
            if (newest - oldest) * width <= retention_ms:
                break
            _forget_slice(state, oldest, counts.pop(str(oldest)))
    state.set("slices", counts)


def _forget_slice(state, slice_, filed):
    for n in range(filed):
        entry = "slice:{}:{}".format(slice_, n)
        state.delete("seen:" + state.get(entry))
        state.delete(entry)


def add_bill(stats, event):
    """Customer running totals after one more bill event (``bill_delta``: a
    cancellation takes its bill off); ``stats`` None for the first. A cancellation
    seen before its creation may leave them negative for a while."""
    delta = bill_delta(event)
    stats = stats or {"customer_id": int(event["bill"]["customer_id"]), "revenue": ZERO,
                      "bills": 0}
    return {"customer_id": stats["customer_id"],
            "revenue": money_text(money(stats["revenue"]) + delta["revenue"]),
            "bills": stats["bills"] + delta["bills"]}


def product_lines(event):
    """Explode a bill event into one signed line per product: ``{"product_id",
    "units", "revenue"}``, negative for a cancellation (its units are no longer
    sold). Items of the same product are merged: one update per product."""
    lines = {}
    for item in event["bill"]["items"]:
        product_id = int(item["product_id"])
        line = lines.setdefault(product_id, {"product_id": product_id, "units": 0,
                                             "revenue": Decimal(0)})
        line["units"] += int(item["quantity"])
        line["revenue"] += money(item["unit_price"]) * int(item["quantity"])
    return [dict(line, units=sign(event) * line["units"],
                 revenue=money_text(signed(line["revenue"], event)))
            for line in lines.values()]


def add_product_line(stats, line):
    """Product running totals after one more (signed) line; ``stats`` None for the first."""
    stats = stats or {"product_id": line["product_id"], "units": 0, "revenue": ZERO}
    return {"product_id": stats["product_id"],
            "units": stats["units"] + line["units"],
            "revenue": money_text(money(stats["revenue"]) + money(line["revenue"]))}


def add_revenue(revenue, event):
    """A window's revenue (text) after one more bill event: net of the
    cancellations booked in it, so it may go below zero."""
    return money_text(money(revenue) + bill_delta(event)["revenue"])


def event_time_ms(event):
    """The event's ``occurred_at`` in epoch milliseconds (a time without zone is UTC).
    ``occurred_at`` is on every event (the envelope), unlike ``billing_date``."""
    moment = datetime.datetime.fromisoformat(event["occurred_at"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


@functools.lru_cache(maxsize=256)  # window bounds repeat for every bill in the window
def iso_utc(epoch_ms):
    """``5000 -> "1970-01-01T00:00:05+00:00"``."""
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc).isoformat()


def add_to_window(state, event, timestamp_ms, window_ms, grace_ms):
    """Book a bill event in its tumbling window (by event time: a creation at its
    creation time, a cancellation, negative, at its cancellation time) and return
    the window's record as published (``window_record``), or None if the event is
    too late.

    ``state`` (``get``/``set``/``delete``, one key for all bills) holds each open
    window's revenue and a ``clock``: the newest event time seen and the windows
    still open. A window closes once the newest bill is ``grace_ms`` past its
    end; an event for a closed window counts in no window (it still counts per
    customer and product), and closed windows leave the state. Creations and
    cancellations share the clock: lateness is judged the same way for both.
    """
    clock = state.get("clock") or {"newest": timestamp_ms, "open": []}
    newest = max(clock["newest"], timestamp_ms)
    start = timestamp_ms - timestamp_ms % window_ms
    still_open = [s for s in clock["open"] if s + window_ms + grace_ms > newest]
    for closed in set(clock["open"]) - set(still_open):
        state.delete("window:{}".format(closed))
    late = start + window_ms + grace_ms <= newest
    if not late and start not in still_open:
        still_open = sorted(still_open + [start])
    if newest != clock["newest"] or still_open != clock["open"]:
        state.set("clock", {"newest": newest, "open": still_open})
    if late:
        return None
    key = "window:{}".format(start)
    revenue = add_revenue(state.get(key, ZERO), event)
    state.set(key, revenue)
    return window_record({"start": start, "end": start + window_ms, "value": revenue})


def window_record(window):
    """A window ``{"start": ms, "end": ms, "value": revenue}`` (the shape of
    quixstreams' window results) as published: ``{"start": iso, "end": iso,
    "revenue": "..."}``."""
    return {"start": iso_utc(window["start"]), "end": iso_utc(window["end"]),
            "revenue": window["value"]}
