"""bill status: a bill is ``active`` or ``cancelled`` (``billing.cancel_bill``)

A cancelled bill is kept, with the time of its cancellation; every bill made
before this revision is active. Written out, as 0001 is: revisions name storage
types, never the project's.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # batch mode: SQLite alters a table by copying it
    with op.batch_alter_table("bills") as batch:
        batch.add_column(sa.Column("status", sa.String(length=10), server_default="active",
                                   nullable=False))
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("bills") as batch:
        batch.drop_column("cancelled_at")
        batch.drop_column("status")
