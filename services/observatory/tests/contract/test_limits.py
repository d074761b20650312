"""Rate limits per principal: memory on the embedded default, Redis shared by replicas."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.keys import service as keys
from app.main import create_app
from tests.conftest import make_settings, service_missing

BAD = {"conversation_text": ""}  # refused (400) after it is counted: cheap to send
TEXT = {"conversation_text": "Human: Is it raining?\nAI: No, it is sunny."}
REAL = {
    "rate_limit_public": "10/minute;500/day",
    "rate_limit_api_key": "60/minute;5000/day",
    "read_limit_public": "120/minute",
}
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(REAL)


async def post(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await client.post("/api/v1/analyze", json=BAD, headers=headers)


async def test_the_eleventh_public_request_in_a_minute_is_429(client: httpx.AsyncClient) -> None:
    seen = []
    for _ in range(10):
        r = await post(client)
        assert r.status_code == 400, r.text
        seen.append(int(r.headers["x-ratelimit-remaining"]))
        assert r.headers["x-ratelimit-limit"] == "10"
        assert 0 < int(r.headers["x-ratelimit-reset"]) <= 60
    assert seen == list(range(9, -1, -1))
    r = await post(client)
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "10/minute for the public tier" in r.json()["detail"]
    # Health is never limited.
    assert (await client.get("/health")).status_code == 200
    assert "x-ratelimit-limit" not in (await client.get("/health")).headers


async def test_polling_an_analysis_does_not_spend_the_request_budget(
    client: httpx.AsyncClient,
) -> None:
    analysis_id = (await client.post("/api/v1/analyze", json=TEXT)).json()["id"]
    for _ in range(9):
        await post(client)
    assert (await post(client)).status_code == 429
    for _ in range(30):
        r = await client.get(f"/api/v1/analyze/{analysis_id}")
        assert r.status_code == 200
    assert r.headers["x-ratelimit-limit"] == "120"


async def test_keys_have_their_own_budget(client: httpx.AsyncClient, app: Any) -> None:
    from tests.contract.test_access import new_key

    for _ in range(10):
        await post(client)
    assert (await post(client)).status_code == 429
    key = await new_key(app)
    r = await post(client, authorization=f"Bearer {key.secret}")
    assert r.status_code == 400 and r.headers["x-ratelimit-limit"] == "60"


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    for n in range(10):
        assert (await post(client, **{"x-forwarded-for": f"203.0.113.{n}"})).status_code == 400
    assert (await post(client, **{"x-forwarded-for": "198.51.100.7"})).status_code == 429


@asynccontextmanager
async def instance(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, **{**REAL, **overrides}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    database_url: str,
) -> None:
    async with instance(database_url, trusted_proxies="127.0.0.0/8, 10.0.0.0/8") as c:
        for _ in range(10):
            assert (await post(c, **{"x-forwarded-for": "203.0.113.5"})).status_code == 400
        assert (await post(c, **{"x-forwarded-for": "203.0.113.5"})).status_code == 429
        # Another client behind the proxy, and one that prepends a forged address: the
        # rightmost address not of a trusted proxy counts.
        assert (await post(c, **{"x-forwarded-for": "203.0.113.6"})).status_code == 400
        forged = {"x-forwarded-for": "203.0.113.6, 203.0.113.5, 10.1.2.3"}
        assert (await post(c, **forged)).status_code == 429


def redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_URL}", repr(exc))


@pytest.mark.redis
async def test_two_instances_share_the_limits_through_redis(database_url: str) -> None:
    redis_or_skip()
    prefix = f"obs-test-{uuid.uuid4().hex[:8]}"
    shared = {"redis_url": REDIS_URL, "rate_limit_key_prefix": prefix}
    async with instance(database_url, **shared) as a, instance(database_url, **shared) as b:
        for n in range(10):
            r = await post(a if n % 2 else b)
            assert r.status_code == 400, r.text
        assert (await post(a)).status_code == 429
        assert (await post(b)).status_code == 429
        ready = (await a.get("/health/ready")).json()
        assert ready["checks"]["limits"] == {"status": "ok", "backend": "redis"}


async def test_limits_fail_open_when_redis_is_unreachable(database_url: str) -> None:
    async with instance(database_url, redis_url="redis://127.0.0.1:9/0") as c:
        for _ in range(12):
            r = await post(c)
            assert r.status_code == 400, r.text  # served, not 429 or 500
            assert "x-ratelimit-limit" not in r.headers
        ready = (await c.get("/health/ready")).json()
        assert ready["checks"]["limits"]["status"] == "unavailable"


async def test_refused_requests_do_not_use_up_the_day(database_url: str) -> None:
    async with instance(database_url, rate_limit_public="2/minute;3/day") as c:
        assert [(await post(c)).status_code for _ in range(2)] == [400, 400]
        for _ in range(5):
            r = await post(c)
            assert r.status_code == 429 and r.headers["x-ratelimit-policy"] == "2/minute"


async def test_failed_authentications_are_limited_per_address(database_url: str) -> None:
    app = create_app(make_settings(database_url, **REAL, auth_failure_limit="3/minute;100/day"))
    async with app.router.lifespan_context(app):
        async with app.state.service.sessions() as session, session.begin():
            valid = await keys.create(session, name="valid")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for remaining in (2, 1):
                r = await post(c, authorization=f"Bearer {keys.new_secret()}")
                assert r.status_code == 401, r.text
                assert r.headers["x-ratelimit-remaining"] == str(remaining)
                assert r.headers["x-ratelimit-policy"] == "3/minute"
            # A credential refused before it is checked (in the URL) counts too.
            r = await c.post("/api/v1/analyze?api_key=x", json=BAD)
            assert r.status_code == 400 and r.headers["x-ratelimit-remaining"] == "0"
            # Spent: no credential from this address is checked, not even a valid one.
            for secret in (keys.new_secret(), valid.secret):
                r = await post(c, authorization=f"Bearer {secret}")
                assert r.status_code == 429, r.text
                assert "too many failed authentications" in r.json()["detail"]
                assert 1 <= int(r.headers["retry-after"]) <= 60
            # The address itself may still use the public tier.
            assert (await post(c)).status_code == 400
            # Another address is not affected.
            other = httpx.ASGITransport(app=app, client=("192.0.2.7", 1234))
            async with httpx.AsyncClient(transport=other, base_url="http://t") as d:
                assert (await post(d, authorization=f"Bearer {valid.secret}")).status_code == 400


@pytest.mark.redis
async def test_failed_authentications_are_counted_across_instances(database_url: str) -> None:
    redis_or_skip()
    shared = {
        "redis_url": REDIS_URL,
        "rate_limit_key_prefix": f"obs-test-{uuid.uuid4().hex[:8]}",
        "auth_failure_limit": "4/minute",
    }
    async with instance(database_url, **shared) as a, instance(database_url, **shared) as b:
        for n in range(4):
            r = await post(a if n % 2 else b, authorization=f"Bearer {keys.new_secret()}")
            assert r.status_code == 401, r.text
        for c in (a, b):
            r = await post(c, authorization=f"Bearer {keys.new_secret()}")
            assert r.status_code == 429, r.text
