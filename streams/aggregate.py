"""The arithmetic of the billing analytics, as pure functions.

No Kafka here: ``streams/app.py`` wires these into the dataframe, and the unit
tests call them directly. Money is ``Decimal`` while computing and text with
two decimals ("59.97") in state and on the wire, never a float.

Two event types count: ``bill_created`` adds its bill, ``bill_cancelled``
subtracts the same bill. Each function works on signed amounts (``sign``,
``bill_delta``, signed ``product_lines``): a cancellation is the creation with
every amount negated, so customer and product totals are plain sums and the
order the two arrive in does not matter. Before any of this, ``settle``
decides what counts: each bill's creation and cancellation once, a repeat not
at all (it is passed on ``restated``: it changes no figure, but the figures it
touches are published again, which heals a results topic that was lost while
the aggregator's state was kept), and a cancellation that arrives before its
creation (billing's outbox may relay them in either order; a creation may have
been lost with a broker) only once the creation is there, so no total ever goes
below zero.

Revenue windows book a cancellation negative in the window of its own time (the
event's ``occurred_at``, the cancellation time), not in the window the bill was
created in: a window already published and charted never changes, like a credit
note dated the day it is issued rather than a rewritten invoice. A window's
revenue is therefore the net revenue booked in it, and may be negative. Each
event lands in its own window whatever the order, as long as it is not late
against the newest event of its own partition; a late one counts in no window,
creation or cancellation alike (``add_to_window``), so after such a late event
the windows no longer add up to the customer totals.
"""
import datetime
import functools
import logging
from decimal import Decimal

from contracts.events import BILL_CANCELLED, BILL_EVENTS
from contracts.limits import MAX_WINDOWS
from contracts.wire import money, money_text

ZERO = "0.00"
# windows kept for a restated event: as many as analytics can show
KEPT_WINDOWS = MAX_WINDOWS
RESTATED = "restated"  # the mark ``settle`` puts on a repeat (inside the aggregator only)
log = logging.getLogger(__name__)


def is_bill_event(event):
    """``bill_created`` and ``bill_cancelled`` count (``contracts.events.BILL_EVENTS``);
    any other type on the topic is skipped, so a newer sender cannot break the sums."""
    return event.get("type") in BILL_EVENTS


def sign(event):
    """+1 for a creation, -1 for a cancellation: a cancellation is booked as the
    creation negated, never as an edit of what the creation added, so the sums
    stay commutative. 0 for an event counted before (``restated``).

        >>> sign({"type": "bill_cancelled"})
        -1
    """
    if event.get(RESTATED):
        return 0
    return -1 if event["type"] == BILL_CANCELLED else 1


def signed(amount, event):
    """``amount`` (Decimal) with the event's sign. ``0 - amount`` rather than
    ``-amount``: Decimal keeps a negative zero, which would show as "-0.00"."""
    direction = sign(event)
    if direction == 0:
        return Decimal(0)
    return amount if direction > 0 else Decimal(0) - amount


def restated(event):
    """A repeat of an event already counted, passed on to publish again the
    figures it touches, unchanged (``sign`` 0)."""
    return dict(event, **{RESTATED: True})


def bill_delta(event):
    """What the event changes in its customer's totals: ``{"revenue": Decimal,
    "bills": +1 or -1}``.

        >>> bill_delta(cancelled)  # a cancelled bill of 3897.00
        {'revenue': Decimal('-3897.00'), 'bills': -1}
    """
    return {"revenue": signed(money(event["bill"]["total"]), event), "bills": sign(event)}


def settle(state, event):
    """The events to count for one arriving bill event, given what was counted
    of its bill before: each bill's creation and cancellation count exactly
    once, whatever arrives twice, late or in the wrong order.

    ``state`` (``get``/``set``/``delete``; in the application the message key's
    quixstreams ``State``, changelog-backed) remembers each bill it has seen:
    ``"bill:<id>"`` is ``"created"``, ``"cancelled"`` or ``"parked"``. Every
    bill is remembered for good, not for a retention: a replay of billing's
    whole record (a rebuild) counts nothing twice, however old the bill.

    - a repeat (a bill already created, a cancellation already seen):
      ``[restated(event)]``, which counts nothing and publishes the bill's
      customer, products and window again as they are: a rebuild given to an
      aggregator that kept its state re-fills results topics that were lost;
    - a creation: ``[event]``, followed by its cancellation if that came first;
    - a cancellation of a bill created here: ``[event]``;
    - a cancellation of a bill not seen yet: ``[]``, parked (kept under
      ``"parked:<id>"``) until its creation arrives, so no total is ever
      taken below zero by a bill it never counted. A rebuild brings the
      creation of a bill whose creation was lost.

        >>> settle(state, created)            # bill 4, first seen
        [created]
        >>> settle(state, created)            # delivered again
        [restated(created)]
    """
    bill_id = event["bill"]["id"]
    key = "bill:{}".format(bill_id)
    seen = state.get(key)
    if event["type"] == BILL_CANCELLED:
        if seen == "cancelled":
            return [restated(event)]
        if seen != "created":  # parked, or first seen
            if seen is None:
                state.set(key, "parked")
                state.set("parked:{}".format(bill_id), event)
                log.warning("cancellation of bill %s arrived before its creation: parked, "
                            "not counted until the creation arrives", bill_id)
            return []
        state.set(key, "cancelled")
        return [event]
    if seen == "parked":
        parked = state.get("parked:{}".format(bill_id))
        state.delete("parked:{}".format(bill_id))
        state.set(key, "cancelled")
        return [event, parked]
    if seen is not None:
        return [restated(event)]
    state.set(key, "created")
    return [event]


def first_sight(state, origin):
    """True the first time ``origin`` reaches this key's ``state``, False for a
    repeat of it: the guard of every step behind a repartition.

    ``origin`` is where an event or line was made upstream: ``[partition,
    offset, index, ...]`` of the ``billing.bills`` record that made it (index:
    which of the record's outputs). Upstream replays after a crash or a
    rebalance (work done since its last checkpoint) make the same outputs with
    the same origins again, in the same order, and the repartition topic
    keeps each upstream partition's order (quixstreams' producer is
    idempotent): so a key remembers the newest origin per upstream partition,
    and anything not newer is a repeat. ``state`` keeps it under ``"origins"``.

        >>> first_sight(state, [2, 40, 0])
        True
        >>> first_sight(state, [2, 40, 0])   # the same line, made again by a replay
        False
    """
    source, position = str(origin[0]), list(origin[1:])
    newest = state.get("origins") or {}
    if source in newest and position <= newest[source]:
        return False
    newest[source] = position
    state.set("origins", newest)
    return True


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


def add_to_window(state, event, timestamp_ms, window_ms, grace_ms, source=0,
                  keep=KEPT_WINDOWS):
    """Book a bill event in its tumbling window (by event time: a creation at its
    creation time, a cancellation, negative, at its cancellation time) and return
    the window's record as published (``window_record``), or None if the event is
    too late.

    ``state`` (``get``/``set``/``delete``, one key for all bills) holds each
    window's revenue (``"window:<start>"``), the newest event time seen from
    each ``source`` (the ``billing.bills`` partition the event came from) under
    ``"newest"``, and the starts of the windows kept under ``"windows"``.

    An event is late, and counts in no window (it still counts per customer and
    product), when its window ended more than ``grace_ms`` before the newest
    event of its own source. Not of all sources: each partition comes in time
    order, near enough, but the partitions are read at their own pace (a
    rebuild gives hours of bills in minutes), so a slower partition's bills are
    not late because another partition is ahead. Creations and cancellations
    share the clock.

    The newest ``keep`` windows are kept, so a ``restated`` event publishes its
    window again (its revenue as it stands); an event for a window older than
    all of them counts in none, since a forgotten window must not start again
    from zero and overwrite what was published for it.
    """
    newest = state.get("newest") or {}
    source = str(source)
    if source not in newest or timestamp_ms > newest[source]:
        newest[source] = timestamp_ms
        state.set("newest", newest)
    start = timestamp_ms - timestamp_ms % window_ms
    key = "window:{}".format(start)
    revenue = state.get(key)
    if event.get(RESTATED):  # counted before: its window as it stands, if it was booked
        return None if revenue is None else window_record(
            {"start": start, "end": start + window_ms, "value": revenue})
    if start + window_ms + grace_ms <= newest[source]:
        return None
    if revenue is None:
        starts = state.get("windows") or []
        if len(starts) >= keep and start < starts[0]:
            return None
        starts = sorted(starts + [start])
        for forgotten in starts[:-keep]:
            state.delete("window:{}".format(forgotten))
        state.set("windows", starts[-keep:])
        revenue = ZERO
    revenue = add_revenue(revenue, event)
    state.set(key, revenue)
    return window_record({"start": start, "end": start + window_ms, "value": revenue})


def window_record(window):
    """A window ``{"start": ms, "end": ms, "value": revenue}`` (the shape of
    quixstreams' window results) as published: ``{"start": iso, "end": iso,
    "revenue": "..."}``."""
    return {"start": iso_utc(window["start"]), "end": iso_utc(window["end"]),
            "revenue": window["value"]}
