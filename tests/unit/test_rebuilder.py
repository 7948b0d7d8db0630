"""rebuilder's decisions alone (``worker_factory``, billing and analytics
mocked): when the view is short it rebuilds after ``STRIKES`` unchanged checks,
never while anything is on its way, and a rebuild that did not make the view
equal is not repeated at once: the pause doubles."""
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from helpers import Clock
from services import rebuilder
from services.rebuilder import STRIKES, RebuilderService, RebuildJob

LEDGER = {"bills": 10, "revenue": "100.00", "events": 13}
EQUAL = {"bills": 10, "revenue": "100.00", "product_revenue": "100.00"}
SHORT = {"bills": 0, "revenue": "0.00", "product_revenue": "0.00"}


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(rebuilder.time, "monotonic", clock)
    return clock


def a_rebuilder(view, backlog=0):
    service = worker_factory(RebuilderService, job=RebuildJob(), billing=Mock(),
                             analytics=Mock(), registry=Mock())
    service.billing.get_ledger.return_value = LEDGER
    service.billing.get_outbox_backlog.return_value = backlog
    service.registry.messages.return_value = 0
    service.analytics.get_readiness.return_value = {
        "analytics": "up", "streams": "up", "view": view, "rebuild": None}
    return service


def checks(service, times):
    return [service._why_rebuild() for _ in range(times)]


def test_a_short_view_rebuilds_after_unchanged_checks_only():
    service = a_rebuilder(SHORT)
    reasons = checks(service, STRIKES)
    assert reasons[:-1] == [None] * (STRIKES - 1)
    assert "differ from billing's record" in reasons[-1]
    assert checks(a_rebuilder(EQUAL), STRIKES * 2) == [None] * STRIKES * 2
    assert checks(a_rebuilder(SHORT, backlog=1), STRIKES * 2) == [None] * STRIKES * 2


def test_a_rebuild_that_did_not_do_is_repeated_after_a_doubling_pause(clock):
    service = a_rebuilder(SHORT)
    assert checks(service, STRIKES)[-1]  # the first rebuild
    service.job.finished, service.job.judged = clock.now, False  # ... done, still short
    assert checks(service, STRIKES * 3) == [None] * STRIKES * 3
    first_pause = service.job.pause_s()
    assert first_pause > 0 and service.job.fruitless == 1
    clock.now += first_pause
    assert checks(service, STRIKES)[-1]  # the second
    service.job.finished, service.job.judged = clock.now, False
    assert checks(service, STRIKES) == [None] * STRIKES
    assert service.job.pause_s() == 2 * first_pause
    clock.now += 10_000
    assert service.job.pause_s() <= rebuilder.MOST_PAUSE_S

    # once equal, a later loss rebuilds without a pause
    service.analytics.get_readiness.return_value["view"] = EQUAL
    checks(service, 1)
    assert service.job.fruitless == 0
    service.analytics.get_readiness.return_value["view"] = SHORT
    service.job.finished = clock.now
    assert checks(service, STRIKES)[-1]


def test_a_mark_read_back_from_kafka_then_gone_rebuilds_at_once_even_under_load():
    service = a_rebuilder(EQUAL)
    readiness = service.analytics.get_readiness.return_value
    assert checks(service, 1) == [None]
    [call] = service.kafka.send.mock_calls
    assert call.args == (rebuilder.REBUILD_TOPIC,)
    sent = call.kwargs
    assert sent["value"]["state"] == rebuilder.EQUAL
    assert checks(service, STRIKES) == [None] * STRIKES  # not read back yet: no verdict
    assert service.kafka.send.call_count == 1  # marked once
    readiness["rebuild"] = sent["value"]  # analytics read it
    assert checks(service, 1) == [None]

    readiness["rebuild"], readiness["view"] = None, SHORT  # the broker restarted empty
    service.billing.get_outbox_backlog.return_value = 40  # bills still flowing
    [reason] = checks(service, 1)
    assert "Kafka lost its log" in reason


def test_a_rebuilder_started_again_adopts_the_status_kafka_holds():
    done = {"state": "done", "started_at": "2026-12-05T06:00:00+00:00"}
    service = a_rebuilder(EQUAL)
    service.analytics.get_readiness.return_value["rebuild"] = done
    checks(service, 2)
    assert service.job.status == done and not service.kafka.send.called
