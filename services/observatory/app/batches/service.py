"""Batches: create (every accepted conversation an ordinary analysis, queued whole), read
status, counts and items, cancel, change priority, and the aggregate once every item ended.

A batch's status is read from its analyses: ``pending`` until one starts, ``processing``,
then ``completed`` when every item has ended (completed, failed, cancelled, refused at
submission or deleted) — or ``cancelled`` after a cancel. Items can fail without failing
the batch.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.analyses import repository as analyses_repo
from app.analyses.models import Analysis
from app.analyses.schemas import AnalysisOptionsIn
from app.analyses.status import TOMBSTONE
from app.analysis import AnalysisOptions
from app.api.deps import ServiceState
from app.auth.principal import Principal
from app.batches.aggregate import aggregate
from app.batches.models import Batch, BatchItem
from app.batches.parsing import BatchSubmission, Rejected
from app.core.database import utcnow
from app.core.errors import Conflict, NotFound, ServiceUnavailable
from app.core.ids import is_id
from app.core.problems import printable
from app.jobs.base import AnalysisJob, QueueFull
from app.webhooks import service as webhooks

log = structlog.get_logger(__name__)

REJECTED = "rejected"  # refused at submission: no analysis
DELETED = "deleted"  # its analysis was erased by its owner
AGGREGATE_SECONDS = 120.0


async def create(
    state: ServiceState, prepared: BatchSubmission, principal: Principal
) -> tuple[Batch, list[str]]:
    """Store the batch, its analyses (``pending``) and its refused items in one transaction,
    then queue every accepted conversation; a queue that cannot take them all undoes the
    batch (503 with ``Retry-After``). Returns the batch and the ids of the analyses it
    created, in item order."""
    settings = state.settings
    opts = AnalysisOptionsIn.model_validate(prepared.options)
    observer_mode = opts.observer or settings.observer_mode
    opts = opts.model_copy(update={"observer": observer_mode})
    if opts.callback_url:
        await webhooks.check_callback(state.sessions, settings, principal, opts.callback_url)
    # The batch announces its end; its items do not announce theirs.
    item_options = {**opts.model_dump(), "callback_url": None}
    options = AnalysisOptions(
        pattern_types=frozenset(opts.pattern_types), include_insights=opts.include_insights
    )
    now = utcnow()
    ttl = timedelta(days=settings.result_ttl_days)
    batch = Batch(
        id=str(uuid.uuid4()),
        owner=principal.owner,
        total=len(prepared.items),
        rejected=sum(isinstance(i.outcome, Rejected) for i in prepared.items),
        options=opts.model_dump(),
        created_at=now,
        expires_at=now + ttl,
    )
    jobs: list[AnalysisJob] = []
    rows: list[Any] = [batch]
    items: list[BatchItem] = []
    for item in prepared.items:
        outcome = item.outcome
        if isinstance(outcome, Rejected):
            items.append(
                BatchItem(
                    batch_id=batch.id, position=item.position, ref=item.ref, error=outcome.detail
                )
            )
            continue
        analysis = analyses_repo.new_row(
            fingerprint=state.fingerprints.of(outcome.fingerprint),
            message_count=outcome.message_count,
            char_count=outcome.char_count,
            source_format=outcome.source_format,
            options=item_options,
            owner=principal.owner,
            result_ttl=ttl,
            runner=state.runner,
        )
        rows.append(analysis)
        items.append(
            BatchItem(
                batch_id=batch.id, position=item.position, ref=item.ref, analysis_id=analysis.id
            )
        )
        jobs.append(
            AnalysisJob(
                analysis_id=analysis.id,
                payload=outcome.payload,
                options=options,
                message_count=outcome.message_count,
                observer_mode=observer_mode,
                priority=opts.priority,
                batch_id=batch.id,
            )
        )
    async with state.sessions() as session, session.begin():
        session.add_all(rows)
        await session.flush()  # the batch before its items (foreign key)
        session.add_all(items)
    queued: list[str] = []
    try:
        for job in jobs:
            await state.queue.submit(job)
            queued.append(job.analysis_id)
    except QueueFull as exc:
        for analysis_id in queued:
            await state.queue.cancel(analysis_id)
        await _remove(state, batch.id)
        retry = settings.queue_full_retry_after_seconds
        raise ServiceUnavailable(
            f"{exc}; the batch was not accepted, retry after {retry} seconds",
            headers={"Retry-After": str(retry)},
        ) from None
    log.info("batch.submitted", batch_id=batch.id, total=batch.total, rejected=batch.rejected)
    return batch, queued


async def _remove(state: ServiceState, batch_id: str) -> None:
    async with state.sessions() as session, session.begin():
        ids = await _analysis_ids(session, batch_id)
        for analysis_id in ids:
            await analyses_repo.remove(session, analysis_id)
        await session.delete(await session.get(Batch, batch_id))


async def _analysis_ids(session: AsyncSession, batch_id: str) -> list[str]:
    rows = await session.scalars(
        select(BatchItem.analysis_id).where(
            BatchItem.batch_id == batch_id, BatchItem.analysis_id.is_not(None)
        )
    )
    return [r for r in rows.all() if r is not None]


async def load(session: AsyncSession, batch_id: str, principal: Principal) -> Batch:
    """The batch, or 404 — also when it belongs to another principal."""
    batch = await session.get(Batch, batch_id) if is_id(batch_id) else None
    if batch is None or (batch.owner is not None and batch.owner != principal.owner):
        raise NotFound(f"no batch with id '{printable(batch_id)}'")
    return batch


async def counts(session: AsyncSession, batch: Batch) -> dict[str, int]:
    """Items by status: the analyses' statuses, ``rejected`` and ``deleted``."""
    rows = await session.execute(
        select(Analysis.status, func.count())
        .select_from(BatchItem)
        .join(Analysis, and_(Analysis.id == BatchItem.analysis_id, Analysis.status != TOMBSTONE))
        .where(BatchItem.batch_id == batch.id)
        .group_by(Analysis.status)
    )
    found: Counter[str] = Counter({status: n for status, n in rows.all()})
    out = {s: found[s] for s in ("pending", "processing", "completed", "failed", "cancelled")}
    out[REJECTED] = batch.rejected
    out[DELETED] = batch.total - batch.rejected - sum(found.values())
    return out


def status_of(batch: Batch, by_status: dict[str, int]) -> str:
    if batch.cancelled_at is not None:
        return "cancelled"
    if finished(by_status) >= batch.total:
        return "completed"
    if by_status["pending"] == batch.total - batch.rejected:
        return "pending"
    return "processing"


def finished(by_status: dict[str, int]) -> int:
    return sum(by_status[s] for s in ("completed", "failed", "cancelled", REJECTED, DELETED))


async def items_page(
    session: AsyncSession, batch: Batch, offset: int, limit: int
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(BatchItem, Analysis.status, Analysis.error)
        .outerjoin(
            Analysis, and_(Analysis.id == BatchItem.analysis_id, Analysis.status != TOMBSTONE)
        )
        .where(BatchItem.batch_id == batch.id)
        .order_by(BatchItem.position)
        .offset(offset)
        .limit(limit)
    )
    page = []
    for item, status, error in rows.all():
        if item.analysis_id is None:
            status, error = REJECTED, item.error
        elif status is None:
            status = DELETED
        page.append(
            {
                "position": item.position,
                "id": item.ref,
                "analysis_id": item.analysis_id,
                "status": status,
                "error": error,
            }
        )
    return page


async def view(
    state: ServiceState, session: AsyncSession, batch: Batch, offset: int, limit: int
) -> dict[str, Any]:
    """The public view: status, counts, progress, a page of items and the aggregate."""
    by_status = await counts(session, batch)
    status = status_of(batch, by_status)
    if status in ("completed", "cancelled") and batch.finished_at is None:
        await finish(state, batch.id)
        await session.refresh(batch)
    done = finished(by_status)
    items = await items_page(session, batch, offset, limit)
    return {
        "batch_id": batch.id,
        "status": status,
        "total_conversations": batch.total,
        "counts": by_status,
        "progress": round(done / batch.total, 4) if batch.total else 1.0,
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
        "cancelled_at": batch.cancelled_at,
        "expires_at": batch.expires_at,
        "options": batch.options,
        "items": items,
        "page": {
            "offset": offset,
            "limit": limit,
            "returned": len(items),
            "next_offset": offset + len(items) if offset + len(items) < batch.total else None,
        },
        "aggregate": orjson.loads(batch.aggregate) if batch.aggregate else None,
        "webhook": await webhooks.latest(session, batch.id),
    }


async def finish(state: ServiceState, batch_id: str) -> bool:
    """If every item of ``batch_id`` has ended and the batch is not yet marked finished,
    compute its aggregate (in a worker process) and store both; whether this call did."""
    async with state.sessions() as session:
        batch = await session.get(Batch, batch_id)
        if batch is None or batch.finished_at is not None:
            return False
        by_status = await counts(session, batch)
        if finished(by_status) < batch.total and batch.cancelled_at is None:
            return False
        documents = await _documents(state, session, batch_id)
        total = batch.total
        callback, owner = batch.options.get("callback_url"), batch.owner
    summary = await state.pool.compute(
        aggregate,
        documents,
        state.settings.aggregate_min_conversations,
        total,
        time_limit=AGGREGATE_SECONDS,
    )
    del documents
    async with state.sessions() as session, session.begin():
        stored = await session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.finished_at.is_(None))
            .values(finished_at=utcnow(), aggregate=orjson.dumps(summary))
            .execution_options(synchronize_session=False)
        )
        done = bool(getattr(stored, "rowcount", 0))
        if done and callback and owner:
            await webhooks.enqueue(
                session,
                owner=owner,
                url=callback,
                event="batch.completed",
                target_id=batch_id,
                data={
                    "batch_id": batch_id,
                    "status": "cancelled" if batch.cancelled_at else "completed",
                    "counts": by_status,
                    "url": f"/api/v1/analyze/batch/{batch_id}",
                },
            )
    if done:
        log.info("batch.finished", batch_id=batch_id, conversations=summary["conversations"])
        if callback and state.webhooks is not None:
            state.webhooks.wake()
    return done


async def _documents(state: ServiceState, session: AsyncSession, batch_id: str) -> list[bytes]:
    """The opened results of the batch's completed items (erased ones are not)."""
    rows = await session.execute(
        select(Analysis.id, Analysis.result, Analysis.result_key)
        .join(BatchItem, BatchItem.analysis_id == Analysis.id)
        .where(BatchItem.batch_id == batch_id, Analysis.status == "completed")
    )
    return [
        state.cipher.open(result, key_id, analysis_id)
        for analysis_id, result, key_id in rows
        if result
    ]


async def item_erased(state: ServiceState, analysis_id: str) -> None:
    """An item of a finished batch was erased: its aggregate is computed again without it,
    so an erased conversation no longer counts anywhere (no second callback)."""
    async with state.sessions() as session:
        batch_ids = list(
            (
                await session.scalars(
                    select(BatchItem.batch_id)
                    .join(Batch, Batch.id == BatchItem.batch_id)
                    .where(BatchItem.analysis_id == analysis_id, Batch.finished_at.is_not(None))
                )
            ).all()
        )
        for batch_id in batch_ids:
            batch = await session.get(Batch, batch_id)
            if batch is None:
                continue
            documents = await _documents(state, session, batch_id)
            summary = await state.pool.compute(
                aggregate,
                documents,
                state.settings.aggregate_min_conversations,
                batch.total,
                time_limit=AGGREGATE_SECONDS,
            )
            await session.execute(
                update(Batch)
                .where(Batch.id == batch_id)
                .values(aggregate=orjson.dumps(summary))
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            log.info("batch.aggregate_recomputed", batch_id=batch_id, reason="item erased")


async def finish_item(state: ServiceState, analysis_id: str) -> None:
    """When an analysis of a batch ends: finish its batch if it was the last."""
    async with state.sessions() as session:
        batch_id = await session.scalar(
            select(BatchItem.batch_id).where(BatchItem.analysis_id == analysis_id)
        )
    if batch_id is not None:
        await finish(state, batch_id)


async def cancel(
    state: ServiceState, session: AsyncSession, batch_id: str, principal: Principal
) -> dict[str, int]:
    """Cancel every queued or running item (committed first, then the work is stopped);
    409 when the batch has already ended."""
    batch = await load(session, batch_id, principal)
    by_status = await counts(session, batch)
    if batch.cancelled_at is not None or finished(by_status) >= batch.total:
        raise Conflict(
            f"batch '{batch_id}' has already {'been cancelled' if batch.cancelled_at else 'ended'};"
            " only a batch with pending or processing items can be cancelled"
        )
    now = utcnow()
    # Claim the cancel: of requests that race, one moves cancelled_at and goes on.
    claimed = await session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.cancelled_at.is_(None))
        .values(cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        await session.rollback()
        raise Conflict(f"batch '{batch_id}' has already been cancelled")
    ids = await _analysis_ids(session, batch_id)
    active = list(
        (
            await session.scalars(
                select(Analysis.id).where(
                    Analysis.id.in_(ids), Analysis.status.in_(analyses_repo.ACTIVE)
                )
            )
        ).all()
    )
    if active:
        await session.execute(
            update(Analysis)
            .where(Analysis.id.in_(active), Analysis.status.in_(analyses_repo.ACTIVE))
            .values(status=analyses_repo.CANCELLED, finished_at=now, stage=None)
            .execution_options(synchronize_session=False)
        )
    await session.commit()
    for analysis_id in active:
        await state.queue.cancel(analysis_id)
    log.info("batch.cancel", batch_id=batch_id, cancelled=len(active))
    await finish(state, batch_id)
    return {"cancelled": len(active)}


async def reprioritise(
    state: ServiceState, session: AsyncSession, batch_id: str, principal: Principal, priority: str
) -> dict[str, int]:
    """Move every item that is still queued to ``priority``; running and ended items stay
    as they are."""
    batch = await load(session, batch_id, principal)
    ended = batch.finished_at is not None or finished(await counts(session, batch)) >= batch.total
    if batch.cancelled_at is not None or ended:
        raise Conflict(
            f"batch '{batch_id}' has already "
            f"{'been cancelled' if batch.cancelled_at else 'ended'}; nothing of it is queued"
        )
    ids = await _analysis_ids(session, batch_id)
    pending = list(
        (
            await session.scalars(
                select(Analysis.id).where(
                    Analysis.id.in_(ids), Analysis.status == analyses_repo.PENDING
                )
            )
        ).all()
    )
    moved = 0
    for analysis_id in pending:
        moved += await state.queue.reprioritise(analysis_id, priority)
    batch.options = {**batch.options, "priority": priority}
    await session.commit()
    log.info("batch.priority", batch_id=batch_id, priority=priority, moved=moved)
    return {"moved": moved}
