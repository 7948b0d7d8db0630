"""A pytest plugin: a test that hangs on a green wait fails, says where, and ends
the run (tests/conftest.py loads it; ``-p hang_watchdog`` loads it elsewhere).

pytest-timeout (``timeout`` in pyproject.toml) is the backstop, but under
eventlet its stack dump shows only the OS threads (the hub's, and asyncio's
idle thread pool), never the greenthread that waits, and it ends the whole run. A test that waits on something green that
never comes gets this hub timer first, WATCHDOG_MARGIN_S before pytest-timeout
would fire: it prints every greenthread's stack at once (to the process's own
stderr, past pytest's capture), then throws HungTest into the test's own
greenlet, so that test fails with a traceback at its wait and its fixtures are
torn down. Then the run stops: a hang in one test has so far always been a wedge
of the whole process (each later test waited until its own watchdog fired, about
110 s apiece), and the first stack dump is the one that says why. No library
does this for greenlets (faulthandler and pytest-timeout see OS threads only).
"""
import gc
import io
import sys
import time
import traceback

import greenlet
import pytest
from eventlet.hubs import get_hub

WATCHDOG_MARGIN_S = 10


class HungTest(Exception):
    """A test (or one of its fixtures) waited past its time limit."""


def _greenlet_stacks():
    stacks = []
    for gr in gc.get_objects():
        try:
            if not isinstance(gr, greenlet.greenlet) or gr.gr_frame is None:
                continue
        except ReferenceError:  # a weakref.proxy whose object is gone
            continue
        stacks.append("--- {!r}\n{}".format(gr, "".join(traceback.format_stack(gr.gr_frame))))
    return stacks


def _thread_stacks():
    # the native threads (asyncio's executor, say): a wait there shows here only
    return ["--- native thread {}\n{}".format(ident, "".join(traceback.format_stack(frame)))
            for ident, frame in sys._current_frames().items()]


def _loop_state():
    """The hub's timers and the asyncio tasks on its loop: a wedge is in one of
    them, or in a greenthread."""
    hub = get_hub()
    lines = ["--- hub {!r}: {} timers ({} due), {} added since its last run, "
             "readers {}".format(hub, len(hub.timers),
                                 sum(1 for at, _ in hub.timers if at <= hub.clock()),
                                 len(hub.next_timers), sorted(hub.listeners["read"]))]
    for name in ("timers_soon", "timers_later_at"):
        if hasattr(hub, name):
            lines.append("    {} = {!r} (loop time {})".format(
                name, getattr(hub, name), hub.loop.time()))
    loop = getattr(hub, "loop", None)
    if loop is not None:
        import asyncio
        for task in asyncio.all_tasks(loop):
            stack = io.StringIO()
            task.print_stack(file=stack)
            lines.append("--- task {!r}\n{}".format(task, stack.getvalue()))
    return lines


def _time_limit(item):
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item._watchdog_until = None
    item._watchdog_started = time.monotonic()
    limit = _time_limit(item)
    if limit > WATCHDOG_MARGIN_S:
        item._watchdog_until = time.monotonic() + limit - WATCHDOG_MARGIN_S
    yield


def _guarded_phase(item, phase):
    until = getattr(item, "_watchdog_until", None)
    if until is None:
        return None
    if phase == "teardown":
        # a body that hung used the time up: its fixtures still get a few seconds
        # to stop what they started, before pytest-timeout's own limit
        until = max(until, time.monotonic() + WATCHDOG_MARGIN_S / 2)
    waiting = greenlet.getcurrent()
    started = item._watchdog_started

    def fire():
        sys.__stderr__.write("\n{} hung in {}: every greenthread's stack follows\n{}\n".format(
            item.nodeid, phase, "\n".join(_greenlet_stacks() + _thread_stacks() + _loop_state())))
        sys.__stderr__.flush()
        item.session.shouldstop = "{} hung in {}: the run stops here".format(item.nodeid, phase)
        # the seconds it was given, not a measurement: a timer fired late on a busy
        # machine names the same limit
        waiting.throw(HungTest("{} still waiting in {} {:.0f} s after it started (every "
                               "greenthread's stack is on stderr)".format(
                                   item.nodeid, phase, until - started)))
    return get_hub().schedule_call_global(max(until - time.monotonic(), 0), fire)


def _watched(phase):
    @pytest.hookimpl(hookwrapper=True)
    def hook(item, *args):
        timer = _guarded_phase(item, phase)
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
    return hook


pytest_runtest_setup = _watched("setup")
pytest_runtest_call = _watched("call")
pytest_runtest_teardown = _watched("teardown")
