"""Alembic's environment for billing's database. mesh.db runs it (a service's
start, `python -m tools.db`) on the connection that holds the database lock;
the models are here for autogenerate only (`python -m tools.db revision billing`)."""
from mesh.db import run_migrations
from services.billing_models import BillingBase

run_migrations(BillingBase.metadata)
