"""What every gateway of the mesh serves beside its domain routes: health, the
registry view and the heartbeats it is made of, metrics, the OpenAPI document,
the console and docs pages, and the admin RPC route.

Everything here derives from the declarations (``contracts.services``): a
service added there is pinged by ``GET /health``, listed by ``GET /services``
and the console, and its heartbeats recorded, with no line of the gateway's.

    class GatewayService(mesh.operations.GatewayOperations):
        name = "gateway"
        static_dir = os.path.join(os.path.dirname(__file__), "gateway_static")
        api_title, api_version = "billing-mesh", "0.1.0"

        @http("GET", "/customers", scope=CUSTOMERS_READ, answers={200: CustomerPage})
        def list_customers(self, request): ...

Subclass it as ``mesh.operations.GatewayOperations`` (the module, not the
class, imported): ``nameko run`` takes every class of a service module that has
entrypoints for a service. nameko collects entrypoints and dependencies from
base classes too.

A gateway may override ``readiness`` to say what only its domain knows about
its parts (a backlog, a pipeline behind a service); the rest of ``GET /health``
is here: a service whose ping fails is ``down``, one whose declared handler
queues hold waiting messages ``catching_up``, and a required one down makes it 503.
"""
import asyncio
import fnmatch
import functools
import os
import platform

from nameko.dependency_providers import Config
from nameko.exceptions import MethodNotFound
from werkzeug.wrappers import Response

from common.config import auth_off
from contracts.errors import Forbidden, NotFound
from contracts.scopes import ADMIN, OPERATIONS_READ, PUBLIC
from contracts.events import HEARTBEAT
from contracts.services import REQUIRED_SERVICES, RPC_SERVICES, declared
from contracts.wire import to_json
from mesh.coroutines import in_greenthread
from mesh.events import broadcast_handler
from mesh.http import http, http_routes, json_response, json_text_response
from mesh.hub import hub_name
from mesh.metrics import Metrics, metrics_text
from mesh.openapi import openapi_document
from mesh.operations_schemas import (
    Health, HealthDown, Liveness, RpcAnswer, RpcArguments, Services,
)
from mesh.proxy import ServiceClients
from mesh.amqp import CONNECTION_ERRORS
from mesh.registry import Instances, Registry, uptime
from mesh.service import HOST, INSTANCE, PID, STARTED_AT, SignalStop
from mesh.tracing import AUTH_OFF_WARNING, Tracing

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                ".png": "image/png", ".svg": "image/svg+xml"}


def heard_from_every(services, event_type):
    """``@heard_from_every(RPC_SERVICES, HEARTBEAT)``: a broadcast handler of
    ``event_type`` from each of ``services`` (``mesh.events.broadcast_handler``)."""
    def handle(method):
        for service in services:
            method = broadcast_handler(service, event_type)(method)
        return method
    return handle


class GatewayOperations:
    """Mixin of a gateway: the operations routes, the heartbeats and the
    registry (see the module's docstring). A subclass names ``static_dir``
    (its ``console.html`` is ``GET /``, its ``docs.html`` ``GET /docs``),
    ``static_vendored`` (files the browser may keep for a day) and the
    OpenAPI document's ``api_title``, ``api_version`` and ``api_description``."""

    static_dir = None
    static_vendored = frozenset()
    api_title = "mesh gateway"
    api_version = "0"
    api_description = ""

    services = ServiceClients(RPC_SERVICES)
    config = Config()
    registry = Registry()
    instances = Instances()
    tracing = Tracing()
    metrics = Metrics()
    signal_stop = SignalStop()

    @heard_from_every(RPC_SERVICES, HEARTBEAT)
    def record_heartbeat(self, event):
        """An instance is alive: the registry view (``/services``) lists it.
        Heard from every declared RPC service (``contracts.services``).

            customers.heartbeat {"instance": "host-a:4242", "pid": 4242, ...}
        """
        self.instances.record(event)

    @http("GET", "/health/live", scope=PUBLIC, answers={200: Liveness}, calls_services=False,
          tag="operations")
    def liveness(self, request):
        """The gateway itself answers; asks nobody else (for a load balancer).

            GET /health/live -> 200 {"status": "ok"}
        """
        return json_response({"status": "ok"})

    @http("GET", "/services", scope=OPERATIONS_READ, answers={200: Services}, calls_services=False,
          tag="operations")
    async def list_services(self, request):
        """Every service of the mesh as the broker and the services see it now:
        instances consuming its RPC queue, its RPC methods, up or down.

            GET /services -> {"services": [{"name": "inventory", "instances": 2,
                               "methods": ["get_product", ...], "status": "up"}, ...]}
        """
        services = []
        described = await ask_all(
            {name: self.services[name].describe for name in RPC_SERVICES},
            self.health_timeout())
        # the broker's counts, read in a greenthread (kombu blocks on green sockets)
        counts = await in_greenthread(
            lambda: {name: self.registry.consumers(name, fresh=True) for name in RPC_SERVICES})
        for name, answer in described.items():
            live = self.instances.live(name)
            services.append({"name": name,
                             "instances": counts[name],
                             "methods": answer["methods"] if answer else [],
                             "status": "down" if answer is None else "up",
                             "instance_list": [instance_entry(item) for item in live],
                             "metrics": summed_metrics(item["metrics"] for item in live)})
        services.append({"name": self.name, "instances": 1,
                         "methods": http_routes(type(self)), "status": "up",
                         "instance_list": [gateway_instance()],
                         "metrics": {}})
        return json_response({"services": services})

    @http("GET", "/health", scope=OPERATIONS_READ, answers={200: Health, 503: HealthDown}, calls_services=False,
          descriptions={503: "a required service does not answer"}, tag="operations")
    async def health(self, request):
        """Every part of the mesh, each ``up``, ``catching_up`` (serving, still
        behind: events waiting in its queues, billing's outbox, the
        aggregator's or analytics' Kafka lag), ``rebuilding`` (its progress
        under ``progress``), ``down`` or ``unknown`` (the aggregator, while
        analytics cannot tell). 503 while a required service
        (``contracts.services``: no bill can be made without it) is down; else
        200, ``"status": "ok"`` once every part is up (what ``make run`` waits
        for), ``rebuilding`` while a part rebuilds (bills are still made).
        Each part answers within HEALTH_TIMEOUT.

            GET /health -> 200 {"status": "ok", "services": {"customers": "up", ...,
                                "analytics": "up", "kafka_bridge": "up", "streams": "up"}}
        """
        states, progress = await self.part_states()
        warning = {"auth": AUTH_OFF_WARNING} if auth_off(self.config) else {}
        down = sorted(name for name in REQUIRED_SERVICES if states.get(name) == "down")
        if down:
            return json_response(dict({"status": "unavailable", "services": states,
                                       "error": "SERVICE_UNAVAILABLE",
                                       "message": "not answering: " + ", ".join(down)},
                                      **warning), 503)
        if all(state == "up" for state in states.values()):
            status = "ok"
        elif any(state == "rebuilding" for state in states.values()):
            status = "rebuilding"
        elif any(state in ("down", "unknown") for state in states.values()):
            status = "degraded"
        else:
            status = "catching_up"
        body = dict({"status": status, "services": states}, **warning)
        if progress:
            body["progress"] = progress
        return json_response(body)

    async def part_states(self):
        """``({part: state}, {part: progress})`` for /health: every declared RPC
        service's ping, the messages waiting in its declared handler queues,
        and the domain's ``readiness``, all in flight at once."""
        timeout = self.health_timeout()
        answers, queued, domain = await asyncio.gather(
            ask_all({name: self.services[name].ping for name in RPC_SERVICES}, timeout),
            in_greenthread(self.queued_messages),
            self.readiness(timeout))
        states, progress = {}, {}
        for part, state in list(domain.items()):
            if isinstance(state, dict):  # a state with its progress
                state = dict(state)
                domain[part] = state.pop("state")
                progress[part] = state
        for name in RPC_SERVICES:
            if answers[name] is None:
                states[name] = "down"
                progress.pop(name, None)
                continue
            state = domain.get(name, "up")
            if state == "up" and name in queued:
                if queued[name] is None:
                    state = "unknown"  # the broker did not tell
                elif queued[name]:
                    state = "catching_up"
            states[name] = state
        states.update((part, state) for part, state in domain.items() if part not in states)
        return states, progress

    def queued_messages(self):
        """``{service: messages waiting in its declared handler queues, or None
        when the broker does not answer}``, for each RPC service that declares
        handlers (``contracts.services``)."""
        queued = {}
        for name in RPC_SERVICES:
            queues = [queue for _, queue in declared(name).handler_queues()]
            if not queues:
                continue
            try:
                queued[name] = sum(self.registry.messages(queue) for queue in queues)
            except CONNECTION_ERRORS:
                queued[name] = None
        return queued

    async def readiness(self, timeout):
        """``{part: state}`` that only the domain can tell (a gateway overrides
        it): a state for a declared service replaces its ``up`` (never its
        ``down``); any other part is shown as it is. A state may come with its
        progress, ``{"state": "rebuilding", "events_given": 10, ...}``: /health
        shows the rest under ``progress``. Asked beside the pings, within
        ``timeout`` seconds."""
        return {}

    def health_timeout(self):
        return float(self.config.get("HEALTH_TIMEOUT", 1))

    @http("GET", "/metrics", scope=OPERATIONS_READ, answers={200: "text/plain"}, calls_services=False,
          tag="operations")
    def get_metrics(self, request):
        """This gateway process's metrics in Prometheus' text format (``mesh.metrics``);
        every process also serves its own on ``METRICS_PORT``.

            GET /metrics -> mesh_http_requests_total{method="GET",route="/customers",status="200"} 12.0
        """
        body, content_type = metrics_text()
        return Response(body, content_type=content_type)

    @http("GET", "/openapi.json", scope=PUBLIC, answers={200: "application/json"}, calls_services=False,
          tag="operations")
    def get_openapi(self, request):
        """This gateway's HTTP contract as OpenAPI 3.1, generated from the routes'
        own models (``mesh.openapi``).

            GET /openapi.json -> {"openapi": "3.1.0", "paths": {"/customers": ...}}
        """
        return json_text_response(openapi_json(type(self)))

    @http("GET", "/", scope=PUBLIC, answers={200: "text/html"}, calls_services=False, tag="operations")
    def get_console(self, request):
        """The console: the registry, the live revenue chart, bills as they
        happen, top customers and products, each service's call rate, errors
        and latency (services/gateway_static/console.html; offline).

            GET / -> text/html
        """
        return static_file(type(self), "console.html")

    @http("GET", "/docs", scope=PUBLIC, answers={200: "text/html"}, calls_services=False, tag="operations")
    def get_docs(self, request):
        """The HTTP contract for people: /openapi.json rendered offline (ReDoc, vendored).

            GET /docs -> text/html
        """
        return static_file(type(self), "docs.html")

    @http("GET", "/static/<name>", scope=PUBLIC, answers={200: "application/octet-stream"},
          errors={404: ["NOT_FOUND"]}, calls_services=False, tag="operations")
    def get_static(self, request, name):
        """A file of the pages (services/gateway_static/): a script, a style, the icon.

            GET /static/redoc.standalone.js -> text/javascript
        """
        return static_file(type(self), name)

    @http("POST", "/rpc/<service>/<method>", scope=ADMIN, body=RpcArguments, answers={200: RpcAnswer},
          errors={401: ["UNAUTHORIZED"], 403: ["FORBIDDEN"], 404: ["NOT_FOUND"]},
          tag="operations")
    def call_rpc(self, request, service, method):
        """Call any allowed service method through the broker, with a JSON object
        of arguments; needs a token with the ``admin`` scope.
        ``RPC_ROUTES_ALLOWED`` lists what may be called (default: ``get_*`` and
        ``list_*`` methods) of the required services.

            POST /rpc/customers/get_customers {"ids": [1, 2]} -> 200 {"items": [...]}
        """
        self._authorize_rpc(request, service, method)
        arguments = request.body.root
        try:
            result = getattr(self.services[service], method)(**arguments)
        except MethodNotFound:
            raise NotFound("{} has no method {}".format(service, method))
        return json_response(result)

    def _authorize_rpc(self, request, service, method):
        """(The edge has checked the token's ``admin`` scope: ``mesh.auth``.)"""
        # the services a bill is made of: the others' methods are not for callers
        if service not in REQUIRED_SERVICES:
            raise NotFound("no service named {}".format(service))
        allowed = str(self.config.get("RPC_ROUTES_ALLOWED") or "").split(",")
        qualified = "{}.{}".format(service, method)
        if not any(fnmatch.fnmatchcase(qualified if "." in pattern else method, pattern.strip())
                   for pattern in allowed if pattern.strip()):
            raise Forbidden("{} is not in RPC_ROUTES_ALLOWED".format(qualified))


async def ask_all(calls, timeout):
    """``{key: answer, or None}`` for ``calls`` ``{key: method client}``
    (``self.services["billing"].ping``), all in flight at once, each within
    ``timeout``; any failure (nobody consumes the queue, no answer in time, an
    error) means: not serving."""
    replies = await asyncio.gather(
        *(method.within(timeout)() for method in calls.values()), return_exceptions=True)
    return {key: None if isinstance(reply, BaseException) else reply
            for key, reply in zip(calls, replies)}


def gateway_instance():
    """The gateway's own entry in ``/services`` (its hub read when asked: at
    import time the process has not chosen one yet)."""
    return {"instance": INSTANCE, "host": HOST, "pid": PID,
            "python": platform.python_version(), "hub": hub_name(),
            "uptime_s": round(uptime(STARTED_AT), 1)}


def instance_entry(heartbeat):
    """What the registry view shows of an instance."""
    return {key: heartbeat[key]
            for key in ("instance", "host", "pid", "python", "hub", "uptime_s")}


def summed_metrics(snapshots):
    """The live instances' totals (``mesh.metrics.snapshot``) added up."""
    total = {}
    for snapshot in snapshots:
        for key, value in snapshot.items():
            total[key] = total.get(key, 0) + value
    return total


@functools.lru_cache(maxsize=None)
def openapi_json(gateway_cls):
    """The document of ``gateway_cls``'s routes, made once per process (the
    routes do not change): ``make openapi`` writes it to docs/openapi.json."""
    return to_json(openapi_document(
        gateway_cls, title=gateway_cls.api_title, version=gateway_cls.api_version,
        description=gateway_cls.api_description))


def static_file(gateway_cls, name):
    """A file of the gateway's ``static_dir`` (no subfolders). Vendored
    libraries (``static_vendored``, pinned versions: VENDORED.md) are kept by
    the browser for a day; the pages and their own files are asked for again
    each time, so an update shows at once."""
    kind = STATIC_TYPES.get(os.path.splitext(name)[1])
    folder = gateway_cls.static_dir
    path = os.path.join(folder or "", name)
    if folder is None or kind is None or os.sep in name or not os.path.isfile(path):
        raise NotFound("no file {}".format(name))
    with open(path, "rb") as handle:
        cache = "public, max-age=86400" if name in gateway_cls.static_vendored else "no-cache"
        return Response(handle.read(), mimetype=kind, headers={"Cache-Control": cache})
