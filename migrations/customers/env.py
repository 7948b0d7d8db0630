"""Alembic's environment for customers's database. mesh.db runs it (a service's
start, `python -m tools.db`) on the connection that holds the database lock;
the models are here for autogenerate only (`python -m tools.db revision customers`)."""
from mesh.db import run_migrations
from services.customers_models import CustomersBase

run_migrations(CustomersBase.metadata)
