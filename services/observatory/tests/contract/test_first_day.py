"""What a new user meets first: a body sent the curl way, an empty body, and a GET of the
collection they are told to POST to."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.api.body import request_body_limit
from app.conversation.parsers import FORMATS

TEXT = "Human: Why is the sky blue?\nAI: Rayleigh scattering."


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    return body


async def test_curls_default_form_body_is_told_to_send_json(client: httpx.AsyncClient) -> None:
    # What `curl -d '{"conversation_text": …}' URL` sends: JSON labelled as a form.
    r = await client.post(
        "/api/v1/analyze",
        content=json.dumps({"conversation_text": TEXT}).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    detail = problem(r, 415)["detail"]
    assert "Content-Type: application/json" in detail
    assert "-H 'Content-Type: application/json'" in detail


async def test_a_plain_text_body_is_told_how_to_wrap_the_transcript(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/api/v1/analyze", content=TEXT.encode(), headers={"content-type": "text/plain"}
    )
    detail = problem(r, 415)["detail"]
    assert "Content-Type: application/json" in detail
    assert '{"conversation_text": "Human: ...\\nAI: ..."}' in detail


@pytest.mark.parametrize("content_type", [None, "application/json"])
@pytest.mark.parametrize("content", [b"", b"  \n"])
async def test_an_empty_body_says_what_is_required(
    client: httpx.AsyncClient, content: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/api/v1/analyze", content=content, headers=headers)
    body = problem(r, 422)
    assert body["detail"].startswith("body: the request body is empty; send a JSON object")
    for field in ("conversation_text", "messages", "data", "Content-Type: application/json"):
        assert field in body["detail"]
    assert body["errors"] == [{"loc": ["body"], "msg": body["detail"][6:], "type": "missing"}]
    # The example the detail gives is itself accepted.
    example = json.loads(body["detail"].split("e.g. ", 1)[1].split(", with the header")[0])
    assert (await client.post("/api/v1/analyze", json=example)).status_code == 202


async def test_get_of_the_collection_says_what_it_offers(
    client: httpx.AsyncClient, settings: Any
) -> None:
    r = await client.get("/api/v1/analyze")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["methods"]) == {"GET", "POST"}
    assert body["formats"] == list(FORMATS)
    assert set(body["request"]["one_of"]) == {"conversation_text", "messages", "data"}
    assert body["limits"]["max_messages"] == settings.max_messages
    assert body["limits"]["max_body_bytes"] == request_body_limit(settings)
    assert body["pattern_types"] == ["dialectic", "sentiment", "topics", "dynamics"]
    assert body["observer_modes"] == ["auto", "off", "required"]
    for link in ("/docs", "/examples", "/api/v1/analyze/batch"):
        assert link in body["links"].values()
    for name in ("/docs", "/examples", "/openapi.json"):
        assert (await client.get(name)).status_code == 200
    # Its example body is accepted as it is.
    accepted = await client.post("/api/v1/analyze", json=body["request"]["example"])
    assert accepted.status_code == 202, accepted.text


@pytest.mark.parametrize("content_type", [None, "application/json"])
async def test_a_transcript_sent_as_the_body_is_told_how_to_send_json(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/api/v1/analyze", content=TEXT.encode(), headers=headers)
    detail = problem(r, 422)["detail"]
    assert detail.startswith("body is not valid JSON at position 0")
    assert "Content-Type: application/json" in detail
    assert '{"conversation_text": "Human: ...\\nAI: ..."}' in detail
    # A slip inside JSON is only located.
    r = await client.post("/api/v1/analyze", content=b'{"conversation_text": "x",}')
    detail = problem(r, 422)["detail"]
    assert "position" in detail and "Content-Type" not in detail
