"""Bounded growth: rows kept only as long as they can still matter.

* Inbox records (``mesh.inbox``): ``INBOX_RETENTION_S``. A redelivery is caught
  while its record exists. A call whose caller sent a deadline is refused
  once that deadline passed (``mesh.rpc``), so for the mesh's own callers
  anything longer than ``RPC_TIMEOUT`` is enough; the default hour also covers
  callers without a deadline (``nameko shell``) whose request waits in
  RabbitMQ while every instance of the service is down.
* Dispatched outbox events (``mesh.outbox``): ``OUTBOX_RETENTION_S`` after they
  were marked dispatched. An event still undispatched is never pruned.

Each instance prunes every ``PRUNE_INTERVAL_S``, a batch at a time (several
instances pruning the same table only share the work).
"""
import datetime
import time

from sqlalchemy import delete, inspect, select

from common.config import seconds_setting
from contracts.wire import utc_now

DEFAULT_INBOX_RETENTION_S = 3600.0
DEFAULT_OUTBOX_RETENTION_S = 86400.0
DEFAULT_PRUNE_INTERVAL_S = 60.0
PRUNE_BATCH = 1000


def inbox_retention_s(config):
    """``INBOX_RETENTION_S``: never shorter than ``RPC_TIMEOUT`` (a redelivery
    inside its caller's deadline must find the record)."""
    return seconds_setting(config, "INBOX_RETENTION_S", DEFAULT_INBOX_RETENTION_S,
                           at_least=float(config.get("RPC_TIMEOUT", 5)))


def prune_older_than(session, column, seconds, batch=PRUNE_BATCH):
    """Delete the rows of ``column``'s table whose ``column`` is more than
    ``seconds`` old (NULL is never older), at most ``batch`` rows per
    statement until none is left; the number deleted. Commits each batch.

        >>> prune_older_than(session, CustomersInbox.created_at, 3600)
        120
    """
    table = column.table
    (key,) = inspect(table).primary_key.columns
    cutoff = utc_now() - datetime.timedelta(seconds=seconds)
    pruned = 0
    while True:
        old = select(key).where(column < cutoff).limit(batch)
        deleted = session.execute(
            delete(table).where(key.in_(old)).execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        pruned += deleted
        if deleted < batch:
            return pruned


class Schedule:
    """When a process prunes next: ``due()`` is true once per ``interval_s``
    (the first time at once). One per process, shared by its workers."""

    def __init__(self, interval_s, clock=None):
        self.interval_s = interval_s
        self._clock = clock or time.monotonic
        self._last = None

    def due(self):
        now = self._clock()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True
