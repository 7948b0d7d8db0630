"""baseline: billing's tables as ``create_all`` made them before migrations

Written out, not generated at run time: a later change of the models never
changes what 0001 creates. A database made before migrations holds exactly
these tables and is stamped 0001 on its first start (``mesh.db``). Money is
integer cents (``common.columns.MoneyType``), times are ``DateTime(timezone=True)``
(``UtcDateTime``): revisions name the storage types, never the project's.

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# what a database made before migrations has (checked before stamping it 0001)
TABLES = ("bills", "outbox_events", "product_items", "idempotency_keys")


def upgrade():
    op.create_table(
        "bills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("billing_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reservation_id"),
    )
    op.create_index("ix_bills_customer_id", "bills", ["customer_id"])
    op.create_table(
        "outbox_events",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_outbox_events_created_at", "outbox_events", ["created_at"])
    op.create_table(
        "product_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("quantity > 0", name="item_quantity_positive"),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"]),
    )
    op.create_index("ix_product_items_product_id", "product_items", ["product_id"])
    op.create_index("ix_product_items_bill_id", "product_items", ["bill_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"]),
    )


def downgrade():
    op.drop_table("idempotency_keys")
    op.drop_table("product_items")
    op.drop_table("outbox_events")
    op.drop_table("bills")
