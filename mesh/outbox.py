"""``Outbox``: events written in the same transaction as the change they are
about, then dispatched; a committed change is a change whose event leaves, at
least once, even if the service dies right after the commit.

    class OutboxEvent(OutboxColumns, BillingBase):
        __tablename__ = "outbox_events"

    class BillingService:
        outbox = Outbox(OutboxEvent)

        def create_bill(...):
            with self.db.get_session() as session:
                ...
                event = self.outbox.write(session, bill_created_event(bill))
            self.outbox.dispatch(event)          # after the commit

        @timer(interval=1)
        def relay_outbox(self):
            self.outbox.relay(self.db)           # marks, and re-sends what is left

Dispatching marks nothing at once: marking each event in a transaction of its
own cost every bill a second commit. ``relay`` marks all events dispatched since
its last run in one statement, then dispatches what the table still holds
(older than ``grace_s``, so the request that wrote it has had its chance). The
set of dispatched ids lives in memory: lost if the service stops first, and
then the relay sends those events again (consumers deduplicate by ``event_id``).
Each run also sets ``mesh_outbox_backlog{service}`` (``mesh.metrics``): the
events still undispatched past the grace period, 0 while all is well; and, once
every ``PRUNE_INTERVAL_S``, deletes the events dispatched more than
``OUTBOX_RETENTION_S`` ago (``mesh.retention``): the table holds what is in
flight and the recent past, not every event ever sent.

nameko drops an event when no queue is bound to its exchange yet: the
topology step (``common.topology``, from ``contracts.services``) declares the
durable queue of every declared handler before anything starts, so events
wait in RabbitMQ before those handlers first start. The outbox checks at start
that the queues of its events' handlers exist, declares them if its broker
user may (``guest`` on a laptop), and refuses to start otherwise, naming them:
a service's own user may not declare another's queues. The producer's code
names none of its consumers.
"""
import datetime
import functools
import logging

from nameko.events import EventDispatcher
from sqlalchemy import JSON, String, func, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from common.columns import UtcDateTime
from common.config import seconds_setting
from common.topology import queue_type_of, topology_queues
from contracts.wire import utc_now
from mesh.amqp import MeshPublisher, declared_by_topology, event_exchanges_undeclared
from mesh.metrics import set_outbox_backlog
from mesh.retention import (
    DEFAULT_OUTBOX_RETENTION_S, DEFAULT_PRUNE_INTERVAL_S, Schedule, prune_older_than,
)

log = logging.getLogger(__name__)

RELAY_BATCH = 500
_insert_of = functools.lru_cache(maxsize=None)(insert)  # per outbox model


class OutboxColumns:
    """The columns of a service's outbox table (a declarative mixin)."""

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    dispatched_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, nullable=True)


def write_event(db, model, payload, relay_at_once=False):
    """Add ``payload`` (with ``event_id`` and ``type``) to the outbox table
    ``model`` through ``db``, the session or connection of the change's own
    transaction; return it. ``relay_at_once``: no request will dispatch it
    (seed data), so the relay need not leave it the grace period."""
    values = {"event_id": payload["event_id"], "event_type": payload["type"],
              "payload": payload}
    if relay_at_once:
        values["created_at"] = utc_now() - datetime.timedelta(days=1)
    # the values as parameters of a statement built once: .values() per event
    # was a noticeable share of billing's CPU per bill
    db.execute(_insert_of(model), values)
    return payload


class OutboxClient:
    """What ``self.outbox`` is in a worker. ``publish(event_type, payload)``
    sends one event; tests pass their own. ``service`` labels the backlog
    gauge (None: not recorded)."""

    def __init__(self, model, publish, dispatched=None, grace_s=2.0, service=None,
                 retention_s=DEFAULT_OUTBOX_RETENTION_S, pruning=None):
        self.model = model
        self.publish = publish
        self.dispatched = set() if dispatched is None else dispatched
        self.grace_s = grace_s
        self.service = service
        self.retention_s = retention_s
        self.pruning = pruning or Schedule(DEFAULT_PRUNE_INTERVAL_S)

    def write(self, db, payload):
        """``write_event`` into this outbox, in ``db``'s transaction."""
        return write_event(db, self.model, payload)

    def dispatch(self, payload):
        """Send one event after its transaction committed; the next ``relay``
        marks it sent."""
        self.publish(payload["type"], payload)
        self.dispatched.add(payload["event_id"])

    def backlog(self, database):
        """How many events the outbox holds undispatched (marked or not)."""
        with database.get_session() as session:
            return session.scalar(select(func.count()).select_from(self.model)
                                  .where(self.model.dispatched_at.is_(None)))

    def relay(self, database):
        """Mark the events dispatched since the last run, then dispatch those the
        outbox still holds; ``database`` is the service's ``self.db``."""
        model = self.model
        marked = list(self.dispatched)
        cutoff = utc_now() - datetime.timedelta(seconds=self.grace_s)
        with database.get_session() as session:
            if marked:
                session.execute(update(model).where(model.event_id.in_(marked))
                                .values(dispatched_at=utc_now()))
            undispatched = (model.dispatched_at.is_(None), model.created_at < cutoff)
            pending = session.scalars(
                select(model).where(*undispatched)
                .order_by(model.created_at).limit(RELAY_BATCH)).all()
            # the backlog is the batch unless the batch is full: a COUNT only then
            backlog = len(pending)
            if backlog == RELAY_BATCH and self.service is not None:
                backlog = session.scalar(select(func.count()).select_from(model)
                                         .where(*undispatched))
        if self.service is not None:
            set_outbox_backlog(self.service, backlog)
        self.dispatched.difference_update(marked)
        pending = [event for event in pending if event.event_id not in self.dispatched]
        for event in pending:
            self.dispatch(event.payload)
        if pending:
            log.info("relayed %d event(s) from the outbox", len(pending))
        if self.pruning.due():
            self.prune(database)
        return len(pending)

    def prune(self, database):
        """Delete the events dispatched more than ``retention_s`` ago; how many."""
        with database.get_session() as session:
            pruned = prune_older_than(session, self.model.dispatched_at, self.retention_s)
        if pruned:
            log.info("pruned %d dispatched event(s) older than %.0f s from the outbox",
                     pruned, self.retention_s)
        return pruned


class Outbox(EventDispatcher):
    """The outbox of a service: its events' table, the declared handler queues
    of its events, and nameko's event dispatcher (persistent, confirmed) to send them."""

    publisher_cls = MeshPublisher

    def __init__(self, model, grace_s=2.0, **options):
        super().__init__(**options)
        self.model = model
        self.grace_s = grace_s

    def setup(self):
        config = self.container.config
        event_exchanges_undeclared(config)
        super().setup()  # makes the publisher
        declared_by_topology(config, self.exchange, *topology_queues(
            self.container.service_name, queue_type_of(config)))
        self.dispatched = set()
        self.retention_s = seconds_setting(config, "OUTBOX_RETENTION_S",
                                           DEFAULT_OUTBOX_RETENTION_S)
        self.pruning = Schedule(seconds_setting(config, "PRUNE_INTERVAL_S",
                                                DEFAULT_PRUNE_INTERVAL_S))

    def get_dependency(self, worker_ctx):
        return OutboxClient(self.model, super().get_dependency(worker_ctx),
                            self.dispatched, self.grace_s, self.container.service_name,
                            self.retention_s, self.pruning)
