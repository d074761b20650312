"""An id a client gives once is never reported as "used twice" because an item before it,
without an id, is named by its position."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"aggregate_min_conversations": 3, "max_batch_conversations": 10}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_an_id_given_once_after_an_item_named_by_its_position_is_not_called_a_duplicate(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "conversations": [
            {"text": "A: first?\nB: yes."},  # no id: named "0" by its position
            {"id": "0", "text": "A: second?\nB: yes."},  # the client's only "0"
        ]
    }
    r = await client.post("/api/v1/analyze/batch", json=body)
    assert r.status_code == 202, r.text
    (refused,) = r.json()["rejected"]
    # Expected: the clash is explained (the item without an id is named by its position),
    # as it is when the id comes first; seen: the client is told it used id '0' twice.
    assert "used twice" not in refused["error"], refused


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_an_item_refused_for_its_id_is_not_listed_under_another_items_id(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "conversations": [
            {"id": "", "text": "A: first?\nB: yes."},  # refused: an empty id
            {"id": "0", "text": "A: second?\nB: yes."},
        ]
    }
    r = await client.post("/api/v1/analyze/batch", json=body)
    assert r.status_code == 202, r.text
    (refused,) = r.json()["rejected"]
    # Expected: the refused item is not reported under "0", the id the client gave the
    # accepted one; seen: both items answer to "0".
    assert refused["id"] != "0", r.json()
