"""The OpenAPI 3.1 document of a service's HTTP routes, generated from what the
routes declare (``mesh.http.http(..., scope=, query=, body=, answers=, errors=)``): the
same pydantic models that validate the requests (``mesh.http`` checks query and
body against them before the route runs) describe them here, so the document
and the routes cannot drift apart. Answers are checked against their models by
the fuzzer in ``make test`` (tests/integration/test_fuzz.py).

    document = openapi_document(GatewayService, title="billing-mesh", version="0.1.0")
"""
import inspect
import re

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts.errors import (
    DeadlineExceeded, Forbidden, InvalidInput, NotFound, PayloadTooLarge, ServiceUnavailable,
    TooManyRequests, Unauthorized, UnsupportedMediaType,
)
from contracts.limits import MAX_ID, MAX_KEY_LENGTH
from contracts.scopes import OPERATIONS_READ, PUBLIC, SCOPES
from mesh.http import JsonHttpEntrypoint, declared_routes

PATH_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearerAuth"
# one server-sent event, as a client's EventSource parses it; data is JSON text
SSE_EVENT = {"type": "object", "required": ["data"], "properties": {
    "data": {"type": "string", "contentMediaType": "application/json"},
    "event": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}}}


def openapi_path(url):
    """``/customers/<int:customer_id>`` -> ``/customers/{customer_id}``."""
    return PATH_VARIABLE.sub(lambda match: "{" + match.group("name") + "}", url)


def path_parameters(url):
    parameters = []
    for match in PATH_VARIABLE.finditer(url):
        if match.group("converter") == "int":
            # every int in a path is an id: beyond MAX_ID nothing can exist (404)
            schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
        else:
            schema = {"type": "string", "pattern": "^[^/]+$"}
        parameters.append({"name": match.group("name"), "in": "path", "required": True,
                           "schema": schema})
    return parameters


def query_parameters(model, schemas):
    """One parameter per field of the query model (query parameters are text;
    the schema says what the text must read as)."""
    schema = schemas[model]
    required = set(schema.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required, "schema": field}
            for name, field in schema.get("properties", {}).items()]


def error_schema(codes):
    return {"type": "object", "required": ["error", "message"], "additionalProperties": False,
            "properties": {"error": {"type": "string", "enum": sorted(set(codes))},
                           "message": {"type": "string"}}}


def route_errors(spec, url):
    """status -> error codes a route can answer: its own, and the framework's."""
    errors = {status: list(codes) for status, codes in spec.errors.items()}

    def add(error):
        errors.setdefault(error.status, [])
        if error.code not in errors[error.status]:
            errors[error.status].append(error.code)

    if spec.calls_services:
        add(ServiceUnavailable)
        add(DeadlineExceeded)
    if spec.query is not None or spec.headers:
        add(InvalidInput)
    if spec.body is not None:
        add(InvalidInput)
        add(PayloadTooLarge)
        add(UnsupportedMediaType)
    if "<int:" in url:
        add(NotFound)  # an id out of range matches no route
    add(TooManyRequests)  # every route counts against its caller's limit
    if spec.scope is not PUBLIC:
        add(Unauthorized)
        add(Forbidden)
        add(ServiceUnavailable)  # the issuer's keys cannot be read
    return errors


def describe(method_fn):
    # cleandoc: Python 3.13 strips docstring indentation itself, 3.11 does not
    doc = inspect.cleandoc(method_fn.__doc__ or "")
    summary = doc.splitlines()[0] if doc else method_fn.__name__
    return summary, doc


def openapi_document(service_cls, title, version, description=""):
    """The document for every ``@http`` route of ``service_cls`` that declares
    a spec (``mesh.http.RouteSpec``)."""
    routes = declared_routes(service_cls)
    models = set()
    for _name, entrypoint in routes:
        spec = entrypoint.spec
        models.update(model for model in (spec.query, spec.body) if model is not None)
        models.update(answer for answer in spec.answers.values()
                      if isinstance(answer, type) and issubclass(answer, BaseModel))
    keyed = sorted(models, key=lambda model: model.__name__)
    refs, definitions = models_json_schema(
        [(model, "validation") for model in keyed], ref_template=REF)
    components = definitions.get("$defs", {})
    schemas = {model: components[refs[(model, "validation")]["$ref"].rsplit("/", 1)[1]]
               for model in keyed}

    paths = {}
    for name, entrypoint in routes:
        assert isinstance(entrypoint, JsonHttpEntrypoint)
        spec = entrypoint.spec
        summary, doc = describe(getattr(service_cls, name))
        operation = {"operationId": name, "summary": summary, "description": doc,
                     "tags": [spec.tag] if spec.tag else [], "responses": {}}
        parameters = path_parameters(entrypoint.url)
        if spec.query is not None:
            parameters += query_parameters(spec.query, schemas)
        parameters += [{"name": name, "in": "header", "required": False,
                        "description": text, "schema": {"type": "string", "minLength": 1,
                                                        "maxLength": MAX_KEY_LENGTH}}
                       for name, text in sorted(spec.headers.items())]
        if spec.scope is not PUBLIC:
            operation["security"] = [{SECURITY_SCHEME: [spec.scope]}]
            if spec.scope == OPERATIONS_READ:  # no token from this machine (mesh.auth)
                operation["security"].append({})
        if spec.endless:
            # the answer may never end: a generic tool (a fuzzer, a contract
            # test) should leave it out, e.g. schemathesis run
            # --exclude-by '/x-endless-stream == true' (make fuzz does)
            operation["x-endless-stream"] = True
        if parameters:
            operation["parameters"] = parameters
        if spec.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": REF.format(model=spec.body.__name__)}}}}
        for status, answer in sorted(spec.answers.items()):
            response = {"description": spec.descriptions.get(status, "OK")}
            if answer is None:
                pass  # no body (204)
            elif answer == "text/event-stream":
                response["content"] = {answer: {"schema": SSE_EVENT}}
            elif answer == "application/json":  # a JSON document of its own (OpenAPI's)
                response["content"] = {answer: {"schema": {"type": "object"}}}
            elif isinstance(answer, str):
                response["content"] = {answer: {"schema": {"type": "string"}}}
            else:
                response["content"] = {"application/json": {
                    "schema": {"$ref": REF.format(model=answer.__name__)}}}
            if status == 201:
                response["headers"] = {"Location": {
                    "description": "the path of what was created",
                    "schema": {"type": "string"}}}
            operation["responses"][str(status)] = response
        for status, codes in sorted(route_errors(spec, entrypoint.url).items()):
            operation["responses"][str(status)] = {
                "description": ", ".join(sorted(codes)),
                "content": {"application/json": {"schema": error_schema(codes)}}}
        paths.setdefault(openapi_path(entrypoint.url), {})[entrypoint.method.lower()] = operation
    return {"openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": description},
            "paths": dict(sorted(paths.items())),
            "components": {
                "schemas": dict(sorted(components.items())),
                "securitySchemes": {SECURITY_SCHEME: security_scheme()}}}


def security_scheme():
    """Bearer JWTs from the configured OpenID Connect issuer; what each scope
    allows (each operation's ``security`` names the one it needs)."""
    lines = ["An OAuth2 access token (JWT) from the mesh's OpenID Connect issuer "
             "(AUTH_ISSUER), for the audience AUTH_AUDIENCE. Each operation names the "
             "scope it needs; the endless streams also take the token as ?access_token=. "
             "Scopes:"]
    lines += ["- `{}`: {}".format(scope, text) for scope, text in SCOPES.items()]
    return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "\n".join(lines)}
