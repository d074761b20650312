"""Partner tokens (JWT): each way a token can be wrong is a 401 saying which."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.main import create_app
from tests.conftest import make_settings

SECRET = "s" * 48
ISS, AUD = "https://partner.example", "observatory"
TEXT = {"conversation_text": "Human: Is it raining?\nAI: No, it is sunny."}
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISS, "aud": AUD, "sub": "acme", "exp": now + 300, "nbf": now - 5, **overrides}


@asynccontextmanager
async def client_for(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, jwt_issuer=ISS, jwt_audience=AUD, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def call(c: httpx.AsyncClient, token: str) -> httpx.Response:
    return await c.post("/api/v1/analyze", json=TEXT, headers={"Authorization": f"Bearer {token}"})


def refused(r: httpx.Response, says: str) -> None:
    assert r.status_code == 401, r.text
    assert says in r.json()["detail"], r.json()["detail"]


async def test_hs256_tokens_and_their_failures(database_url: str) -> None:
    async with client_for(database_url, jwt_secret=SECRET, jwt_algorithms="HS256") as c:
        good = jwt.encode(claims(), SECRET, algorithm="HS256")
        r = await call(c, good)
        assert r.status_code == 202, r.text
        refused(await call(c, jwt.encode(claims(aud="other"), SECRET, "HS256")), "audience")
        refused(await call(c, jwt.encode(claims(iss="https://evil"), SECRET, "HS256")), "issuer")
        refused(
            await call(c, jwt.encode(claims(exp=int(time.time()) - 120), SECRET, "HS256")),
            "expired",
        )
        refused(
            await call(c, jwt.encode(claims(nbf=int(time.time()) + 600), SECRET, "HS256")),
            "not valid yet",
        )
        refused(await call(c, jwt.encode(claims(), "x" * 48, "HS256")), "signature")
        none = jwt.encode(claims(), None, algorithm="none")
        refused(await call(c, none), "algorithm 'none' is not accepted")
        no_sub = claims()
        del no_sub["sub"]
        refused(await call(c, jwt.encode(no_sub, SECRET, "HS256")), "'sub'")


async def test_what_a_partner_creates_is_theirs(database_url: str) -> None:
    async with client_for(database_url, jwt_secret=SECRET, jwt_algorithms="HS256") as c:
        acme = jwt.encode(claims(), SECRET, "HS256")
        other = jwt.encode(claims(sub="globex"), SECRET, "HS256")
        analysis_id = (await call(c, acme)).json()["id"]
        path = f"/api/v1/analyze/{analysis_id}"
        assert (await c.get(path, headers={"Authorization": f"Bearer {acme}"})).status_code == 200
        assert (await c.get(path, headers={"Authorization": f"Bearer {other}"})).status_code == 404
        assert (await c.get(path)).status_code == 404


async def test_rs256_with_a_public_key_and_no_key_confusion(database_url: str) -> None:
    async with client_for(database_url, jwt_public_key=PUBLIC_PEM, jwt_algorithms="RS256") as c:
        assert (await call(c, jwt.encode(claims(), RSA_KEY, "RS256"))).status_code == 202
        # An HS256 token "signed" with the public key as the HMAC secret.
        import hashlib
        import hmac
        from base64 import urlsafe_b64encode

        def b64(data: bytes) -> str:
            return urlsafe_b64encode(data).rstrip(b"=").decode()

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps(claims()).encode())
        sig = b64(hmac.new(PUBLIC_PEM.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
        refused(await call(c, f"{head}.{body}.{sig}"), "algorithm 'HS256' is not accepted")


@pytest.fixture
def jwks_server() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"keys": [], "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["hits"] += 1
            body = json.dumps({"keys": state["keys"]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def jwk(kid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    return {**data, "kid": kid, "alg": "RS256", "use": "sig"}


async def test_jwks_refreshes_on_an_unknown_kid_at_a_bounded_rate(
    database_url: str, jwks_server: dict[str, Any]
) -> None:
    jwks_server["keys"] = [jwk("k1")]
    async with client_for(
        database_url, jwt_jwks_url=jwks_server["url"], jwt_jwks_min_refresh_seconds=60
    ) as c:
        token = jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "k1"})
        assert (await call(c, token)).status_code == 202
        assert (await call(c, token)).status_code == 202
        assert jwks_server["hits"] == 1  # cached
        # A rotated issuer key appears; the first token with it triggers one refresh... but
        # not more than once a minute: unknown kids cannot make us hammer the issuer.
        unknown = jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "k2"})
        for _ in range(5):
            refused(await call(c, unknown), "key id (kid)")
        assert jwks_server["hits"] == 1
    jwks_server["keys"] = [jwk("k1"), jwk("k2")]
    async with client_for(
        database_url, jwt_jwks_url=jwks_server["url"], jwt_jwks_min_refresh_seconds=1
    ) as c:
        assert (await call(c, token)).status_code == 202
        assert (await call(c, unknown)).status_code == 202


async def test_a_jwks_endpoint_that_is_down_is_503_not_500(database_url: str) -> None:
    async with client_for(database_url, jwt_jwks_url="http://127.0.0.1:9/jwks.json") as c:
        r = await call(c, jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "k1"}))
        assert r.status_code == 503 and r.headers["retry-after"]
        assert "cannot be verified now" in r.json()["detail"]


def test_settings_refuse_none_and_placeholder_secrets() -> None:
    from pydantic import ValidationError

    from app.core.config import Settings

    with pytest.raises(ValidationError, match="must not contain 'none'"):
        Settings(_env_file=None, jwt_algorithms="RS256,none")
    with pytest.raises(ValidationError, match="placeholder or shorter than 32"):
        Settings(
            _env_file=None,
            environment="production",
            jwt_secret="changeme",
            jwt_issuer=ISS,
            jwt_audience=AUD,
        )
    with pytest.raises(ValidationError, match="need OBSERVATORY_JWT_ISSUER"):
        Settings(_env_file=None, jwt_secret=SECRET)
