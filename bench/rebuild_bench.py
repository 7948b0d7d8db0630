"""Rebuild benchmark: how long the analytics take to rebuild from billing's
record, and the memory each process needs meanwhile.

    .venv/bin/python -m bench.rebuild_bench                  # 10,000 and 100,000 bills
    .venv/bin/python -m bench.rebuild_bench --bills 2000     # a quick look

For each count, billing's database is made at head and filled with that many
bills straight through SQLAlchemy (billing's own models; a fifth of them
cancelled, so a rebuild gives about 1.2 events per bill), with no outbox rows:
as after the outbox pruned them. Then the whole mesh starts on it
(``bench.harness.BenchMesh``: ``python -m tools.run`` in a vhost and folder of
its own) with a fresh local Tansu broker, so the Kafka side is empty and the
rebuilder rebuilds by itself, as after ``make run`` again. Printed per count:
the events given again, the rebuild's time as the rebuilder reports it (first
event read to the aggregator's last count), the time from the launcher's start
to ``/health`` ``ok`` with analytics equal to billing, and each process's peak
resident memory. ``make bench-rebuild`` runs it; the figures go to
docs/benchmarks.md.
"""
import argparse
import asyncio
import datetime
import os
import shutil
import sys
import tempfile
import time
import uuid

import requests
from sqlalchemy import insert

import mesh.aio
from bench.harness import BenchMesh, add_hub_argument, start_tansu
from mesh.db import bootstrap, make_engine
from services.billing_models import Bill, BillingBase, ProductItem
from services.billing_seed import seed_bills

PRICES = {1: "3200.00", 2: "1299.00", 3: "5400.00"}  # the seeded products' prices
CHUNK = 5000


def fill_billing(path, count):
    """``count`` bills in billing's SQLite database at ``path``, a fifth cancelled."""
    engine = make_engine("sqlite:///" + path)
    bootstrap(engine, BillingBase.metadata, seed_bills)
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    with engine.begin() as connection:
        next_id = connection.exec_driver_sql("SELECT max(id) FROM bills").scalar() + 1
        for first in range(0, count, CHUNK):
            bills, items = [], []
            for n in range(first, min(first + CHUNK, count)):
                made = start + datetime.timedelta(milliseconds=50 * n)
                cancelled = n % 5 == 4
                bills.append({
                    "id": next_id + n, "customer_id": n % 3 + 1, "billing_date": made,
                    "status": "cancelled" if cancelled else "active",
                    "cancelled_at": made + datetime.timedelta(seconds=30) if cancelled else None,
                    "created_event_id": str(uuid.uuid4()),
                    "cancelled_event_id": str(uuid.uuid4()) if cancelled else None})
                for product in (n % 3 + 1, (n + 1) % 3 + 1):
                    items.append({"bill_id": next_id + n, "product_id": product,
                                  "quantity": 1 + n % 2, "unit_price": PRICES[product]})
            connection.execute(insert(Bill), bills)
            connection.execute(insert(ProductItem), items)
    engine.dispose()


async def rebuild_status(amqp_uri):
    async with mesh.aio.connect(amqp_uri) as client:
        return await client.rebuilder.get_rebuild()


def measure(count, hub):
    folder = tempfile.mkdtemp(prefix="billing-mesh-rebuild-")
    bootstrap_servers, broker = start_tansu(folder)
    try:
        fill_billing(os.path.join(folder, "billing.db"), count)
        started = time.monotonic()
        with BenchMesh(folder, bootstrap_servers, hub=hub, MESH_HEALTH_WAIT=3600) as bench:
            ok_after = None
            while ok_after is None:
                body = requests.get(bench.url + "/health", timeout=10).json()
                if body["status"] == "ok":
                    ok_after = time.monotonic() - started
                time.sleep(0.5)
            status = asyncio.run(rebuild_status(bench.vhost.amqp_uri))
            memory = bench.peak_rss_mb()
    finally:
        broker.kill()
        shutil.rmtree(folder, ignore_errors=True)
    took = (datetime.datetime.fromisoformat(status["finished_at"])
            - datetime.datetime.fromisoformat(status["started_at"])).total_seconds()
    return {"bills": count, "events": status["events_given"], "rebuild_s": took,
            "ok_after_s": ok_after, "peak_rss_mb": memory}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bills", type=int, nargs="+", default=[10_000, 100_000])
    add_hub_argument(parser)
    args = parser.parse_args(argv)
    for count in args.bills:
        result = measure(count, args.hub)
        print("{bills:>7} bills: {events} events given again; rebuild {rebuild_s:.1f} s "
              "({rate:.0f} events/s); /health ok {ok_after_s:.1f} s after the start".format(
                  rate=result["events"] / max(result["rebuild_s"], 1e-9), **result), flush=True)
        print("         peak RSS (MB): " + ", ".join(
            "{} {:.0f}".format(name, mb) for name, mb in sorted(result["peak_rss_mb"].items())),
            flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
