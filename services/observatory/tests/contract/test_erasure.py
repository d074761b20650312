"""Erasure: one analysis leaves a tombstone and nothing of its content (not even in the
SQLite WAL); an owner can erase everything it created; the tombstone goes with retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.analyses.models import Analysis
from app.batches.models import Batch
from app.retention import service as retention
from tests.contract.test_access import bearer, new_key
from tests.contract.test_analyze import submit
from tests.contract.test_batches import BREAD, batch, until_done

TEXT = "Oona: The lighthouse lamp flickers at dusk.\nPiet: Then we swap the lighthouse relay."


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "aggregate_min_conversations": 3}


async def row(app: Any, analysis_id: str) -> Analysis | None:
    async with app.state.service.sessions() as session:
        return await session.get(Analysis, analysis_id)


async def test_an_erased_analysis_leaves_a_tombstone_only(
    client: httpx.AsyncClient, app: Any, backend: str, tmp_path: Path
) -> None:
    done = (await submit(client, {"conversation_text": TEXT}, wait=10)).json()
    analysis_id, fingerprint = done["id"], done["fingerprint"]
    assert done["status"] == "completed"
    r = await client.delete(f"/api/v1/analyze/{analysis_id}")
    assert r.status_code == 204
    stone = await row(app, analysis_id)
    assert stone is not None and stone.status == "deleted" and stone.deleted_at is not None
    assert stone.result is None and stone.fingerprint == "" and stone.options == {}
    assert stone.message_count == 0 and stone.created_at is not None
    for path in (f"/api/v1/analyze/{analysis_id}", f"/api/v1/analyze/{analysis_id}/events"):
        assert (await client.get(path)).status_code == 404
    assert (await client.delete(f"/api/v1/analyze/{analysis_id}")).status_code == 404
    if backend == "sqlite":
        # secure_delete and a checkpoint: neither the database nor its WAL keeps the
        # fingerprint that was erased.
        for name in ("observatory.db", "observatory.db-wal"):
            file = tmp_path / name
            if file.exists():
                assert fingerprint.encode() not in file.read_bytes(), name
    # The tombstone goes when the metadata period ends.
    state = app.state.service
    later = stone.created_at + timedelta(days=91)
    removed = await retention.run(state.engine, state.sessions, state.settings, now=later)
    assert removed.analyses == 1 and await row(app, analysis_id) is None


async def test_an_owner_erases_everything_it_created(client: httpx.AsyncClient, app: Any) -> None:
    mine, theirs = bearer((await new_key(app)).secret), bearer((await new_key(app)).secret)
    own = [
        (
            await client.post("/api/v1/analyze", json={"conversation_text": TEXT}, headers=mine)
        ).json()["id"]
        for _ in range(2)
    ]
    batch_id = (
        await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:3]), headers=mine)
    ).json()["batch_id"]
    await until_done(client, batch_id, **mine)
    other = (
        await client.post("/api/v1/analyze", json={"conversation_text": TEXT}, headers=theirs)
    ).json()["id"]

    r = await client.delete("/api/v1/analyze", headers=mine)
    assert r.status_code == 200, r.text
    assert r.json() == {"analyses": 5, "batches": 1, "deliveries": 0}
    for analysis_id in own:
        assert (await client.get(f"/api/v1/analyze/{analysis_id}", headers=mine)).status_code == 404
    assert (await client.get(f"/api/v1/analyze/batch/{batch_id}", headers=mine)).status_code == 404
    async with app.state.service.sessions() as session:
        assert await session.get(Batch, batch_id) is None
    # Another owner's work is untouched; a second erasure finds nothing.
    assert (await client.get(f"/api/v1/analyze/{other}", headers=theirs)).status_code == 200
    again = await client.delete("/api/v1/analyze", headers=mine)
    assert again.json() == {"analyses": 0, "batches": 0, "deliveries": 0}


async def test_the_public_tier_cannot_erase_everything(client: httpx.AsyncClient) -> None:
    r = await client.delete("/api/v1/analyze")
    assert r.status_code == 403
    assert "DELETE /api/v1/analyze/{id}" in r.json()["detail"]


async def test_an_erased_item_no_longer_counts_in_its_batch_aggregate(
    client: httpx.AsyncClient,
) -> None:
    batch_id = (await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:4]))).json()[
        "batch_id"
    ]
    done = await until_done(client, batch_id)
    for _ in range(50):  # the aggregate is stored just after the last item ends
        done = (await client.get(f"/api/v1/analyze/batch/{batch_id}")).json()
        if done.get("aggregate"):
            break
        await asyncio.sleep(0.1)
    assert done["aggregate"]["conversations"] == 4
    erased = done["items"][0]["analysis_id"]
    assert (await client.delete(f"/api/v1/analyze/{erased}")).status_code == 204
    after = (await client.get(f"/api/v1/analyze/batch/{batch_id}")).json()
    assert after["counts"]["deleted"] == 1 and after["counts"]["completed"] == 3
    assert after["aggregate"]["conversations"] == 3
