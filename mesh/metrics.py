"""Metrics in Prometheus' text format, with the official ``prometheus-client``.

What this process exports (every name starts with ``mesh_``; the process's own
CPU, memory and garbage collector figures come along as ``process_*`` and
``python_*``):

* ``mesh_rpc_calls_total{service,method}``, ``mesh_rpc_errors_total{service,
  method,code}`` (the ``MeshError`` code, or the exception's class name for a
  bug) and ``mesh_rpc_duration_seconds{service,method}`` (a histogram, 1 ms to
  5 s): every ``@rpc`` call a worker ran, from ``Metrics``' worker hooks;
* ``mesh_busy_workers{service}`` (workers running now, of any entrypoint) and
  ``mesh_max_workers{service}`` (config ``max_workers``);
* ``mesh_event_handled_total{service,handler}``: event handlers and timers run;
* ``mesh_http_requests_total{route,method,status}`` and
  ``mesh_http_duration_seconds{route,method}``: every request the HTTP edge
  answered, refusals (400, 404, 405, 413, 415) included (``mesh.http``);
* ``mesh_outbox_backlog{service}``: outbox events left undispatched past their
  grace period (``mesh.outbox``);
* ``mesh_kafka_consumer_lag{group,topic}``: records not yet read
  (``mesh.kafka``: the topic tables, ``group_lag``).

A service gets the RPC and worker figures with one line::

    class CustomersService:
        metrics = Metrics()

and with ``METRICS_PORT`` set (config.yaml; 0, the default, is off) its process
serves them at ``http://<METRICS_ADDRESS>:<METRICS_PORT>/metrics`` (127.0.0.1
unless configured), one port per process,
the way Prometheus scrapes a fleet. ``metrics_text()`` gives the same text for
a route of one's own (the gateway's ``GET /metrics``); ``snapshot(service)`` a
few totals for a heartbeat.

The metrics live in this module's ``REGISTRY``, not in prometheus-client's
global one: importing this module registers nothing anywhere else.
"""
import logging
import threading
import time

from nameko.constants import DEFAULT_MAX_WORKERS, MAX_WORKERS_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, GCCollector, Gauge, Histogram,
    PlatformCollector, ProcessCollector, disable_created_metrics, generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

from common.config import DEFAULT_METRICS_ADDRESS
from contracts.errors import MeshError
from mesh.amqp import CONSUMING
from mesh.rpc import DeadlineRpc

log = logging.getLogger(__name__)

METRICS_PORT_KEY = "METRICS_PORT"
METRICS_ADDRESS_KEY = "METRICS_ADDRESS"
# 1 ms (a cached read) to 5 s (RPC_TIMEOUT's default); slower lands in +Inf
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "<unmatched>"
# the method label of anything else: a label value per method a client makes up
# would be a new series each
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
OTHER_METHOD = "OTHER"

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

RPC_CALLS = Counter("mesh_rpc_calls_total", "RPC calls handled by a worker",
                    ["service", "method"], registry=REGISTRY)
RPC_ERRORS = Counter("mesh_rpc_errors_total",
                     "RPC calls that raised: code is the MeshError code, or the "
                     "exception's class name for a bug",
                     ["service", "method", "code"], registry=REGISTRY)
RPC_DURATION = Histogram("mesh_rpc_duration_seconds",
                         "Time a worker took for an RPC call, reply sent included",
                         ["service", "method"], buckets=DURATION_BUCKETS, registry=REGISTRY)
BUSY_WORKERS = Gauge("mesh_busy_workers", "Workers running now, of any entrypoint",
                     ["service"], registry=REGISTRY)
MAX_WORKERS = Gauge("mesh_max_workers", "Workers a service instance may run at once "
                    "(config max_workers)", ["service"], registry=REGISTRY)
EVENTS_HANDLED = Counter("mesh_event_handled_total", "Event handler and timer runs",
                         ["service", "handler"], registry=REGISTRY)
HTTP_REQUESTS = Counter("mesh_http_requests_total",
                        "HTTP requests answered, edge refusals included; route is the "
                        "matched URL pattern or <unmatched>",
                        ["route", "method", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram("mesh_http_duration_seconds",
                          "Time until an HTTP answer was ready to send (a streamed body "
                          "is not timed)",
                          ["route", "method"], buckets=DURATION_BUCKETS, registry=REGISTRY)
HTTP_RATE_LIMITED = Counter("mesh_http_rate_limited_total",
                            "HTTP requests refused with 429: the caller went over its "
                            "limit; client is what the limit counted by (subject or address)",
                            ["route", "client"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("mesh_outbox_backlog",
                       "Outbox events still undispatched after their grace period, "
                       "as the last relay run found them", ["service"], registry=REGISTRY)


class ConsumingCollector:
    """``mesh_amqp_consuming{service}``: 1 while this process's consumer is
    connected to RabbitMQ and consuming its queues (``mesh.amqp.CONSUMING``),
    0 while it reconnects: the readiness a Kubernetes probe reads
    (``tools.probe``)."""

    def collect(self):
        family = GaugeMetricFamily(
            "mesh_amqp_consuming", "Whether this process consumes its RabbitMQ queues now "
            "(1) or is (re)connecting (0)", labels=["service"])
        for service, consuming in sorted(CONSUMING.items()):
            family.add_metric([service], 1.0 if consuming else 0.0)
        yield family


REGISTRY.register(ConsumingCollector())
KAFKA_LAG = Gauge("mesh_kafka_consumer_lag",
                  "Records of a topic not yet read: end offset minus the position "
                  "(topic tables) or the committed offset (consumer groups)",
                  ["group", "topic"], registry=REGISTRY)


def error_code(exc):
    """The ``code`` label of an RPC error: ``"CUSTOMER_NOT_FOUND"`` for a
    ``MeshError``, ``"ZeroDivisionError"`` for a bug."""
    return exc.code if isinstance(exc, MeshError) else type(exc).__name__


class Metrics(DependencyProvider):
    """Counts a service's RPC calls, errors and durations, and its busy
    workers, from nameko's worker hooks; serves this process's metrics on
    ``METRICS_PORT`` from ``start`` (once per process and port).

        class CustomersService:
            metrics = Metrics()

    Only ``@rpc`` entrypoints (``mesh.rpc.DeadlineRpc``) count as RPC; event
    handlers and timers count in ``mesh_event_handled_total``; HTTP requests
    are counted by the HTTP edge itself (``observe_http``), refusals included.
    A call starts counting when its worker starts: time spent waiting for a
    free worker, and requests refused before any worker ran (past their
    deadline, wrong arguments), are not in these figures.
    """

    def setup(self):
        # a _created series per counter and histogram doubles what every
        # scrape carries, and nothing here reads them
        disable_created_metrics()
        config = self.container.config
        self.service = self.container.service_name
        self.port = int(config.get(METRICS_PORT_KEY) or 0)
        self.address = str(config.get(METRICS_ADDRESS_KEY) or DEFAULT_METRICS_ADDRESS)
        MAX_WORKERS.labels(self.service).set(
            int(config.get(MAX_WORKERS_CONFIG_KEY, DEFAULT_MAX_WORKERS)))
        self.started = {}  # worker context -> when its worker started
        # this process's totals of the service (containers of one service add up)
        totals = self.totals = _totals.setdefault(self.service, ServiceTotals())
        # read when scraped: no lock taken twice per worker to count them
        BUSY_WORKERS.labels(self.service).set_function(lambda: totals.busy)
        # per method: the label children, looked up once (labels() takes a lock)
        self.rpc_children = {}
        self.event_children = {}
        self.serving = False

    def start(self):
        if self.port:
            self.serving = serve(self.port, self.address)

    def stop(self):
        if self.serving:
            self.serving = False
            release(self.port)

    kill = stop

    def worker_setup(self, worker_ctx):
        self.started[worker_ctx] = time.perf_counter()
        self.totals.busy += 1

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        entrypoint = worker_ctx.entrypoint
        if isinstance(entrypoint, DeadlineRpc):
            method = entrypoint.method_name
            children = self.rpc_children.get(method)
            if children is None:
                children = self.rpc_children[method] = (
                    RPC_CALLS.labels(self.service, method),
                    RPC_DURATION.labels(self.service, method))
            calls, duration = children
            totals = self.totals
            calls.inc()
            totals.calls += 1
            started = self.started.get(worker_ctx)
            if started is not None:
                seconds = time.perf_counter() - started
                duration.observe(seconds)
                totals.seconds += seconds
            if exc_info is not None:
                RPC_ERRORS.labels(self.service, method, error_code(exc_info[1])).inc()
                totals.errors += 1
        elif not isinstance(entrypoint, HttpRequestHandler):
            handler = entrypoint.method_name
            child = self.event_children.get(handler)
            if child is None:
                child = self.event_children[handler] = EVENTS_HANDLED.labels(
                    self.service, handler)
            child.inc()

    def worker_teardown(self, worker_ctx):
        # only a worker this provider saw start: never below what is running
        # when another provider's worker_setup failed
        if self.started.pop(worker_ctx, None) is not None:
            self.totals.busy -= 1


# -- the HTTP edge, the outbox and Kafka record here ---------------------------

def observe_rate_limited(route, client):
    """Count one request refused with 429 (``mesh.http``): ``client`` is
    ``subject`` (a token's) or ``address`` (no token)."""
    HTTP_RATE_LIMITED.labels(route=route, client=client).inc()


def observe_http(route, method, status, seconds):
    """Count one answered HTTP request (``mesh.http.JsonWsgiApp`` calls it):
    ``route`` the matched URL pattern (``"/customers/<int:customer_id>"``), or
    None when no rule matched path and method (404, 405, OPTIONS, redirects):
    ``<unmatched>``; ``seconds`` until the answer was ready to send.

        >>> observe_http("/customers/<int:customer_id>", "GET", 200, 0.004)
    """
    if method not in HTTP_METHODS:
        method = OTHER_METHOD
    key = (route, method, status)
    children = _http_children.get(key)
    if children is None:
        children = _http_children[key] = (
            HTTP_REQUESTS.labels(route or UNMATCHED, method, str(status)),
            HTTP_DURATION.labels(route or UNMATCHED, method))
    requests, duration = children
    requests.inc()
    duration.observe(seconds)


# (route, method, status) -> their label children, looked up once (labels()
# takes a lock each time); as bounded as the labels themselves
_http_children = {}


def set_outbox_backlog(service, count):
    """``mesh_outbox_backlog{service}`` (``mesh.outbox.OutboxClient.relay``).

        >>> set_outbox_backlog("billing", 0)
    """
    OUTBOX_BACKLOG.labels(service).set(count)


def set_kafka_lag(group, topic, lag):
    """``mesh_kafka_consumer_lag{group,topic}`` (``mesh.kafka``).

        >>> set_kafka_lag("billing-analytics", "billing.bills", 3)
    """
    KAFKA_LAG.labels(group, topic).set(lag)


# -- reading them ---------------------------------------------------------------

def metrics_text():
    """This process's metrics in Prometheus' text format, and its content type:
    the body of a ``GET /metrics`` answer.

        >>> body, content_type = metrics_text()
        >>> content_type
        'text/plain; version=1.0.0; charset=utf-8'
    """
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class ServiceTotals:
    """A service's figures in this process, summed over its methods, as
    plain numbers beside the exported ones: ``snapshot`` reads them in a
    microsecond, where collecting the registry takes milliseconds. No lock:
    workers are green threads, and ``+=`` on a number never yields."""

    __slots__ = ("calls", "errors", "seconds", "busy")

    def __init__(self):
        self.calls = self.errors = self.busy = 0
        self.seconds = 0.0


_totals = {}  # service name -> ServiceTotals


def snapshot(service):
    """This process's totals for ``service``, summed over its methods: RPC
    calls, errors, seconds spent in them (the same counts as
    ``mesh_rpc_calls_total``, ``mesh_rpc_errors_total`` and the duration's
    ``_sum``), and workers busy now: for the service's heartbeat, where
    ``seconds / calls`` is the mean latency.

        >>> snapshot("customers")
        {'calls': 12, 'errors': 1, 'seconds': 0.084, 'busy': 0}
    """
    totals = _totals.get(service) or ServiceTotals()
    return {"calls": totals.calls, "errors": totals.errors, "seconds": totals.seconds,
            "busy": totals.busy}


# -- serving them -----------------------------------------------------------------

_servers = {}  # port -> [prometheus-client's server, containers using it]
_servers_lock = threading.Lock()


def serve(port, addr=DEFAULT_METRICS_ADDRESS):
    """Serve ``REGISTRY`` at ``http://<addr>:<port>/metrics`` with
    prometheus-client's own server, once per port however many containers of
    this process ask; True if it is served. A port already taken is logged,
    not raised: a service without metrics still serves.

    Under eventlet's monkey patching (``nameko run``) its thread and the thread
    per scrape are green threads: a scrape holds the hub while it writes the
    text, longer the more methods and routes have figures (docs/benchmarks.md),
    once per scrape interval.
    """
    with _servers_lock:
        entry = _servers.get(port)
        if entry is None:
            try:
                server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
            except OSError as exc:
                log.error("metrics not served: cannot listen on %s:%s (%s)", addr, port, exc)
                return False
            entry = _servers[port] = [server, 0]
            log.info("metrics at http://%s:%s/metrics", addr, port)
        entry[1] += 1
        return True


def release(port):
    """One container fewer uses ``port``'s server; the last one stops it (so a
    test process that starts and stops services frees its ports)."""
    with _servers_lock:
        entry = _servers.get(port)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _servers[port]
    server = entry[0]
    server.shutdown()  # returns within its poll interval (0.5 s)
    server.server_close()
