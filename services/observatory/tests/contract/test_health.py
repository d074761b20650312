"""Liveness, readiness and the API documentation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.workers import Release, blocking_analysis


async def test_health(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_ready_reports_database_queue_and_observer(
    client: httpx.AsyncClient, backend: str
) -> None:
    r = await client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    checks = body["checks"]
    assert checks["database"] == {
        "status": "ok",
        "backend": "sqlite" if backend == "sqlite" else "postgresql",
    }
    assert checks["queue"]["status"] == "ok" and checks["queue"]["workers"] == 2
    # No Ollama here: the observer is reported, and does not make the service unready.
    assert checks["observer"]["status"] != "ok"


async def test_ready_is_503_when_the_database_is_gone(client: httpx.AsyncClient, app: Any) -> None:
    from app.core.database import create_engine

    real = app.state.service.engine
    app.state.service.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        r = await client.get("/health/ready")
    finally:
        await app.state.service.engine.dispose()
        app.state.service.engine = real
    assert r.status_code == 503
    assert r.json()["checks"]["database"]["status"] == "error"


async def test_docs_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/v1/analyze",
        "/api/v1/analyze/{analysis_id}",
        "/api/v1/analyze/{analysis_id}/cancel",
    ):
        assert path in paths
    post = paths["/api/v1/analyze"]["post"]
    assert {"202", "200", "400", "413", "422", "503"} <= set(post["responses"])


async def test_request_id_is_returned_and_kept_when_plain(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert len(r.headers["x-request-id"]) == 32
    r = await client.get("/health", headers={"X-Request-ID": "trace-42.a"})
    assert r.headers["x-request-id"] == "trace-42.a"
    r = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"
    # Error responses written by the body-limit middleware carry it too.
    r = await client.post(
        "/api/v1/analyze", content=b"\xff", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.headers["x-request-id"]


@pytest.mark.parametrize("settings_overrides", [{"worker_concurrency": 1, "queue_max_size": 2}])
async def test_a_busy_queue_keeps_the_service_ready(client: httpx.AsyncClient, app: Any) -> None:
    """Batch items wait under their own capacity, and even a full queue of single analyses
    (which refuses more with 503 by itself) does not take the service out of rotation."""
    release = Release()
    app.state.service.queue._ctx.analyze_fn = blocking_analysis(release)
    try:
        texts = [
            f"A: question {i} about the oven?\nB: answer {i} about the oven." for i in range(6)
        ]
        r = await client.post(
            "/api/v1/analyze/batch", json={"conversations": [{"text": t} for t in texts]}
        )
        assert r.status_code == 202, r.text
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["queue"]["status"] == "ok"
        for text in texts[:2]:
            assert (
                await client.post("/api/v1/analyze", json={"conversation_text": text})
            ).status_code == 202
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["queue"]["status"] == "full"
    finally:
        release.set()
