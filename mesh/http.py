"""The JSON HTTP edge: nameko's ``@http`` entrypoint, answering JSON for everything.

Nameko's stock entrypoint answers errors as plain text and unknown routes as
werkzeug HTML pages; here every answer, errors included, is JSON of the shape
``{"error": "CODE", "message": "..."}`` with the status from ``mesh.errors``.
Money (``Decimal``) leaves as a string with two decimals, times as ISO 8601.
Every answer carries the request's ``X-Request-ID`` (see ``mesh.tracing``).
A ``MeshError`` (404, 409, ...) is an answer: one warning line, no traceback.

A route declares the scope a caller's token needs (``contracts.scopes``;
``PUBLIC``: none) and what it takes and answers, and the edge enforces it
before the route runs (``mesh.auth`` checks the token; ``mesh.openapi``
documents the same declaration)::

    @http("POST", "/customers", scope=CUSTOMERS_WRITE, body=CustomerBody,
          answers={201: Customer}, errors={409: ["EMAIL_TAKEN"]})
    def create_customer(self, request):
        request.body    # a CustomerBody: valid, or the caller already has its 400
        request.caller  # the token's Caller (subject, client id, scopes)

A missing or refused token is 401 with ``WWW-Authenticate: Bearer``, one
without the route's scope 403, both before anything else is read. Every class
of bad input has its answer, never a 500: a body over
``MAX_BODY_BYTES`` is 413; a body without ``Content-Type: application/json`` is
415 (eventlet's server reports a missing one as ``text/plain``); malformed
JSON, an invalid field, or a query parameter out of range is 400; an id in a
path beyond ``contracts.limits.MAX_ID`` is 404; a wrong method is 405 with
``Allow``. ``HEAD`` works wherever ``GET`` does, ``OPTIONS`` answers 204 with
``Allow``, and CORS (``CORS_ALLOWED_ORIGINS``) is answered here too.

Every answer, refusals included, is counted and timed by route pattern in
``mesh.metrics`` (``mesh_http_requests_total``, ``mesh_http_duration_seconds``).

A client that goes away before its answer is all sent (a browser closing the
console, or a stream) is an ordinary day: one line in the log, not eventlet's
traceback (``ClientGone``).
"""
import contextlib
import contextvars
import dataclasses
import gc
import json
import logging
import math
import time
from decimal import Decimal
from typing import Any, Dict, Optional, Sequence

from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp, parse_address
import werkzeug.exceptions
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from common.config import DEFAULT_WEB_SERVER_ADDRESS, as_bool
from common.rate_limit import TokenBuckets
from common.validation import validate
from contracts.errors import (
    InvalidInput, MeshError, MethodNotAllowed, NotFound, PayloadTooLarge, TooManyRequests,
    UnsupportedMediaType,
)
from contracts.headers import CALLER_KEY, CLIENT_ID_KEY, REQUEST_ID_KEY
from contracts.limits import MAX_ID, MAX_KEY_LENGTH
from contracts.wire import to_json
from mesh.auth import Authenticator
from mesh.errors import error_body, quiet_expected_errors
from mesh.metrics import observe_http, observe_rate_limited
from mesh.coroutines import accepting_coroutines
from mesh.tracing import request_id_from, set_caller, set_request_id

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_RATE_LIMIT_RATE = 100  # requests a second per client, on average
DEFAULT_RATE_LIMIT_BURST = 200  # ... and at once
# routes found, by (method, script name, path): binding werkzeug's map to each
# request's environ and matching it is a real share of a cached read, and its
# answer is the same for the same path; emptied whole when full (paths hold ids)
ROUTE_CACHE_SIZE = 4096
CORS_ALLOWED_HEADERS = "Content-Type, Authorization, Idempotency-Key, X-Request-ID"
# what a write to a client that went away raises (EPIPE, ECONNRESET)
CLIENT_GONE = ("BrokenPipeError", "ConnectionResetError", "ConnectionAbortedError")
# "GET /events/stream" of the request this greenthread serves, for ClientGone's line
_serving = contextvars.ContextVar("mesh_http_serving", default=None)


def json_response(payload, status=200, headers=None):
    return json_text_response(to_json(payload), status, headers)


def json_text_response(text, status=200, headers=None):
    """An answer already in JSON (``to_json``), e.g. from the read cache."""
    return Response(text, status=status, headers=headers, mimetype="application/json")


def error_response(exc, headers=None):
    status, body = error_body(exc)
    if status >= 500 and status != 503:
        log.error("answering %s to a bug", status, exc_info=exc)
    return json_response(body, status, headers)


def parse_json_object(data):
    """``data`` (bytes) as a JSON object; numbers with a fraction become
    ``Decimal`` so money never passes through a float."""
    try:
        body = json.loads(data.decode("utf-8") or "null", parse_float=Decimal)
        # lone surrogates ("\\ud800") parse, but no database can store them
        json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    except (ValueError, RecursionError) as exc:  # UnicodeError is a ValueError
        raise InvalidInput("body: malformed JSON ({})".format(
            "nested too deeply" if isinstance(exc, RecursionError) else exc))
    if not isinstance(body, dict):
        raise InvalidInput("body: expected a JSON object")
    return body


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    """What a route takes and answers: enforced by the edge, documented by
    ``mesh.openapi``. ``answers``: status -> answer model, a media type (text),
    or None (no body); ``errors``: status -> the error codes the route's own
    work can answer (the edge adds what it answers itself); ``scope``: what a
    caller's token needs (``contracts.scopes``), None for none."""

    scope: Optional[str] = None
    query: Optional[type] = None
    body: Optional[type] = None
    answers: Dict[int, Any] = dataclasses.field(default_factory=dict)
    errors: Dict[int, Sequence[str]] = dataclasses.field(default_factory=dict)
    headers: Dict[str, str] = dataclasses.field(default_factory=dict)  # name -> description
    descriptions: Dict[int, str] = dataclasses.field(default_factory=dict)
    tag: Optional[str] = None
    calls_services: bool = True  # may answer 503 when a service does not
    media_type: str = "application/json"
    # an answer that may never end (a text/event-stream): "x-endless-stream" in
    # the document (mesh.openapi), so that generic tools can leave it out
    endless: bool = False


class JsonWsgiApp(WsgiApp):
    """Routes like nameko's, but every answer is JSON, and requests are checked
    against their route's spec before any worker runs."""

    def __init__(self, server):
        with collection_paused():  # nameko's __init__ compiles every route
            super().__init__(server)
        config = server.container.config
        self.max_body_bytes = int(config.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
        origins = str(config.get("CORS_ALLOWED_ORIGINS") or "")
        self.cors_origins = {origin.strip() for origin in origins.split(",") if origin.strip()}
        self.cors_max_age = str(config.get("CORS_MAX_AGE", 600))
        self.auth = Authenticator(config)
        self.limits = TokenBuckets(config.get("RATE_LIMIT_RATE", DEFAULT_RATE_LIMIT_RATE),
                                   config.get("RATE_LIMIT_BURST", DEFAULT_RATE_LIMIT_BURST))
        self.routes = {}  # (method, script name, path) -> (rule, values): ROUTE_CACHE_SIZE

    def match(self, environ, method):
        """``(rule, values)`` of the request's route, as werkzeug's ``match``
        finds it; a routing answer (404, 405, a redirect) is raised, never kept."""
        key = (method, environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""))
        found = self.routes.get(key)
        if found is None:
            found = self.url_map.bind_to_environ(environ).match(return_rule=True)
            if len(self.routes) >= ROUTE_CACHE_SIZE:
                self.routes.clear()
            self.routes[key] = found
        rule, values = found
        return rule, dict(values)  # the route's own copy: its arguments

    def __call__(self, environ, start_response):
        started = time.perf_counter()  # for mesh.metrics, below
        request = Request(environ, shallow=True)
        # this greenthread also writes the access log line: give it the id too
        request.request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        set_request_id(request.request_id)
        set_caller(None)  # until the token says who
        _serving.set("{} {}".format(request.method, request.path))
        rule = None
        try:
            if request.method == "OPTIONS":
                response = self.options(self.url_map.bind_to_environ(environ), request)
            else:
                rule, values = self.match(environ, request.method)  # the rule: for metrics
                provider = rule.endpoint
                request.path_values = values
                request.url_rule_pattern = rule.rule
                self.check_request(provider, request)
                response = provider.handle_request(request)
        except MeshError as exc:
            log.info("%s %s refused: %s %s", request.method, request.path, exc.status, exc)
            response = error_response(exc, headers=getattr(exc, "headers", None))
        except werkzeug.exceptions.MethodNotAllowed as exc:
            response = error_response(
                MethodNotAllowed("{} is not allowed on {}".format(request.method, request.path)),
                headers={"Allow": ", ".join(sorted(allowed_methods(exc.valid_methods)))})
        except HTTPException as exc:
            if exc.code < 400:  # routing redirects (trailing slash) stay as they are
                response = exc.get_response(environ)
            else:
                response = json_response(
                    {"error": exc.name.upper().replace(" ", "_"),
                     "message": "no route for {} {}".format(
                         request.method, request.path)}, exc.code)
        except Exception as exc:  # noqa: BLE001  a bug: logged, answered as JSON
            response = error_response(exc)
        response.headers["X-Request-ID"] = request.request_id
        self.add_cors_headers(request, response)
        # metrics, refusals included; timed until the answer is ready, so a
        # streamed body (text/event-stream) is written after this, never timed
        observe_http(rule.rule if rule is not None else None, request.method,
                     response.status_code, time.perf_counter() - started)
        return response(environ, start_response)

    def options(self, adapter, request):
        """204 with ``Allow`` (and, for an allowed origin, CORS's preflight headers)."""
        methods = adapter.allowed_methods()
        if not methods:
            raise NotFound("no route for OPTIONS {}".format(request.path))
        response = Response(status=204)
        response.headers["Allow"] = ", ".join(sorted(allowed_methods(methods)))
        if self.cors_origin(request) and "Access-Control-Request-Method" in request.headers:
            response.headers["Access-Control-Allow-Methods"] = response.headers["Allow"]
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = self.cors_max_age
        return response

    def cors_origin(self, request):
        origin = request.headers.get("Origin")
        if origin and ("*" in self.cors_origins or origin in self.cors_origins):
            return origin
        return None

    def add_cors_headers(self, request, response):
        if not self.cors_origins:
            return
        response.vary.add("Origin")
        origin = self.cors_origin(request)
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-ID, Location"

    def check_request(self, provider, request):
        """Refuse what the route's spec does not take, before any worker runs:
        nothing a refused request carries reaches a service."""
        spec = getattr(provider, "spec", None)
        request.caller = None
        if spec is not None:  # the token first: a caller without one learns nothing
            request.caller = self.auth.caller(request, spec.scope, query_allowed=spec.endless)
            if request.caller is not None:
                set_caller(request.caller.subject)
        self.check_limit(request)
        for name, value in request.path_values.items():
            if isinstance(value, int) and value > MAX_ID:
                raise NotFound("{} {} does not exist".format(name, value))
        if spec is None:
            return
        for name in spec.headers:
            value = request.headers.get(name)
            # every declared header is a key (Idempotency-Key, Last-Event-ID)
            if value is not None and not 1 <= len(value) <= MAX_KEY_LENGTH:
                raise InvalidInput("{}: 1 to {} characters".format(name, MAX_KEY_LENGTH))
        if spec.query is not None:
            request.query = validate(spec.query, request.args.to_dict())
        if spec.body is not None:
            request.body = validate(spec.body, self.read_body(request))

    def check_limit(self, request):
        """429 with ``Retry-After`` once the caller's bucket is empty: the
        token's subject, or the client's address without a token."""
        if not self.limits.on:
            return
        caller = request.caller
        kind, key = ("subject", caller.subject) if caller else ("address", request.remote_addr)
        wait = self.limits.take((kind, key))
        if wait:
            observe_rate_limited(request.url_rule_pattern, kind)
            exc = TooManyRequests("over {:g} requests a second (burst {:g}) for this {}: "
                                  "try again in {:.1f} s".format(
                                      self.limits.rate, self.limits.burst, kind, wait))
            exc.headers = {"Retry-After": str(max(1, math.ceil(wait)))}
            raise exc

    def read_body(self, request):
        content_type = request.mimetype
        if content_type != "application/json":
            raise UnsupportedMediaType(
                "send the body as JSON, with Content-Type: application/json (not {})".format(
                    content_type or "none"))
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise PayloadTooLarge("the body is {} bytes; at most {} are taken".format(
                length, self.max_body_bytes))
        request.shallow = False  # nameko's handle_request would allow reading too
        if length is None and "chunked" in request.headers.get("Transfer-Encoding", ""):
            # werkzeug reads nothing without a length; eventlet's input decodes chunks
            stream = request.environ["wsgi.input"]
        else:
            stream = request.stream
        data = stream.read(self.max_body_bytes + 1)
        if len(data) > self.max_body_bytes:
            raise PayloadTooLarge("the body is over {} bytes".format(self.max_body_bytes))
        return parse_json_object(data)


def allowed_methods(methods):
    """What ``Allow`` lists: the route's methods, ``HEAD`` with ``GET``, and ``OPTIONS``."""
    allowed = set(methods or ()) | {"OPTIONS"}
    if "GET" in allowed:
        allowed.add("HEAD")
    return allowed


class JsonWebServer(WebServer):
    @property
    def bind_addr(self):
        # nameko's, with this machine only as the default instead of every
        # network the machine is on
        return parse_address(self.container.config.get(WEB_SERVER_CONFIG_KEY)
                             or DEFAULT_WEB_SERVER_ADDRESS)

    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        # eventlet's line per HTTP request is a real share of a cached read
        # (docs/benchmarks.md); the services' access lines (mesh.tracing) stay
        server.log_output = as_bool(self.container.config.get("HTTP_ACCESS_LOG", False))
        # the logger nameko hands the server: a client gone is one line on it
        if isinstance(server.log, logging.Logger) and _client_gone not in server.log.filters:
            server.log.addFilter(_client_gone)
        return server

    def context_data_from_headers(self, request):
        context = {REQUEST_ID_KEY: request.request_id}
        caller = getattr(request, "caller", None)
        if caller is not None:  # who asked travels with every call and event it causes
            context[CALLER_KEY] = caller.subject
            if caller.client_id:
                context[CLIENT_ID_KEY] = caller.client_id
        return context


class ClientGone(logging.Filter):
    """A client that went away before its answer was all sent is one line.

    eventlet's server logs any error of a response's writes as the whole
    traceback, at info (``HttpProtocol.handle_one_response``, listed in
    docs/upstream-internals.md): a browser that closes a stream made one
    traceback per disconnect. Such a record becomes
    ``GET /events/stream: the client went away (BrokenPipeError: ...)``;
    every other traceback stays as it is."""

    def filter(self, record):
        text = record.msg
        if isinstance(text, str) and text.startswith("Traceback (most recent call last)"):
            error = text.rstrip().rsplit("\n", 1)[-1]
            if error.startswith(CLIENT_GONE):
                record.msg = "%s: the client went away (%s)"
                record.args = (_serving.get() or "a request", error)
        return True


_client_gone = ClientGone()


@contextlib.contextmanager
def collection_paused():
    """No garbage collection inside: for compiling routes.

    werkzeug compiles a bound rule with ast.parse. On Python 3.11 the AST
    builder counts its recursion in one place per interpreter, and checks the
    count when it is done (python/cpython#106905): a garbage collection inside
    it that runs a greenlet's finalizer can switch to another greenthread that
    compiles a rule of its own (the entrypoints of a service are set up side by
    side, and containers start side by side), and the first then fails with
    "SystemError: AST constructor recursion depth mismatch" (seen once in make
    test on 3.11.7). Without a collection nothing can switch away while it
    compiles.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def bound_rule(url):
    """A werkzeug ``Rule`` for ``url``, bound to a map of its own (binding parses
    its variables: ``rule.arguments``).

        >>> sorted(bound_rule("/bills/<int:bill_id>/full").arguments)
        ['bill_id']
    """
    rule = Rule(url)
    with collection_paused():
        Map([rule])
    return rule


class JsonHttpEntrypoint(HttpRequestHandler):
    server = JsonWebServer()

    def __init__(self, method, url, spec=None, expected_exceptions=(MeshError,), **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)
        self.spec = spec

    def setup(self):
        super().setup()
        quiet_expected_errors()
        # a route always calls its method with the request and its URL's
        # variables: check that signature once, here
        rule = bound_rule(self.url)
        super().check_signature((None,), dict.fromkeys(rule.arguments))

    def check_signature(self, args, kwargs):
        """nameko checks every request (inspect.getcallargs, a share of every
        cached read); ``setup`` has checked the route's signature once instead."""

    def response_from_exception(self, exc):
        return error_response(exc)


def http(method, url, *, scope, query=None, body=None, answers=None, errors=None,
         headers=None, descriptions=None, tag=None, calls_services=True, endless=None):
    """``@http("GET", "/customers", scope=CUSTOMERS_READ, query=PageQuery,
    answers={200: CustomerPage})``: a route, its spec (``RouteSpec``) checked on
    every request. ``scope`` has no default: each route says what a caller
    needs, ``contracts.scopes.PUBLIC`` for nothing. ``endless``: by default,
    whether it answers ``text/event-stream``."""
    answers = dict(answers or {200: None})
    if endless is None:
        endless = "text/event-stream" in answers.values()
    spec = RouteSpec(scope=scope, query=query, body=body, answers=answers,
                     errors=dict(errors or {}), headers=dict(headers or {}),
                     descriptions=dict(descriptions or {}), tag=tag,
                     calls_services=calls_services, endless=endless)
    return accepting_coroutines(JsonHttpEntrypoint.decorator)(method, url, spec=spec)


def declared_routes(service_cls):
    """``[(method name, entrypoint)]`` of a service class's routes, by path."""
    routes = []
    for name in dir(service_cls):
        for ext in getattr(getattr(service_cls, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(ext, JsonHttpEntrypoint):
                routes.append((name, ext))
    return sorted(routes, key=lambda route: (route[1].url, route[1].method))


def http_routes(service_cls):
    """``["GET /customers", ...]``: the HTTP routes a service class declares."""
    return ["{} {}".format(ext.method, ext.url) for _, ext in declared_routes(service_cls)]
