"""baseline: customers' tables as ``create_all`` made them before migrations

Written out, not generated at run time: a later change of the models never
changes what 0001 creates. A database made before migrations holds exactly
these tables and is stamped 0001 on its first start (``mesh.db``).

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
TABLES = ("customers",)


def upgrade():
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )


def downgrade():
    op.drop_table("customers")
