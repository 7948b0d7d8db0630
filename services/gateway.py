"""gateway: the HTTP contract (``docs/http.md``), routed by service name over RPC.

Every route is a thin translation: read the request, call one service through
the broker, answer JSON. Each route declares what it takes and answers
(``services/gateway_schemas.py``): the edge refuses anything else before the
route runs (``mesh.http``), the services check again what they are sent, and
``GET /openapi.json`` is generated from the same declarations. Errors map to
statuses in ``mesh.errors.error_body``; every call has a deadline (503, never a
hang). ``GET /customers/{id}``, ``/products/{id}`` and ``/bills/{id}/full``
answer from a read cache (``mesh.cache``) until the services' change events, or
this gateway's own writes, evict them (``GATEWAY_CACHE: false`` turns it off).

The routes, by resource: customers, products, bills, analytics and the event
streams; then the operations routes (console, health, registry, docs, admin
RPC); then the event handlers that feed the streams, the registry and the cache.

    nameko run --config config.yaml services.gateway
    curl http://127.0.0.1:8000/bills/1/full
"""
import asyncio
import fnmatch
import functools
import os
import platform
import time
from importlib.metadata import version

import eventlet
from nameko.dependency_providers import Config
from nameko.exceptions import MethodNotFound
from werkzeug.wrappers import Response

from common import sse
from contracts.cache_tags import bill_tag, customer_tag, full_bill_key, product_tag
from contracts.errors import Forbidden, MeshError, NotFound
from contracts.events import (
    BILL_CANCELLED, BILL_CREATED, CUSTOMER_DELETED, CUSTOMER_UPDATED, HEARTBEAT,
    PRODUCT_DELETED, PRODUCT_UPDATED, STOCK_CHANGED,
)
from contracts.services import (
    ANALYTICS, BILLING, CUSTOMERS, GATEWAY, INVENTORY, KAFKA_BRIDGE, REQUIRED_SERVICES,
    RPC_SERVICES, STREAMS, declared,
)
from contracts.wire import to_json
from mesh.cache import ReadCache
from mesh.errors import error_body
from mesh.events import broadcast_handler, evicts_on
from mesh.coroutines import in_greenthread
from mesh.feed import EventFeed
from mesh.hub import hub_name
from mesh.metrics import Metrics, metrics_text
from mesh.http import http, http_routes, json_response, json_text_response
from mesh.openapi import openapi_document
from mesh.proxy import MeshRpcProxy
from mesh.registry import CONNECTION_ERRORS, Instances, Registry, uptime
from mesh.service import HOST, INSTANCE, PID, STARTED_AT, SignalStop
from mesh.tracing import Tracing
from services.gateway_schemas import (
    Bill, BillBody, BillPage, BillsQuery, Customer, CustomerBody, CustomerPage,
    CustomerStats, CustomerStatsList, FullBill, Health, HealthDown, Liveness, PageQuery,
    Product, ProductBody, ProductPage, ProductStatsList, RevenueWindows, RpcAnswer,
    RpcArguments, Services, StreamQuery, WindowsQuery,
)

def gateway_instance():
    """The gateway's own entry in ``/services`` (its hub read when asked: at
    import time the process has not chosen one yet)."""
    return {"instance": INSTANCE, "host": HOST, "pid": PID,
            "python": platform.python_version(), "hub": hub_name(),
            "uptime_s": round(uptime(STARTED_AT), 1)}

STREAM_RETRY_MS = 2000  # how soon a browser reconnects a lost stream
# A comment on an idle stream: it keeps proxies from closing it, and a client
# that went away is noticed by the writes (the second after it left fails; no
# worker waits on it: the route has returned; its greenthread ends then)
STREAM_HEARTBEAT_S = 5
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway_static")
VENDORED = {"redoc.standalone.js", "smoothie.js"}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                ".png": "image/png", ".svg": "image/svg+xml"}


class GatewayService:
    name = GATEWAY

    customers = MeshRpcProxy(CUSTOMERS)
    inventory = MeshRpcProxy(INVENTORY)
    billing = MeshRpcProxy(BILLING)
    analytics = MeshRpcProxy(ANALYTICS)
    kafka_bridge = MeshRpcProxy(KAFKA_BRIDGE)
    config = Config()
    registry = Registry()
    tracing = Tracing()
    cache = ReadCache()
    feed = EventFeed()
    instances = Instances()
    metrics = Metrics()
    signal_stop = SignalStop()

    # customers -----------------------------------------------------------

    @http("GET", "/customers", query=PageQuery, answers={200: CustomerPage}, tag="customers")
    def list_customers(self, request):
        """GET /customers?page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.customers.list_customers(**request.query.model_dump()))

    @http("GET", "/customers/<int:customer_id>", answers={200: Customer},
          errors={404: ["CUSTOMER_NOT_FOUND"]}, tag="customers")
    def get_customer(self, request, customer_id):
        """GET /customers/1 -> {"id": 1, "name": "Mohamed", "email": "med@gmail.com"}
        (cached until the customer changes)"""
        return self._read_cached(customer_tag(customer_id), self.customers.get_customer,
                                 customer_id)

    @http("POST", "/customers", body=CustomerBody, answers={201: Customer},
          errors={409: ["EMAIL_TAKEN"]}, tag="customers")
    def create_customer(self, request):
        """POST /customers {"name": "Ali", "email": "ali@mail.com"} -> 201 + Location"""
        return self._create(self.customers.create_customer, request, "/customers/{}")

    @http("PUT", "/customers/<int:customer_id>", body=CustomerBody, answers={200: Customer},
          errors={404: ["CUSTOMER_NOT_FOUND"], 409: ["EMAIL_TAKEN"]}, tag="customers")
    def update_customer(self, request, customer_id):
        """PUT /customers/4 {"name": "Ali B", "email": "ali@mail.com"} -> 200"""
        return self._update(customer_tag(customer_id), self.customers.update_customer,
                            customer_id, request)

    @http("DELETE", "/customers/<int:customer_id>", answers={204: None},
          errors={404: ["CUSTOMER_NOT_FOUND"], 409: ["CUSTOMER_HAS_BILLS"]}, tag="customers")
    def delete_customer(self, request, customer_id):
        """DELETE /customers/4 -> 204; 409 while bills refer to the customer"""
        return self._delete(customer_tag(customer_id), self.customers.delete_customer,
                            customer_id)

    # products ------------------------------------------------------------

    @http("GET", "/products", query=PageQuery, answers={200: ProductPage}, tag="products")
    def list_products(self, request):
        """GET /products?page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.inventory.list_products(**request.query.model_dump()))

    @http("GET", "/products/<int:product_id>", answers={200: Product},
          errors={404: ["PRODUCT_NOT_FOUND"]}, tag="products")
    def get_product(self, request, product_id):
        """GET /products/1 -> {"id": 1, "name": "Computer", "price": "3200.00", "quantity": 11}
        (cached until the product or its stock changes)"""
        return self._read_cached(product_tag(product_id), self.inventory.get_product,
                                 product_id)

    @http("POST", "/products", body=ProductBody, answers={201: Product}, tag="products")
    def create_product(self, request):
        """POST /products {"name": "Mouse", "price": "19.99", "quantity": 5} -> 201 + Location"""
        return self._create(self.inventory.create_product, request, "/products/{}")

    @http("PUT", "/products/<int:product_id>", body=ProductBody, answers={200: Product},
          errors={404: ["PRODUCT_NOT_FOUND"]}, tag="products")
    def update_product(self, request, product_id):
        """PUT /products/4 {"name": "Mouse", "price": "17.50", "quantity": 5} -> 200"""
        return self._update(product_tag(product_id), self.inventory.update_product,
                            product_id, request)

    @http("DELETE", "/products/<int:product_id>", answers={204: None},
          errors={404: ["PRODUCT_NOT_FOUND"], 409: ["PRODUCT_HAS_BILLS"]}, tag="products")
    def delete_product(self, request, product_id):
        """DELETE /products/4 -> 204; 409 while bills hold the product"""
        return self._delete(product_tag(product_id), self.inventory.delete_product,
                            product_id)

    # the forwarding both resources share: a read cached under the entity's
    # tag, writes that evict it once the service has answered (or failed)

    def _read_cached(self, tag, get, entity_id):
        return json_text_response(self.cache.read(tag, lambda: (to_json(get(entity_id)), [tag])))

    def _create(self, create, request, location):
        entity = create(request.body.model_dump())
        return created(entity, location.format(entity["id"]))

    def _update(self, tag, update, entity_id, request):
        try:
            return json_response(update(entity_id, request.body.model_dump()))
        finally:
            self.cache.evict(tag)

    def _delete(self, tag, delete, entity_id):
        try:
            delete(entity_id)
        finally:
            self.cache.evict(tag)
        return Response(status=204)

    # bills ---------------------------------------------------------------

    @http("GET", "/bills", query=BillsQuery, answers={200: BillPage}, tag="bills")
    def list_bills(self, request):
        """GET /bills?customer_id=1&page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.billing.list_bills(**request.query.model_dump(exclude_none=True)))

    @http("GET", "/bills/<int:bill_id>", answers={200: Bill}, errors={404: ["BILL_NOT_FOUND"]},
          tag="bills")
    def get_bill(self, request, bill_id):
        """GET /bills/1 -> {"id": 1, "customer_id": 1, "items": [{"id": 1, "product_id": 1, ...}]}"""
        return json_response(self.billing.get_bill(bill_id))

    @http("GET", "/bills/<int:bill_id>/full", answers={200: FullBill},
          errors={404: ["BILL_NOT_FOUND", "CUSTOMER_NOT_FOUND"]}, tag="bills")
    def get_full_bill(self, request, bill_id):
        """GET /bills/1/full -> the bill with customer, products, line totals and total
        (cached until it is cancelled, or its customer or one of its products changes)"""
        def load():
            bill = self.billing.get_full_bill(bill_id)
            tags = [bill_tag(bill_id), customer_tag(bill["customer"]["id"])] + [
                product_tag(item["product"]["id"]) for item in bill["items"] if item["product"]]
            return to_json(bill), tags

        return json_text_response(self.cache.read(full_bill_key(bill_id), load))

    @http("GET", "/fullBill/<int:bill_id>", answers={200: FullBill},
          errors={404: ["BILL_NOT_FOUND", "CUSTOMER_NOT_FOUND"]}, tag="bills")
    def get_full_bill_alias(self, request, bill_id):
        """GET /fullBill/1: the original course's path for /bills/1/full"""
        return self.get_full_bill(request, bill_id)

    @http("POST", "/bills", body=BillBody, answers={201: FullBill},
          errors={404: ["CUSTOMER_NOT_FOUND", "PRODUCT_NOT_FOUND"],
                  409: ["INSUFFICIENT_STOCK", "IDEMPOTENCY_KEY_REUSED", "CONFLICT"]},
          headers={"Idempotency-Key": "repeating a request with the same key answers the "
                                      "first bill again and creates nothing"},
          tag="bills")
    def create_bill(self, request):
        """POST /bills {"customer_id": 1, "items": [{"product_id": 2, "quantity": 3}]}
        -> 201 with the full bill; 409 INSUFFICIENT_STOCK when stock is short.
        With an ``Idempotency-Key`` header, repeating the request answers the
        first bill again and creates nothing (the same key with another body: 409)."""
        body = request.body
        items = [item.model_dump() for item in body.items]
        try:
            bill = self.billing.create_bill(
                customer_id=body.customer_id, items=items,
                idempotency_key=request.headers.get("Idempotency-Key") or None)
        finally:
            # the stock of these products changed (or may have): read it again
            self.cache.evict(*(product_tag(item["product_id"]) for item in items))
        return created(bill, "/bills/{}".format(bill["id"]))

    @http("POST", "/bills/<int:bill_id>/cancel", answers={200: Bill},
          errors={404: ["BILL_NOT_FOUND"]}, tag="bills")
    def cancel_bill(self, request, bill_id):
        """POST /bills/4/cancel -> 200 {"id": 4, "status": "cancelled", "cancelled_at": ...}:
        the bill stays, its stock comes back, the analytics stop counting it.
        Cancelling again answers the same cancelled bill; an unknown bill is 404."""
        try:
            return json_response(self.billing.cancel_bill(bill_id))
        finally:
            self.cache.evict(bill_tag(bill_id))

    # analytics -------------------------------------------------------------

    @http("GET", "/analytics/customers", answers={200: CustomerStatsList}, tag="analytics")
    def list_customer_stats(self, request):
        """GET /analytics/customers -> {"items": [{"customer_id", "revenue", "bills"}, ...]},
        highest revenue first"""
        return json_response(self.analytics.list_customer_stats())

    @http("GET", "/analytics/customers/<int:customer_id>", answers={200: CustomerStats},
          tag="analytics")
    def get_customer_stats(self, request, customer_id):
        """GET /analytics/customers/1 -> {"customer_id": 1, "revenue": "9899.00", "bills": 1}"""
        return json_response(self.analytics.get_customer_stats(customer_id))

    @http("GET", "/analytics/products", answers={200: ProductStatsList}, tag="analytics")
    def list_product_stats(self, request):
        """GET /analytics/products -> {"items": [{"product_id", "units", "revenue"}, ...]}"""
        return json_response(self.analytics.list_product_stats())

    @http("GET", "/analytics/revenue", query=WindowsQuery, answers={200: RevenueWindows},
          tag="analytics")
    def list_revenue_windows(self, request):
        """GET /analytics/revenue?last=12 -> {"items": [{"start", "end", "revenue"}, ...]},
        the latest windows oldest first, the open one included"""
        return json_response(self.analytics.list_revenue_windows(last=request.query.last))

    @http("GET", "/analytics/stream", query=StreamQuery, answers={200: "text/event-stream"},
          tag="analytics")
    def stream_revenue_windows(self, request):
        """Server-sent events, one a second: the latest revenue windows (the
        course's live chart). ``?last=N`` windows per event; ``?events=N`` ends
        the stream after N events. Each event leaves as it is made; the id is
        its second, so a reconnecting ``EventSource`` simply goes on.

            GET /analytics/stream -> event: windows
                                     data: {"items": [{"start", "end", "revenue"}]}
        """
        args = request.query
        self.analytics.list_revenue_windows(last=args.last)  # fail now, as JSON, if down

        def events():
            yield sse.retry(STREAM_RETRY_MS) + sse.comment("revenue windows, one event a second")
            sent = 0
            while args.events is None or sent < args.events:
                try:
                    name, payload = "windows", self.analytics.list_revenue_windows(last=args.last)
                except MeshError as exc:
                    name, payload = "unavailable", error_body(exc)[1]
                yield sse.event(name, to_json(payload), event_id=int(time.time()))
                sent += 1
                if args.events is None or sent < args.events:
                    eventlet.sleep(1)

        return event_stream(request, events())

    @http("GET", "/events/stream", answers={200: "text/event-stream"}, calls_services=False,
          headers={"Last-Event-ID": "resume after this event (a browser's EventSource sends it "
                                    "when it reconnects)"},
          tag="analytics")
    def stream_mesh_events(self, request):
        """Server-sent events: the mesh's events as they happen (``bill_created``
        and ``bill_cancelled``, with the event's payload; ``contracts.events``),
        for the console. The id is the event's ``event_id``: after a reconnect,
        the events this gateway still holds that came after ``Last-Event-ID``
        come first. A comment
        every ``STREAM_HEARTBEAT_S`` keeps an idle stream open.

            GET /events/stream -> id: 6f1c...
                                  event: bill_created
                                  data: {"event_id": "6f1c...", "bill": {"id": 4, ...}}
        """
        follow = self.feed.follow(request.headers.get("Last-Event-ID"),
                                  heartbeat_s=STREAM_HEARTBEAT_S)

        def events():
            yield sse.retry(STREAM_RETRY_MS) + sse.comment("the mesh's events")
            try:
                for item in follow:
                    if item is None:
                        yield sse.comment("ping")
                    else:
                        event_id, name, payload = item
                        yield sse.event(name, to_json(payload), event_id=event_id)
            finally:
                follow.close()  # the client went away: unsubscribe at once

        return event_stream(request, events())

    # the live feeds: what the streams and the registry view show

    @broadcast_handler(BILLING, BILL_CREATED)
    def feed_bill_created(self, event):
        """A bill was made (anywhere): onto every open ``/events/stream``.

            billing.bill_created {"event_id": "...", "bill": {...}}
        """
        self.feed.publish(BILL_CREATED, event, event_id=event["event_id"])

    @broadcast_handler(BILLING, BILL_CANCELLED)
    def feed_bill_cancelled(self, event):
        """A bill was cancelled (anywhere, through any gateway): its full bill
        leaves this gateway's cache, and the event goes onto every open
        ``/events/stream``.

            billing.bill_cancelled {"event_id": "...", "bill": {"id": 4, "status": "cancelled", ...}}
        """
        self.cache.evict(bill_tag(event["bill"]["id"]))
        self.feed.publish(BILL_CANCELLED, event, event_id=event["event_id"])

    @broadcast_handler(CUSTOMERS, HEARTBEAT)
    @broadcast_handler(INVENTORY, HEARTBEAT)
    @broadcast_handler(BILLING, HEARTBEAT)
    @broadcast_handler(ANALYTICS, HEARTBEAT)
    @broadcast_handler(KAFKA_BRIDGE, HEARTBEAT)
    def record_heartbeat(self, event):
        """An instance is alive: the registry view (``/services``) lists it.

            customers.heartbeat {"instance": "host-a:4242", "pid": 4242, ...}
        """
        self.instances.record(event)

    # operations: health, registry, admin ---------------------------------

    @http("GET", "/health/live", answers={200: Liveness}, calls_services=False,
          tag="operations")
    def liveness(self, request):
        """The gateway itself answers; asks nobody else (for a load balancer).

            GET /health/live -> 200 {"status": "ok"}
        """
        return json_response({"status": "ok"})

    @http("GET", "/services", answers={200: Services}, calls_services=False,
          tag="operations")
    async def list_services(self, request):
        """Every service of the mesh as the broker and the services see it now:
        instances consuming its RPC queue, its RPC methods, up or down.

            GET /services -> {"services": [{"name": "inventory", "instances": 2,
                               "methods": ["get_product", ...], "status": "up"}, ...]}
        """
        services = []
        described = await self._ask_every_service("describe", RPC_SERVICES)
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

    @http("GET", "/health", answers={200: Health, 503: HealthDown}, calls_services=False,
          descriptions={503: "a required service does not answer"}, tag="operations")
    async def health(self, request):
        """Every part of the mesh, each ``up``, ``catching_up`` (serving, still
        behind: billing's outbox, the bridge's queue, the aggregator's or
        analytics' Kafka lag), ``down`` or ``unknown`` (the aggregator, while
        analytics cannot tell). 503 while a service no bill can be made without
        is down; else 200, ``"status": "ok"`` once every part is up (what
        ``make run`` waits for). Each part answers within HEALTH_TIMEOUT.

            GET /health -> 200 {"status": "ok", "services": {"customers": "up", ...,
                                "analytics": "up", "kafka_bridge": "up", "streams": "up"}}
        """
        states = await self._part_states()
        down = sorted(name for name in REQUIRED_SERVICES if states[name] == "down")
        if down:
            return json_response({"status": "unavailable", "services": states,
                                  "error": "SERVICE_UNAVAILABLE",
                                  "message": "not answering: " + ", ".join(down)}, 503)
        if all(state == "up" for state in states.values()):
            status = "ok"
        elif any(state in ("down", "unknown") for state in states.values()):
            status = "degraded"
        else:
            status = "catching_up"
        return json_response({"status": status, "services": states})

    async def _part_states(self):
        """``{part: state}`` for /health: pings, billing's outbox backlog and
        analytics' view of the Kafka side, all in flight at once."""
        timeout = float(self.config.get("HEALTH_TIMEOUT", 1))
        calls = {name: (getattr(self, name), "ping") for name in RPC_SERVICES}
        calls["billing_backlog"] = (self.billing, "get_outbox_backlog")
        calls["pipeline"] = (self.analytics, "get_readiness")
        answers = await self._ask_all(calls, timeout)
        states = {name: "down" if answers[name] is None else "up" for name in RPC_SERVICES}
        if states["billing"] == "up" and answers["billing_backlog"]:
            states["billing"] = "catching_up"
        if states["kafka_bridge"] == "up":
            try:
                waiting = await in_greenthread(
                    lambda: sum(self.registry.messages(queue)
                        for _, queue in declared(KAFKA_BRIDGE).handler_queues()))
                if waiting:
                    states["kafka_bridge"] = "catching_up"
            except CONNECTION_ERRORS:
                states["kafka_bridge"] = "unknown"
        pipeline = answers["pipeline"] or {}
        if states["analytics"] == "up":
            states["analytics"] = pipeline.get("analytics", "unknown")
        states[STREAMS] = pipeline.get(STREAMS, "unknown")
        return states

    @http("GET", "/metrics", answers={200: "text/plain"}, calls_services=False,
          tag="operations")
    def get_metrics(self, request):
        """This gateway process's metrics in Prometheus' text format (``mesh.metrics``);
        every process also serves its own on ``METRICS_PORT``.

            GET /metrics -> mesh_http_requests_total{method="GET",route="/customers",status="200"} 12.0
        """
        body, content_type = metrics_text()
        return Response(body, content_type=content_type)

    @http("GET", "/openapi.json", answers={200: "application/json"}, calls_services=False,
          tag="operations")
    def get_openapi(self, request):
        """This gateway's HTTP contract as OpenAPI 3.1, generated from the routes'
        own models (``mesh.openapi``).

            GET /openapi.json -> {"openapi": "3.1.0", "paths": {"/customers": ...}}
        """
        return json_text_response(openapi_json())

    @http("GET", "/", answers={200: "text/html"}, calls_services=False, tag="operations")
    def get_console(self, request):
        """The console: the registry, the live revenue chart, bills as they
        happen, top customers and products, each service's call rate, errors
        and latency (services/gateway_static/console.html; offline).

            GET / -> text/html
        """
        return static_file("console.html")

    @http("GET", "/docs", answers={200: "text/html"}, calls_services=False, tag="operations")
    def get_docs(self, request):
        """The HTTP contract for people: /openapi.json rendered offline (ReDoc, vendored).

            GET /docs -> text/html
        """
        return static_file("docs.html")

    @http("GET", "/static/<name>", answers={200: "application/octet-stream"},
          errors={404: ["NOT_FOUND"]}, calls_services=False, tag="operations")
    def get_static(self, request, name):
        """A vendored file of the pages (services/gateway_static/).

            GET /static/redoc.standalone.js -> text/javascript
        """
        return static_file(name)

    async def _ask_every_service(self, method, services):
        """``{service: answer, or None if it did not answer}`` for ``method`` of
        each of ``services``, all calls in flight at once, each within HEALTH_TIMEOUT."""
        timeout = float(self.config.get("HEALTH_TIMEOUT", 1))
        return await self._ask_all(
            {name: (getattr(self, name), method) for name in services}, timeout)

    @staticmethod
    async def _ask_all(calls, timeout):
        """``{key: answer, or None}`` for ``calls`` ``{key: (client, method)}``, all
        in flight at once, each within ``timeout``; any failure (nobody consumes
        the queue, no answer in time, an error) means: not serving."""
        replies = await asyncio.gather(
            *(getattr(client, method).within(timeout)() for client, method in calls.values()),
            return_exceptions=True)
        answers = {}
        for name, reply in zip(calls, replies):
            answers[name] = None if isinstance(reply, BaseException) else reply
        return answers

    @http("POST", "/rpc/<service>/<method>", body=RpcArguments, answers={200: RpcAnswer},
          errors={401: ["UNAUTHORIZED"], 403: ["FORBIDDEN"], 404: ["NOT_FOUND"]},
          auth=True, tag="operations")
    def call_rpc(self, request, service, method):
        """Call any allowed service method through the broker, with a JSON object
        of arguments; needs ``Authorization: Bearer <ADMIN_TOKEN>``. Off while no
        ``ADMIN_TOKEN`` is configured; ``RPC_ROUTES_ALLOWED`` lists what may be
        called (default: ``get_*`` and ``list_*`` methods).

            POST /rpc/customers/get_customers {"ids": [1, 2]} -> 200 {"items": [...]}
        """
        self._authorize_rpc(request, service, method)
        arguments = request.body.root
        try:
            result = getattr(getattr(self, service), method)(**arguments)
        except MethodNotFound:
            raise NotFound("{} has no method {}".format(service, method))
        return json_response(result)

    def _authorize_rpc(self, request, service, method):
        """(The edge has checked the token: ``auth=True``, ``mesh.http``.)"""
        if service not in REQUIRED_SERVICES:
            raise NotFound("no service named {}".format(service))
        allowed = str(self.config.get("RPC_ROUTES_ALLOWED") or "").split(",")
        qualified = "{}.{}".format(service, method)
        if not any(fnmatch.fnmatchcase(qualified if "." in pattern else method, pattern.strip())
                   for pattern in allowed if pattern.strip()):
            raise Forbidden("{} is not in RPC_ROUTES_ALLOWED".format(qualified))

    # read cache: what others changed ---------------------------------------

    @evicts_on(CUSTOMERS, CUSTOMER_UPDATED)
    @evicts_on(CUSTOMERS, CUSTOMER_DELETED)
    def evict_customer(self, event):
        """A customer changed: forget it, and the full bills that show it.

            customers.customer_updated {"customer_id": 4}
        """
        self.cache.evict(customer_tag(event["customer_id"]))

    @evicts_on(INVENTORY, PRODUCT_UPDATED)
    @evicts_on(INVENTORY, PRODUCT_DELETED)
    @evicts_on(INVENTORY, STOCK_CHANGED)
    def evict_products(self, event):
        """Products or their stock changed: forget them, and the full bills
        that show them.

            inventory.stock_changed {"product_ids": [1, 2]}
        """
        self.cache.evict(*map(product_tag, event["product_ids"]))


def event_stream(request, events):
    """A ``text/event-stream`` answer: headers and the first chunk leave at once,
    each event as it is made; when the client goes away the next write fails
    and the generator is closed (no worker is held: the route has returned)."""
    # eventlet's server holds written chunks until 4 KB have gathered: an
    # event must leave when it is made (eventlet's documented per-request key)
    request.environ["eventlet.minimum_write_chunk_size"] = 0
    return Response(events, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


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


def created(payload, location):
    return json_response(payload, 201, headers={"Location": location})


@functools.lru_cache(maxsize=1)
def openapi_json():
    """The document, made once per process (the routes do not change)."""
    return to_json(openapi_document(
        GatewayService, title="billing-mesh", version=version("billing-mesh"),
        description="The gateway of billing-mesh: customers, products, bills and their "
                    "analytics, over the services' RPC. Errors are "
                    '{"error": CODE, "message": text}; money is a string with two '
                    "decimals, times ISO 8601 UTC."))


def static_file(name):
    """A file of ``STATIC_DIR`` (no subfolders). Vendored libraries (pinned
    versions: VENDORED.md) are kept by the browser for a day; the pages and
    their own scripts are asked for again each time, so an update shows at once."""
    kind = STATIC_TYPES.get(os.path.splitext(name)[1])
    path = os.path.join(STATIC_DIR, name)
    if kind is None or os.sep in name or not os.path.isfile(path):
        raise NotFound("no file {}".format(name))
    with open(path, "rb") as handle:
        cache = "public, max-age=86400" if name in VENDORED else "no-cache"
        return Response(handle.read(), mimetype=kind, headers={"Cache-Control": cache})
