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
streams; then what only the domain can tell ``/health`` (``readiness``); then
the event handlers that feed the streams and evict the cache. The operations
routes (health, registry and heartbeats, metrics, OpenAPI, the console and
docs pages, admin RPC) are the mesh's, inherited: ``mesh.operations``.

    nameko run --config config.yaml services.gateway
    curl http://127.0.0.1:8000/bills/1/full
"""
import os
import time
from importlib.metadata import version

import eventlet
from werkzeug.wrappers import Response

import mesh.operations
from common import sse
from common.ledger import view_equals_ledger
from contracts.cache_tags import bill_tag, customer_tag, full_bill_key, product_tag
from contracts.errors import MeshError
from contracts.scopes import (
    ANALYTICS_READ, BILLS_CANCEL, BILLS_READ, BILLS_WRITE, CUSTOMERS_READ, CUSTOMERS_WRITE,
    PRODUCTS_READ, PRODUCTS_WRITE,
)
from contracts.events import (
    BILL_CANCELLED, BILL_CREATED, CUSTOMER_DELETED, CUSTOMER_UPDATED, PRODUCT_DELETED,
    PRODUCT_UPDATED, STOCK_CHANGED,
)
from contracts.services import ANALYTICS, BILLING, CUSTOMERS, GATEWAY, INVENTORY, STREAMS
from contracts.wire import to_json
from mesh.cache import ReadCache
from mesh.errors import error_body
from mesh.events import broadcast_handler, evicts_on
from mesh.feed import EventFeed
from mesh.http import http, json_response, json_text_response
from mesh.operations import ask_all
from mesh.proxy import MeshRpcProxy
from services.gateway_schemas import (
    Bill, BillBody, BillPage, BillsQuery, Customer, CustomerBody, CustomerPage,
    CustomerStats, CustomerStatsList, FullBill, PageQuery, Product, ProductBody,
    ProductPage, ProductStatsList, RevenueWindows, StreamQuery, WindowsQuery,
)

STREAM_RETRY_MS = 2000  # how soon a browser reconnects a lost stream
# A comment on an idle stream: it keeps proxies from closing it, and a client
# that went away is noticed by the writes (the second after it left fails; no
# worker waits on it: the route has returned; its greenthread ends then)
STREAM_HEARTBEAT_S = 5


class GatewayService(mesh.operations.GatewayOperations):
    name = GATEWAY
    # the console (GET /), the docs page (GET /docs) and the files they load
    static_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway_static")
    static_vendored = frozenset({"redoc.standalone.js", "smoothie.js"})  # VENDORED.md
    # GET /openapi.json's info (docs/openapi.json: make openapi)
    api_title = "billing-mesh"
    api_version = version("billing-mesh")
    api_description = (
        "The gateway of billing-mesh: customers, products, bills and their analytics, "
        "over the services' RPC. Errors are {\"error\": CODE, \"message\": text}; "
        "money is a string with two decimals, times ISO 8601 UTC.")

    customers = MeshRpcProxy(CUSTOMERS)
    inventory = MeshRpcProxy(INVENTORY)
    billing = MeshRpcProxy(BILLING)
    analytics = MeshRpcProxy(ANALYTICS)
    cache = ReadCache()
    feed = EventFeed()

    # customers -----------------------------------------------------------

    @http("GET", "/customers", scope=CUSTOMERS_READ, query=PageQuery, answers={200: CustomerPage}, tag="customers")
    def list_customers(self, request):
        """GET /customers?page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.customers.list_customers(**request.query.model_dump()))

    @http("GET", "/customers/<int:customer_id>", scope=CUSTOMERS_READ, answers={200: Customer},
          errors={404: ["CUSTOMER_NOT_FOUND"]}, tag="customers")
    def get_customer(self, request, customer_id):
        """GET /customers/1 -> {"id": 1, "name": "Mohamed", "email": "med@gmail.com"}
        (cached until the customer changes)"""
        return self._read_cached(customer_tag(customer_id), self.customers.get_customer,
                                 customer_id)

    @http("POST", "/customers", scope=CUSTOMERS_WRITE, body=CustomerBody, answers={201: Customer},
          errors={409: ["EMAIL_TAKEN"]}, tag="customers")
    def create_customer(self, request):
        """POST /customers {"name": "Ali", "email": "ali@mail.com"} -> 201 + Location"""
        return self._create(self.customers.create_customer, request, "/customers/{}")

    @http("PUT", "/customers/<int:customer_id>", scope=CUSTOMERS_WRITE, body=CustomerBody, answers={200: Customer},
          errors={404: ["CUSTOMER_NOT_FOUND"], 409: ["EMAIL_TAKEN"]}, tag="customers")
    def update_customer(self, request, customer_id):
        """PUT /customers/4 {"name": "Ali B", "email": "ali@mail.com"} -> 200"""
        return self._update(customer_tag(customer_id), self.customers.update_customer,
                            customer_id, request)

    @http("DELETE", "/customers/<int:customer_id>", scope=CUSTOMERS_WRITE, answers={204: None},
          errors={404: ["CUSTOMER_NOT_FOUND"], 409: ["CUSTOMER_HAS_BILLS"]}, tag="customers")
    def delete_customer(self, request, customer_id):
        """DELETE /customers/4 -> 204; 409 while bills refer to the customer"""
        return self._delete(customer_tag(customer_id), self.customers.delete_customer,
                            customer_id)

    # products ------------------------------------------------------------

    @http("GET", "/products", scope=PRODUCTS_READ, query=PageQuery, answers={200: ProductPage}, tag="products")
    def list_products(self, request):
        """GET /products?page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.inventory.list_products(**request.query.model_dump()))

    @http("GET", "/products/<int:product_id>", scope=PRODUCTS_READ, answers={200: Product},
          errors={404: ["PRODUCT_NOT_FOUND"]}, tag="products")
    def get_product(self, request, product_id):
        """GET /products/1 -> {"id": 1, "name": "Computer", "price": "3200.00", "quantity": 11}
        (cached until the product or its stock changes)"""
        return self._read_cached(product_tag(product_id), self.inventory.get_product,
                                 product_id)

    @http("POST", "/products", scope=PRODUCTS_WRITE, body=ProductBody, answers={201: Product}, tag="products")
    def create_product(self, request):
        """POST /products {"name": "Mouse", "price": "19.99", "quantity": 5} -> 201 + Location"""
        return self._create(self.inventory.create_product, request, "/products/{}")

    @http("PUT", "/products/<int:product_id>", scope=PRODUCTS_WRITE, body=ProductBody, answers={200: Product},
          errors={404: ["PRODUCT_NOT_FOUND"]}, tag="products")
    def update_product(self, request, product_id):
        """PUT /products/4 {"name": "Mouse", "price": "17.50", "quantity": 5} -> 200"""
        return self._update(product_tag(product_id), self.inventory.update_product,
                            product_id, request)

    @http("DELETE", "/products/<int:product_id>", scope=PRODUCTS_WRITE, answers={204: None},
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

    @http("GET", "/bills", scope=BILLS_READ, query=BillsQuery, answers={200: BillPage}, tag="bills")
    def list_bills(self, request):
        """GET /bills?customer_id=1&page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.billing.list_bills(**request.query.model_dump(exclude_none=True)))

    @http("GET", "/bills/<int:bill_id>", scope=BILLS_READ, answers={200: Bill}, errors={404: ["BILL_NOT_FOUND"]},
          tag="bills")
    def get_bill(self, request, bill_id):
        """GET /bills/1 -> {"id": 1, "customer_id": 1, "items": [{"id": 1, "product_id": 1, ...}]}"""
        return json_response(self.billing.get_bill(bill_id))

    @http("GET", "/bills/<int:bill_id>/full", scope=BILLS_READ, answers={200: FullBill},
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

    @http("GET", "/fullBill/<int:bill_id>", scope=BILLS_READ, answers={200: FullBill},
          errors={404: ["BILL_NOT_FOUND", "CUSTOMER_NOT_FOUND"]}, tag="bills")
    def get_full_bill_alias(self, request, bill_id):
        """GET /fullBill/1: the original course's path for /bills/1/full"""
        return self.get_full_bill(request, bill_id)

    @http("POST", "/bills", scope=BILLS_WRITE, body=BillBody, answers={201: FullBill},
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

    @http("POST", "/bills/<int:bill_id>/cancel", scope=BILLS_CANCEL, answers={200: Bill},
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

    @http("GET", "/analytics/customers", scope=ANALYTICS_READ, answers={200: CustomerStatsList}, tag="analytics")
    def list_customer_stats(self, request):
        """GET /analytics/customers -> {"items": [{"customer_id", "revenue", "bills"}, ...]},
        highest revenue first"""
        return json_response(self.analytics.list_customer_stats())

    @http("GET", "/analytics/customers/<int:customer_id>", scope=ANALYTICS_READ, answers={200: CustomerStats},
          tag="analytics")
    def get_customer_stats(self, request, customer_id):
        """GET /analytics/customers/1 -> {"customer_id": 1, "revenue": "9899.00", "bills": 1}"""
        return json_response(self.analytics.get_customer_stats(customer_id))

    @http("GET", "/analytics/products", scope=ANALYTICS_READ, answers={200: ProductStatsList}, tag="analytics")
    def list_product_stats(self, request):
        """GET /analytics/products -> {"items": [{"product_id", "units", "revenue"}, ...]}"""
        return json_response(self.analytics.list_product_stats())

    @http("GET", "/analytics/revenue", scope=ANALYTICS_READ, query=WindowsQuery, answers={200: RevenueWindows},
          tag="analytics")
    def list_revenue_windows(self, request):
        """GET /analytics/revenue?last=12 -> {"items": [{"start", "end", "revenue"}, ...]},
        the latest windows oldest first, the open one included"""
        return json_response(self.analytics.list_revenue_windows(last=request.query.last))

    @http("GET", "/analytics/stream", scope=ANALYTICS_READ, query=StreamQuery, answers={200: "text/event-stream"},
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

    @http("GET", "/events/stream", scope=BILLS_READ, answers={200: "text/event-stream"}, calls_services=False,
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

    # what /health can tell only from the domain (mesh.operations) ------------

    async def readiness(self, timeout):
        """Billing is catching up while its outbox holds events not yet sent;
        analytics and the aggregator (``streams``) are as analytics sees the
        Kafka side (``unknown`` while it does not answer). Analytics is
        ``rebuilding`` (with its progress) while the rebuilder gives billing's
        record again, and ``catching_up`` while what it shows does not equal
        billing's ledger (``common.ledger``): up means equal.

            {"billing": "catching_up", "streams": "up",
             "analytics": {"state": "rebuilding", "events_given": 2000,
                           "events_total": 5120, "started_at": "..."}}
        """
        answers = await ask_all({"backlog": self.billing.get_outbox_backlog,
                                 "ledger": self.billing.get_ledger,
                                 "pipeline": self.analytics.get_readiness}, timeout)
        pipeline, ledger = answers["pipeline"] or {}, answers["ledger"]
        states = {ANALYTICS: pipeline.get(ANALYTICS, "unknown"),
                  STREAMS: pipeline.get(STREAMS, "unknown")}
        rebuild, view = pipeline.get("rebuild"), pipeline.get("view")
        if rebuild is not None and rebuild["state"] == "rebuilding":
            states[ANALYTICS] = {"state": "rebuilding", **{
                key: rebuild[key] for key in ("events_given", "events_total", "started_at")}}
        elif states[ANALYTICS] == "up" and (ledger is None or view is None
                                            or not view_equals_ledger(ledger, view)):
            states[ANALYTICS] = "catching_up"
        if answers["backlog"]:
            states[BILLING] = "catching_up"
        return states

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


def created(payload, location):
    return json_response(payload, 201, headers={"Location": location})


def openapi_json():
    """This gateway's OpenAPI document as JSON text (``make openapi``)."""
    return mesh.operations.openapi_json(GatewayService)
