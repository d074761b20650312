"""Reads and writes of ``runners`` rows, and failing the analyses of runners that are gone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.analyses import repository as analyses
from app.analyses.models import Analysis
from app.core.database import utcnow
from app.jobs.models import Runner


async def register_runner(session: AsyncSession, runner_id: str, label: str) -> None:
    now = utcnow()
    session.add(Runner(id=runner_id, label=label[:64], started_at=now, heartbeat_at=now))


async def heartbeat(session: AsyncSession, runner_id: str) -> bool:
    """Move this runner's heartbeat forward; False if its row is gone (a peer judged it dead)."""
    res = await session.execute(
        update(Runner)
        .where(Runner.id == runner_id)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(res, "rowcount", 0))


async def unregister_runner(session: AsyncSession, runner_id: str) -> None:
    await session.execute(delete(Runner).where(Runner.id == runner_id))


async def fail_runner_work(session: AsyncSession, runner_id: str, reason: str) -> list[str]:
    """Fail what one runner still holds (it is stopping, and its queue goes with it)."""
    return await analyses.fail_active(session, Analysis.runner == runner_id, reason)


# Work queued in Redis is held by no process: the Redis queue recovers it by its own rules.
QUEUED_IN_REDIS = "redis-queue"


async def fail_orphaned(session: AsyncSession, stale_after: timedelta, reason: str) -> list[str]:
    """Fail queued and running work whose runner is gone: no ``runners`` row, or a heartbeat
    older than ``stale_after``. Live runners' work is left alone, whatever their label, so
    any number of processes can share one database, and so is work queued in Redis. Dead
    runners' rows are removed."""
    cutoff = utcnow() - stale_after
    live = select(Runner.id).where(Runner.heartbeat_at >= cutoff)
    orphaned = and_(
        or_(Analysis.runner.is_(None), Analysis.runner.not_in(live)),
        or_(Analysis.runner.is_(None), Analysis.runner != QUEUED_IN_REDIS),
    )
    ids = await analyses.fail_active(session, orphaned, reason)
    await session.execute(delete(Runner).where(Runner.heartbeat_at < cutoff))
    return ids
