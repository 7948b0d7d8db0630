"""reservation states: held, confirmed, released

A reservation is ``held`` from ``reserve_stock`` until billing confirms it (its
bill committed: ``confirmed``) or it goes back (``released``). Reservations of the
code before were ``reserved``: they become ``held``, and the expiry sweep asks
billing about each (a committed bill's reservation is confirmed, never released).
The sweep finds held reservations by state and age: an index on both.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE stock_reservations SET status = 'held' WHERE status = 'reserved'")
    op.create_index("ix_stock_reservations_status_created_at", "stock_reservations",
                    ["status", "created_at"])


def downgrade():
    op.drop_index("ix_stock_reservations_status_created_at", table_name="stock_reservations")
    op.execute("UPDATE stock_reservations SET status = 'reserved' "
               "WHERE status IN ('held', 'confirmed')")
