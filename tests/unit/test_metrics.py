"""``mesh.metrics``: what a service's workers, the HTTP edge, the outbox and the
topic tables record, read back the way Prometheus reads it (the text format,
parsed by prometheus-client's own parser). No broker: the workers run through
nameko's real worker path (``ServiceContainer.spawn_worker``) in a container
that is never started.

The registry is the process's: every check compares before and after, with a
service name of its own.
"""
import datetime
import json
import socket
import time
import urllib.error
import urllib.request
from types import SimpleNamespace
from unittest.mock import Mock

import eventlet
import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import entrypoint_waiter
from nameko.timer import timer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from sqlalchemy import update
from werkzeug.routing import Map, Rule
from werkzeug.test import Client
from werkzeug.wrappers import Response

from contracts.errors import CustomerNotFound
from helpers import seeded_db
from contracts.scopes import PUBLIC
from mesh import metrics as mesh_metrics
from mesh.events import event_handler
from mesh.http import JsonWsgiApp, RouteSpec, http
from mesh.kafka import table_lag
from mesh.metrics import Metrics, metrics_text, observe_http, release, serve, snapshot
from mesh.outbox import OutboxClient, write_event
from mesh.rpc import rpc
from services.billing_models import BillingBase, OutboxEvent
from tools.net import free_port

SERVICE = "metrics-test"


def scrape(text=None):
    """``{(sample name, ((label, value), ...)): value}`` of a scrape."""
    text = metrics_text()[0].decode() if text is None else text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


class Counted:
    name = SERVICE

    metrics = Metrics()

    @rpc
    def work(self, seconds=0):
        eventlet.sleep(seconds)
        return "done"

    @rpc
    def find(self):
        raise CustomerNotFound("customer 7 does not exist")

    @rpc
    def crash(self):
        return 1 / 0

    @timer(interval=60)
    def tick(self):
        pass

    @event_handler("billing", "bill_created")
    def on_bill(self, payload):
        pass

    @http("GET", "/page", scope=PUBLIC)
    def page(self, request):
        return Response("page")


@pytest.fixture
def container():
    """A container of ``Counted`` whose Metrics provider is set up, never started
    (binding and the provider's setup open no connection)."""
    container = ServiceContainer(Counted, {"AMQP_URI": "memory://", "max_workers": 7})
    for provider in container.dependencies:
        provider.setup()
    return container


def spawn(container, method, *args):
    """Start one worker of ``method`` through nameko's worker path."""
    entrypoint = next(ep for ep in container.entrypoints if ep.method_name == method)
    container.spawn_worker(entrypoint, args, {})


def waiting(container, method, count=1):
    """``with waiting(...)``: leaves once ``count`` workers of ``method`` have
    finished, teardown included (nameko's ``entrypoint_waiter``)."""
    done = []

    def counted(worker_ctx, result, exc_info):
        done.append(worker_ctx)
        return len(done) == count
    return entrypoint_waiter(container, method, callback=counted, timeout=10)


def run(container, method, *args):
    """Run one worker of ``method`` to its end."""
    with waiting(container, method):
        spawn(container, method, *args)


def test_rpc_calls_errors_and_durations_are_counted(container):
    before = scrape()
    run(container, "work", 0.03)
    run(container, "work")
    run(container, "find")
    run(container, "crash")
    after = scrape()

    assert moved(before, after, "mesh_rpc_calls_total", service=SERVICE, method="work") == 2
    assert moved(before, after, "mesh_rpc_calls_total", service=SERVICE, method="find") == 1
    assert moved(before, after, "mesh_rpc_calls_total", service=SERVICE, method="crash") == 1
    # a MeshError by its code, a bug by its class; a call that answered is no error
    assert moved(before, after, "mesh_rpc_errors_total", service=SERVICE, method="find",
                 code="CUSTOMER_NOT_FOUND") == 1
    assert moved(before, after, "mesh_rpc_errors_total", service=SERVICE, method="crash",
                 code="ZeroDivisionError") == 1
    assert not [key for key in after if key[0] == "mesh_rpc_errors_total"
                and ("method", "work") in key[1]]

    labels = {"service": SERVICE, "method": "work"}
    assert moved(before, after, "mesh_rpc_duration_seconds_count", **labels) == 2
    assert moved(before, after, "mesh_rpc_duration_seconds_sum", **labels) >= 0.03
    # the 30 ms call landed above the 25 ms bucket, the instant one in the first
    assert moved(before, after, "mesh_rpc_duration_seconds_bucket", le="0.001", **labels) == 1
    assert moved(before, after, "mesh_rpc_duration_seconds_bucket", le="0.025", **labels) == 1
    assert moved(before, after, "mesh_rpc_duration_seconds_bucket", le="0.05", **labels) == 2
    assert moved(before, after, "mesh_rpc_duration_seconds_bucket", le="+Inf", **labels) == 2


def test_timers_and_event_handlers_count_as_handled_not_as_rpc_and_http_as_neither(container):
    before = scrape()
    run(container, "tick")
    run(container, "on_bill", {"event_id": "e1"})
    run(container, "on_bill", {"event_id": "e2"})
    run(container, "page", None)
    after = scrape()
    assert moved(before, after, "mesh_event_handled_total", service=SERVICE, handler="tick") == 1
    assert moved(before, after, "mesh_event_handled_total", service=SERVICE, handler="on_bill") == 2
    for method in ("tick", "on_bill", "page"):
        assert not value(after, "mesh_rpc_calls_total", service=SERVICE, method=method)
    assert not value(after, "mesh_event_handled_total", service=SERVICE, handler="page")


def test_busy_workers_go_up_and_down_and_max_workers_is_the_config(container):
    busy = lambda: value(scrape(), "mesh_busy_workers", service=SERVICE)  # noqa: E731
    assert busy() == 0
    with waiting(container, "work", count=3):
        for _ in range(3):
            spawn(container, "work", 0.3)
        eventlet.sleep(0.05)
        assert busy() == 3
        run(container, "tick")
        assert busy() == 3  # a worker that came and went left it as it was
    assert busy() == 0
    assert value(scrape(), "mesh_max_workers", service=SERVICE) == 7

    # a teardown of a worker whose setup this provider never saw takes nothing off
    provider = container.dependencies.pop()
    provider.worker_teardown(SimpleNamespace())
    assert busy() == 0


def test_snapshot_sums_the_methods_of_one_service(container):
    before = snapshot(SERVICE)
    assert set(before) == {"calls", "errors", "seconds", "busy"}
    run(container, "work", 0.02)
    run(container, "find")
    run(container, "crash")
    after = snapshot(SERVICE)
    assert after["calls"] - before["calls"] == 3
    assert after["errors"] - before["errors"] == 2
    assert after["seconds"] - before["seconds"] >= 0.02
    assert after["busy"] == 0
    assert isinstance(after["seconds"], float)
    # the same counts as the exported series, summed over the service's methods
    scraped = scrape()

    def summed(name):
        return sum(v for (sample, labels), v in scraped.items()
                   if sample == name and ("service", SERVICE) in labels)
    assert after["calls"] == summed("mesh_rpc_calls_total")
    assert after["errors"] == summed("mesh_rpc_errors_total")
    assert after["seconds"] == pytest.approx(summed("mesh_rpc_duration_seconds_sum"))
    assert snapshot("nobody") == {"calls": 0, "errors": 0, "seconds": 0.0, "busy": 0}


def test_metrics_text_is_prometheus_text_without_created_series(container):
    body, content_type = metrics_text()
    assert content_type.startswith("text/plain; version=")
    text = body.decode()
    assert "# TYPE mesh_rpc_duration_seconds histogram" in text
    assert "process_resident_memory_bytes" in text  # the process's own figures come along
    # Metrics.setup turned prometheus-client's _created series off (a label
    # value may still say "created": the gateway's feed_bill_created handler)
    series = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
              if line and not line.startswith("#")}
    assert not [name for name in series if name.endswith("_created")], series


# --- the HTTP edge (mesh.http.JsonWsgiApp) ----------------------------------------

class Body(BaseModel):
    name: str


class Route:
    """A provider as nameko's web server maps one: ``handle_request`` answers."""

    def __init__(self, answer, spec=None):
        self.answer = answer
        self.spec = spec

    def handle_request(self, request):
        return self.answer()


def slow_stream():
    yield b"data: 1\n\n"
    eventlet.sleep(0.3)  # the stream goes on long after its headers left
    yield b"data: 2\n\n"


@pytest.fixture
def edge():
    """The HTTP edge with three routes, without a container or a socket."""
    rules = [
        Rule("/things/<int:thing_id>", methods=["GET"], endpoint=Route(lambda: Response("t"))),
        Rule("/things", methods=["POST"],
             endpoint=Route(lambda: Response("new", status=201), RouteSpec(body=Body))),
        Rule("/stream", methods=["GET"], endpoint=Route(
            lambda: Response(slow_stream(), mimetype="text/event-stream"))),
    ]
    server = SimpleNamespace(container=SimpleNamespace(config={}),
                             make_url_map=lambda: Map(rules))
    return Client(JsonWsgiApp(server))


def http_moved(before, after, route, method, status):
    return moved(before, after, "mesh_http_requests_total", route=route, method=method,
                 status=str(status))


def test_every_answer_of_the_edge_is_counted_by_route_pattern_refusals_too(edge):
    before = scrape()
    assert edge.get("/things/1").status_code == 200
    assert edge.get("/things/99999999999").status_code == 404  # beyond MAX_ID, at the edge
    assert edge.post("/things", data="{}", content_type="text/plain").status_code == 415
    assert edge.post("/things", json={"name": 7}).status_code == 400
    assert edge.post("/things", json={"name": "x"}).status_code == 201
    assert edge.get("/nowhere").status_code == 404
    assert edge.delete("/things/1").status_code == 405
    assert edge.open("/things/1", method="BREW").status_code == 405
    after = scrape()

    assert http_moved(before, after, "/things/<int:thing_id>", "GET", 200) == 1
    assert http_moved(before, after, "/things/<int:thing_id>", "GET", 404) == 1
    assert http_moved(before, after, "/things", "POST", 415) == 1
    assert http_moved(before, after, "/things", "POST", 400) == 1
    assert http_moved(before, after, "/things", "POST", 201) == 1
    assert http_moved(before, after, "<unmatched>", "GET", 404) == 1
    assert http_moved(before, after, "<unmatched>", "DELETE", 405) == 1
    # a method a client made up is not a label value of its own
    assert http_moved(before, after, "<unmatched>", "OTHER", 405) == 1
    assert not [key for key in after if ("method", "BREW") in key[1]]
    assert moved(before, after, "mesh_http_duration_seconds_count",
                 route="/things", method="POST") == 3


def test_a_streamed_answer_is_counted_but_its_body_not_timed(edge):
    before = scrape()
    started = time.monotonic()
    response = edge.get("/stream", buffered=False)
    assert response.get_data() == b"data: 1\n\ndata: 2\n\n"
    assert time.monotonic() - started >= 0.3
    after = scrape()
    labels = {"route": "/stream", "method": "GET"}
    assert http_moved(before, after, "/stream", "GET", 200) == 1
    assert moved(before, after, "mesh_http_duration_seconds_count", **labels) == 1
    # timed until its headers were ready: well under the 0.3 s its body took
    assert moved(before, after, "mesh_http_duration_seconds_bucket", le="0.1", **labels) == 1


def test_observe_http_labels():
    before = scrape()
    observe_http(None, "PROPFIND", 405, 0.001)
    after = scrape()
    assert http_moved(before, after, "<unmatched>", "OTHER", 405) == 1


# --- the outbox and Kafka -------------------------------------------------------

def old_events(db, count):
    """``count`` events written past their grace period (a crash between commit
    and dispatch)."""
    with db.get_session() as session:
        ids = [write_event(session, OutboxEvent, {"event_id": "e{}".format(n),
                                                  "type": "bill_created"})["event_id"]
               for n in range(count)]
        session.execute(update(OutboxEvent).where(OutboxEvent.event_id.in_(ids)).values(
            created_at=datetime.datetime.now(datetime.timezone.utc)
            - datetime.timedelta(minutes=1)))


def backlog(service):
    return value(scrape(), "mesh_outbox_backlog", service=service)


def test_outbox_backlog_is_what_each_relay_run_finds_undispatched(tmp_path):
    _engine, db = seeded_db(tmp_path, BillingBase, lambda session: None)
    old_events(db, 3)
    outbox = OutboxClient(OutboxEvent, publish=Mock(), service="billing-test")
    assert outbox.relay(db) == 3
    assert backlog("billing-test") == 3  # found waiting, sent again by this run
    outbox.relay(db)  # marks them
    assert backlog("billing-test") == 0


def test_outbox_backlog_counts_past_a_full_batch(tmp_path, monkeypatch):
    monkeypatch.setattr("mesh.outbox.RELAY_BATCH", 2)
    _engine, db = seeded_db(tmp_path, BillingBase, lambda session: None)
    old_events(db, 5)
    outbox = OutboxClient(OutboxEvent, publish=Mock(), service="billing-batch")
    assert outbox.relay(db) == 2  # one batch sent
    assert backlog("billing-batch") == 5  # but all five counted


class FakeConsumer:
    """confluent-kafka's ``position`` and ``get_watermark_offsets(cached=True)``."""

    def __init__(self, positions, ends):
        self.positions, self.ends = positions, ends

    def position(self, partitions):
        return [SimpleNamespace(topic=tp.topic, partition=tp.partition,
                                offset=self.positions[tp.topic, tp.partition])
                for tp in partitions]

    def get_watermark_offsets(self, tp, cached=False):
        assert cached, "a request to the broker would block the green loop"
        return self.ends[tp.topic, tp.partition]


def test_table_lag_is_end_minus_position_per_topic():
    partitions = [SimpleNamespace(topic=topic, partition=partition)
                  for topic, partition in (("a", 0), ("a", 1), ("b", 0), ("c", 0))]
    consumer = FakeConsumer(
        # a: 3 + 0 behind; b: nothing read yet (OFFSET_INVALID), 4 records from 0;
        # c: no fetch answered yet, its end unknown
        positions={("a", 0): 7, ("a", 1): 2, ("b", 0): -1001, ("c", 0): -1001},
        ends={("a", 0): (0, 10), ("a", 1): (0, 2), ("b", 0): (0, 4), ("c", 0): (-1001, -1001)})
    assert table_lag(consumer, partitions) == {"a": 3, "b": 4}


# --- serving ---------------------------------------------------------------------

def get(port):
    with urllib.request.urlopen("http://127.0.0.1:{}/metrics".format(port), timeout=5) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read().decode()


def test_the_metrics_server_serves_under_eventlet_once_per_port():
    """prometheus-client's own server, in the green threads monkey patching
    makes of its threads (tests/conftest.py patches, as ``nameko run`` does)."""
    port = free_port()
    assert serve(port) and serve(port)  # two containers of one process
    try:
        observe_http("/served", "GET", 200, 0.001)
        status, content_type, text = get(port)
        assert status == 200 and content_type.startswith("text/plain")
        assert value(scrape(text), "mesh_http_requests_total",
                     route="/served", method="GET", status="200") >= 1
        release(port)
        assert get(port)[0] == 200  # the other container still uses it
    finally:
        release(port)
    with pytest.raises(urllib.error.URLError):
        get(port)


def test_a_taken_port_is_logged_not_raised(caplog):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve(port) is False
    assert "metrics not served" in caplog.text
    assert port not in mesh_metrics._servers


# --- make run's ports and Prometheus targets (tools/run.py) -----------------------

def test_launcher_gives_each_process_a_port_of_its_own_skipping_taken_ones():
    from tools.run import metrics_ports
    taken = {9401, 9402}
    assert metrics_ports(["customers.1", "customers.2", "gateway"], 9400,
                         taken=taken.__contains__) == {
        "customers.1": 9400, "customers.2": 9403, "gateway": 9404}
    assert metrics_ports(["customers"], 0) == {}  # METRICS_BASE_PORT=0: off


def test_launcher_targets_file_is_prometheus_file_sd(tmp_path):
    from tools.run import write_targets
    path = tmp_path / "prometheus" / "targets.json"
    write_targets(str(path), [("customers", "customers.1", 9400), ("gateway", "gateway", 9401)])
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:9400"], "labels": {"service": "customers", "instance": "customers.1"}},
        {"targets": ["127.0.0.1:9401"], "labels": {"service": "gateway", "instance": "gateway"}}]
    assert [p.name for p in path.parent.iterdir()] == ["targets.json"]  # no temporary file left
