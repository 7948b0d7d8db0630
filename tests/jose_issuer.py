"""An OpenID Connect issuer for the tests, over HTTP, minting with joserfc (the
gateway verifies with PyJWT, so the two sides do not share a library's
mistakes), whose listed keys a test changes at will; and the classic forged
tokens."""
import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey, RSAKey

from helpers import free_port

AUDIENCE = "billing-mesh"


class Issuer:
    """An OpenID issuer over HTTP whose listed keys a test changes at will."""

    def __init__(self):
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "first"})]
        self.fetches = 0
        issuer = self
        port = free_port()
        self.url = "http://127.0.0.1:{}".format(port)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/.well-known/openid-configuration":
                    document = {"issuer": issuer.url, "jwks_uri": issuer.url + "/keys"}
                elif self.path == "/keys":
                    issuer.fetches += 1
                    document = {"keys": [key.as_dict(private=False) for key in issuer.keys]}
                else:
                    self.send_error(404)
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def token(self, key=None, alg=None, **claims):
        key = key or self.keys[-1]
        now = int(time.time())
        body = {"iss": self.url, "sub": "alice", "aud": AUDIENCE, "iat": now, "nbf": now,
                "exp": now + 300, "scope": "bills:read bills:write", "azp": "console"}
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        alg = alg or ("ES256" if isinstance(key, ECKey) else "RS256")
        return joserfc_jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])



    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def alg_none_token(issuer, scope="admin"):
    """A token that says it needs no signature."""
    header = b64(json.dumps({"alg": "none", "kid": "first", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": issuer.url, "sub": "mallory", "aud": AUDIENCE,
                              "exp": int(time.time()) + 300, "scope": scope}).encode())
    return "{}.{}.".format(header, payload)


def hs256_with_public_key(issuer, scope="admin"):
    """The classic forgery: the issuer's public key (which anyone can read) as
    an HMAC secret."""
    secret = issuer.keys[0].as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "kid": "first", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": issuer.url, "sub": "mallory", "aud": AUDIENCE,
                              "exp": int(time.time()) + 300, "scope": scope}).encode())
    signature = b64(hmac.new(secret, "{}.{}".format(header, payload).encode(),
                             hashlib.sha256).digest())
    return "{}.{}.{}".format(header, payload, signature)
