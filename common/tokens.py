"""Checking OAuth2 access tokens (JWTs) from any OpenID Connect issuer.

    verifier = TokenVerifier("https://id.example.com/realms/billing", "billing-mesh")
    caller = verifier.verify(token)    # Caller(subject="alice", scopes={...}) or TokenRejected
    caller.has("bills:write")

PyJWT does the JOSE work: the signature, ``exp`` and ``nbf`` with a small
leeway, ``iss`` and ``aud``. Its ``PyJWKClient`` reads the issuer's keys from
the ``jwks_uri`` its discovery document names, keeps them, and reads them
again (at most once per cooldown) when a token names a key it has not seen, so
a key rotated at the issuer is picked up without a restart. Chosen over joserfc
(which has no JWKS client: fetching, caching and refreshing would be ours to
write) and python-jose (unmaintained); the tests mint their tokens with
joserfc, so the two sides do not share a library's mistakes.

Only asymmetric algorithms are accepted: never ``none``, never an HMAC one
(an ``HS256`` token "signed" with the issuer's public key as its secret is the
classic forgery).
"""
import dataclasses
import json
import urllib.request
from typing import FrozenSet, Optional

import jwt

# what a token's "alg" may say: public-key signatures only
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA")
DISCOVERY_PATH = "/.well-known/openid-configuration"


class TokenRejected(Exception):
    """The token proves nothing: missing, malformed, expired, not for us, or
    signed by a key the issuer does not list (401)."""


class IssuerUnreachable(Exception):
    """The issuer's keys could not be read: no token can be checked now (503)."""


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who a valid token speaks for."""

    subject: str
    client_id: Optional[str]
    scopes: FrozenSet[str]
    expires_at: float  # the token's exp, epoch seconds

    def has(self, scope):
        return scope in self.scopes


def scopes_of(claims):
    """The token's scopes: OAuth2's space-separated ``scope``, or the list
    some providers put in ``scp`` (Entra ID, Okta)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        return frozenset(scp.split())
    if isinstance(scp, list):
        return frozenset(str(item) for item in scp)
    return frozenset()


class TokenVerifier:
    """Checks tokens from ``issuer`` (its URL, exactly as tokens' ``iss`` says
    it) meant for ``audience``."""

    # refresh_cooldown_s: a token naming an unknown key makes the keys be read
    # again at most this often; short, since a key rotated in just after a read
    # is refused until then
    def __init__(self, issuer, audience, leeway_s=30, keys_cache_s=300,
                 refresh_cooldown_s=5, timeout_s=5):
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.keys_cache_s = keys_cache_s
        self.refresh_cooldown_s = refresh_cooldown_s
        self.timeout_s = timeout_s
        self._keys = None  # PyJWKClient, once the discovery document is read

    def keys(self):
        if self._keys is None:
            url = self.issuer.rstrip("/") + DISCOVERY_PATH
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:
                    jwks_uri = json.load(answer)["jwks_uri"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise IssuerUnreachable("cannot read {}: {}".format(url, exc)) from exc
            self._keys = jwt.PyJWKClient(
                jwks_uri, cache_keys=True, lifespan=self.keys_cache_s,
                cooldown_duration=self.refresh_cooldown_s, timeout=self.timeout_s)
        return self._keys

    def verify(self, token):
        """The ``Caller`` a token speaks for; ``TokenRejected`` if it proves
        nothing, ``IssuerUnreachable`` if the issuer's keys cannot be read."""
        if not token:
            raise TokenRejected("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.exceptions.DecodeError as exc:
            raise TokenRejected("malformed token: {}".format(exc)) from exc
        if header.get("alg") not in ALGORITHMS:
            raise TokenRejected("algorithm {!r} is not accepted".format(header.get("alg")))
        try:
            key = self.keys().get_signing_key_from_jwt(token)
        except jwt.exceptions.PyJWKClientConnectionError as exc:
            raise IssuerUnreachable(str(exc)) from exc
        except jwt.exceptions.PyJWKClientError as exc:
            raise TokenRejected("signed by a key the issuer does not list") from exc
        except jwt.exceptions.DecodeError as exc:
            raise TokenRejected("malformed token: {}".format(exc)) from exc
        try:
            claims = jwt.decode(
                token, key, algorithms=[header["alg"]], audience=self.audience,
                issuer=self.issuer, leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.exceptions.InvalidTokenError as exc:
            raise TokenRejected(str(exc) or type(exc).__name__) from exc
        client_id = claims.get("azp") or claims.get("client_id")
        return Caller(subject=str(claims["sub"]),
                      client_id=str(client_id) if client_id else None,
                      scopes=scopes_of(claims), expires_at=float(claims["exp"]))
