"""Retention on both databases: the clock is moved across each boundary (results 30 days
after their last read, metadata 90 days after creation), batches keep their aggregate, a
dry run changes nothing, and on PostgreSQL only one process runs it at a time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from app.analyses.models import Analysis
from app.batches.models import Batch, BatchItem
from app.retention import service as retention
from tests.contract.test_analyze import submit, wait_done
from tests.contract.test_batches import BREAD, until_done

TEXT = "Ada: The kiln cracked two vases overnight.\nBo: Then we lower the kiln ramp rate."


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "aggregate_min_conversations": 3}


async def rows(app: Any, model: Any) -> int:
    async with app.state.service.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def results(app: Any) -> int:
    async with app.state.service.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Analysis).where(Analysis.result.is_not(None))
            )
            or 0
        )


async def run(app: Any, **kwargs: Any) -> retention.Removed:
    state = app.state.service
    return await retention.run(state.engine, state.sessions, state.settings, **kwargs)


async def test_results_then_metadata_go_at_their_boundaries(
    client: httpx.AsyncClient, app: Any
) -> None:
    ids = [(await submit(client, {"conversation_text": TEXT})).json()["id"] for _ in range(3)]
    for analysis_id in ids:
        assert (await wait_done(client, analysis_id))["status"] == "completed"
    async with app.state.service.sessions() as session:
        row = await session.get(Analysis, ids[0])
        assert row is not None
        expires, created = row.expires_at, row.created_at

    # Just before the result's end nothing goes.
    removed = await run(app, now=expires - timedelta(seconds=5))
    assert (removed.results, removed.analyses) == (0, 0)
    # A dry run after it counts, and changes nothing.
    later = expires + timedelta(minutes=1)
    removed = await run(app, now=later, dry_run=True)
    assert removed.dry_run and removed.results == 3 and await results(app) == 3
    # Then the results go, in batches of two, and the metadata stays.
    removed = await run(app, now=later, batch_size=2)
    assert (removed.results, removed.analyses) == (3, 0)
    assert await results(app) == 0 and await rows(app, Analysis) == 3

    # Metadata: 90 days after creation.
    removed = await run(app, now=created + timedelta(days=90) - timedelta(minutes=1))
    assert removed.analyses == 0
    removed = await run(app, now=created + timedelta(days=90, minutes=5))
    assert removed.analyses == 3 and await rows(app, Analysis) == 0
    r = await client.get(f"/api/v1/analyze/{ids[0]}")
    assert r.status_code == 404


async def test_a_read_keeps_a_result_alive(client: httpx.AsyncClient, app: Any) -> None:
    analysis_id = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    await wait_done(client, analysis_id)
    async with app.state.service.sessions() as session:
        row = await session.get(Analysis, analysis_id)
        assert row is not None
        first_expiry = row.expires_at
    async with app.state.service.sessions() as session, session.begin():
        row = await session.get(Analysis, analysis_id)
        assert row is not None
        # Read again "later": the service moves expires_at on each read.
        row.expires_at = first_expiry + timedelta(days=10)
    removed = await run(app, now=first_expiry + timedelta(days=1))
    assert removed.results == 0 and await results(app) == 1


async def test_a_batch_keeps_its_aggregate_after_its_items_go(
    client: httpx.AsyncClient, app: Any
) -> None:
    body = {"conversations": [{"id": f"c{i}", "text": t} for i, t in enumerate(BREAD[:4])]}
    batch_id = (await client.post("/api/v1/analyze/batch", json=body)).json()["batch_id"]
    await until_done(client, batch_id)
    async with app.state.service.sessions() as session:
        batch = await session.get(Batch, batch_id)
        assert batch is not None and batch.aggregate is not None
        created = batch.created_at
    removed = await run(app, now=created + timedelta(days=91))
    assert removed.batch_items == 4 and removed.analyses == 4
    assert await rows(app, BatchItem) == 0
    async with app.state.service.sessions() as session:
        batch = await session.get(Batch, batch_id)
        assert batch is not None and batch.aggregate is not None


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_only_one_process_runs_it_on_postgresql(app: Any) -> None:
    engine = app.state.service.engine
    async with engine.connect() as holder:
        await holder.scalar(text("SELECT pg_advisory_lock(:k)"), {"k": retention.LOCK_KEY})
        try:
            removed = await run(app)
            assert removed.skipped
        finally:
            await holder.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": retention.LOCK_KEY})
    assert not (await run(app)).skipped


async def test_it_waits_after_each_batch_as_long_as_the_batch_took(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [(await submit(client, {"conversation_text": TEXT})).json()["id"] for _ in range(3)]
    for analysis_id in ids:
        await wait_done(client, analysis_id)
    async with app.state.service.sessions() as session:
        row = await session.get(Analysis, ids[0])
        assert row is not None
        later = row.created_at + timedelta(days=91)
    ticks = iter(range(0, 1000, 2))  # every batch "takes" 2 s on this clock
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(retention, "perf_counter", lambda: float(next(ticks)))
    monkeypatch.setattr(retention, "_wait", wait)
    removed = await run(app, now=later, batch_size=2, pause=0.5)
    assert (removed.results, removed.analyses) == (3, 3)
    # Two batches of results and two of rows, each followed by a wait of half its time.
    assert waits == [1.0] * 4
