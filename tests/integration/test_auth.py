"""Bearer tokens at the gateway (``mesh.auth``), against an OpenID Connect
issuer served over HTTP here (``tests/jose_issuer.py``: tokens minted with
joserfc; the gateway checks them with PyJWT): every route that declares a
scope refuses a request without a token, or with a token that proves nothing,
with 401 and ``WWW-Authenticate: Bearer``; a valid token without the route's
scope is 403; with it, the route answers; a key rotated at the issuer is picked
up while the old one's tokens still pass; ``AUTH=off`` says so in /health."""
import logging
import time

import pytest
from joserfc.jwk import RSAKey

from contracts.scopes import OPERATIONS_READ, PUBLIC, SCOPES
from helpers import wait_for
from jose_issuer import alg_none_token, hs256_with_public_key
from mesh.http import declared_routes
from services.gateway import GatewayService

# a value for each kind of path variable the routes have
PATH_VALUES = {"int": "1", "service": "customers", "method": "get_customer",
               "name": "console.js"}
FROM_A_PROXY = {"X-Forwarded-For": "203.0.113.7"}  # not this machine: operations:read asked


def route_path(url):
    """``/bills/<int:bill_id>/full`` -> ``/bills/1/full``."""
    parts = []
    for part in url.split("/"):
        if part.startswith("<"):
            inner = part.strip("<>")
            converter, _, name = inner.rpartition(":")
            part = PATH_VALUES[converter] if converter else PATH_VALUES[name]
        parts.append(part)
    return "/".join(parts)


ROUTES = [(ext.method, route_path(ext.url), ext.spec.scope)
          for _, ext in declared_routes(GatewayService)]
GUARDED = [(method, path, scope) for method, path, scope in ROUTES if scope is not PUBLIC]


def call(mesh, method, path, token=None, headers=None):
    headers = dict(FROM_A_PROXY, **(headers or {}))
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    body = {} if method in ("POST", "PUT") else None
    # a stream that were answered would never end: read its status only
    return mesh.http(method, path, headers=headers, json=body, stream=True, timeout=10)


def assert_refused(response, status, code, bearer_error=None):
    try:
        assert response.status_code == status, (response.request.method, response.url,
                                                response.status_code, response.text[:300])
        assert response.json()["error"] == code
        challenge = response.headers.get("WWW-Authenticate", "")
        assert challenge.startswith('Bearer realm="billing-mesh"'), challenge
        if bearer_error:
            assert 'error="{}"'.format(bearer_error) in challenge, challenge
        return challenge
    finally:
        response.close()


@pytest.fixture
def gateway(issuer, start_mesh, mesh_config):
    """The gateway alone: every refusal here comes before any service is called."""
    return start_mesh(mesh_config, "gateway")


def test_the_routes_each_declare_a_known_scope_and_only_the_documents_are_public():
    assert {scope for _, _, scope in GUARDED} <= set(SCOPES)
    public = sorted(path for method, path, scope in ROUTES if scope is PUBLIC)
    assert public == ["/", "/docs", "/health/live", "/openapi.json", "/static/console.js"]


def test_every_guarded_route_without_a_token_is_401_with_a_bearer_challenge(gateway):
    assert len(GUARDED) >= 25
    for method, path, _scope in GUARDED:
        assert_refused(call(gateway, method, path), 401, "UNAUTHORIZED")


def test_every_guarded_route_refuses_a_token_that_proves_nothing(gateway, issuer):
    now = int(time.time())
    stranger = RSAKey.generate_key(2048, parameters={"kid": issuer.keys[0].kid})
    every_scope = " ".join(SCOPES)
    bad = {
        "expired": issuer.token(scope=every_scope, exp=now - 120),
        "wrong audience": issuer.token(scope=every_scope, aud="another-api"),
        "wrong issuer": issuer.token(scope=every_scope, iss="https://elsewhere.example"),
        "another key": issuer.token(scope=every_scope, key=stranger),
        "alg none": alg_none_token(issuer, scope=every_scope),
        "HS256 with the public key": hs256_with_public_key(issuer, scope=every_scope),
        "malformed": "not.a.token",
    }
    for kind, token in bad.items():
        for method, path, _scope in GUARDED:
            response = call(gateway, method, path, token)
            try:
                assert_refused(response, 401, "UNAUTHORIZED", "invalid_token")
            except AssertionError as exc:
                raise AssertionError("{} token: {}".format(kind, exc)) from None


def test_a_token_without_the_routes_scope_is_403_naming_it(gateway, issuer):
    for method, path, scope in GUARDED:
        others = " ".join(sorted(set(SCOPES) - {scope}))
        challenge = assert_refused(call(gateway, method, path, issuer.token(scope=others)),
                                   403, "FORBIDDEN", "insufficient_scope")
        assert 'scope="{}"'.format(scope) in challenge


def test_an_authorization_header_that_is_not_bearer_is_401(gateway, issuer):
    response = call(gateway, "GET", "/customers",
                    headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert_refused(response, 401, "UNAUTHORIZED", "invalid_request")


def test_operations_routes_ask_no_token_of_this_machine_and_the_documents_none_of_anyone(
        gateway):
    assert gateway.http("GET", "/metrics").status_code == 200  # loopback, no proxy
    assert_refused(call(gateway, "GET", "/metrics"), 401, "UNAUTHORIZED")  # via a proxy
    for path in ("/health/live", "/openapi.json", "/docs", "/"):
        answer = call(gateway, "GET", path)
        assert answer.status_code == 200, (path, answer.status_code)


@pytest.fixture
def guarded_mesh(issuer, start_mesh, mesh_config):
    return start_mesh(mesh_config)


def test_a_token_with_the_scope_is_served_and_its_subject_recorded(guarded_mesh, issuer,
                                                                     caplog):
    """Who made and who cancelled a bill is stored with it, and on the log
    lines of every service the request reached."""
    caplog.set_level(logging.INFO)
    mesh = guarded_mesh
    reader = issuer.token(scope="customers:read bills:read")
    customers = call(mesh, "GET", "/customers", reader)
    assert customers.status_code == 200, customers.text
    assert customers.json()["items"]
    made = mesh.http("POST", "/bills", json={"customer_id": 1, "items": [
        {"product_id": 1, "quantity": 1}]}, headers={
        "Authorization": "Bearer " + issuer.token(scope="bills:write")})
    assert made.status_code == 201, made.text
    assert (made.json()["created_by"], made.json()["cancelled_by"]) == ("alice", None)
    cancelled = mesh.http("POST", "/bills/{}/cancel".format(made.json()["id"]), headers={
        "Authorization": "Bearer " + issuer.token(scope="bills:cancel", sub="bob")})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    stored = call(mesh, "GET", "/bills/{}".format(made.json()["id"]), reader).json()
    assert (stored["created_by"], stored["cancelled_by"]) == ("alice", "bob")
    full = call(mesh, "GET", "/bills/{}/full".format(made.json()["id"]), reader).json()
    assert (full["created_by"], full["cancelled_by"]) == ("alice", "bob")
    callers = {(record.name, record.caller) for record in caplog.records
               if hasattr(record, "caller") and record.caller != "-"}
    assert {("mesh.rpc.access", "alice"), ("mesh.rpc.access", "bob")} <= callers, callers
    made_lines = [record for record in caplog.records
                  if record.getMessage().startswith("bill {} created".format(made.json()["id"]))]
    assert made_lines and all(record.caller == "alice" for record in made_lines)


def test_the_streams_also_take_the_token_in_the_query_and_no_other_route_does(
        guarded_mesh, issuer):
    token = issuer.token(scope="bills:read customers:read")
    stream = guarded_mesh.http("GET", "/events/stream?access_token=" + token, stream=True,
                               headers=FROM_A_PROXY)
    try:
        assert stream.status_code == 200, stream.text
        assert stream.headers["Content-Type"].startswith("text/event-stream")
    finally:
        stream.close()
    assert_refused(guarded_mesh.http("GET", "/customers?access_token=" + token,
                                     headers=FROM_A_PROXY), 401, "UNAUTHORIZED")


def test_a_key_rotated_at_the_issuer_is_picked_up_and_old_tokens_pass_until_they_expire(
        gateway, issuer):
    old = issuer.token(scope=OPERATIONS_READ)
    assert call(gateway, "GET", "/metrics", old).status_code == 200
    issuer.keys.append(RSAKey.generate_key(2048, parameters={"kid": "second"}))
    new = issuer.token(scope=OPERATIONS_READ)  # signed by the new key
    # the keys are read again for a key not seen, at most every few seconds
    wait_for(lambda: call(gateway, "GET", "/metrics", new).status_code == 200, 15,
             "a token signed by the rotated-in key accepted")
    assert call(gateway, "GET", "/metrics", old).status_code == 200


def test_auth_off_says_so_in_health(start_mesh, mesh_config):
    assert mesh_config["AUTH"] == "off"  # the fixtures' default
    mesh = start_mesh(mesh_config, "gateway")
    body = mesh.http("GET", "/health").json()
    assert "AUTH=off" in body["auth"], body
    assert mesh.http("GET", "/customers", headers=FROM_A_PROXY).status_code != 401


def test_an_issuer_that_does_not_answer_is_503_not_401(gateway, issuer):
    token = issuer.token(scope="customers:read")
    issuer.stop()
    response = call(gateway, "GET", "/customers", token)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "SERVICE_UNAVAILABLE"
    assert "issuer" in response.json()["message"]


def test_over_its_burst_a_caller_gets_429_with_retry_after_and_others_do_not(
        issuer, start_mesh, mesh_config):
    """A token bucket per subject (per address without a token), counted in the
    metrics."""
    mesh_config.update(RATE_LIMIT_RATE=0.5, RATE_LIMIT_BURST=3)
    mesh = start_mesh(mesh_config, "gateway")
    alice = issuer.token(scope=OPERATIONS_READ)
    answers = [call(mesh, "GET", "/metrics", alice).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429], answers
    refused = call(mesh, "GET", "/metrics", alice)
    assert refused.status_code == 429
    assert refused.json()["error"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2, refused.headers
    # another subject has a bucket of its own
    bob = issuer.token(scope=OPERATIONS_READ, sub="bob")
    assert call(mesh, "GET", "/metrics", bob).status_code == 200
    # without a token, the address is the client: the public pages count too
    anonymous = [mesh.http("GET", "/health/live").status_code for _ in range(4)]
    assert anonymous == [200, 200, 200, 429], anonymous
    text = call(mesh, "GET", "/metrics", bob).text
    assert 'mesh_http_rate_limited_total{client="subject",route="/metrics"} 2.0' in text, text
    assert 'mesh_http_rate_limited_total{client="address",route="/health/live"} 1.0' in text
