"""inbox: the calls of customers' writing RPC methods and their answers (``mesh.inbox``)

One row per call of an ``@rpc(inbox=True)`` method, written in the call's own
transaction: the request's AMQP correlation id, its method, its answer as the
reply carried it (serialized text and its content type), and when (UTC, for a
retention job to prune by). A call RabbitMQ delivers again is answered from it.
Written out, as 0001 is: revisions name storage types, never the project's.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "inbox",
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_id"),
    )
    op.create_index("ix_inbox_created_at", "inbox", ["created_at"])


def downgrade():
    op.drop_index("ix_inbox_created_at", table_name="inbox")
    op.drop_table("inbox")
