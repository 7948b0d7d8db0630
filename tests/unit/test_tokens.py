"""``common.tokens.TokenVerifier`` against an issuer served over HTTP here:
tokens minted with joserfc (the verifier uses PyJWT), good ones accepted, every
kind of bad one rejected, a key rotated at the issuer picked up; and
``tools.issuer``'s tokens checked by the same verifier."""
import base64
import json
import time

import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey, RSAKey

from common.tokens import Caller, IssuerUnreachable, TokenRejected, TokenVerifier
from helpers import free_port
from jose_issuer import AUDIENCE, Issuer, alg_none_token, hs256_with_public_key
from tools.issuer import LocalIssuer, serve

@pytest.fixture
def issuer():
    started = Issuer()
    yield started
    started.server.shutdown()


@pytest.fixture
def verifier(issuer):
    return TokenVerifier(issuer.url, AUDIENCE, leeway_s=5, refresh_cooldown_s=0)


def test_a_good_token_names_its_caller_and_scopes(issuer, verifier):
    expires_at = int(time.time()) + 300
    caller = verifier.verify(issuer.token(exp=expires_at))
    assert caller == Caller("alice", "console", frozenset({"bills:read", "bills:write"}),
                            float(expires_at))
    assert caller.has("bills:write") and not caller.has("admin")


def test_scopes_as_a_list_in_scp_are_read_too(issuer, verifier):
    caller = verifier.verify(issuer.token(scope=None, scp=["customers:read"]))
    assert caller.scopes == {"customers:read"}


def test_an_elliptic_curve_key_is_accepted(issuer, verifier):
    issuer.keys.append(ECKey.generate_key("P-256", parameters={"kid": "ec"}))
    assert verifier.verify(issuer.token()).subject == "alice"


# claims made when the test runs (``now``), not when the tests are collected:
# a suite runs for minutes
@pytest.mark.parametrize("claims", [
    lambda now: {"exp": now - 60},
    lambda now: {"nbf": now + 600},
    lambda now: {"aud": "another-api"},
    lambda now: {"iss": "https://elsewhere.example"},
    lambda now: {"exp": None},
    lambda now: {"sub": None},
], ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "no-exp", "no-sub"])
def test_a_token_with_a_bad_claim_is_rejected(issuer, verifier, claims):
    with pytest.raises(TokenRejected):
        verifier.verify(issuer.token(**claims(int(time.time()))))


def test_a_token_expired_within_the_leeway_is_still_accepted(issuer, verifier):
    assert verifier.verify(issuer.token(exp=int(time.time()) - 2)).subject == "alice"


def test_a_token_signed_by_a_key_the_issuer_does_not_list_is_rejected(issuer, verifier):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "first"})  # same kid, other key
    with pytest.raises(TokenRejected):
        verifier.verify(issuer.token(key=stranger))
    unlisted = RSAKey.generate_key(2048, parameters={"kid": "unlisted"})
    with pytest.raises(TokenRejected, match="does not list"):
        verifier.verify(issuer.token(key=unlisted))


def test_alg_none_is_rejected(issuer, verifier):
    with pytest.raises(TokenRejected, match="not accepted"):
        verifier.verify(alg_none_token(issuer))


def test_hs256_signed_with_the_issuers_public_key_is_rejected(issuer, verifier):
    with pytest.raises(TokenRejected, match="not accepted"):
        verifier.verify(hs256_with_public_key(issuer))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_a_malformed_token_is_rejected(verifier, token):
    with pytest.raises(TokenRejected):
        verifier.verify(token)


def test_a_key_rotated_at_the_issuer_is_picked_up_and_the_old_one_kept(issuer, verifier):
    old_token = issuer.token()
    assert verifier.verify(old_token).subject == "alice"
    fetches = issuer.fetches
    issuer.keys.append(RSAKey.generate_key(2048, parameters={"kid": "second"}))
    new_token = issuer.token()  # signed by the new key
    assert verifier.verify(new_token).subject == "alice"
    assert issuer.fetches == fetches + 1  # read again once, for the key it had not seen
    assert verifier.verify(old_token).subject == "alice"  # still listed: until it expires
    issuer.keys.pop(0)  # the issuer stops listing the old key
    assert verifier.verify(issuer.token()).subject == "alice"


def test_an_issuer_that_does_not_answer_is_not_a_rejected_token():
    verifier = TokenVerifier("http://127.0.0.1:{}".format(free_port()), AUDIENCE, timeout_s=1)
    token = joserfc_jwt.encode({"alg": "RS256", "kid": "k"}, {"sub": "a"},
                               RSAKey.generate_key(2048, parameters={"kid": "k"}))
    with pytest.raises(IssuerUnreachable):
        verifier.verify(token)


def test_the_local_issuers_tokens_pass_the_verifier(tmp_path):
    port = free_port()
    local = LocalIssuer(str(tmp_path / "issuer"), "http://127.0.0.1:{}".format(port))
    server = serve(local, "127.0.0.1", port)
    try:
        verifier = TokenVerifier(local.url, AUDIENCE, refresh_cooldown_s=0)
        token = local.token("bob", ["bills:read"])
        caller = verifier.verify(token)
        assert (caller.subject, caller.client_id, caller.scopes) == (
            "bob", "make-token", frozenset({"bills:read"}))
        # a rotation: new tokens signed by the new key, the old ones still accepted
        local.rotate()
        newer = local.token("bob", ["bills:write"])
        assert json.loads(base64.urlsafe_b64decode(newer.split(".")[0] + "==")).get("kid") \
            != json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")).get("kid")
        assert verifier.verify(newer).scopes == {"bills:write"}
        assert verifier.verify(token).subject == "bob"
        # its keys outlive it: the same key signs after a restart
        again = LocalIssuer(local.folder, local.url)
        assert verifier.verify(again.token("bob", [])).subject == "bob"
        assert oct(
            (tmp_path / "issuer").stat().st_mode & 0o777) == "0o700"
    finally:
        server.shutdown()
