"""baseline: inventory's tables as ``create_all`` made them before migrations

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
TABLES = ("products", "stock_reservations")


def upgrade():
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("quantity >= 0", name="stock_never_negative"),
        sa.CheckConstraint("price >= 0", name="price_never_negative"),
    )
    op.create_table(
        "stock_reservations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("stock_reservations")
    op.drop_table("products")
