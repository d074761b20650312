"""GET /examples, GET /examples/{name} and POST /examples/{name}/analyze over the real app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.examples.service import SHIPPED
from tests.contract.test_analyze import wait_done

MANIFEST = json.loads((SHIPPED / "manifest.json").read_text())["examples"]
NAMES = [e["name"] for e in MANIFEST]
PAGE_FIELDS = {"name", "title", "category", "format", "difficulty", "message_count", "demonstrates"}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    return body


async def test_the_list_has_every_example_with_the_fields_the_page_shows(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/examples")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["name"] for e in body["examples"]] == NAMES
    assert body["count"] == len(NAMES) >= 10
    for listed, entry in zip(body["examples"], MANIFEST, strict=True):
        assert set(listed) >= PAGE_FIELDS
        assert {k: listed[k] for k in PAGE_FIELDS} == {k: entry[k] for k in PAGE_FIELDS}
    assert set(body["categories"]) == {e["category"] for e in MANIFEST}


async def test_the_list_filters_by_category(client: httpx.AsyncClient) -> None:
    body = (await client.get("/examples", params={"category": "export"})).json()
    assert {e["name"] for e in body["examples"]} == {"whatsapp-hike", "chatgpt-export"}
    assert body["count"] == 2
    none = (await client.get("/examples", params={"category": "poetry"})).json()
    assert none["examples"] == [] and none["count"] == 0
    assert "export" in none["categories"]  # what there is to filter by


async def test_one_example_has_content_metadata_and_how_to_analyse_it(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/examples/debugging-session")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["content"] == (SHIPPED / "debugging-session.txt").read_text()
    assert body["request"] == {"conversation_text": body["content"], "format": "text"}
    assert body["message_count"] == 9 and body["category"] == "coding"
    assert body["analyze"]["path"] == "/examples/debugging-session/analyze"
    assert body["analyze"]["curl"] == (
        "curl -s -X POST -H 'Prefer: wait=10' http://testserver/examples/debugging-session/analyze"
    )
    export = (await client.get("/examples/chatgpt-export")).json()
    assert isinstance(export["content"], list) and "mapping" in export["content"][0]
    assert export["request"] == {"data": export["content"], "format": "chatgpt"}


async def test_an_unknown_example_is_a_404_naming_the_available_ones(
    client: httpx.AsyncClient,
) -> None:
    for r in (
        await client.get("/examples/nothing-here"),
        await client.post("/examples/nothing-here/analyze"),
    ):
        detail = problem(r, 404)["detail"]
        assert "no example named 'nothing-here'" in detail
        assert all(name in detail for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
async def test_every_example_is_analysed_by_name(client: httpx.AsyncClient, name: str) -> None:
    r = await client.post(f"/examples/{name}/analyze", headers={"Prefer": "wait=20"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed", body
    assert body["message_count"] == next(e["message_count"] for e in MANIFEST if e["name"] == name)


async def test_analysing_by_name_answers_like_a_submission(client: httpx.AsyncClient) -> None:
    r = await client.post("/examples/prompt-injection/analyze")
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert set(accepted) == {"id", "status", "created_at", "expires_at"}
    assert r.headers["location"] == f"/api/v1/analyze/{accepted['id']}"
    done = await wait_done(client, accepted["id"])
    assert [f["messages"] for f in done["security"]["flags"]] == [[0, 4]]
    # The same result as submitting the example's own request body.
    request = (await client.get("/examples/prompt-injection")).json()["request"]
    direct = await client.post("/api/v1/analyze", json=request, headers={"Prefer": "wait=20"})
    assert direct.json()["fingerprint"] == done["fingerprint"]
    assert direct.json()["patterns"] == done["patterns"]


async def test_options_may_be_chosen_and_nothing_else(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/examples/rewrite-debate/analyze",
        json={"options": {"pattern_types": ["dynamics"], "include_insights": False}},
        headers={"Prefer": "wait=20"},
    )
    assert r.status_code == 200, r.text
    assert list(r.json()["patterns"]) == ["dynamics"]
    bad = await client.post(
        "/examples/rewrite-debate/analyze", json={"conversation_text": "Human: hi"}
    )
    assert "conversation_text" in problem(bad, 422)["detail"]
    bad = await client.post(
        "/examples/rewrite-debate/analyze", json={"options": {"pattern_types": ["vibes"]}}
    )
    assert "pattern_types" in problem(bad, 422)["detail"]
    bad = await client.post(
        "/examples/rewrite-debate/analyze", json={"options": {"include_insights": 0}}
    )
    assert "include_insights" in problem(bad, 422)["detail"]
    r = await client.post(
        "/examples/rewrite-debate/analyze",
        content=b"options=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert "application/json" in problem(r, 415)["detail"]


async def test_the_same_limits_apply(client: httpx.AsyncClient) -> None:
    r = await client.post("/examples/long-multi-topic/analyze", content=b"x" * 70_000)
    assert problem(r, 413)


@pytest.mark.parametrize(
    "settings_overrides", [{"max_messages": 8, "rate_limit_public": "2/minute;100/day"}]
)
async def test_the_conversation_limits_and_the_rate_limit_apply(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/examples/long-multi-topic/analyze")
    assert "38 messages" in problem(r, 400)["detail"]
    r = await client.post("/examples/debugging-session/analyze")
    assert "the limit is 8" in problem(r, 400)["detail"]
    r = await client.post("/examples/whatsapp-hike/analyze")
    assert problem(r, 429)["detail"].startswith("rate limit of 2/minute")
    # Listing and reading examples are not submissions.
    assert (await client.get("/examples/whatsapp-hike")).status_code == 200


async def test_an_api_key_owns_what_it_analyses(client: httpx.AsyncClient, app: Any) -> None:
    from app.keys import service as keys

    async with app.state.service.sessions() as session, session.begin():
        created = await keys.create(session, name="examples")
    auth = {"Authorization": f"Bearer {created.secret}"}
    r = await client.post("/examples/whatsapp-hike/analyze", headers=auth)
    assert r.status_code == 202, r.text
    analysis = f"/api/v1/analyze/{r.json()['id']}"
    assert (await client.get(analysis, headers=auth)).status_code == 200
    assert (await client.get(analysis)).status_code == 404  # not the public tier's


@pytest.fixture
def own_examples(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "hello.txt").write_text("Ana: hi\nBo: hello")
    entry = {
        "name": "hello",
        "file": "hello.txt",
        "title": "Hello",
        "category": "greeting",
        "format": "text",
        "difficulty": "easy",
        "message_count": 2,
        "demonstrates": ["two people"],
        "description": "A greeting.",
    }
    (folder / "manifest.json").write_text(json.dumps({"examples": [entry]}))
    return folder


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "own_examples" in request.fixturenames:
        return {"examples_dir": str(request.getfixturevalue("own_examples"))}
    return {}


async def test_an_operator_may_serve_its_own_examples(
    own_examples: Path, client: httpx.AsyncClient
) -> None:
    body = (await client.get("/examples")).json()
    assert [e["name"] for e in body["examples"]] == ["hello"]
    detail = problem(await client.get("/examples/debugging-session"), 404)["detail"]
    assert detail.endswith("available: hello")
