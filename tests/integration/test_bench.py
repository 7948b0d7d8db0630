"""``make bench`` cannot rot: its smoke mode (a few seconds per figure, no
targets) runs the whole benchmark against a real mesh, wrk and Kafka."""
import json
import shutil
import subprocess
import sys

import pytest

from common.config import ROOT

EXPECTED = [
    "nohop_read_rps", "mesh_read_rps", "mesh_read_p99_ms", "mesh_read_uncached_rps",
    "full_bill_rps", "full_bill_uncached_rps", "rpc_sequential_calls_per_s",
    "rpc_100_in_flight_calls_per_s", "bill_to_analytics_p99_ms", "post_bills_per_s",
    "post_bills_errors", "stream_plain_consumer_events_per_s",
    "stream_aggregator_events_per_s",
] + ["peak_rss_{}_mb".format(name) for name in (
    "customers", "inventory", "billing", "gateway", "kafka_bridge", "analytics", "streams")]


@pytest.mark.timeout(300)
def test_benchmark_smoke_mode_measures_every_figure(tmp_path):
    if shutil.which("wrk") is None:
        pytest.fail("wrk is missing: `make test` installs it (apt-get install -y wrk)")
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "bench.mesh_bench", "--smoke", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    missing = [name for name in EXPECTED if name not in results]
    assert not missing, missing
    for name, metric in results.items():
        assert set(metric) == {"value", "unit", "baseline", "ratio", "target", "pass"}, name
        assert isinstance(metric["value"], (int, float)), (name, metric)
        assert metric["pass"] is None and metric["target"] is None, name  # smoke: no verdicts
    for name in EXPECTED:
        if not name.endswith("errors"):
            assert results[name]["value"] > 0, (name, results[name])
    assert results["post_bills_errors"]["value"] == 0
    assert results["mesh_read_rps"]["ratio"] == pytest.approx(
        results["mesh_read_rps"]["value"] / results["nohop_read_rps"]["value"], rel=0.01)
    assert "billing-mesh benchmark (smoke" in run.stdout
