"""The single-conversation endpoints, over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from app.analyses import repository as repo
from tests.factories import messages

TEXT = (
    "Human: Why is the sky blue?\nAI: Because of Rayleigh scattering of sunlight.\nHuman: Thanks!"
)


async def submit(
    client: httpx.AsyncClient, body: dict[str, Any], wait: int | None = None
) -> httpx.Response:
    headers = {"Prefer": f"wait={wait}"} if wait else {}
    return await client.post("/api/v1/analyze", json=body, headers=headers)


async def wait_done(
    client: httpx.AsyncClient, analysis_id: str, timeout: float = 20
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        body: dict[str, Any] = (await client.get(f"/api/v1/analyze/{analysis_id}")).json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"analysis {analysis_id} did not finish in {timeout}s")


async def test_submit_returns_202_then_result(client: httpx.AsyncClient) -> None:
    r = await submit(client, {"conversation_text": TEXT})
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"id", "status", "created_at", "expires_at"}
    assert body["status"] == "pending"
    assert body["created_at"].endswith(("Z", "+00:00")), "timestamps carry their UTC offset"
    assert r.headers["location"] == f"/api/v1/analyze/{body['id']}"
    done = await wait_done(client, body["id"])
    assert done["status"] == "completed"
    dyn = done["patterns"]["dynamics"]
    assert dyn["total_turns"] == 3 and dyn["human_turns"] == 2 and dyn["ai_turns"] == 1
    assert done["processing_time"] is not None and done["processing_time"] >= 0
    assert done["message_count"] == 3
    assert done["error"] is None
    assert done["expires_at"].endswith(("Z", "+00:00"))


async def test_prefer_wait_answers_200_with_the_result(client: httpx.AsyncClient) -> None:
    r = await submit(client, {"messages": messages(40)}, wait=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    assert body["patterns"]["dynamics"]["total_turns"] == 40
    assert r.headers["preference-applied"] == "wait=10"


async def test_pattern_types_subset(client: httpx.AsyncClient) -> None:
    r = await submit(
        client, {"conversation_text": TEXT, "options": {"pattern_types": ["dynamics"]}}, wait=10
    )
    assert r.status_code == 200
    assert set(r.json()["patterns"]) == {"dynamics"}


async def test_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/analyze/nope"),
        ("POST", "/api/v1/analyze/nope/cancel"),
        ("DELETE", "/api/v1/analyze/nope"),
    ]:
        r = await client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert "nope" in r.json()["detail"]


async def test_cancel_finished_is_409(client: httpx.AsyncClient) -> None:
    r = await submit(client, {"conversation_text": TEXT}, wait=10)
    analysis_id = r.json()["id"]
    r = await client.post(f"/api/v1/analyze/{analysis_id}/cancel")
    assert r.status_code == 409
    assert "already completed" in r.json()["detail"]


async def test_cancel_racing_delete_is_never_a_500(client: httpx.AsyncClient, app: Any) -> None:
    from tests.workers import Release, blocking_analysis

    release = Release()
    app.state.service.queue._ctx.analyze_fn = blocking_analysis(release)
    try:
        for _ in range(10):
            analysis_id = (await submit(client, {"conversation_text": TEXT})).json()["id"]
            cancel, erase = await asyncio.gather(
                client.post(f"/api/v1/analyze/{analysis_id}/cancel"),
                client.delete(f"/api/v1/analyze/{analysis_id}"),
            )
            assert cancel.status_code in (200, 404, 409), cancel.text
            assert erase.status_code in (204, 404), erase.text
    finally:
        release.set()


async def test_expired_result_is_gone_and_reading_it_does_not_revive_it(
    client: httpx.AsyncClient, app: Any
) -> None:
    from datetime import timedelta

    from app.core.database import utcnow

    analysis_id = (await submit(client, {"conversation_text": TEXT}, wait=10)).json()["id"]
    async with app.state.service.sessions() as session, session.begin():
        row = await repo.get(session, analysis_id)
        row.expires_at = utcnow() - timedelta(days=1)
    r = await client.get(f"/api/v1/analyze/{analysis_id}")
    assert r.status_code == 404 and "expired" in r.json()["detail"]
    async with app.state.service.sessions() as session:
        row = await repo.get(session, analysis_id)
        assert row.expires_at < utcnow()


async def test_prefer_wait_in_any_header_line_and_quoted(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/analyze",
        json={"conversation_text": TEXT},
        headers=[("Prefer", "respond-async"), ("Prefer", 'wait="10"')],
    )
    assert r.status_code == 200 and r.json()["status"] == "completed"


async def test_delete_erases(client: httpx.AsyncClient) -> None:
    r = await submit(client, {"conversation_text": TEXT}, wait=10)
    analysis_id = r.json()["id"]
    assert (await client.delete(f"/api/v1/analyze/{analysis_id}")).status_code == 204
    assert (await client.get(f"/api/v1/analyze/{analysis_id}")).status_code == 404


async def test_empty_conversation_is_400(client: httpx.AsyncClient) -> None:
    for body in ({"conversation_text": "   \n  "}, {"messages": []}):
        r = await submit(client, body)
        assert r.status_code == 400, r.text
        assert "empty" in r.json()["detail"]


async def test_no_conversation_field_is_400(client: httpx.AsyncClient) -> None:
    r = await submit(client, {"options": {}})
    assert r.status_code == 400
    assert "conversation_text" in r.json()["detail"]


async def test_invalid_json_is_422_with_location(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/analyze",
        content=b'{"conversation_text": "Human: hi",}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert "not valid JSON at position" in r.json()["detail"]


async def test_schema_violation_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    r = await submit(client, {"conversation_text": TEXT, "options": {"observer": "sometimes"}})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "options.observer" in detail and "auto" in detail


async def test_invalid_utf8_and_nul_are_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/analyze",
        content=b'{"conversation_text": "Human: caf\xe9"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert "UTF-8" in r.json()["detail"]
    r = await submit(client, {"conversation_text": "Human: a\u0000b\nAI: ok"})
    assert r.status_code == 400
    assert "NUL" in r.json()["detail"]


async def test_body_over_limit_is_413_before_parsing(
    client: httpx.AsyncClient, settings: Any
) -> None:
    from app.main import request_body_limit

    limit = request_body_limit(settings)
    payload = b'{"conversation_text": "' + b"x" * (limit + 10) + b'"}'
    r = await client.post(
        "/api/v1/analyze", content=payload, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


async def test_conversation_over_byte_limit_is_400(
    client: httpx.AsyncClient, settings: Any
) -> None:
    # Within the body limit (envelope allowance) but over the 5 MB conversation limit.
    big = "Human: " + "a" * (settings.max_conversation_bytes + 100)
    r = await submit(client, {"conversation_text": big})
    assert r.status_code == 400
    assert "limit" in r.json()["detail"]


async def test_hostile_looking_content_is_accepted(client: httpx.AsyncClient) -> None:
    text = (
        "Human: Why does `DROP TABLE users; --` work here? And <script>alert(1)</script>?\n"
        "AI: Use bound parameters:\n```python\ncur.execute('SELECT * FROM t WHERE id = %s', (x,))\n```\n"
        "Human: And `rm -rf ../../tmp` — is that dangerous?\n"
        "AI: Yes; never run it on ../ paths you do not own."
    )
    r = await submit(client, {"conversation_text": text}, wait=10)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    assert r.json()["message_count"] == 4


async def test_unexpected_error_is_500_without_internals(
    client: httpx.AsyncClient, monkeypatch: Any, capfd: Any
) -> None:
    import app.jobs.work as endpoint  # small bodies parse in the API process

    def boom(**kwargs: Any) -> None:
        word = kwargs["conversation_text"].split()[-1]  # data, not source code
        raise ValueError(f"invalid literal for int() with base 10: {word!r} in /srv/secret.py")

    monkeypatch.setattr(endpoint, "parse_conversation", boom)
    r = await client.post(
        "/api/v1/analyze",
        json={"conversation_text": "Human: my password is hunter2"},
        headers={"X-Request-ID": "trace-500"},
    )
    assert r.status_code == 500
    assert "hunter2" not in r.text and "secret" not in r.text and "ValueError" not in r.text
    assert r.json()["detail"] == "internal server error (reference trace-500)"
    assert r.headers["x-request-id"] == "trace-500"
    logged = capfd.readouterr().err
    # The log names the error and where it happened, tied to the request, without its
    # message (which may quote conversation text).
    assert "request.error" in logged and "trace-500" in logged
    assert "builtins.ValueError (message withheld)" in logged
    assert "hunter2" not in logged


async def test_worker_errors_are_logged_without_their_message(
    client: httpx.AsyncClient, app: Any, capfd: Any
) -> None:
    from tests.workers import leaky

    app.state.service.queue._ctx.analyze_fn = leaky
    body = (
        await submit(client, {"conversation_text": "Human: my password is hunter2"}, wait=10)
    ).json()
    assert body["status"] == "failed"
    assert body["error"] == "the analysis failed because of an internal error; it has been logged"
    logged = capfd.readouterr().err
    assert "analysis.error" in logged and "ValueError (message withheld)" in logged
    assert "hunter2" not in logged


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert json.loads(r.text)["detail"]


async def test_observer_modes_without_an_ollama_server(client: httpx.AsyncClient) -> None:
    # Nothing listens on the default Ollama port here: auto degrades, required fails, off skips.
    results = {}
    for mode in ("auto", "required", "off"):
        r = await submit(
            client, {"conversation_text": TEXT, "options": {"observer": mode}}, wait=10
        )
        assert r.status_code == 200, r.text
        results[mode] = r.json()
    auto = results["auto"]
    assert auto["status"] == "completed"
    assert auto["observer"]["status"] == "unavailable"
    assert "cannot reach Ollama" in auto["observer"]["reason"]
    assert auto["observer_output"] is None and auto["patterns"]["dialectic"]
    required = results["required"]
    assert required["status"] == "failed" and "patterns" not in required
    assert "observer required" in required["error"] and "cannot reach Ollama" in required["error"]
    assert results["off"]["observer"]["status"] == "disabled"


async def test_exports(client: httpx.AsyncClient) -> None:
    r = await submit(client, {"conversation_text": TEXT}, wait=10)
    analysis_id = r.json()["id"]
    csv_r = await client.get(f"/api/v1/analyze/{analysis_id}?format=csv")
    assert csv_r.status_code == 200
    assert csv_r.headers["content-type"].startswith("text/csv")
    assert csv_r.text.startswith("section,kind,start,end,messages,speakers,label,score,text")
    assert f"analysis-{analysis_id}.csv" in csv_r.headers["content-disposition"]
    md_r = await client.get(f"/api/v1/analyze/{analysis_id}?format=markdown")
    assert md_r.status_code == 200 and md_r.headers["content-type"].startswith("text/markdown")
    assert md_r.text.startswith(f"# Conversation analysis {analysis_id}")
    bad = await client.get(f"/api/v1/analyze/{analysis_id}?format=xml")
    assert bad.status_code == 422 and "format" in bad.json()["detail"]


async def test_export_before_completion_is_409(client: httpx.AsyncClient, app: Any) -> None:
    from tests.workers import Release, blocking_analysis

    release = Release()
    app.state.service.queue._ctx.analyze_fn = blocking_analysis(release)
    try:
        analysis_id = (await submit(client, {"conversation_text": TEXT})).json()["id"]
        r = await client.get(f"/api/v1/analyze/{analysis_id}?format=csv")
        assert r.status_code == 409
        assert "exports exist once it is completed" in r.json()["detail"]
    finally:
        release.set()


async def test_events_stream_status_until_finished(client: httpx.AsyncClient, app: Any) -> None:
    from tests.workers import Release, blocking_analysis

    release = Release()
    app.state.service.queue._ctx.analyze_fn = blocking_analysis(release)
    analysis_id = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    asyncio.get_running_loop().call_later(0.6, release.set)
    r = await client.get(f"/api/v1/analyze/{analysis_id}/events")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [
        json.loads(block.split("data: ", 1)[1])
        for block in r.text.strip().split("\n\n")
        if block.startswith("event: status")
    ]
    statuses = [e["status"] for e in events]
    assert statuses[0] in ("pending", "processing") and statuses[-1] == "completed"
    assert "processing" in statuses
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert (await client.get("/api/v1/analyze/nope/events")).status_code == 404


async def test_escaped_non_ascii_text_under_the_limit_is_accepted(
    client: httpx.AsyncClient, settings: Any
) -> None:
    # 4.5 MB of Chinese text as UTF-8 (under 5 MB), 9 MB once JSON escapes it as \uXXXX,
    # which is what most clients send by default.
    turns = [f"{'Human' if i % 2 == 0 else 'AI'}: " + "中文对话" * 10_000 for i in range(39)]
    text = "\n".join(turns)
    payload = json.dumps(
        {"conversation_text": text, "options": {"pattern_types": ["dynamics"]}}
    ).encode()
    assert len(text.encode()) < settings.max_conversation_bytes < len(payload)
    r = await client.post(
        "/api/v1/analyze", content=payload, headers={"content-type": "application/json"}
    )
    assert r.status_code == 202, r.text
