"""bill event ids: the ``event_id`` of each bill's ``bill_created`` and
``bill_cancelled``, kept with the bill

A rebuild of the analytics (``services.rebuilder``) gives every bill's events
again with the ids they first left with, long after the outbox pruned them.
Bills made before this revision take their ids from the outbox where it still
holds the event, and otherwise an id derived from the bill (uuid5 of
``billing/<bill id>/<event type>``), the same on every database this runs on.
Written out, as 0001 is: revisions name storage types, never the project's.

Revision ID: 0004
Revises: 0003
"""
import uuid

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# a fixed namespace: the derived ids are the same wherever the revision runs
NAMESPACE = uuid.UUID("6f1d3c52-2f0e-4d8e-9a57-1d1b0f3a5c21")


def upgrade():
    with op.batch_alter_table("bills") as batch:
        batch.add_column(sa.Column("created_event_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("cancelled_event_id", sa.String(length=36), nullable=True))
    connection = op.get_bind()
    bills = sa.table("bills", sa.column("id", sa.Integer), sa.column("status", sa.String),
                     sa.column("created_event_id", sa.String),
                     sa.column("cancelled_event_id", sa.String))
    outbox = sa.table("outbox_events", sa.column("event_id", sa.String),
                      sa.column("event_type", sa.String), sa.column("payload", sa.JSON))
    kept = {}  # (bill id, event type) -> event id, of the events the outbox still holds
    for event_id, event_type, payload in connection.execute(
            sa.select(outbox.c.event_id, outbox.c.event_type, outbox.c.payload)
            .where(outbox.c.event_type.in_(("bill_created", "bill_cancelled")))):
        bill = (payload or {}).get("bill") or {}
        if "id" in bill:
            kept[(bill["id"], event_type)] = event_id

    def event_id(bill_id, event_type):
        return kept.get((bill_id, event_type)) or str(
            uuid.uuid5(NAMESPACE, "billing/{}/{}".format(bill_id, event_type)))

    for bill_id, status in connection.execute(sa.select(bills.c.id, bills.c.status)).all():
        connection.execute(bills.update().where(bills.c.id == bill_id).values(
            created_event_id=event_id(bill_id, "bill_created"),
            cancelled_event_id=(event_id(bill_id, "bill_cancelled")
                                if status == "cancelled" else None)))


def downgrade():
    with op.batch_alter_table("bills") as batch:
        batch.drop_column("cancelled_event_id")
        batch.drop_column("created_event_id")
