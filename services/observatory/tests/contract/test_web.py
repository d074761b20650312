"""The page at ``/`` and its assets: served by the service, under a strict CSP that /docs
does not get; the transcript endpoint the page shows beside a result."""

from __future__ import annotations

import re

import httpx
import pytest

from app.web.endpoints import STATIC

ASSETS = sorted(
    p.relative_to(STATIC / "assets").as_posix() for p in (STATIC / "assets").rglob("*.*")
)


async def test_the_page_and_every_asset_carry_the_strict_policy(client: httpx.AsyncClient) -> None:
    for path in ["/", *(f"/assets/{a}" for a in ASSETS)]:
        r = await client.get(path)
        assert r.status_code == 200, path
        policy = r.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
        assert "unsafe" not in policy, path
        assert "require-trusted-types-for 'script'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"
    assert (await client.head("/")).status_code == 200


async def test_the_page_holds_no_inline_script_style_or_foreign_url() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), "inline style or handler"
    for asset in ASSETS:
        text = (STATIC / "assets" / asset).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), asset
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, asset


@pytest.mark.parametrize("path", ["/openapi.json", "/health"])
async def test_other_routes_keep_their_own_headers(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    assert "content-security-policy" not in r.headers  # /docs has its own (test_apidocs.py)


async def test_an_unknown_asset_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/assets/nothing.js")).status_code == 404
    assert (await client.get("/assets/../endpoints.py")).status_code == 404


async def test_transcript_indexes_messages_like_the_analysis(client: httpx.AsyncClient) -> None:
    text = "Human: mail me at ana@example.com <script>x</script>\nAI: Sure.\n  more\nHuman: ok?"
    r = await client.post("/api/v1/transcript", json={"conversation_text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == "text" and body["speakers"] == ["Human", "AI"]
    assert [(m["index"], m["speaker"], m["role"]) for m in body["messages"]] == [
        (0, "Human", "human"),
        (1, "AI", "ai"),
        (2, "Human", "human"),
    ]
    assert body["messages"][0]["text"] == "mail me at [email] <script>x</script>"
    assert body["messages"][1]["text"] == "Sure.\n  more"


async def test_transcript_speaker_names_match_the_result(client: httpx.AsyncClient) -> None:
    body = {
        "messages": [
            {"speaker": "ana@example.com", "text": "why?"},
            {"role": "assistant", "content": "because."},
            {"speaker": "bo@example.com", "text": "fine."},
        ]
    }
    names = (await client.post("/api/v1/transcript", json=body)).json()["speakers"]
    r = await client.post("/api/v1/analyze", json=body, headers={"Prefer": "wait=10"})
    assert r.status_code == 200, r.text
    assert names == ["[email]", "AI", "[email] (2)"]
    assert sorted(names) == sorted(r.json()["patterns"]["dynamics"]["speakers"])


@pytest.mark.parametrize(
    ("body", "status"),
    [({"conversation_text": ""}, 400), ({"conversation_text": 3}, 422), ({}, 400)],
)
async def test_transcript_refuses_what_analyze_refuses(
    client: httpx.AsyncClient, body: dict[str, object], status: int
) -> None:
    assert (await client.post("/api/v1/transcript", json=body)).status_code == status
    assert (await client.post("/api/v1/analyze", json=body)).status_code == status
