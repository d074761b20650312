"""Principals and API keys: who may call, which credential errors say what, and that each
analysis is visible to its owner only (404 to everyone else)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.core.database import utcnow
from app.keys import service as keys

TEXT = {"conversation_text": "Human: Is it raining?\nAI: No, it is sunny."}


async def new_key(app: Any, **kwargs: Any) -> keys.CreatedKey:
    async with app.state.service.sessions() as session, session.begin():
        return await keys.create(session, name=kwargs.pop("name", "test"), **kwargs)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def unauthorized(r: httpx.Response, says: str, secret: str | None = None) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"].startswith('Bearer realm="observatory"')
    assert says in r.json()["detail"], r.json()["detail"]
    if secret:
        assert secret not in r.text and secret not in r.headers["www-authenticate"]


async def test_no_credential_is_the_public_tier(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/analyze", json=TEXT)).status_code == 202


@pytest.mark.parametrize(
    "headers",
    [
        lambda s: {"Authorization": f"Bearer {s}"},
        lambda s: {"authorization": f"bearer {s}"},
        lambda s: {"AUTHORIZATION": f"BEARER   {s}  "},
        lambda s: {"X-API-Key": s},
        lambda s: {"x-api-key": s, "Authorization": f"Bearer {s}"},
    ],
    ids=["bearer", "lower-case", "upper-case", "x-api-key", "both-same"],
)
async def test_a_valid_key_is_accepted_in_every_form(
    client: httpx.AsyncClient, app: Any, headers: Any
) -> None:
    created = await new_key(app)
    r = await client.post("/api/v1/analyze", json=TEXT, headers=headers(created.secret))
    assert r.status_code == 202, r.text


async def test_a_key_is_stored_only_as_a_hash(app: Any) -> None:
    from sqlalchemy import text

    created = await new_key(app)
    async with app.state.service.sessions() as session:
        rows = (await session.execute(text("SELECT * FROM api_keys"))).all()
    stored = repr(rows)
    assert created.secret not in stored and keys.hash_secret(created.secret) in stored
    assert created.key.prefix in stored and len(created.key.prefix) < len(created.secret) // 3


async def test_credential_errors_are_401_saying_which(client: httpx.AsyncClient, app: Any) -> None:
    unknown = keys.new_secret()
    unauthorized(
        await client.post("/api/v1/analyze", json=TEXT, headers=bearer(unknown)),
        "unknown API key",
        unknown,
    )
    unauthorized(
        await client.post("/api/v1/analyze", json=TEXT, headers=bearer("hunter2")),
        "malformed credential",
        "hunter2",
    )
    unauthorized(
        await client.post("/api/v1/analyze", json=TEXT, headers={"Authorization": "Basic abc"}),
        "unsupported authorization scheme 'Basic'",
    )
    unauthorized(
        await client.post("/api/v1/analyze", json=TEXT, headers={"Authorization": "Bearer"}),
        "no credential after 'Bearer'",
    )
    unauthorized(
        await client.post(
            "/api/v1/analyze", json=TEXT, headers=bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
        ),
        "partner tokens (JWT) are not accepted",
    )


async def test_revoked_expired_and_rotated_keys_are_refused(
    client: httpx.AsyncClient, app: Any
) -> None:
    revoked = await new_key(app)
    expired = await new_key(app, expires_at=utcnow() - timedelta(seconds=1))
    rotated = await new_key(app)
    async with app.state.service.sessions() as session, session.begin():
        await keys.revoke(session, revoked.key.id)
        replacement = await keys.rotate(session, rotated.key.id, timedelta(hours=1))
    unauthorized(
        await client.get("/api/v1/analyze/x", headers=bearer(revoked.secret)), "was revoked"
    )
    unauthorized(await client.get("/api/v1/analyze/x", headers=bearer(expired.secret)), "expired")
    # Within its grace period the old key still works, and so does the new one.
    for secret in (rotated.secret, replacement.secret):
        r = await client.post("/api/v1/analyze", json=TEXT, headers=bearer(secret))
        assert r.status_code == 202, r.text
    async with app.state.service.sessions() as session, session.begin():
        old = await keys.find(session, rotated.key.id)
        old.expires_at = utcnow() - timedelta(seconds=1)
    unauthorized(
        await client.post("/api/v1/analyze", json=TEXT, headers=bearer(rotated.secret)),
        "rotated and its grace period has ended",
    )
    r = await client.post("/api/v1/analyze", json=TEXT, headers=bearer(replacement.secret))
    assert r.status_code == 202


@pytest.mark.parametrize("name", ["api_key", "key", "token", "access_token", "API_KEY"])
async def test_a_credential_in_the_url_is_refused(client: httpx.AsyncClient, name: str) -> None:
    r = await client.get(f"/api/v1/analyze/x?{name}=obs_live_abc")
    assert r.status_code == 400 and "credentials in the URL are refused" in r.json()["detail"]


async def test_two_different_credentials_are_refused(client: httpx.AsyncClient, app: Any) -> None:
    a, b = await new_key(app), await new_key(app)
    r = await client.post(
        "/api/v1/analyze", json=TEXT, headers={**bearer(a.secret), "X-API-Key": b.secret}
    )
    assert r.status_code == 400 and "different credentials" in r.json()["detail"]


async def test_a_key_without_the_analyze_scope_is_403(client: httpx.AsyncClient, app: Any) -> None:
    metrics_only = await new_key(app, scopes=["metrics"])
    r = await client.post("/api/v1/analyze", json=TEXT, headers=bearer(metrics_only.secret))
    assert r.status_code == 403 and "'analyze' scope" in r.json()["detail"]


async def test_each_analysis_is_visible_to_its_owner_only(
    client: httpx.AsyncClient, app: Any
) -> None:
    owner, other = await new_key(app), await new_key(app)
    r = await client.post(
        "/api/v1/analyze", json=TEXT, headers={**bearer(owner.secret), "Prefer": "wait=10"}
    )
    analysis_id = r.json()["id"]
    base = f"/api/v1/analyze/{analysis_id}"
    for headers in (bearer(other.secret), {}):
        for method, path in (
            ("GET", base),
            ("GET", base + "?format=csv"),
            ("GET", base + "?format=markdown"),
            ("GET", base + "/events"),
            ("POST", base + "/cancel"),
            ("DELETE", base),
        ):
            r = await client.request(method, path, headers=headers)
            assert r.status_code == 404, (method, path, headers and "other key", r.text)
            assert "no analysis with id" in r.json()["detail"]
    assert (await client.get(base, headers=bearer(owner.secret))).json()["status"] == "completed"
    assert (await client.delete(base, headers=bearer(owner.secret))).status_code == 204


async def test_public_results_are_reachable_by_their_id(
    client: httpx.AsyncClient, app: Any
) -> None:
    analysis_id = (await client.post("/api/v1/analyze", json=TEXT)).json()["id"]
    someone = await new_key(app)
    r = await client.get(f"/api/v1/analyze/{analysis_id}", headers=bearer(someone.secret))
    assert r.status_code == 200


async def test_openapi_declares_the_credentials(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    security = doc["paths"]["/api/v1/analyze"]["post"]["security"]
    assert {} in security  # optional: no credential is the public tier


async def test_a_rotated_key_keeps_what_its_predecessor_created(
    client: httpx.AsyncClient, app: Any
) -> None:
    old = await new_key(app)
    r = await client.post(
        "/api/v1/analyze", json=TEXT, headers={**bearer(old.secret), "Prefer": "wait=10"}
    )
    analysis_id = r.json()["id"]
    async with app.state.service.sessions() as session, session.begin():
        new = await keys.rotate(session, old.key.id, timedelta(seconds=0))
    unauthorized(
        await client.get(f"/api/v1/analyze/{analysis_id}", headers=bearer(old.secret)), "rotated"
    )
    r = await client.get(f"/api/v1/analyze/{analysis_id}", headers=bearer(new.secret))
    assert r.status_code == 200, r.text
    assert (
        await client.delete(f"/api/v1/analyze/{analysis_id}", headers=bearer(new.secret))
    ).status_code == 204


async def test_scopes_bind_partner_keys_too(client: httpx.AsyncClient, app: Any) -> None:
    partner = await new_key(app, tier="partner", scopes=["metrics"])
    r = await client.post("/api/v1/analyze", json=TEXT, headers=bearer(partner.secret))
    assert r.status_code == 403


@pytest.mark.parametrize("extra", ["\xa0", "\x85", "x"])
async def test_a_key_with_anything_around_it_is_refused(
    client: httpx.AsyncClient, app: Any, extra: str
) -> None:
    created = await new_key(app)
    for value in (created.secret + extra, extra + created.secret):
        r = await client.post(
            "/api/v1/analyze", json=TEXT, headers={"X-API-Key": value.encode("latin-1")}
        )
        assert r.status_code == 401, (repr(extra), r.text)


async def test_a_missing_scheme_does_not_echo_the_secret(
    client: httpx.AsyncClient, app: Any
) -> None:
    created = await new_key(app)
    r = await client.get("/api/v1/analyze/x", headers={"Authorization": created.secret})
    unauthorized(r, "unsupported authorization scheme; use Authorization: Bearer")
    assert created.secret[9:15] not in r.text.replace(created.key.prefix, "")
    assert created.secret[15:20] not in r.text + r.headers["www-authenticate"]


@pytest.mark.parametrize("query", ["auth=abc", "bearer=abc", "api-key=abc", "x=obs_live_abc"])
async def test_any_credential_in_the_url_is_refused(client: httpx.AsyncClient, query: str) -> None:
    r = await client.get(f"/api/v1/analyze/x?{query}")
    assert r.status_code == 400 and r.json()["title"] == "Invalid credential"


def test_trusted_proxies_must_be_networks() -> None:
    from pydantic import ValidationError

    from app.core.config import Settings

    with pytest.raises(ValidationError, match=r"127\.0\.0\.1/8' is not a network"):
        Settings(_env_file=None, trusted_proxies="10.0.0.0/8, 127.0.0.1/8")


async def test_a_checked_key_is_remembered_for_a_few_seconds(
    client: httpx.AsyncClient, app: Any
) -> None:
    """A known key costs no database round trip for ``api_key_cache_seconds``; a revocation
    made elsewhere (the command line, another replica) takes effect when that time is up,
    while an expiry date is judged on every request."""
    now = [0.0]
    app.state.service.key_cache = keys.KeyCache(10, timer=lambda: now[0])
    created = await new_key(app)
    soon = await new_key(app, expires_at=utcnow() + timedelta(seconds=2))
    for secret in (created.secret, soon.secret):
        assert (await client.get("/api/v1/analyze/x", headers=bearer(secret))).status_code == 404
    async with app.state.service.sessions() as session, session.begin():
        await keys.revoke(session, created.key.id)
    now[0] = 9.0
    assert (
        await client.get("/api/v1/analyze/x", headers=bearer(created.secret))
    ).status_code == 404
    now[0] = 10.5
    unauthorized(
        await client.get("/api/v1/analyze/x", headers=bearer(created.secret)), "was revoked"
    )
    await asyncio.sleep(2.1)
    unauthorized(await client.get("/api/v1/analyze/x", headers=bearer(soon.secret)), "expired")
