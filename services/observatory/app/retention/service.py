"""Retention (SPEC §8): what has outlived its period is removed, in bounded batches.

- A **result** lives ``result_ttl_days`` after its last read (``expires_at``): then the
  sealed document is dropped and the row keeps only its metadata.
- **Metadata** (id, owner, fingerprint, status, timings, counts) lives
  ``metadata_ttl_days`` after creation, and at least as long as its result: then the row
  goes, and with it the batch items and callback deliveries that point at it.
- A **batch** keeps its aggregate (no text of any conversation): once its own metadata
  period is over, only its items are removed.

Each step deletes at most ``batch_size`` rows per short transaction, so a large backlog
never holds a long lock, and after each transaction waits ``pause`` times as long as the
transaction took: with the default of 1 a large backlog keeps the database and the
processor busy at most half of the time while it lasts, and the API keeps the rest. With PostgreSQL, one replica at a time runs it (an advisory lock
tried, never waited for); SQLite is one machine's file. ``dry_run`` counts without
changing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

import structlog
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.analyses.models import Analysis
from app.analyses.status import ACTIVE
from app.audit import service as audit
from app.batches.models import Batch, BatchItem
from app.core.config import Settings
from app.core.database import utcnow
from app.webhooks.models import WebhookDelivery

log = structlog.get_logger(__name__)

# pg_try_advisory_lock key: "obs-retention" read as a number.
LOCK_KEY = 0x6F62732D726574
DEFAULT_BATCH = 1000
# After each batch, wait this many times as long as the batch took (0: no wait).
DEFAULT_PAUSE = 1.0


@dataclass(slots=True)
class Removed:
    results: int = 0
    analyses: int = 0
    batch_items: int = 0
    deliveries: int = 0
    # The audit log's own events older than its period (``audit_retention_days``).
    audit_events: int = 0
    dry_run: bool = False
    skipped: bool = False
    """Another replica held the lock: nothing was done here."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.asynccontextmanager
async def _only_one(engine: AsyncEngine) -> AsyncIterator[bool]:
    """Whether this process may run the cleanup now (PostgreSQL: an advisory lock)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as conn:
        got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}))
        try:
            yield got
        finally:
            if got:
                await conn.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            await conn.commit()


async def run(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH,
    pause: float = DEFAULT_PAUSE,
) -> Removed:
    now = now or utcnow()
    pace = _Pace(pause)
    removed = Removed(dry_run=dry_run)
    async with _only_one(engine) as mine:
        if not mine:
            removed.skipped = True
            log.info("retention.skipped", reason="another process is running it")
            return removed
        metadata_before = now - timedelta(days=settings.metadata_ttl_days)
        finished = Analysis.status.not_in(ACTIVE)
        expired_results = (
            Analysis.result.is_not(None),
            Analysis.expires_at < now,
            finished,
        )
        expired_rows = (Analysis.created_at < metadata_before, Analysis.expires_at < now, finished)
        old_batches = select(Batch.id).where(Batch.created_at < metadata_before)
        if dry_run:
            async with sessions() as session:
                removed.results = await _count(session, Analysis, *expired_results)
                removed.analyses = await _count(session, Analysis, *expired_rows)
                removed.batch_items = await _count(
                    session, BatchItem, BatchItem.batch_id.in_(old_batches)
                )
        else:
            removed.results = await _in_batches(
                sessions,
                pace,
                batch_size,
                select(Analysis.id).where(*expired_results),
                lambda ids: (
                    update(Analysis)
                    .where(Analysis.id.in_(ids))
                    .values(result=None, result_key=None)
                ),
            )
            removed.batch_items = await _drop_batch_items(
                sessions, pace, BatchItem.batch_id.in_(old_batches)
            )
            removed.analyses, removed.deliveries = await _drop_analyses(
                sessions, pace, batch_size, expired_rows
            )
        if not dry_run and (removed.results or removed.analyses or removed.batch_items):
            await audit.append(sessions, [_audited(removed)])
        audit_before = now - timedelta(days=settings.audit_retention_days)
        try:
            removed.audit_events = await audit.prune(
                sessions, audit_before, dry_run=dry_run, pause=pause, rest=_wait
            )
        except Exception as exc:  # the next run tries again; the deletions are recorded
            log.error("retention.audit_prune_failed", error=repr(exc))
    log.info("retention.done", **removed.as_dict())
    return removed


def _audited(removed: Removed) -> audit.Event:
    counts = {
        "results": removed.results,
        "analyses": removed.analyses,
        "batch_items": removed.batch_items,
        "deliveries": removed.deliveries,
    }
    return audit.Event("retention.delete", "system:retention", "ok", detail=counts)


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


class _Pace:
    """Times each batch and then waits ``pause`` times as long; also lets the event loop
    run requests in between when the cleanup runs inside the API process."""

    def __init__(self, pause: float) -> None:
        self._pause = pause
        self._started = perf_counter()

    def start(self) -> None:
        self._started = perf_counter()

    async def rest(self) -> None:
        await _wait(max(0.0, (perf_counter() - self._started) * self._pause))


async def _wait(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def _in_batches(
    sessions: async_sessionmaker[AsyncSession],
    pace: _Pace,
    size: int,
    ids_query: Any,
    change: Any,
) -> int:
    total = 0
    while True:
        pace.start()
        async with sessions() as session, session.begin():
            ids = list((await session.scalars(ids_query.limit(size))).all())
            if not ids:
                return total
            await session.execute(change(ids))
        total += len(ids)
        await pace.rest()


async def _drop_batch_items(
    sessions: async_sessionmaker[AsyncSession], pace: _Pace, where: Any
) -> int:
    """Items of one batch per transaction (a batch holds at most the batch limit)."""
    total = 0
    while True:
        pace.start()
        async with sessions() as session, session.begin():
            batch_id = await session.scalar(select(BatchItem.batch_id).where(where).limit(1))
            if batch_id is None:
                return total
            gone = await session.execute(delete(BatchItem).where(BatchItem.batch_id == batch_id))
        total += gone.rowcount  # type: ignore[attr-defined]
        await pace.rest()


async def _drop_analyses(
    sessions: async_sessionmaker[AsyncSession], pace: _Pace, size: int, where: Any
) -> tuple[int, int]:
    rows = deliveries = 0
    while True:
        pace.start()
        async with sessions() as session, session.begin():
            ids = list((await session.scalars(select(Analysis.id).where(*where).limit(size))).all())
            if not ids:
                return rows, deliveries
            gone = await session.execute(
                delete(WebhookDelivery).where(WebhookDelivery.target_id.in_(ids))
            )
            await session.execute(
                update(BatchItem).where(BatchItem.analysis_id.in_(ids)).values(analysis_id=None)
            )
            await session.execute(delete(Analysis).where(Analysis.id.in_(ids)))
        rows += len(ids)
        deliveries += gone.rowcount  # type: ignore[attr-defined]
        await pace.rest()


class Scheduler:
    """Runs :func:`run` every ``retention_interval_seconds`` in the background."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Any = None,
    ) -> None:
        self._metrics = metrics
        self._engine = engine
        self._sessions = sessions
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self.last: Removed | None = None

    def start(self) -> None:
        if self._settings.retention_interval_seconds > 0:
            self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        # A first run soon after start, then on the interval.
        await asyncio.sleep(min(60.0, self._settings.retention_interval_seconds))
        while True:
            try:
                self.last = await run(self._engine, self._sessions, self._settings)
                if self._metrics is not None:
                    self._metrics.retained(self.last)
            except Exception as exc:
                log.error("retention.failed", error=repr(exc))
            await asyncio.sleep(self._settings.retention_interval_seconds)
