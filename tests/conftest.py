"""Shared by every test. ``tests/unit`` needs no broker and no database server
(``make test-unit``); ``tests/integration`` runs against the real RabbitMQ,
PostgreSQL and a local Kafka broker (``make test`` starts what is missing).

Run with ``make test`` or ``nameko test``; plain ``pytest`` works too: eventlet
is patched here before anything else. The whole suite runs on eventlet's
asyncio hub, as the mesh does (the venv's ``tools/billing_mesh.pth`` sets
``EVENTLET_HUB=asyncio``): on any other, it stops at once and says so.
"""
import eventlet

eventlet.monkey_patch()  # before sockets and threads exist

import pytest  # noqa: E402

from mesh.hub import hub_name  # noqa: E402


def pytest_sessionstart(session):
    running = hub_name()
    if running != "asyncio":
        pytest.exit("the tests run on eventlet's asyncio hub, this process runs on {!r}: "
                    "run them with `make test` (its venv sets EVENTLET_HUB=asyncio) or "
                    "EVENTLET_HUB=asyncio nameko test".format(running), returncode=2)


# a test that hangs on a green wait fails by itself, and says where
from hang_watchdog import (  # noqa: E402,F401  hooks, found by pytest here
    pytest_runtest_call, pytest_runtest_protocol, pytest_runtest_setup,
    pytest_runtest_teardown)
