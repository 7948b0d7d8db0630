"""``make bench`` cannot rot: its smoke mode (a few seconds per figure, no
targets) runs the whole benchmark against a real mesh, wrk and Kafka, on the
default hub (eventlet's asyncio hub), and says so."""
import json
import os
import platform
import shutil
import subprocess
import sys

import pytest

from common.config import ROOT

EXPECTED = [
    "nohop_memory_read_rps", "mesh_read_rps", "mesh_read_p99_ms", "nohop_sqlite_read_rps",
    "mesh_read_uncached_rps", "full_bill_rps", "full_bill_uncached_rps",
    "rpc_sequential_calls_per_s", "rpc_100_in_flight_calls_per_s", "bill_to_analytics_p99_ms",
    "post_bills_per_s", "post_bills_errors", "post_bills_cpu_ms", "post_bills_cpu_ms_billing",
    "post_bills_cpu_ms_inventory", "post_bills_cpu_ms_gateway", "stream_plain_consumer_events_per_s",
    "stream_aggregator_events_per_s",
] + ["peak_rss_{}_mb".format(name) for name in (
    "customers", "inventory", "billing", "gateway", "kafka_bridge", "analytics", "streams")]
# each figure with a limit, and the limit it is a ratio to (measured in the same run)
AGAINST = {
    "mesh_read_rps": "nohop_memory_read_rps",  # the cached read answers from memory
    "mesh_read_uncached_rps": "nohop_sqlite_read_rps",  # the uncached one reads SQLite
    "full_bill_rps": "mesh_read_rps",
    "full_bill_uncached_rps": "mesh_read_uncached_rps",
    "stream_aggregator_events_per_s": "stream_plain_consumer_events_per_s",
}


@pytest.mark.timeout(300)
def test_benchmark_smoke_mode_measures_every_figure(tmp_path):
    if shutil.which("wrk") is None:
        pytest.fail("wrk is missing: `make test` installs it (apt-get install -y wrk)")
    out = tmp_path / "results.json"
    env = {key: value for key, value in os.environ.items() if key != "BENCH_HUB"}
    run = subprocess.run([sys.executable, "-m", "bench.mesh_bench", "--smoke", "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    document = json.loads(out.read_text())
    assert set(document) == {"run", "metrics"}
    results = document["metrics"]
    missing = [name for name in EXPECTED if name not in results]
    assert not missing, missing
    for name, metric in results.items():
        assert set(metric) == {"value", "unit", "baseline", "against", "ratio", "target",
                               "pass"}, name
        assert isinstance(metric["value"], (int, float)), (name, metric)
        assert metric["pass"] is None and metric["target"] is None, name  # smoke: no verdicts
    for name in EXPECTED:
        if not name.endswith("errors"):
            assert results[name]["value"] > 0, (name, results[name])
    assert results["post_bills_errors"]["value"] == 0
    # the total is the sum of the processes' shares (each rounded to 3 decimals)
    shares = [metric["value"] for name, metric in results.items()
              if name.startswith("post_bills_cpu_ms_")]
    assert results["post_bills_cpu_ms"]["value"] == pytest.approx(sum(shares), abs=0.05)
    for name, limit in AGAINST.items():
        assert results[name]["against"] == limit, (name, results[name])
        assert results[name]["ratio"] == pytest.approx(
            # both are rounded to 3 decimals in results.json
            results[name]["value"] / results[limit]["value"], rel=0.01, abs=0.001), name

    # the hub and the Python it ran on: asked for, checked in every process, said
    info = document["run"]
    assert info["hub"] == "asyncio" and info["EVENTLET_HUB"] == "mesh.asyncio_hub", info
    assert info["python"].startswith(platform.python_version()), info
    instances = info["instances"]
    for name in ("customers", "inventory", "billing", "gateway", "kafka_bridge", "analytics"):
        assert any(instance.startswith(name + " ") for instance in instances), (name, instances)
    assert {"nohop-memory", "nohop-sqlite", "benchmark (RPC client)"} <= set(instances)
    assert set(instances.values()) == {"asyncio"}, instances
    assert "billing-mesh benchmark (smoke; hub asyncio, Python {}".format(
        platform.python_version()) in run.stdout, run.stdout[-3000:]
    assert "hub asyncio (EVENTLET_HUB=mesh.asyncio_hub" in run.stdout, run.stdout[-3000:]
    assert "memory no-hop" in run.stdout and "SQLite no-hop" in run.stdout, run.stdout[-3000:]
