"""The observer wired into the service: readiness and an analysis through the HTTP API,
against the Ollama-protocol test server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_observer_ollama import TEXTS, answer, logprobs
from tests.ollama_server import OllamaTestServer, Script


@pytest.fixture
def ollama() -> Iterator[OllamaTestServer]:
    with OllamaTestServer(models=["observer"]) as server:
        yield server


@pytest.fixture
def settings_overrides(ollama: OllamaTestServer) -> dict[str, Any]:
    return {"observer_url": ollama.url, "observer_request_timeout_seconds": 10.0}


def transcript() -> str:
    return "\n".join(f"{'Dana' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(TEXTS))


async def test_readiness_reports_server_and_model(client: httpx.AsyncClient) -> None:
    body = (await client.get("/health/ready")).json()
    observer = body["checks"]["observer"]
    assert observer["status"] == "ok", observer
    # The endpoint needs no credential: it does not say where Ollama runs.
    assert "base_url" not in observer
    assert "127.0.0.1" not in str(body)


async def test_readiness_names_a_missing_model(
    client: httpx.AsyncClient, ollama: OllamaTestServer
) -> None:
    ollama.models = []
    body = (await client.get("/health/ready")).json()
    assert body["status"] == "ready"  # the observer is optional in auto mode
    observer = body["checks"]["observer"]
    assert observer["status"] != "ok"
    assert "ollama create observer -f Modelfile" in str(observer)


async def test_analysis_through_the_api_uses_the_observer(
    client: httpx.AsyncClient, ollama: OllamaTestServer
) -> None:
    ollama.default_reply = lambda request: Script(
        content=answer(), logprobs=logprobs(0.9, 0.8, 0.95)
    )
    r = await client.post(
        "/api/v1/analyze",
        json={"conversation_text": transcript(), "options": {"observer": "required"}},
        headers={"Prefer": "wait=30"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed", body.get("error")
    assert body["observer"]["status"] == "used"
    assert body["observer"]["model"] == "observer"
    assert body["observer_output"] and "dana@example.com" not in r.text
    assert body["confidence"]["model_certainty"] is not None
    assert any(f["kind"] == "prompt_injection_observer" for f in body["security"]["flags"])
    sent = ollama.requests[0]
    assert sent["model"] == "observer" and sent["stream"] is False and sent["think"] is False
    assert "<transcript>" in sent["messages"][-1]["content"]


async def test_required_observer_with_the_model_missing_fails_the_analysis(
    client: httpx.AsyncClient, ollama: OllamaTestServer
) -> None:
    ollama.models = []
    r = await client.post(
        "/api/v1/analyze",
        json={"conversation_text": transcript(), "options": {"observer": "required"}},
        headers={"Prefer": "wait=30"},
    )
    body = r.json()
    assert body["status"] == "failed"
    assert "not found" in body["error"]


async def test_a_slow_observer_after_a_slow_local_stage_still_stores_the_local_result(
    client: httpx.AsyncClient, app: Any, ollama: OllamaTestServer
) -> None:
    from tests.workers import Release, blocking_analysis

    queue = app.state.service.queue
    queue._ctx.timeout = 2.0
    release = Release()
    queue._ctx.analyze_fn = blocking_analysis(release)
    # the local stage uses half the budget
    asyncio.get_running_loop().call_later(1.0, release.set)
    ollama.default_reply = lambda request: Script(content=answer(), delay=10)
    r = await client.post(
        "/api/v1/analyze",
        json={"conversation_text": transcript(), "options": {"observer": "auto"}},
        headers={"Prefer": "wait=10"},
    )
    body = r.json()
    assert body["status"] == "completed", body.get("error")
    assert body["observer"]["status"] in ("failed", "unavailable")
    assert body["patterns"]["dialectic"]


async def test_metrics_count_observer_calls_made_in_worker_processes(
    client: httpx.AsyncClient, app: Any, ollama: OllamaTestServer
) -> None:
    from tests.contract.test_access import bearer, new_key

    operator = await new_key(app, scopes=["metrics"])
    ollama.default_reply = lambda request: Script(content=answer())
    body = {"conversation_text": transcript(), "options": {"observer": "required"}}
    r = await client.post("/api/v1/analyze", json=body, headers={"Prefer": "wait=30"})
    assert r.json()["status"] == "completed", r.text
    ollama.models = []
    r = await client.post("/api/v1/analyze", json=body, headers={"Prefer": "wait=30"})
    assert r.json()["status"] == "failed", r.text
    text = (await client.get("/metrics", headers=bearer(operator.secret))).text
    calls = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("observatory_observer_calls_total{")
    }
    assert calls.get("ok", 0) >= 1 and calls.get("model_missing", 0) >= 1, calls
    assert 'observatory_observer_breaker{observatory_observer_breaker="closed"} 1.0' in text
