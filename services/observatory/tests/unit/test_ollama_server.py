"""The Ollama-protocol test server, driven over real HTTP with httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.ollama_server import OllamaTestServer, Script

DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
COUNTS = ("prompt_eval_count", "eval_count")


@pytest.fixture
def server() -> Iterator[OllamaTestServer]:
    with OllamaTestServer(models=["observer"]) as running:
        yield running
    assert running.server_errors == []


@pytest.fixture
def client(server: OllamaTestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def chat_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "observer",
        "messages": [
            {"role": "system", "content": "Reply in JSON."},
            {"role": "user", "content": "Alice: hi\nBob: hello"},
        ],
    }
    body.update(overrides)
    return body


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> float:
    """Seconds it took for ``condition`` to hold; fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition still false after {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - started


# -- the small endpoints


def test_root_says_ollama_is_running(client: httpx.Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.text == "Ollama is running"


def test_version_is_the_configured_one(server: OllamaTestServer, client: httpx.Client) -> None:
    assert client.get("/api/version").json() == {"version": "0.13.0"}

    server.version = "0.12.11"
    assert client.get("/api/version").json() == {"version": "0.12.11"}


def test_tags_list_each_model_with_its_tag(client: httpx.Client) -> None:
    models = client.get("/api/tags").json()["models"]

    assert [model["name"] for model in models] == ["observer:latest"]
    entry = models[0]
    assert entry["model"] == "observer:latest"
    assert entry["size"] > 0
    assert len(entry["digest"]) == 64
    assert entry["modified_at"].endswith("Z")
    assert entry["details"]["format"] == "gguf"
    assert entry["details"]["quantization_level"] == "Q4_1"


@pytest.mark.parametrize("name", ["observer", "observer:latest", "Observer", "library/observer"])
def test_show_describes_a_model_under_any_spelling_of_its_name(
    client: httpx.Client, name: str
) -> None:
    response = client.post("/api/show", json={"model": name})

    assert response.status_code == 200
    shown = response.json()
    assert {"modelfile", "parameters", "template", "details", "model_info"} <= shown.keys()
    assert "completion" in shown["capabilities"]
    assert shown["details"]["family"] == "llama"


def test_show_of_an_unknown_model_is_404(client: httpx.Client) -> None:
    response = client.post("/api/show", json={"model": "llama3.2"})

    assert response.status_code == 404
    assert response.json() == {"error": "model 'llama3.2' not found"}


def test_show_without_a_model_is_400(client: httpx.Client) -> None:
    response = client.post("/api/show", json={})

    assert response.status_code == 400
    assert response.json() == {"error": "model is required"}


def test_unknown_paths_are_404_like_ollama(client: httpx.Client) -> None:
    response = client.get("/api/nothing")

    assert response.status_code == 404
    assert response.text == "404 page not found"


# -- /api/chat replies


def test_chat_streams_ndjson_unless_told_otherwise(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script({"topics": ["taxes"], "confidence": 0.5})

    response = client.post("/api/chat", json=chat_body())

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    *chunks, final = ndjson(response)
    assert chunks
    assert all(chunk["done"] is False for chunk in chunks)
    assert all(chunk["model"] == "observer" for chunk in chunks)
    assert all(chunk["message"]["role"] == "assistant" for chunk in chunks)
    content = "".join(chunk["message"]["content"] for chunk in chunks)
    assert json.loads(content) == {"topics": ["taxes"], "confidence": 0.5}
    assert final["done"] is True
    assert final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    for key in (*DURATIONS, *COUNTS):
        assert isinstance(final[key], int)
        assert final[key] > 0


def test_chat_without_streaming_answers_one_object(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script("plain words, not JSON")

    response = client.post("/api/chat", json=chat_body(stream=False))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    reply = response.json()
    assert reply["message"] == {"role": "assistant", "content": "plain words, not JSON"}
    assert reply["done"] is True
    assert reply["done_reason"] == "stop"
    assert reply["created_at"].endswith("Z")
    for key in (*DURATIONS, *COUNTS):
        assert reply[key] > 0
    assert "logprobs" not in reply


def test_replies_are_served_in_the_order_they_were_scripted(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script("first", {"n": 2})
    server.script(Script(content=["third"]))

    contents = [
        client.post("/api/chat", json=chat_body(stream=False)).json()["message"]["content"]
        for _ in range(3)
    ]

    assert contents == ["first", '{"n": 2}', '["third"]']
    assert server.pending_replies == 0


def test_requests_are_recorded_in_arrival_order(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script("a", "b")

    client.post("/api/chat", json=chat_body(stream=False, options={"seed": 1}))
    client.post("/api/chat", json=chat_body(stream=False, options={"seed": 2}))

    assert [request["options"]["seed"] for request in server.requests] == [1, 2]


def test_default_reply_answers_from_the_request_when_nothing_is_queued(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.default_reply = lambda request: {"echo": request["messages"][-1]["content"]}
    server.script("queued first")

    first = client.post("/api/chat", json=chat_body(stream=False)).json()
    second = client.post("/api/chat", json=chat_body(stream=False)).json()

    assert first["message"]["content"] == "queued first"
    assert json.loads(second["message"]["content"]) == {"echo": "Alice: hi\nBob: hello"}


def test_an_unscripted_request_is_a_server_error(client: httpx.Client) -> None:
    response = client.post("/api/chat", json=chat_body(stream=False))

    assert response.status_code == 500
    assert "no reply is scripted" in response.json()["error"]


def test_no_messages_loads_the_model(client: httpx.Client) -> None:
    loaded = client.post("/api/chat", json=chat_body(messages=[]))
    unloaded = client.post("/api/chat", json=chat_body(messages=[], keep_alive=0))

    assert loaded.json()["done_reason"] == "load"
    assert unloaded.json()["done_reason"] == "unload"


def test_done_reason_and_token_counts_follow_the_script(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content='{"topics": [', done_reason="length", eval_count=7))
    server.script(Script(content="x", prompt_eval_count=11, eval_count=1))

    cut = ndjson(client.post("/api/chat", json=chat_body()))[-1]
    counted = client.post("/api/chat", json=chat_body(stream=False)).json()

    assert cut["done_reason"] == "length"
    assert cut["eval_count"] == 7
    assert counted["prompt_eval_count"] == 11
    assert counted["eval_count"] == 1


# -- model names


@pytest.mark.parametrize("name", ["observer", "observer:latest", "OBSERVER:Latest"])
def test_chat_accepts_the_model_under_any_spelling_of_its_name(
    server: OllamaTestServer, client: httpx.Client, name: str
) -> None:
    server.script("ok")

    response = client.post("/api/chat", json=chat_body(model=name, stream=False))

    assert response.status_code == 200
    assert response.json()["model"] == name


@pytest.mark.parametrize("name", ["observer:7b", "llama3.2"])
def test_chat_with_an_unknown_model_is_404(client: httpx.Client, name: str) -> None:
    response = client.post("/api/chat", json=chat_body(model=name))

    assert response.status_code == 404
    assert response.json() == {"error": f'model "{name}" not found, try pulling it first'}


# -- malformed requests


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"model": ""}, "model is required"),
        ({"messages": "hello"}, "cannot unmarshal string"),
        ({"messages": ["hello"]}, "cannot unmarshal string"),
        ({"messages": [{"role": "user", "content": 5}]}, "cannot unmarshal number"),
        ({"messages": [{"role": "human", "content": "hi"}]}, "invalid role 'human'"),
        ({"messages": [{"content": "hi"}]}, "invalid role ''"),
        ({"stream": "yes"}, "cannot unmarshal string"),
        ({"options": [1, 2]}, "cannot unmarshal array"),
        ({"options": {"temperature": "hot"}}, 'option "temperature"'),
        ({"options": {"num_predict": 1.5, "stop": "x"}}, 'option "stop"'),
        ({"format": "xml"}, "invalid format"),
        ({"format": 42}, "invalid format"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs must be between 0 and 20"),
        ({"think": True}, "does not support thinking"),
        ({"tools": [{"type": "function"}]}, "does not support tools"),
    ],
)
def test_malformed_chat_requests_are_400(
    client: httpx.Client, overrides: dict[str, Any], fragment: str
) -> None:
    response = client.post("/api/chat", json=chat_body(**overrides))

    assert response.status_code == 400
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "missing request body"),
        (b"{not json", "invalid character"),
        (b"[1, 2]", "cannot unmarshal array"),
    ],
)
def test_unreadable_bodies_are_400(client: httpx.Client, content: bytes, error: str) -> None:
    response = client.post("/api/chat", content=content)

    assert response.status_code == 400
    assert error in response.json()["error"]


def test_a_refused_request_does_not_use_up_a_scripted_reply(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script("for the valid request")

    refused = client.post("/api/chat", json=chat_body(format="xml"))
    served = client.post("/api/chat", json=chat_body(stream=False))

    assert refused.status_code == 400
    assert served.json()["message"]["content"] == "for the valid request"
    assert len(server.requests) == 2


def test_json_and_schema_formats_are_accepted(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script("{}", "{}")
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}}

    as_json = client.post("/api/chat", json=chat_body(format="json", stream=False))
    as_schema = client.post("/api/chat", json=chat_body(format=schema, stream=False))

    assert as_json.status_code == as_schema.status_code == 200
    assert server.requests[1]["format"] == schema


# -- errors


def test_a_scripted_error_has_its_status_and_ollamas_error_shape(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(status=503, error="server busy"), Script(error="out of memory"))

    busy = client.post("/api/chat", json=chat_body())
    broken = client.post("/api/chat", json=chat_body())

    assert (busy.status_code, busy.json()) == (503, {"error": "server busy"})
    assert (broken.status_code, broken.json()) == (500, {"error": "out of memory"})


def test_a_stream_error_arrives_as_one_line_after_a_200(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content='{"topics": ["a"', stream_error="model runner crashed"))

    response = client.post("/api/chat", json=chat_body())

    assert response.status_code == 200
    *chunks, last = ndjson(response)
    assert chunks
    assert not any(chunk["done"] for chunk in chunks)
    assert last == {"error": "model runner crashed"}


def test_a_stream_error_without_streaming_is_a_500(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content="partial", stream_error="model runner crashed"))

    response = client.post("/api/chat", json=chat_body(stream=False))

    assert response.status_code == 500
    assert response.json() == {"error": "model runner crashed"}


# -- log-probabilities


SCRIPTED_LOGPROBS = [
    {
        "token": '{"',
        "logprob": -0.1,
        "top_logprobs": [
            {"token": "{", "logprob": -2.5},
            {"token": '{"', "logprob": -0.1},
            {"token": "[", "logprob": -4.0},
        ],
    },
    {"token": 'a":1}', "logprob": -0.7, "top_logprobs": [{"token": 'a":1}', "logprob": -0.7}]},
]


def test_logprobs_are_sent_only_when_asked_for(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(*[Script(content='{"a":1}', logprobs=SCRIPTED_LOGPROBS)] * 2)

    without = client.post("/api/chat", json=chat_body(stream=False)).json()
    asked = client.post("/api/chat", json=chat_body(stream=False, logprobs=True)).json()

    assert "logprobs" not in without
    assert [entry["token"] for entry in asked["logprobs"]] == ['{"', 'a":1}']
    assert [entry["logprob"] for entry in asked["logprobs"]] == [-0.1, -0.7]
    # Go's omitempty: no alternatives were requested, so the key is absent.
    assert all("top_logprobs" not in entry for entry in asked["logprobs"])


def test_top_logprobs_are_cut_to_the_requested_number_best_first(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content='{"a":1}', logprobs=SCRIPTED_LOGPROBS))

    reply = client.post(
        "/api/chat", json=chat_body(stream=False, logprobs=True, top_logprobs=2)
    ).json()

    first = reply["logprobs"][0]["top_logprobs"]
    assert [alternative["token"] for alternative in first] == ['{"', "{"]


def test_streamed_logprobs_travel_with_their_tokens(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content='{"a":1}', logprobs=SCRIPTED_LOGPROBS))

    *chunks, final = ndjson(client.post("/api/chat", json=chat_body(logprobs=True)))

    assert [chunk["message"]["content"] for chunk in chunks] == ['{"', 'a":1}']
    assert [chunk["logprobs"][0]["token"] for chunk in chunks] == ['{"', 'a":1}']
    assert "logprobs" not in final
    assert final["eval_count"] == 2


def test_unscripted_logprobs_are_made_up_for_every_token(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script("one two three four")

    reply = client.post(
        "/api/chat", json=chat_body(stream=False, logprobs=True, top_logprobs=5)
    ).json()

    entries = reply["logprobs"]
    assert "".join(entry["token"] for entry in entries) == "one two three four"
    assert len(entries) == reply["eval_count"]
    for entry in entries:
        assert entry["logprob"] <= 0
        assert len(entry["top_logprobs"]) == 5
        assert all(alternative["logprob"] <= 0 for alternative in entry["top_logprobs"])


# -- time and connections


def test_a_delay_holds_the_reply_back(server: OllamaTestServer, client: httpx.Client) -> None:
    server.script(Script(content="late", delay=0.4))

    started = time.monotonic()
    response = client.post("/api/chat", json=chat_body(stream=False))

    assert response.json()["message"]["content"] == "late"
    assert time.monotonic() - started >= 0.4


def test_a_dropped_connection_gets_no_response(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(drop_connection=True), "after the drop")

    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/api/chat", json=chat_body())
    recovered = client.post("/api/chat", json=chat_body(stream=False))

    assert recovered.json()["message"]["content"] == "after the drop"
    assert len(server.requests) == 2


def test_a_stream_dropped_midway_never_reaches_its_final_line(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content="one two three four five six", drop_mid_stream=True))
    received: list[dict[str, Any]] = []

    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/api/chat", json=chat_body()) as response,
    ):
        received.extend(json.loads(line) for line in response.iter_lines() if line)

    assert 0 < len(received) < 6
    assert not any(line["done"] for line in received)


def test_a_reply_dropped_midway_without_streaming_is_cut_short(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content="one two three", drop_mid_stream=True))

    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/api/chat", json=chat_body(stream=False))


def test_max_concurrent_counts_requests_that_overlap(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(*[Script(content="slow", delay=0.5)] * 3)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(client.post, "/api/chat", json=chat_body(stream=False)) for _ in range(3)
        ]
        statuses = [future.result().status_code for future in futures]

    assert statuses == [200, 200, 200]
    assert server.max_concurrent == 3
    # A handler leaves the count just after its last byte, so allow it a moment.
    wait_until(lambda: server.open_connections == 0)


def test_a_client_hanging_up_during_a_delay_frees_its_connection(
    server: OllamaTestServer,
) -> None:
    server.script(Script(content="too late", delay=5.0))

    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(5.0, read=0.3)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/api/chat", json=chat_body())
    freed_after = wait_until(lambda: server.open_connections == 0)

    assert server.max_concurrent == 1
    assert freed_after < 2.0  # long before the 5 s delay would have ended
    assert server.disconnects == 1


def test_a_client_hanging_up_mid_stream_frees_its_connection(
    server: OllamaTestServer, client: httpx.Client
) -> None:
    server.script(Script(content="one two three four", chunk_delay=2.0))

    with client.stream("POST", "/api/chat", json=chat_body()) as response:
        first = json.loads(next(response.iter_lines()))
    freed_after = wait_until(lambda: server.open_connections == 0)

    assert first["message"]["content"] == "one"
    assert freed_after < 1.5
    assert server.disconnects == 1


def test_stopping_the_server_ends_requests_in_flight() -> None:
    server = OllamaTestServer().start()
    server.script(Script(content="never", delay=30.0))

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(httpx.post, f"{server.url}/api/chat", json=chat_body(), timeout=10)
        wait_until(lambda: server.open_connections == 1)
        started = time.monotonic()
        server.stop()
        stopped_in = time.monotonic() - started
        with pytest.raises(httpx.RemoteProtocolError):
            pending.result()

    assert stopped_in < 2.0
