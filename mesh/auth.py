"""Who is calling: the gateway's check of each request's bearer token against
the scope its route declares (``@http(..., scope=BILLS_WRITE)``).

A route's token is an OAuth2 access token (a JWT) from ``AUTH_ISSUER`` for
``AUTH_AUDIENCE``, checked by ``common.tokens.TokenVerifier`` (keys from the
issuer's JWKS, cached, a new key read when a token names it). Refusals are the
mesh's JSON errors with RFC 6750's ``WWW-Authenticate``::

    no token, or one that proves nothing   401  Bearer realm="billing-mesh", error="invalid_token"
    a valid token without the route's scope 403  Bearer ..., error="insufficient_scope", scope="bills:write"
    the issuer's keys cannot be read        503

``operations:read`` routes (``/health``, ``/services``, ``/metrics``) ask no
token of a caller on this machine: a loopback address, with no proxy's
``Forwarded``/``X-Forwarded-For`` on the request. Browsers cannot give an
``EventSource`` a header, so the endless streams also take the token as
``?access_token=`` (RFC 6750, 2.3); no other route does.

``AUTH=off`` is for the test suite's own fixtures: nothing is checked, and the
gateway says so in ``GET /health``, and every process on every line it logs
(config.yaml's formatter, ``mesh.tracing.RequestIdFormatter``).
"""
import logging
import time

from common.config import auth_off
from common.tokens import IssuerUnreachable, TokenRejected, TokenVerifier
from contracts.errors import Forbidden, ServiceUnavailable, Unauthorized
from contracts.headers import MAX_CALLER_LENGTH
from contracts.scopes import DEFAULT_AUDIENCE, DEFAULT_ISSUER_ADDRESS, OPERATIONS_READ, PUBLIC
from mesh.tracing import AUTH_OFF_WARNING

log = logging.getLogger(__name__)

REALM = "billing-mesh"
LOOPBACK = frozenset({"127.0.0.1", "::1"})
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For")
# tokens already checked, kept until they expire: checking a signature again
# would cost more than the cached read it guards (docs/benchmarks.md)
CHECKED_TOKENS_SIZE = 10_000


def refusal(error_class, message, **params):
    """An ``error_class`` (Unauthorized, Forbidden) with the ``WWW-Authenticate``
    it answers with."""
    exc = error_class(message)
    fields = [("realm", REALM)] + sorted(params.items())
    exc.headers = {"WWW-Authenticate": "Bearer " + ", ".join(
        '{}="{}"'.format(name, str(value).replace('"', "'")) for name, value in fields)}
    return exc


def from_loopback(request):
    return request.remote_addr in LOOPBACK and not any(
        name in request.headers for name in PROXY_HEADERS)


def bearer_token(request, query_allowed):
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise refusal(Unauthorized, "the Authorization header must be 'Bearer <token>'",
                          error="invalid_request")
        return token.strip()
    if query_allowed and request.args.get("access_token"):
        return request.args["access_token"]
    return None


class Authenticator:
    """The gateway's token checks, from its config."""

    def __init__(self, config):
        self.off = auth_off(config)
        self.verifier = TokenVerifier(str(config.get("AUTH_ISSUER")
                                          or "http://" + DEFAULT_ISSUER_ADDRESS),
                                      str(config.get("AUTH_AUDIENCE") or DEFAULT_AUDIENCE))
        self.checked = {}  # token -> (Caller, expires_at)
        if self.off:
            log.warning(AUTH_OFF_WARNING)

    def caller(self, request, scope, query_allowed=False):
        """The ``Caller`` of a request to a route that needs ``scope``, or None
        when no token is asked; raises the refusal otherwise."""
        if scope is PUBLIC or self.off:
            return None
        if scope == OPERATIONS_READ and from_loopback(request):
            return None  # whatever token it carries
        token = bearer_token(request, query_allowed)
        if token is None:
            raise refusal(Unauthorized, "this route needs a bearer token with the scope "
                          "'{}' (Authorization: Bearer <token>)".format(scope))
        caller = self.verify(token)
        if not caller.has(scope):
            raise refusal(Forbidden, "the token lacks the scope '{}'".format(scope),
                          error="insufficient_scope", scope=scope)
        return caller

    def verify(self, token):
        now = time.time()
        found = self.checked.get(token)
        if found is not None and found[1] > now:
            return found[0]
        try:
            caller = self.verifier.verify(token)
        except TokenRejected as exc:
            raise refusal(Unauthorized, "the token was refused: {}".format(exc),
                          error="invalid_token", error_description=exc) from None
        except IssuerUnreachable as exc:
            raise ServiceUnavailable("the token issuer's keys cannot be read ({})".format(
                exc)) from None
        if len(caller.subject) > MAX_CALLER_LENGTH:  # what billing stores of it
            raise refusal(Unauthorized, "the token's subject is over {} characters".format(
                MAX_CALLER_LENGTH), error="invalid_token")
        if len(self.checked) >= CHECKED_TOKENS_SIZE:  # the expired ones go first
            self.checked = {key: value for key, value in self.checked.items()
                            if value[1] > now}
            if len(self.checked) >= CHECKED_TOKENS_SIZE:
                self.checked.clear()
        self.checked[token] = (caller, caller.expires_at + self.verifier.leeway_s)
        return caller
