"""gateway: the HTTP contract (``docs/http.md``), routed by service name over RPC.

Every route is a thin translation: read the request, call one service through
the broker, answer JSON. Validation lives in the services; errors map to
statuses in ``mesh.errors.error_body``; every call has a deadline (503, never a
hang). ``GET /customers/{id}``, ``/products/{id}`` and ``/bills/{id}/full``
answer from a read cache (``mesh.cache``) until the services' change events, or
this gateway's own writes, evict them (``GATEWAY_CACHE: false`` turns it off).

The routes, by resource: customers, products, bills, analytics; then the
operations routes (health, registry, admin RPC); then the cache's event handlers.

    nameko run --config config.yaml services.gateway
    curl http://127.0.0.1:8000/bills/1/full
"""
import fnmatch
import hmac

import eventlet
from nameko.dependency_providers import Config
from nameko.exceptions import MethodNotFound
from werkzeug.wrappers import Response

from common.validation import validate
from contracts.wire import to_json
from contracts.cache_tags import customer_tag, full_bill_key, product_tag
from contracts.errors import Forbidden, MeshError, NotFound, Unauthorized
from contracts.events import (
    CUSTOMER_DELETED, CUSTOMER_UPDATED, PRODUCT_DELETED, PRODUCT_UPDATED, STOCK_CHANGED,
)
from contracts.services import (
    ANALYTICS, BILLING, CUSTOMERS, GATEWAY, INVENTORY, KAFKA_BRIDGE, REQUIRED_SERVICES,
    RPC_SERVICES,
)
from mesh.cache import ReadCache
from mesh.errors import error_body
from mesh.events import evicts_on
from mesh.http import http, http_routes, json_response, json_text_response, read_json
from mesh.proxy import MeshRpcProxy
from mesh.registry import Registry
from mesh.tracing import Tracing
from services.gateway_schemas import StreamIn


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

    # customers -----------------------------------------------------------

    @http("GET", "/customers")
    def list_customers(self, request):
        """GET /customers?page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.customers.list_customers(**page_args(request)))

    @http("GET", "/customers/<int:customer_id>")
    def get_customer(self, request, customer_id):
        """GET /customers/1 -> {"id": 1, "name": "Mohamed", "email": "med@gmail.com"}
        (cached until the customer changes)"""
        return self._read_cached(customer_tag(customer_id), self.customers.get_customer,
                                 customer_id)

    @http("POST", "/customers")
    def create_customer(self, request):
        """POST /customers {"name": "Ali", "email": "ali@mail.com"} -> 201 + Location"""
        return self._create(self.customers.create_customer, request, "/customers/{}")

    @http("PUT", "/customers/<int:customer_id>")
    def update_customer(self, request, customer_id):
        """PUT /customers/4 {"name": "Ali B", "email": "ali@mail.com"} -> 200"""
        return self._update(customer_tag(customer_id), self.customers.update_customer,
                            customer_id, request)

    @http("DELETE", "/customers/<int:customer_id>")
    def delete_customer(self, request, customer_id):
        """DELETE /customers/4 -> 204; 409 while bills refer to the customer"""
        return self._delete(customer_tag(customer_id), self.customers.delete_customer,
                            customer_id)

    # products ------------------------------------------------------------

    @http("GET", "/products")
    def list_products(self, request):
        """GET /products?page=0&size=20 -> {"items": [...], "page": {...}}"""
        return json_response(self.inventory.list_products(**page_args(request)))

    @http("GET", "/products/<int:product_id>")
    def get_product(self, request, product_id):
        """GET /products/1 -> {"id": 1, "name": "Computer", "price": "3200.00", "quantity": 11}
        (cached until the product or its stock changes)"""
        return self._read_cached(product_tag(product_id), self.inventory.get_product,
                                 product_id)

    @http("POST", "/products")
    def create_product(self, request):
        """POST /products {"name": "Mouse", "price": "19.99", "quantity": 5} -> 201 + Location"""
        return self._create(self.inventory.create_product, request, "/products/{}")

    @http("PUT", "/products/<int:product_id>")
    def update_product(self, request, product_id):
        """PUT /products/4 {"name": "Mouse", "price": "17.50", "quantity": 5} -> 200"""
        return self._update(product_tag(product_id), self.inventory.update_product,
                            product_id, request)

    @http("DELETE", "/products/<int:product_id>")
    def delete_product(self, request, product_id):
        """DELETE /products/4 -> 204; 409 while bills hold the product"""
        return self._delete(product_tag(product_id), self.inventory.delete_product,
                            product_id)

    # the forwarding both resources share: a read cached under the entity's
    # tag, writes that evict it once the service has answered (or failed)

    def _read_cached(self, tag, get, entity_id):
        return json_text_response(self.cache.read(tag, lambda: (to_json(get(entity_id)), [tag])))

    def _create(self, create, request, location):
        entity = create(read_json(request))
        return created(entity, location.format(entity["id"]))

    def _update(self, tag, update, entity_id, request):
        try:
            return json_response(update(entity_id, read_json(request)))
        finally:
            self.cache.evict(tag)

    def _delete(self, tag, delete, entity_id):
        try:
            delete(entity_id)
        finally:
            self.cache.evict(tag)
        return Response(status=204)

    # bills ---------------------------------------------------------------

    @http("GET", "/bills")
    def list_bills(self, request):
        """GET /bills?customer_id=1&page=0&size=20 -> {"items": [...], "page": {...}}"""
        args = page_args(request)
        if "customer_id" in request.args:
            args["customer_id"] = request.args["customer_id"]
        return json_response(self.billing.list_bills(**args))

    @http("GET", "/bills/<int:bill_id>")
    def get_bill(self, request, bill_id):
        """GET /bills/1 -> {"id": 1, "customer_id": 1, "items": [{"id": 1, "product_id": 1, ...}]}"""
        return json_response(self.billing.get_bill(bill_id))

    @http("GET", "/bills/<int:bill_id>/full")
    def get_full_bill(self, request, bill_id):
        """GET /bills/1/full -> the bill with customer, products, line totals and total
        (cached until its customer or one of its products changes; bills never do)"""
        def load():
            bill = self.billing.get_full_bill(bill_id)
            tags = [customer_tag(bill["customer"]["id"])] + [
                product_tag(item["product"]["id"]) for item in bill["items"] if item["product"]]
            return to_json(bill), tags

        return json_text_response(self.cache.read(full_bill_key(bill_id), load))

    @http("GET", "/fullBill/<int:bill_id>")
    def get_full_bill_alias(self, request, bill_id):
        """GET /fullBill/1: the original course's path for /bills/1/full"""
        return self.get_full_bill(request, bill_id)

    @http("POST", "/bills")
    def create_bill(self, request):
        """POST /bills {"customer_id": 1, "items": [{"product_id": 2, "quantity": 3}]}
        -> 201 with the full bill; 409 INSUFFICIENT_STOCK when stock is short.
        With an ``Idempotency-Key`` header, repeating the request answers the
        first bill again and creates nothing (the same key with another body: 409)."""
        body = read_json(request)
        if "Idempotency-Key" in request.headers:
            body["idempotency_key"] = request.headers["Idempotency-Key"]
        items = body.pop("items", None)
        try:
            bill = self.billing.create_bill(customer_id=body.pop("customer_id", None),
                                            items=items, **body)
        finally:
            # the stock of these products changed (or may have): read it again
            self.cache.evict(*map(product_tag, product_ids_in(items)))
        return created(bill, "/bills/{}".format(bill["id"]))

    # analytics -------------------------------------------------------------

    @http("GET", "/analytics/customers")
    def list_customer_stats(self, request):
        """GET /analytics/customers -> {"items": [{"customer_id", "revenue", "bills"}, ...]},
        highest revenue first"""
        return json_response(self.analytics.list_customer_stats())

    @http("GET", "/analytics/customers/<int:customer_id>")
    def get_customer_stats(self, request, customer_id):
        """GET /analytics/customers/1 -> {"customer_id": 1, "revenue": "9899.00", "bills": 1}"""
        return json_response(self.analytics.get_customer_stats(customer_id))

    @http("GET", "/analytics/products")
    def list_product_stats(self, request):
        """GET /analytics/products -> {"items": [{"product_id", "units", "revenue"}, ...]}"""
        return json_response(self.analytics.list_product_stats())

    @http("GET", "/analytics/revenue")
    def list_revenue_windows(self, request):
        """GET /analytics/revenue?last=12 -> {"items": [{"start", "end", "revenue"}, ...]},
        the latest windows oldest first, the open one included"""
        return json_response(self.analytics.list_revenue_windows(
            **query_args(request, "last")))

    @http("GET", "/analytics/stream")
    def stream_revenue_windows(self, request):
        """Server-sent events: every second, the latest revenue windows (the
        course's live chart). ``?last=N`` windows per event; ``?events=N`` ends
        the stream after N events.

            GET /analytics/stream -> data: {"items": [{"start", "end", "revenue"}]}
        """
        args = validate(StreamIn, query_args(request, "last", "events"))
        self.analytics.list_revenue_windows(last=args.last)  # fail now, as JSON, if down

        def events():
            sent = 0
            while args.events is None or sent < args.events:
                try:
                    payload = self.analytics.list_revenue_windows(last=args.last)
                except MeshError as exc:
                    payload = error_body(exc)[1]
                yield "data: {}\n\n".format(to_json(payload))
                sent += 1
                if args.events is None or sent < args.events:
                    eventlet.sleep(1)

        return Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache"})

    # operations: health, registry, admin ---------------------------------

    @http("GET", "/health/live")
    def liveness(self, request):
        """The gateway itself answers; asks nobody else (for a load balancer).

            GET /health/live -> 200 {"status": "ok"}
        """
        return json_response({"status": "ok"})

    @http("GET", "/services")
    def list_services(self, request):
        """Every service of the mesh as the broker and the services see it now:
        instances consuming its RPC queue, its RPC methods, up or down.

            GET /services -> {"services": [{"name": "inventory", "instances": 2,
                               "methods": ["get_product", ...], "status": "up"}, ...]}
        """
        services = []
        for name, answer in self._ask_every_service("describe", RPC_SERVICES).items():
            services.append({"name": name,
                             "instances": self.registry.consumers(name, fresh=True),
                             "methods": answer["methods"] if answer else [],
                             "status": "down" if answer is None else "up"})
        services.append({"name": self.name, "instances": 1,
                         "methods": http_routes(type(self)), "status": "up"})
        return json_response({"services": services})

    @http("GET", "/health")
    def health(self, request):
        """200 when every service answers a ping in time, else 503 naming who is down.

            GET /health -> 200 {"status": "ok", "services": {"customers": "up", ...}}
        """
        answers = self._ask_every_service("ping", REQUIRED_SERVICES)
        states = {name: "down" if answer is None else "up" for name, answer in answers.items()}
        down = sorted(name for name, state in states.items() if state != "up")
        if not down:
            return json_response({"status": "ok", "services": states})
        return json_response({"status": "unavailable", "services": states,
                              "error": "SERVICE_UNAVAILABLE",
                              "message": "not answering: " + ", ".join(down)}, 503)

    def _ask_every_service(self, method, services):
        """``{service: answer, or None if it did not answer}`` for ``method`` of
        each of ``services``, all calls in flight at once, each within HEALTH_TIMEOUT."""
        timeout = float(self.config.get("HEALTH_TIMEOUT", 1))
        replies = {}
        for name in services:
            try:
                replies[name] = getattr(getattr(self, name), method).within(timeout).call_async()
            except MeshError:  # nobody consumes its queue
                replies[name] = None
        answers = {}
        for name, reply in replies.items():
            try:
                answers[name] = reply.result() if reply else None
            except Exception:  # noqa: BLE001  any failure means: not serving
                answers[name] = None
        return answers

    @http("POST", "/rpc/<service>/<method>")
    def call_rpc(self, request, service, method):
        """Call any allowed service method through the broker, with a JSON object
        of arguments; needs ``Authorization: Bearer <ADMIN_TOKEN>``. Off while no
        ``ADMIN_TOKEN`` is configured; ``RPC_ROUTES_ALLOWED`` lists what may be
        called (default: ``get_*`` and ``list_*`` methods).

            POST /rpc/customers/get_customers {"ids": [1, 2]} -> 200 {"items": [...]}
        """
        self._authorize_rpc(request, service, method)
        arguments = read_json(request)
        try:
            result = getattr(getattr(self, service), method)(**arguments)
        except MethodNotFound:
            raise NotFound("{} has no method {}".format(service, method))
        return json_response(result)

    def _authorize_rpc(self, request, service, method):
        token = self.config.get("ADMIN_TOKEN")
        if not token:
            raise NotFound("no route for POST {} (ADMIN_TOKEN is not set)".format(request.path))
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), "Bearer {}".format(token).encode()):
            raise Unauthorized("a valid 'Authorization: Bearer <token>' header is required")
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


def query_args(request, *names):
    """The query parameters ``names`` that were given, as text; whoever takes them
    validates them (400 naming the field)."""
    return {name: request.args[name] for name in names if name in request.args}


def page_args(request):
    return query_args(request, "page", "size")


def product_ids_in(items):
    """The product ids a (not yet validated) bill request names."""
    ids = []
    for item in items if isinstance(items, list) else []:
        product_id = item.get("product_id") if isinstance(item, dict) else None
        if isinstance(product_id, int) or (isinstance(product_id, str) and product_id.isdigit()):
            ids.append(int(product_id))
    return ids


def created(payload, location):
    return json_response(payload, 201, headers={"Location": location})
