"""``GET /metrics``: Prometheus text for keys with the ``metrics`` scope only."""

from __future__ import annotations

from typing import Any

import httpx

from tests.contract.test_access import bearer, new_key

TEXT = {"conversation_text": "Human: Is it raining?\nAI: No, it is sunny."}


async def test_metrics_need_the_metrics_scope(client: httpx.AsyncClient, app: Any) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 401 and "'metrics' scope" in r.json()["detail"]
    analyst = await new_key(app)
    assert (await client.get("/metrics", headers=bearer(analyst.secret))).status_code == 404
    partner = await new_key(app, tier="partner")
    assert (await client.get("/metrics", headers=bearer(partner.secret))).status_code == 404


async def test_metrics_count_requests_by_route_and_analyses_by_outcome(
    client: httpx.AsyncClient, app: Any
) -> None:
    operator = await new_key(app, scopes=["metrics"])
    r = await client.post("/api/v1/analyze", json=TEXT, headers={"Prefer": "wait=10"})
    analysis_id = r.json()["id"]
    assert r.json()["status"] == "completed"
    await client.get(f"/api/v1/analyze/{analysis_id}")
    await client.get("/api/v1/analyze/no-such-id")
    r = await client.get("/metrics", headers=bearer(operator.secret))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'observatory_analyses_total{outcome="completed"} 1.0' in text
    assert (
        'observatory_http_requests_total{method="GET",route="/api/v1/analyze/{analysis_id}",'
        'status="404"} 1.0'
    ) in text
    assert analysis_id not in text and "no-such-id" not in text  # no raw paths as labels
    assert "observatory_http_request_duration_seconds_bucket" in text
    assert "observatory_queue_depth 0.0" in text
    assert "observatory_analysis_duration_seconds_count 1.0" in text
