"""Bearer tokens without a service: keys and their kid, the JWK Set, signing, and every way a
token is refused (chassis.keys, chassis.auth); the JWK Set over real HTTP and in a file."""

import base64
import hashlib
import hmac
import http.server
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chassis.auth import (
    Caller,
    KeySet,
    KeySetFile,
    KeySetUrl,
    TokenIssuer,
    TokenVerifier,
)
from chassis.errors import Unauthorized, Unavailable
from chassis.keys import (
    KeyProblem,
    development_keys,
    generate,
    jwks,
    load_private_key,
    new_key,
    rotate,
    thumbprint,
)
from chassis.revocation import Revocations

KEY = new_key()
ISSUER = TokenIssuer([KEY], "issuer", "audience", 600)


def verifier(keys=None, revocations=None) -> TokenVerifier:
    return TokenVerifier(keys or KeySet(ISSUER.jwks()), "issuer", "audience", revocations)


def claims(**changes) -> dict:
    now = int(time.time())
    return {"sub": "u1", "role": "admin", "iss": "issuer", "aud": "audience", "iat": now,
            "exp": now + 60, **changes}  # fmt: skip


def signed(payload: dict, key=KEY, kid=None, headers=None) -> str:
    return jwt.encode(payload, key.private_key, algorithm=key.algorithm,
                      headers={"kid": kid or key.kid, **(headers or {})})  # fmt: skip


def refused(token: str, verifying: TokenVerifier | None = None) -> Unauthorized:
    with pytest.raises(Unauthorized) as error:
        (verifying or verifier()).verify(token)
    return error.value


# --- keys ---------------------------------------------------------------------------------


def test_the_kid_is_the_rfc_7638_thumbprint():
    # RFC 7638, section 3.1: the example key and its thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQ"
        "Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_key_file_names_its_key_and_publishes_only_its_public_half(tmp_path):
    key = generate(tmp_path / "signing.pem")
    assert oct((tmp_path / "signing.pem").stat().st_mode & 0o777) == "0o600"
    again = load_private_key(tmp_path / "signing.pem")
    assert (again.kid, again.algorithm) == (key.kid, "EdDSA")
    [published] = jwks([key])["keys"]
    assert published == {"kty": "OKP", "crv": "Ed25519", "x": published["x"], "alg": "EdDSA",
                         "use": "sig", "kid": key.kid}  # fmt: skip
    assert "d" not in published


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read"),
        (b"not a key", "is not an unencrypted PEM private key"),
        ("rsa-1024", "is an RSA key of 1024 bits, too weak"),
        ("ec", "is not an Ed25519 or RSA key"),
    ],
)
def test_a_key_that_cannot_sign_safely_is_refused(tmp_path, content, problem):
    path = tmp_path / "key.pem"
    if content == "rsa-1024":
        content = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    elif content == "ec":
        content = _pem(ec.generate_private_key(ec.SECP256R1()))
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KeyProblem) as error:
        load_private_key(path)
    assert str(error.value).startswith(problem)


def test_an_rsa_key_of_2048_bits_signs_rs256(tmp_path):
    path = tmp_path / "rsa.pem"
    path.write_bytes(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    key = load_private_key(path)
    assert key.algorithm == "RS256"
    issuer = TokenIssuer([key], "issuer", "audience", 60)
    assert verifier(KeySet(issuer.jwks())).verify(issuer.issue("u1", "advisor")).role == "advisor"


def _pem(private_key) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())  # fmt: skip


def test_a_rotation_signs_with_a_new_key_and_keeps_the_previous_one_verifiable(tmp_path):
    first = generate(tmp_path / "signing.pem")
    new, previous = rotate(tmp_path)
    assert previous.kid == first.kid and new.kid != first.kid
    assert load_private_key(tmp_path / "previous.pem").kid == first.kid
    old_token = TokenIssuer([first], "issuer", "audience", 60).issue("u1", "returnee")
    issuer = TokenIssuer([new, previous], "issuer", "audience", 60)
    assert jwt.get_unverified_header(issuer.issue("u1", "returnee"))["kid"] == new.kid
    during = verifier(KeySet(issuer.jwks()))
    assert during.verify(old_token).id == "u1"  # two keys valid during the rollover
    after = verifier(KeySet(TokenIssuer([new], "issuer", "audience", 60).jwks()))
    assert refused(old_token, after).code == "invalid_token"


def test_development_keys_are_generated_once_in_the_folder_given(tmp_path):
    signing, published = development_keys(tmp_path)
    kid = load_private_key(signing).kid
    assert json.loads(published.read_text())["keys"][0]["kid"] == kid
    assert development_keys(tmp_path) == (signing, published)
    assert load_private_key(signing).kid == kid


# --- signing and verifying ------------------------------------------------------------------


def test_a_token_carries_the_kid_the_claims_and_milliseconds_of_issue():
    at = datetime(2030, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
    token = ISSUER.issue("u1", "provider", "org-1", at=at)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": KEY.kid, "typ": "JWT"}
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iat"] == 1893484800.123  # rounded down
    assert payload["exp"] == 1893484800 + 600 and payload["org"] == "org-1"
    assert verifier().verify(ISSUER.issue("u1", "provider", "org-1")) == Caller(
        "u1", "provider", "org-1"
    )


def _hs256(payload: dict, secret: bytes, kid: str) -> str:
    """An HS256 token made by hand: PyJWT refuses to key HMAC with a public key, an attacker
    does not."""
    segments = [base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")
                for part in ({"alg": "HS256", "typ": "JWT", "kid": kid}, payload)]  # fmt: skip
    signing_input = b".".join(segments)
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def forgeries() -> dict[str, str]:
    public_pem = KEY.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, _, signature = signed(claims(role="returnee")).split(".")
    admin = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    return {
        "HS256 with a shared secret": jwt.encode(
            claims(), "s" * 40, "HS256", headers={"kid": KEY.kid}
        ),  # fmt: skip
        "HS256 keyed with the public key": _hs256(claims(), public_pem, KEY.kid),
        "alg none": jwt.encode(claims(), None, algorithm="none", headers={"kid": KEY.kid}),
        "unknown kid": signed(claims(), kid="no-such-key"),
        "no kid": jwt.encode(claims(), KEY.private_key, algorithm="EdDSA"),
        "another key under the platform's kid": signed(claims(), key=new_key(), kid=KEY.kid),
        "wrong issuer": signed(claims(iss="someone-else")),
        "wrong audience": signed(claims(aud="another-system")),
        "expired": signed(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "no expiry": signed({k: v for k, v in claims().items() if k != "exp"}),
        "no subject": signed({k: v for k, v in claims().items() if k != "sub"}),
        "unknown role": signed(claims(role="superuser")),
        "a returnee's token made an admin's": f"{header}.{admin}.{signature}",
        "not a token": "not.a.token",
    }


@pytest.mark.parametrize("name", list(forgeries()))
def test_a_forged_token_is_refused(name):
    error = refused(forgeries()[name])
    assert error.status == 401
    assert error.code == ("token_expired" if name == "expired" else "invalid_token")


def test_a_token_issued_before_its_subjects_revocation_is_refused():
    at = datetime.now(UTC)
    before = ISSUER.issue("u1", "returnee", at=at - timedelta(seconds=1))
    after = ISSUER.issue("u1", "returnee", at=at + timedelta(milliseconds=1))
    revocations = Revocations({"u1": at.timestamp()})
    checking = verifier(revocations=revocations)
    error = refused(before, checking)
    assert error.code == "token_revoked"
    assert error.message_in("zh-CN") == "访问令牌已撤销，请重新登录。"
    assert checking.verify(after).id == "u1"
    assert checking.verify(ISSUER.issue("u2", "returnee", at=at - timedelta(seconds=1))).id == "u2"


# --- where verifiers find the public keys ----------------------------------------------------


def test_a_key_set_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(ISSUER.jwks()))
    keys = KeySetFile(str(path))
    rotated = new_key()
    token = TokenIssuer([rotated], "issuer", "audience", 60).issue("u1", "returnee")
    assert refused(token, verifier(keys)).code == "invalid_token"
    path.write_text(json.dumps(jwks([rotated, KEY])))
    os.utime(path, (time.time() + 10, time.time() + 10))
    keys._checked = 0  # as if the refetch pause had passed
    assert verifier(keys).verify(token).id == "u1"


class _KeySetServer(http.server.BaseHTTPRequestHandler):
    body = b"{}"
    status = 200
    fetched = 0

    def do_GET(self):
        type(self).fetched += 1
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def key_set_server():
    handler = type("Handler", (_KeySetServer,), {"body": json.dumps(ISSUER.jwks()).encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.handler = handler
    server.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    yield server
    server.shutdown()
    server.server_close()


def test_the_key_set_is_fetched_over_http_once_and_cached(key_set_server):
    keys = KeySetUrl(key_set_server.url)
    checking = verifier(keys)
    for _ in range(5):
        assert checking.verify(ISSUER.issue("u1", "returnee")).id == "u1"
    assert key_set_server.handler.fetched == 1
    # an unknown kid fetches again, but not more often than the refetch pause allows
    for _ in range(5):
        refused(signed(claims(), kid="no-such-key"), checking)
    assert key_set_server.handler.fetched == 1  # the first fetch started the pause


def test_a_key_set_that_cannot_be_fetched_is_503_not_401(key_set_server):
    keys = KeySetUrl(key_set_server.url)
    key_set_server.handler.status = 500
    with pytest.raises(Unavailable):
        verifier(keys).verify(ISSUER.issue("u1", "returnee"))
