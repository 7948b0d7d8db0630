"""A local OpenID Connect token issuer, for a laptop: ``make run`` starts it
and ``make token`` asks it for a token.

    python -m tools.issuer serve           # at AUTH_ISSUER's address (127.0.0.1:8090)
    python -m tools.issuer token --scopes "bills:read bills:write" --subject alice
    python -m tools.issuer token           # every scope (make token)
    python -m tools.issuer rotate          # a new signing key; the old stays listed

It is an issuer like any other to the gateway: a discovery document at
``/.well-known/openid-configuration`` naming a JWKS at ``/jwks.json``, read
over HTTP, and RS256 tokens signed with its newest key. Its keys are made on
first use and kept in ``var/issuer/`` (``key-<kid>.pem``, readable by this user
only), so tokens outlive a restart. Every key stays listed, so tokens signed
before a rotation are accepted until they expire.

Not for production: it hands a token to whoever runs ``make token`` on this
machine. Point ``AUTH_ISSUER`` at your identity provider instead
(docs/security.md).
"""
import argparse
import base64
import glob
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.config import ROOT, load_config
from common.tokens import DISCOVERY_PATH
from contracts.scopes import DEFAULT_AUDIENCE, DEFAULT_ISSUER_ADDRESS, SCOPES
from tools.net import split_address

FOLDER = os.path.join(ROOT, "var", "issuer")
JWKS_PATH = "/jwks.json"
ALGORITHM = "RS256"
EVERY_SCOPE = tuple(SCOPES)
DEFAULT_MINUTES = 12 * 60  # a working day on a laptop


def key_id(public_key):
    """RFC 7638's thumbprint of an RSA public key: the same key, the same id."""
    numbers = public_key.public_numbers()

    def b64(number):
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    canonical = json.dumps({"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)},
                           separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(
        hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class LocalIssuer:
    """The keys in ``folder`` and what is made from them."""

    def __init__(self, folder=FOLDER, url="http://" + DEFAULT_ISSUER_ADDRESS):
        self.folder = folder
        self.url = url

    def keys(self):
        """``[(kid, private key)]``, oldest first; one is made when there is none."""
        paths = sorted(glob.glob(os.path.join(self.folder, "key-*.pem")), key=os.path.getmtime)
        if not paths:
            return [self.rotate()]
        found = []
        for path in paths:
            with open(path, "rb") as handle:
                private = serialization.load_pem_private_key(handle.read(), password=None)
            found.append((key_id(private.public_key()), private))
        return found

    def rotate(self):
        """Make a new signing key: ``(kid, private key)``."""
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = key_id(private.public_key())
        path = os.path.join(self.folder, "key-{}.pem".format(kid))
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(private.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return kid, private

    def jwks(self):
        listed = []
        for kid, private in self.keys():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
            listed.append(dict(jwk, kid=kid, use="sig", alg=ALGORITHM))
        return {"keys": listed}

    def discovery(self):
        return {"issuer": self.url, "jwks_uri": self.url + JWKS_PATH,
                "id_token_signing_alg_values_supported": [ALGORITHM]}

    def token(self, subject, scopes, audience=DEFAULT_AUDIENCE, minutes=DEFAULT_MINUTES,
              client_id="make-token"):
        """A signed access token for ``subject`` with ``scopes``."""
        kid, private = self.keys()[-1]
        now = int(time.time())
        claims = {"iss": self.url, "sub": subject, "aud": audience, "iat": now, "nbf": now,
                  "exp": now + int(minutes * 60), "scope": " ".join(scopes),
                  "azp": client_id}
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid})


def handler_for(issuer):
    documents = {DISCOVERY_PATH: issuer.discovery, JWKS_PATH: issuer.jwks}

    class IssuerHandler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            document = documents.get(self.path.split("?")[0])
            body = json.dumps(document() if document else {"error": "not found"}).encode()
            self.send_response(200 if document else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass  # the gateway logs what it checks

    return IssuerHandler


def serve(issuer, host, port):
    """The issuer's documents over HTTP, in a thread: the server (``shutdown()``)."""
    server = ThreadingHTTPServer((host, port), handler_for(issuer))
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    return server


def local_address(config):
    """``host:port`` of ``AUTH_ISSUER`` when it names an http address on this
    machine (the local issuer's to serve), else None (a real provider)."""
    url = str(config.get("AUTH_ISSUER") or "")
    if not url.startswith("http://"):
        return None
    address = url[len("http://"):].rstrip("/")
    if "/" in address or split_address(address)[0] not in ("127.0.0.1", "localhost", "::1"):
        return None
    return address


def main(argv=None):
    config = load_config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=FOLDER)
    parser.add_argument("--address", default=local_address(config) or DEFAULT_ISSUER_ADDRESS)
    parser.add_argument("--url", help="the issuer's URL as tokens name it and the gateway "
                        "reaches it (default: http://<address>), e.g. http://issuer:8090 "
                        "in docker-compose.yml")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the discovery document and the keys")
    mint = commands.add_parser("token", help="print a token")
    mint.add_argument("--scopes", default=" ".join(EVERY_SCOPE),
                      help='space-separated, e.g. "bills:read" (default: every scope)')
    mint.add_argument("--subject", default=os.environ.get("USER") or "developer")
    mint.add_argument("--audience", default=str(config.get("AUTH_AUDIENCE") or DEFAULT_AUDIENCE))
    mint.add_argument("--minutes", type=float, default=DEFAULT_MINUTES)
    commands.add_parser("rotate", help="make a new signing key (the old ones stay listed)")
    args = parser.parse_args(argv)
    issuer = LocalIssuer(args.folder, args.url or "http://" + args.address)
    if args.command == "token":
        print(issuer.token(args.subject, args.scopes.split(), args.audience, args.minutes))
    elif args.command == "rotate":
        print("new signing key", issuer.rotate()[0])
    else:
        server = serve(issuer, *split_address(args.address))
        print("local token issuer at {} (keys in {})".format(issuer.url, issuer.folder),
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
