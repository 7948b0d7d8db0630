"""Alembic's environment for inventory's database. mesh.db runs it (a service's
start, `python -m tools.db`) on the connection that holds the database lock;
the models are here for autogenerate only (`python -m tools.db revision inventory`)."""
from mesh.db import run_migrations
from services.inventory_models import InventoryBase

run_migrations(InventoryBase.metadata)
