"""tests/vhosts.py: the test vhosts' pipeline retries a failed vhost, and a test
waiting for one fails with the cause when the greenthread making them has
ended (nameko's own pipeline waited forever)."""
import eventlet
import pytest

import vhosts
from vhosts import VhostPipeline, vhost_dropper, vhost_maker


class FlakyManager:
    """The management API's client, failing its first ``failures`` calls."""

    def __init__(self, failures):
        self.failures = failures
        self.vhosts, self.permissions, self.deleted = [], [], []

    def create_vhost(self, vhost):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the management API dropped the connection")
        self.vhosts.append(vhost)

    def set_vhost_permissions(self, vhost, username, *patterns):
        self.permissions.append((vhost, username, patterns))

    def delete_vhost(self, vhost):
        self.deleted.append(vhost)


@pytest.fixture(autouse=True)
def reported(monkeypatch):
    monkeypatch.setattr(vhosts, "RETRY_DELAY_S", 0.01)
    lines = []
    monkeypatch.setattr(vhosts, "report", lines.append)
    return lines


def test_a_vhost_that_failed_to_be_made_is_made_again(reported):
    manager = FlakyManager(failures=2)
    pipeline = VhostPipeline(vhost_maker(manager, "guest"), vhost_dropper(manager))
    with pipeline.run():
        with eventlet.Timeout(5), pipeline.get() as vhost:
            assert vhost in manager.vhosts
            assert (vhost, "guest", (".*", ".*", ".*")) in manager.permissions
    assert vhost in manager.deleted
    assert len(reported) == 2 and "failed (attempt 2 of 5)" in reported[1], reported
    assert "ConnectionError: the management API dropped the connection" in reported[1]


def test_a_test_waiting_for_a_vhost_fails_with_the_cause_once_none_can_be_made():
    manager = FlakyManager(failures=10**6)
    pipeline = VhostPipeline(vhost_maker(manager, "guest"), vhost_dropper(manager))
    with pipeline.run():
        # nameko's own get waited here forever: its greenthread had ended
        with eventlet.Timeout(5), pytest.raises(ConnectionError, match="dropped"):
            with pipeline.get():
                pass
    assert manager.vhosts == []
