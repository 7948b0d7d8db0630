"""``python -m tools.probe``, the Kubernetes readiness probe, on what it reads:
a metrics page (``mesh_amqp_consuming``) and the process table (the
aggregator's worker). Against a running process: test_metrics_scrape.py."""
import os

from tools.probe import consuming, workers_of


def test_a_metrics_page_says_whether_the_process_consumes():
    page = ('# HELP mesh_amqp_consuming ...\n# TYPE mesh_amqp_consuming gauge\n'
            'mesh_amqp_consuming{service="customers"} 1.0\n'
            'mesh_amqp_consuming{service="gateway"} 0.0\nmesh_busy_workers{service="x"} 1.0\n')
    assert consuming(page) == {"customers": True, "gateway": False}
    assert consuming("mesh_busy_workers 1.0\n") == {}


def test_the_aggregators_worker_is_found_by_its_command_line(tmp_path):
    def process(pid, *argv):
        os.makedirs(tmp_path / str(pid))
        (tmp_path / str(pid) / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    process(7, "python", "-m", "streams")
    process(8, "python", "-m", "streams", "--worker")
    process(9, "python", "-m", "streamsx", "--worker")
    os.makedirs(tmp_path / "self")
    assert workers_of("streams", proc=str(tmp_path)) == [8]
    assert workers_of("other", proc=str(tmp_path)) == []
