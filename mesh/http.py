"""The JSON HTTP edge: nameko's ``@http`` entrypoint, answering JSON for everything.

Nameko's stock entrypoint answers errors as plain text and unknown routes as
werkzeug HTML pages; here every answer, errors included, is JSON of the shape
``{"error": "CODE", "message": "..."}`` with the status from ``mesh.errors``.
Money (``Decimal``) leaves as a string with two decimals, times as ISO 8601.
Every answer carries the request's ``X-Request-ID`` (see ``mesh.tracing``).
A ``MeshError`` (404, 409, ...) is an answer: one warning line, no traceback.
"""
import json
import logging
from decimal import Decimal

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from common.config import as_bool
from contracts.wire import to_json
from contracts.errors import InvalidInput, MeshError
from contracts.headers import REQUEST_ID_KEY
from mesh.errors import error_body, quiet_expected_errors
from mesh.tracing import request_id_from, set_request_id

log = logging.getLogger(__name__)


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


def read_json(request):
    """The request body as a JSON object; numbers with a fraction become
    ``Decimal`` so money never passes through a float."""
    try:
        body = json.loads(request.get_data(as_text=True) or "null",
                          parse_float=Decimal)
    except ValueError as exc:
        raise InvalidInput("body: malformed JSON ({})".format(exc))
    if not isinstance(body, dict):
        raise InvalidInput("body: expected a JSON object")
    return body


class JsonWsgiApp(WsgiApp):
    """Routes like nameko's, but unknown routes and wrong methods answer JSON."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        # this greenthread also writes the access log line: give it the id too
        request.request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        set_request_id(request.request_id)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except MethodNotAllowed as exc:
            response = json_response(
                {"error": "METHOD_NOT_ALLOWED",
                 "message": "{} is not allowed on {}".format(
                     request.method, request.path)},
                405, headers={"Allow": ", ".join(exc.valid_methods or ())})
        except HTTPException as exc:
            if exc.code < 400:  # routing redirects (trailing slash) stay as they are
                response = exc.get_response(environ)
            else:
                response = json_response(
                    {"error": exc.name.upper().replace(" ", "_"),
                     "message": "no route for {} {}".format(
                         request.method, request.path)}, exc.code)
        response.headers["X-Request-ID"] = request.request_id
        return response(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        # eventlet's line per HTTP request costs a tenth of a cached read
        # (measured); the services' access lines (mesh.tracing) stay
        server.log_output = as_bool(self.container.config.get("HTTP_ACCESS_LOG", False))
        return server

    def context_data_from_headers(self, request):
        return {REQUEST_ID_KEY: request.request_id}


class JsonHttpEntrypoint(HttpRequestHandler):
    server = JsonWebServer()

    def __init__(self, method, url, expected_exceptions=(MeshError,), **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)

    def setup(self):
        super().setup()
        quiet_expected_errors()
        # a route always calls its method with the request and its URL's
        # variables: check that signature once, here
        rule = Rule(self.url)
        Map([rule])  # binding the rule parses its variables
        super().check_signature((None,), dict.fromkeys(rule.arguments))

    def check_signature(self, args, kwargs):
        """nameko checks every request (inspect.getcallargs: 7% of a cached read,
        measured); ``setup`` has checked the route's signature once instead."""

    def response_from_exception(self, exc):
        return error_response(exc)


http = JsonHttpEntrypoint.decorator


def http_routes(service_cls):
    """``["GET /customers", ...]``: the HTTP routes a service class declares."""
    routes = []
    for name in dir(service_cls):
        for ext in getattr(getattr(service_cls, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(ext, HttpRequestHandler):
                routes.append("{} {}".format(ext.method, ext.url))
    return sorted(routes, key=lambda route: (route.split()[1], route))
