"""Batches: submit up to the limits, per-item refusals, status and items, ownership, cancel,
priority, exports, events and the aggregate (no text of any single conversation)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import orjson
import pytest

from tests.contract.test_access import bearer, new_key
from tests.workers import Release, blocking_analysis

BREAD = [
    "Baker: My sourdough starter smells sour and the loaf came out dense.\n"
    "Helper: Feed the sourdough starter twice a day and let the dough proof longer.\n"
    "Baker: The sourdough loaf rose much better with a longer proof, thanks!",
    "Ana: How long should sourdough dough proof overnight?\n"
    "Ben: About twelve hours in the fridge; a cold proof gives the sourdough loaf flavour.",
    "Kim: Is rye flour good for a sourdough starter?\n"
    "Lee: Yes, rye flour makes a lively sourdough starter; the loaf gets a darker crumb.",
    "Sam: My sourdough loaf has a gummy crumb.\n"
    "Tom: Bake the sourdough loaf longer and let it cool before cutting the crumb.",
    "Joe: What hydration for a sourdough dough?\n"
    "Max: Around seventy percent; wetter sourdough dough gives an open crumb and a good loaf.",
    "Eva: Can I use a dutch oven for sourdough?\n"
    "Ida: A dutch oven traps steam, so the sourdough loaf gets a crisp crust and full rise.",
]
UNIQUE = (
    "Zed: My xylophone zebrawood mallets squeak on the quantum glockenspiel.\n"
    "Quin: Rosin the xylophone mallets and tune the glockenspiel bars."
)


def batch(*texts: str, **options: Any) -> dict[str, Any]:
    return {
        "conversations": [{"id": f"c{i}", "text": t} for i, t in enumerate(texts)],
        "options": options,
    }


async def until_done(client: httpx.AsyncClient, batch_id: str, **headers: str) -> dict[str, Any]:
    for _ in range(600):
        r = await client.get(f"/api/v1/analyze/batch/{batch_id}", headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in ("completed", "cancelled"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not finish: {body}")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"aggregate_min_conversations": 3, "max_batch_conversations": 10}


@pytest.mark.parametrize(
    "conversations",
    [
        # the explicit id before or after the item its position would name
        [{"id": "1", "text": "A: first?\nB: yes."}, {"text": "A: second?\nB: yes."}],
        [{"text": "A: first?\nB: yes."}, {"id": "0", "text": "A: second?\nB: yes."}],
    ],
)
async def test_an_item_without_an_id_whose_position_is_taken_is_told_so(
    client: httpx.AsyncClient, conversations: list[dict[str, str]]
) -> None:
    r = await client.post("/api/v1/analyze/batch", json={"conversations": conversations})
    assert r.status_code == 202, r.text
    (refused,) = r.json()["rejected"]
    unnamed = next(i for i, c in enumerate(conversations) if "id" not in c)
    assert refused["position"] == unnamed and refused["id"] == f"#{unnamed}"
    assert "has no 'id'" in refused["error"] and "give it an 'id'" in refused["error"]
    assert "used twice" not in refused["error"]


async def test_an_item_refused_for_its_id_is_not_listed_under_another_items_id(
    client: httpx.AsyncClient,
) -> None:
    conversations = [
        {"id": "", "text": "A: first?\nB: yes."},  # refused: an empty id
        {"id": "0", "text": "A: second?\nB: yes."},
    ]
    r = await client.post("/api/v1/analyze/batch", json={"conversations": conversations})
    assert r.status_code == 202, r.text
    (refused,) = r.json()["rejected"]
    assert (refused["position"], refused["id"]) == (0, "#0")


async def test_a_batch_runs_every_item_and_refuses_bad_ones_alone(
    client: httpx.AsyncClient,
) -> None:
    body = batch(*BREAD[:3])
    body["conversations"] += [
        "not an object",
        {"id": "empty", "text": ""},
        {"id": "c0", "text": "A: duplicate id?\nB: yes."},
        {"id": "opts", "text": "A: hi\nB: hello", "options": {}},
    ]
    r = await client.post("/api/v1/analyze/batch", json=body)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert r.headers["location"] == f"/api/v1/analyze/batch/{accepted['batch_id']}"
    assert accepted["total_conversations"] == 7 and accepted["accepted"] == 3
    refused = {item["position"]: item["error"] for item in accepted["rejected"]}
    assert set(refused) == {3, 4, 5, 6}
    assert "is a str" in refused[3] and "empty" in refused[4]
    assert "used twice" in refused[5] and "options are given once" in refused[6]

    done = await until_done(client, accepted["batch_id"])
    assert done["status"] == "completed" and done["progress"] == 1.0
    assert done["counts"]["completed"] == 3 and done["counts"]["rejected"] == 4
    items = done["items"]
    assert [i["position"] for i in items] == list(range(7))
    assert [i["id"] for i in items[:3]] == ["c0", "c1", "c2"]
    for item in items[:3]:
        assert item["status"] == "completed"
        one = await client.get(f"/api/v1/analyze/{item['analysis_id']}")
        assert one.status_code == 200 and one.json()["status"] == "completed"
    assert items[3]["status"] == "rejected" and items[3]["analysis_id"] is None
    assert done["aggregate"]["conversations"] == 3
    assert sum(done["aggregate"]["tones"].values()) == 3


async def test_pages_of_items(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:5]))
    batch_id = r.json()["batch_id"]
    await until_done(client, batch_id)
    page = (await client.get(f"/api/v1/analyze/batch/{batch_id}?offset=1&limit=2")).json()
    assert [i["position"] for i in page["items"]] == [1, 2]
    assert page["page"] == {"offset": 1, "limit": 2, "returned": 2, "next_offset": 3}
    last = (await client.get(f"/api/v1/analyze/batch/{batch_id}?offset=4&limit=2")).json()
    assert last["page"]["next_offset"] is None
    r = await client.get(f"/api/v1/analyze/batch/{batch_id}?limit=1001")
    assert r.status_code == 422
    # An offset past any batch is refused, not handed to the database to overflow on.
    r = await client.get(f"/api/v1/analyze/batch/{batch_id}?offset=32589158477190044730")
    assert r.status_code == 422 and "offset" in r.text


async def test_over_the_conversation_limit_is_400_naming_it(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/analyze/batch", json=batch(*["A: hi\nB: hello"] * 11))
    assert r.status_code == 400, r.text
    assert "at most 10 conversations" in r.json()["detail"] and "11" in r.json()["detail"]


async def test_an_envelope_that_is_not_a_batch_is_422(client: httpx.AsyncClient) -> None:
    for body in (
        {"conversations": []},
        {"conversation_text": "A: hi"},
        [1, 2],
        # Options are checked strictly: 0 is not a boolean.
        {"conversations": [{"text": "A: hi\nB: hello"}], "options": {"include_insights": 0}},
    ):
        r = await client.post("/api/v1/analyze/batch", json=body)
        assert r.status_code == 422, r.text
    r = await client.post(
        "/api/v1/analyze/batch", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


async def test_any_item_is_taken_and_a_bad_one_refused_alone(client: httpx.AsyncClient) -> None:
    """The envelope's schema accepts any item (OpenAPI says so too): an item that is no
    conversation is refused on its own, with its position and reason."""
    body = {"conversations": [None, "text", {"text": 5}, {"text": "A: hi\nB: hello"}]}
    r = await client.post("/api/v1/analyze/batch", json=body)
    assert r.status_code == 202, r.text
    refused = {item["position"]: item["error"] for item in r.json()["rejected"]}
    assert sorted(refused) == [0, 1, 2] and r.json()["accepted"] == 1
    assert "is null" in refused[0] and "is a string; each" in refused[1]
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    items = schema["BatchRequest"]["properties"]["conversations"]["items"]
    assert {"$ref": "#/components/schemas/BatchConversation"} in items["anyOf"]


async def test_the_batch_collection_allows_post_only(client: httpx.AsyncClient) -> None:
    """``/api/v1/analyze/batch`` also fits ``/api/v1/analyze/{analysis_id}``; its 405 names
    the methods of the batch collection, not of that template."""
    r = await client.request("OPTIONS", "/api/v1/analyze/batch")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


@pytest.mark.parametrize("settings_overrides", [{"max_batch_bytes": 1024}])
async def test_over_the_byte_limit_is_413(client: httpx.AsyncClient) -> None:
    text = "A: " + "x" * (1024 * 1024 + 4096)
    r = await client.post("/api/v1/analyze/batch", json=batch(text))
    assert r.status_code == 413, r.text


async def test_another_principal_gets_404_everywhere(client: httpx.AsyncClient, app: Any) -> None:
    owner, other = await new_key(app), await new_key(app)
    r = await client.post(
        "/api/v1/analyze/batch", json=batch(*BREAD[:2]), headers=bearer(owner.secret)
    )
    batch_id = r.json()["batch_id"]
    base = f"/api/v1/analyze/batch/{batch_id}"
    for headers in (bearer(other.secret), {}):
        assert (await client.get(base, headers=headers)).status_code == 404
        assert (await client.get(f"{base}?format=jsonl", headers=headers)).status_code == 404
        assert (await client.get(f"{base}/events", headers=headers)).status_code == 404
        assert (await client.post(f"{base}/cancel", headers=headers)).status_code == 404
        r = await client.post(f"{base}/priority", json={"priority": "high"}, headers=headers)
        assert r.status_code == 404
    done = await until_done(client, batch_id, **bearer(owner.secret))
    item = done["items"][0]["analysis_id"]
    assert (
        await client.get(f"/api/v1/analyze/{item}", headers=bearer(other.secret))
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/analyze/{item}", headers=bearer(owner.secret))
    ).status_code == 200


async def test_cancel_stops_queued_and_running_items(client: httpx.AsyncClient, app: Any) -> None:
    release = Release()
    app.state.service.queue._ctx.analyze_fn = blocking_analysis(release)
    r = await client.post("/api/v1/analyze/batch", json=batch(*BREAD))
    batch_id = r.json()["batch_id"]
    base = f"/api/v1/analyze/batch/{batch_id}"
    for _ in range(100):
        if (await client.get(base)).json()["counts"]["processing"]:
            break
        await asyncio.sleep(0.05)
    # Cancels that race: one wins and counts the items, the others are told it is done.
    answers = await asyncio.gather(*(client.post(f"{base}/cancel") for _ in range(5)))
    won = [r for r in answers if r.status_code == 200]
    assert len(won) == 1 and won[0].json()["cancelled"] == 6, [r.text for r in answers]
    assert sorted(r.status_code for r in answers) == [200, 409, 409, 409, 409]
    release.set()
    done = await until_done(client, batch_id)
    assert done["status"] == "cancelled" and done["counts"]["cancelled"] == 6
    assert done["aggregate"]["conversations"] == 0
    await asyncio.sleep(0.3)  # nothing is stored after the cancel
    again = (await client.get(base)).json()
    assert again["counts"]["cancelled"] == 6 and again["counts"]["completed"] == 0
    r = await client.post(f"{base}/cancel")
    assert r.status_code == 409 and "already been cancelled" in r.json()["detail"]


@pytest.mark.parametrize(
    "settings_overrides", [{"worker_concurrency": 1, "aggregate_min_conversations": 3}]
)
async def test_priority_moves_what_is_still_queued(client: httpx.AsyncClient, app: Any) -> None:
    release = Release()
    queue = app.state.service.queue
    queue._ctx.analyze_fn = blocking_analysis(release)
    low = (
        await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:3], priority="low"))
    ).json()
    normal = (await client.post("/api/v1/analyze/batch", json=batch(*BREAD[3:5]))).json()
    r = await client.post(
        f"/api/v1/analyze/batch/{low['batch_id']}/priority", json={"priority": "high"}
    )
    assert r.status_code == 200, r.text
    # The first low item may already run (one worker); the others are queued and move.
    assert r.json()["moved"] >= 2
    order: list[str] = []
    queue.on_finished = _recorder(queue.on_finished, order)
    release.set()
    await until_done(client, low["batch_id"])
    await until_done(client, normal["batch_id"])
    low_ids = {
        i["analysis_id"]
        for i in (await client.get(f"/api/v1/analyze/batch/{low['batch_id']}")).json()["items"]
    }
    # Every item of the reprioritised batch ended before the normal batch's items.
    assert set(order[:3]) == low_ids, order
    r = await client.post(
        f"/api/v1/analyze/batch/{low['batch_id']}/priority", json={"priority": "urgent"}
    )
    assert r.status_code == 422
    # Once a batch has ended nothing of it is queued: 409, and its options stay.
    r = await client.post(
        f"/api/v1/analyze/batch/{low['batch_id']}/priority", json={"priority": "low"}
    )
    assert r.status_code == 409 and "ended" in r.json()["detail"]


def _recorder(hook: Any, order: list[str]) -> Any:
    async def record(analysis_id: str) -> None:
        order.append(analysis_id)
        if hook is not None:
            await hook(analysis_id)

    return record


async def test_exports_hold_every_item(client: httpx.AsyncClient) -> None:
    body = batch(*BREAD[:2])
    body["conversations"].append({"id": "=cmd|' /C calc'!A0", "text": ""})
    batch_id = (await client.post("/api/v1/analyze/batch", json=body)).json()["batch_id"]
    await until_done(client, batch_id)
    base = f"/api/v1/analyze/batch/{batch_id}"

    r = await client.get(f"{base}?format=jsonl")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [line["status"] for line in lines] == ["completed", "completed", "rejected"]
    assert lines[0]["result"]["patterns"]["sentiment"]["overall_tone"]
    assert "result" not in lines[2]

    r = await client.get(f"{base}?format=csv")
    assert r.headers["content-disposition"] == f'attachment; filename="batch-{batch_id}.csv"'
    header, *rows = r.text.splitlines()
    assert header.startswith("item_position,item_id,analysis_id,item_status,")
    assert rows and all(not row.split(",")[1].startswith("=") for row in rows)

    r = await client.get(f"{base}?format=markdown")
    assert r.text.startswith(f"# Batch {batch_id}") and "## Item 2" in r.text


async def test_events_end_with_the_aggregate(client: httpx.AsyncClient) -> None:
    batch_id = (await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:3]))).json()[
        "batch_id"
    ]
    events: list[tuple[str, Any]] = []
    async with client.stream("GET", f"/api/v1/analyze/batch/{batch_id}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[0][0] == "progress" and events[-1][0] == "aggregate"
    assert events[-2][1]["status"] == "completed" and events[-2][1]["progress"] == 1.0
    assert events[-1][1]["conversations"] == 3


async def test_the_aggregate_shows_no_text_of_any_single_conversation(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/api/v1/analyze/batch", json=batch(*BREAD, UNIQUE))
    done = await until_done(client, r.json()["batch_id"])
    aggregate = done["aggregate"]
    assert aggregate["conversations"] == 7 and aggregate["k"] == 3
    assert aggregate["themes"], aggregate
    assert any("sourdough" in theme["terms"] for theme in aggregate["themes"])
    assert all(theme["conversations"] >= 3 for theme in aggregate["themes"])
    text = orjson.dumps(aggregate).decode().lower()
    for word in ("xylophone", "zebrawood", "glockenspiel", "mallets", "quantum", "rosin"):
        assert word not in text
    assert "excerpt" not in text and "baker" not in text


async def test_a_batch_is_one_request_against_the_limits(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:2]))
    assert r.status_code == 202
    assert "x-ratelimit-limit" in r.headers


async def test_what_no_database_should_see_is_refused_before_it(
    client: httpx.AsyncClient,
) -> None:
    """NUL and other unseen characters in ids, formats and field names: refused alone with
    a reason that shows them as U+FFFD (PostgreSQL text cannot hold NUL); an id that is
    not one of ours is 404 before any query."""
    body = {
        "conversations": [
            {"id": "a\u0000b", "text": "A: hi\nB: hello"},
            {"id": "\u202eevil", "text": "A: hi\nB: hello"},
            {"id": "ok", "text": "A: hi\nB: hello", "format": "te\u0000xt"},
            {"id": "ok2", "text": "A: hi\nB: hello", "x\u0000": 1},
            {"id": 1e308, "text": "A: hi\nB: hello"},
            {"id": "fine", "text": "A: hi\nB: hello"},
        ]
    }
    r = await client.post("/api/v1/analyze/batch", json=body)
    assert r.status_code == 202, r.text
    refused = {item["position"]: item["error"] for item in r.json()["rejected"]}
    assert sorted(refused) == [0, 1, 2, 3, 4] and r.json()["accepted"] == 1
    assert "control or formatting character" in refused[0] and "\u0000" not in r.text
    assert "\ufffd" in refused[2] and "\ufffd" in refused[3]
    assert "a non-integer number" in refused[4]
    batch_id = r.json()["batch_id"]
    export = await client.get(f"/api/v1/analyze/batch/{batch_id}?format=csv")
    assert export.status_code == 200 and "\u0000" not in export.text
    for path in (
        "/api/v1/analyze/%00",
        "/api/v1/analyze/%00/events",
        "/api/v1/analyze/batch/%00",
        "/api/v1/analyze/batch/a%00b/events",
        "/api/v1/analyze/not-a-uuid",
    ):
        assert (await client.get(path)).status_code == 404, path
    for path in ("/api/v1/analyze/%00/cancel", "/api/v1/analyze/batch/%00/cancel"):
        assert (await client.post(path)).status_code == 404, path
    assert (await client.delete("/api/v1/analyze/%00")).status_code == 404
