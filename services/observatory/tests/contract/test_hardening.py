"""Error paths that used to answer 500 or the wrong thing: each is a clear 4xx problem+json."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

TEXT = "Human: Is it raining?\nAI: No, it is sunny."


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    return body


def raw(text: str) -> bytes:
    """A JSON body written by hand, so it can hold escapes a JSON encoder would not make."""
    return text.encode()


@pytest.mark.parametrize(
    "body",
    [
        '{"conversation_text": "Human: hi\\nAI: hello", "format": "\\ud800"}',
        '{"data": {"\\ud800": 1}}',
        '{"messages": [{"id": "\\ud800", "role": "user", "content": "hi"}]}',
        '{"data": {"mapping": {"\\ud800": {}}, "current_node": "\\ud800"}}',
    ],
    ids=["format", "data-key", "message-id", "chatgpt-mapping-key"],
)
async def test_lone_surrogates_in_the_body_are_400_not_500(
    client: httpx.AsyncClient, body: str
) -> None:
    r = await client.post(
        "/api/v1/analyze", content=raw(body), headers={"content-type": "application/json"}
    )
    detail = problem(r, 400)["detail"]
    assert "surrogate" in detail and "valid Unicode" in detail


@pytest.mark.parametrize(
    "text",
    [
        # JSON pasted into conversation_text is decoded by the parser, which keeps the
        # surrogate: the error that quotes it must still encode.
        '{"mapping": {"\\ud800x": {"message": 1}}, "current_node": "\\ud800x"}',
        '{"chat_messages": [{"sender": "\\ud800", "text": "hi"}]}',
    ],
    ids=["chatgpt", "claude"],
)
async def test_errors_that_quote_a_surrogate_still_encode(
    client: httpx.AsyncClient, text: str
) -> None:
    r = await client.post("/api/v1/analyze", json={"conversation_text": text})
    problem(r, 400)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-custom"])
async def test_compressed_bodies_are_refused_with_415(
    client: httpx.AsyncClient, encoding: str
) -> None:
    r = await client.post(
        "/api/v1/analyze",
        content=json.dumps({"conversation_text": TEXT}).encode(),
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    detail = problem(r, 415)["detail"]
    assert f"Content-Encoding '{encoding}' is not supported" in detail and "uncompressed" in detail


async def test_identity_encoding_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/analyze",
        content=json.dumps({"conversation_text": TEXT}).encode(),
        headers={"content-type": "application/json", "content-encoding": "identity"},
    )
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        ("application/json; charset=utf-16", "charset 'utf-16' is not supported"),
        ("application/json; charset=latin-1", "charset 'latin-1' is not supported"),
        ("text/plain", "Content-Type 'text/plain' is not supported"),
        ("application/x-www-form-urlencoded", "send the body as application/json"),
    ],
)
async def test_non_json_or_non_utf8_bodies_are_refused_with_415(
    client: httpx.AsyncClient, content_type: str, says: str
) -> None:
    r = await client.post(
        "/api/v1/analyze",
        content=json.dumps({"conversation_text": TEXT}).encode(),
        headers={"content-type": content_type},
    )
    assert says in problem(r, 415)["detail"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=UTF-8", "application/json;charset=utf8", None]
)
async def test_utf8_json_is_accepted_however_it_is_labelled(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post(
        "/api/v1/analyze",
        content=json.dumps({"conversation_text": TEXT}).encode(),
        headers=headers,
    )
    assert r.status_code == 202, r.text


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    r = await client.put("/api/v1/analyze/abc")
    problem(r, 405)
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert allowed == {"GET", "DELETE"}
    # Every method Allow names really answers (not 405).
    assert (await client.request("GET", "/api/v1/analyze/abc")).status_code == 404
    assert "PUT is not allowed" in r.json()["detail"]


async def test_claude_export_with_an_unknown_sender_is_refused(client: httpx.AsyncClient) -> None:
    data = {
        "chat_messages": [
            {"sender": "human", "text": "Hi"},
            {"sender": "robot", "text": "Beep"},
        ]
    }
    r = await client.post("/api/v1/analyze", json={"data": data})
    detail = problem(r, 400)["detail"]
    assert "chat_messages[1]" in detail and "'robot'" in detail and "'assistant'" in detail


async def test_invalid_json_is_422_with_the_position(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/analyze",
        content=b'{"conversation_text": ',
        headers={"content-type": "application/json"},
    )
    body = problem(r, 422)
    assert "not valid JSON at position" in body["detail"] and body["errors"]


async def test_openapi_declares_problem_responses_and_exactly_one_input(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    post = doc["paths"]["/api/v1/analyze"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AnalyzeRequest"
    )
    request = doc["components"]["schemas"]["AnalyzeRequest"]
    assert [alt["required"] for alt in request["oneOf"]] == [
        ["conversation_text"],
        ["messages"],
        ["data"],
    ]
    for name, path in doc["paths"].items():
        for method, operation in path.items():
            if method == "post" and name.startswith("/api/"):
                # What the body-limit middleware answers, on every operation it guards.
                assert {"400", "408", "413", "415"} <= set(operation["responses"]), name
            for code, response in operation["responses"].items():
                if (name, code) == ("/health/ready", "503"):
                    # Not an error document: the readiness report, with what is down.
                    assert response["content"]["application/json"]["schema"]["$ref"].endswith(
                        "/Readiness"
                    )
                elif code.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        code,
                        operation["summary"],
                    )
                    schema = response["content"]["application/problem+json"]["schema"]
                    model = "ValidationProblem" if code == "422" else "Problem"
                    assert schema["$ref"].endswith(f"/{model}"), (code, name)
