"""bill callers: who made each bill and who cancelled it

The subject of the gateway request's token (``mesh.auth``), stored with the
bill. Bills made before this revision, and bills made without a token (the
seeded ones, plain RPC calls), have none. Written out, as 0001 is: revisions
name storage types, never the project's.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("bills") as batch:
        batch.add_column(sa.Column("created_by", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("cancelled_by", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("bills") as batch:
        batch.drop_column("cancelled_by")
        batch.drop_column("created_by")
