"""The analysis state machine: create, load, cancel, erase. Endpoints and jobs call these;
every status change is a conditional update in ``repository``, so a status never goes back
(``pending → processing → completed | failed | cancelled``; the job runner in
``app/jobs/execute.py`` moves ``processing`` on)."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.analyses import repository as repo
from app.analyses.models import Analysis
from app.analyses.schemas import AnalysisOptionsIn
from app.analyses.status import ACTIVE
from app.analysis import AnalysisOptions
from app.api.deps import ServiceState
from app.auth.principal import Principal
from app.batches import service as batches
from app.batches.models import Batch, BatchItem
from app.core.database import checkpoint, utcnow
from app.core.errors import Conflict, NotFound, ServiceUnavailable
from app.core.ids import is_id
from app.core.problems import printable
from app.jobs.base import AnalysisJob, JobQueue, QueueFull
from app.jobs.work import Submission
from app.webhooks import service as webhooks
from app.webhooks.models import WebhookDelivery

log = structlog.get_logger(__name__)


async def create(state: ServiceState, prepared: Submission, principal: Principal) -> Analysis:
    """Store a ``pending`` row for a parsed submission and queue its job (after the commit);
    a full queue removes the row again and is a 503 with ``Retry-After``."""
    settings = state.settings
    opts = AnalysisOptionsIn.model_validate(prepared.options)
    observer_mode = opts.observer or settings.observer_mode
    opts = opts.model_copy(update={"observer": observer_mode})
    if opts.callback_url:
        await webhooks.check_callback(state.sessions, settings, principal, opts.callback_url)
    options = AnalysisOptions(
        pattern_types=frozenset(opts.pattern_types), include_insights=opts.include_insights
    )
    async with state.sessions() as session, session.begin():
        row = await repo.create(
            session,
            fingerprint=state.fingerprints.of(prepared.fingerprint),
            message_count=prepared.message_count,
            char_count=prepared.char_count,
            source_format=prepared.source_format,
            options=opts.model_dump(),
            owner=principal.owner,
            result_ttl=timedelta(days=settings.result_ttl_days),
            runner=state.runner,
        )
    job = AnalysisJob(
        analysis_id=row.id,
        payload=prepared.payload,
        options=options,
        message_count=prepared.message_count,
        observer_mode=observer_mode,
        priority=opts.priority,
    )
    try:
        await state.queue.submit(job)
    except QueueFull as exc:
        async with state.sessions() as session, session.begin():
            await repo.remove(session, row.id)
        raise ServiceUnavailable(
            f"{exc}; retry after {settings.queue_full_retry_after_seconds} seconds",
            headers={"Retry-After": str(settings.queue_full_retry_after_seconds)},
        ) from None
    return row


async def load(
    session: AsyncSession, analysis_id: str, principal: Principal, *, live: bool = False
) -> Analysis:
    """The row, or 404 — also when it belongs to another principal (its existence is not
    revealed). ``live``: a result past its retention is gone even before the cleanup
    deletes it (and reading it must not extend its life)."""
    row = await repo.get(session, analysis_id) if is_id(analysis_id) else None
    shown = printable(analysis_id)  # ids are 36 characters: longer is not one
    if row is None or (row.owner is not None and row.owner != principal.owner):
        raise NotFound(f"no analysis with id '{shown}' (it may have expired or been deleted)")
    if live and row.expires_at < utcnow():
        raise NotFound(f"analysis '{shown}' expired at {row.expires_at.isoformat()}")
    return row


async def cancel(
    state: ServiceState, session: AsyncSession, analysis_id: str, principal: Principal
) -> None:
    """Move queued or running work to ``cancelled`` (committed first), then stop it; 409 if
    it already finished."""
    await load(session, analysis_id, principal)
    moved = await repo.transition(
        session, analysis_id, repo.ACTIVE, repo.CANCELLED, finished_at=utcnow(), stage=None
    )
    if not moved:
        await session.rollback()
        current = await repo.status_of(session, analysis_id)
        if current is None:
            raise NotFound(f"no analysis with id '{printable(analysis_id)}' (it was deleted)")
        raise Conflict(
            f"analysis '{analysis_id}' is already {current}; only pending or processing work can be cancelled"
        )
    await session.commit()
    await state.queue.cancel(analysis_id)
    log.info("analysis.cancel", analysis_id=analysis_id)


async def erase(
    state: ServiceState, session: AsyncSession, analysis_id: str, principal: Principal
) -> None:
    """Erase an analysis and its result; running work is cancelled first."""
    row = await load(session, analysis_id, principal)
    if row.status in repo.ACTIVE:
        await repo.transition(session, analysis_id, repo.ACTIVE, repo.CANCELLED)
        await session.commit()
        await state.queue.cancel(analysis_id)
    await repo.tombstone(session, [analysis_id])
    await session.commit()
    await batches.item_erased(state, analysis_id)
    await checkpoint(state.engine)
    log.info("analysis.delete", analysis_id=analysis_id)


ERASE_BATCH = 500


async def erase_owner(
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    owner: str,
    queue: JobQueue | None = None,
) -> dict[str, int]:
    """Erase everything ``owner`` created, for a data subject's request: its running work is
    cancelled (stopped here through ``queue``; a worker elsewhere notices within its watch
    interval), every analysis becomes a tombstone, its batches (aggregates included) and
    callback deliveries are deleted. In short transactions of ``ERASE_BATCH`` rows."""
    async with sessions() as session, session.begin():
        active = list(
            (
                await session.scalars(
                    select(Analysis.id).where(Analysis.owner == owner, Analysis.status.in_(ACTIVE))
                )
            ).all()
        )
        for analysis_id in active:
            await repo.transition(
                session, analysis_id, repo.ACTIVE, repo.CANCELLED, finished_at=utcnow()
            )
    if queue is not None:
        for analysis_id in active:
            await queue.cancel(analysis_id)
    erased = 0
    while True:
        async with sessions() as session, session.begin():
            ids = list(
                (
                    await session.scalars(
                        select(Analysis.id)
                        .where(Analysis.owner == owner, Analysis.status != repo.TOMBSTONE)
                        .limit(ERASE_BATCH)
                    )
                ).all()
            )
            if not ids:
                break
            erased += await repo.tombstone(session, ids)
    async with sessions() as session, session.begin():
        batch_ids = list(
            (await session.scalars(select(Batch.id).where(Batch.owner == owner))).all()
        )
        await session.execute(delete(BatchItem).where(BatchItem.batch_id.in_(batch_ids)))
        batches = await session.execute(delete(Batch).where(Batch.id.in_(batch_ids)))
        deliveries = await session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.owner == owner)
        )
    await checkpoint(engine)
    counts = {
        "analyses": erased,
        "batches": int(getattr(batches, "rowcount", 0)),
        "deliveries": int(getattr(deliveries, "rowcount", 0)),
    }
    log.info("analysis.erase_owner", **counts)
    return counts
