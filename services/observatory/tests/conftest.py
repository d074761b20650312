"""Shared fixtures: the app over SQLite and over the PostgreSQL server, an HTTP client.

PostgreSQL-backed tests need the server on OBSERVATORY_TEST_POSTGRES_URL (default
``postgresql://postgres@127.0.0.1:5432/postgres``). Each test gets a database of its own,
created and dropped around it. When the server is unreachable the tests are skipped with a
loud reason, unless OBSERVATORY_REQUIRE_SERVICES=1 (set by CI), in which case they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.config import Settings
from app.main import create_app

PG_ADMIN_URL = os.environ.get(
    "OBSERVATORY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_SERVICES = os.environ.get("OBSERVATORY_REQUIRE_SERVICES") == "1"


def service_missing(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why}); these tests did NOT run"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}, and OBSERVATORY_REQUIRE_SERVICES=1 requires them", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


async def _pg_admin() -> asyncpg.Connection:
    return await asyncpg.connect(PG_ADMIN_URL, timeout=5)


async def _create_database(name: str) -> None:
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(name: str) -> None:
    admin = await _pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy asyncpg URL)."""
    name = f"obs_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_create_database(name))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_missing("PostgreSQL at " + PG_ADMIN_URL, repr(exc))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    finally:
        asyncio.run(_drop_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'observatory.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


# Port 9 (discard) is closed on any test machine: the observer is reliably unreachable
# unless a test starts its own Ollama-protocol server.
CLOSED_PORT_URL = "http://127.0.0.1:9"
TEST_CONTROL_VARIABLES = {
    "OBSERVATORY_TEST_POSTGRES_URL",
    "OBSERVATORY_REQUIRE_SERVICES",
    "OBSERVATORY_REQUIRE_REALMODEL",
    "OBSERVATORY_REALMODEL",
}


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the settings they set, not the developer's OBSERVATORY_* variables."""
    for name in list(os.environ):
        if name.startswith("OBSERVATORY_") and name not in TEST_CONTROL_VARIABLES:
            monkeypatch.delenv(name)


# Stored results are encrypted; outside development the key is configured.
TEST_RESULT_KEYS = "t1:" + "A" * 43 + "="
UNLIMITED = {
    "rate_limit_public": "1000000/minute;10000000/day",
    "rate_limit_api_key": "1000000/minute;10000000/day",
    "rate_limit_partner": "1000000/minute;10000000/day",
    "read_limit_public": "1000000/minute",
    "read_limit_api_key": "1000000/minute",
    "read_limit_partner": "1000000/minute",
    "auth_failure_limit": "1000000/minute",
    # Tests change keys under a running app and expect the next request to see it.
    "api_key_cache_seconds": 0,
}


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "environment": "test",
        "result_keys": TEST_RESULT_KEYS,
        "log_level": "WARNING",
        "worker_concurrency": 2,
        "observer_url": CLOSED_PORT_URL,
        # One try: a required observer that is down fails at once. Retries are tested on
        # their own (test_queue_contract.py, test_redis_workers.py).
        "job_max_tries": 1,
        # Limits are tested on their own (test_limits.py); elsewhere they stay out of the way.
        **UNLIMITED,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(database_url, **settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
