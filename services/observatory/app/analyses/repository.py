"""Reads and writes of analysis rows. Status changes are conditional updates, so a status
never goes back (``pending → processing → completed | failed | cancelled``) even when an API
request and a worker race."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analyses.models import Analysis
from app.analyses.status import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    PROCESSING,
    TOMBSTONE,
)
from app.core.crypto import ResultCipher, SealedResultError
from app.core.database import utcnow

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "FINISHED",
    "PENDING",
    "PROCESSING",
    "TOMBSTONE",
]


def new_row(
    *,
    fingerprint: str,
    message_count: int,
    char_count: int,
    source_format: str,
    options: dict[str, Any],
    owner: str | None,
    result_ttl: timedelta,
    runner: str | None = None,
) -> Analysis:
    """A ``pending`` analysis, not yet added to a session."""
    now = utcnow()
    return Analysis(
        id=str(uuid.uuid4()),
        status=PENDING,
        owner=owner,
        runner=runner,
        fingerprint=fingerprint,
        message_count=message_count,
        char_count=char_count,
        source_format=source_format,
        options=options,
        created_at=now,
        last_accessed_at=now,
        expires_at=now + result_ttl,
    )


async def create(session: AsyncSession, **values: Any) -> Analysis:
    row = new_row(**values)
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, analysis_id: str) -> Analysis | None:
    row = await session.get(Analysis, analysis_id)
    return None if row is None or row.status == TOMBSTONE else row


async def transition(
    session: AsyncSession,
    analysis_id: str,
    allowed_from: Iterable[str],
    to: str,
    **values: Any,
) -> bool:
    """Move ``analysis_id`` to status ``to`` if it is currently in ``allowed_from``."""
    stmt = (
        update(Analysis)
        .where(Analysis.id == analysis_id, Analysis.status.in_(list(allowed_from)))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    res = await session.execute(stmt)
    return bool(getattr(res, "rowcount", 0))


async def set_stage(session: AsyncSession, analysis_id: str, stage: str) -> None:
    await session.execute(
        update(Analysis)
        .where(Analysis.id == analysis_id, Analysis.status.in_(ACTIVE))
        .values(stage=stage)
        .execution_options(synchronize_session=False)
    )


TOUCH_GRANULARITY = timedelta(minutes=10)


async def touch(session: AsyncSession, row: Analysis, result_ttl: timedelta) -> bool:
    """Record a read: results live ``result_ttl`` after their last access. Returns whether the
    row changed: reads within ``TOUCH_GRANULARITY`` of the last recorded one write nothing,
    so polling clients do not turn every GET into a write."""
    now = utcnow()
    if now - row.last_accessed_at < TOUCH_GRANULARITY:
        return False
    row.last_accessed_at = now
    row.expires_at = now + result_ttl
    return True


async def remove(session: AsyncSession, analysis_id: str) -> bool:
    """Delete a row that never ran (its submission failed): nothing to keep."""
    res = await session.execute(delete(Analysis).where(Analysis.id == analysis_id))
    return bool(getattr(res, "rowcount", 0))


async def tombstone(session: AsyncSession, ids: list[str]) -> int:
    """Erase analyses at once: the result, the fingerprint, the options and the counts go;
    id, owner and timestamps stay as a tombstone until the metadata period ends (retention
    removes it then). Reads treat a tombstone as gone."""
    now = utcnow()
    res = await session.execute(
        update(Analysis)
        .where(Analysis.id.in_(ids), Analysis.status != TOMBSTONE)
        .values(
            status=TOMBSTONE,
            result=None,
            result_key=None,
            fingerprint="",
            options={},
            error=None,
            stage=None,
            runner=None,
            message_count=0,
            char_count=0,
            source_format="",
            deleted_at=now,
            expires_at=now,
        )
    )
    return int(getattr(res, "rowcount", 0))


async def still_active(session: AsyncSession, ids: list[str]) -> set[str]:
    """Which of ``ids`` are still pending or processing (the others were cancelled, failed or
    deleted by someone else)."""
    rows = await session.scalars(
        select(Analysis.id).where(Analysis.id.in_(ids), Analysis.status.in_(ACTIVE))
    )
    return set(rows.all())


async def status_of(session: AsyncSession, analysis_id: str) -> str | None:
    """The current status, read from the database (not the session's identity map)."""
    status: str | None = await session.scalar(
        select(Analysis.status).where(Analysis.id == analysis_id)
    )
    return status


async def fail_active(session: AsyncSession, which: Any, reason: str) -> list[str]:
    """Fail every queued or running analysis that ``which`` (a SQL condition) selects."""
    now = utcnow()
    ids = list(
        (await session.scalars(select(Analysis.id).where(Analysis.status.in_(ACTIVE), which))).all()
    )
    if ids:
        await session.execute(
            update(Analysis)
            .where(Analysis.id.in_(ids), Analysis.status.in_(ACTIVE))
            .values(status=FAILED, error=reason, finished_at=now, stage=None)
            .execution_options(synchronize_session=False)
        )
    return ids


def elapsed_ms(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else round((end - start).total_seconds() * 1000, 3)


@dataclass(slots=True)
class Reencrypted:
    sealed: int = 0
    """Rows now sealed with the current key."""
    unreadable: int = 0
    """Rows whose key is not configured (or that fail authentication): left as they are."""


async def reencrypt(
    sessions: async_sessionmaker[AsyncSession], cipher: ResultCipher, batch_size: int = 200
) -> Reencrypted:
    """Seal every stored result with ``cipher.current``: results under another key, and
    those stored in clear before encryption. Rows are taken in id order, ``batch_size`` per
    short transaction, and each is rewritten only if its key did not change meanwhile, so
    reads (which open each row with the key it names) and new results go on throughout."""
    done = Reencrypted()
    after = ""
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(Analysis.id, Analysis.result, Analysis.result_key)
                    .where(
                        Analysis.id > after,
                        Analysis.result.is_not(None),
                        or_(Analysis.result_key.is_(None), Analysis.result_key != cipher.current),
                    )
                    .order_by(Analysis.id)
                    .limit(batch_size)
                )
            ).all()
        if not rows:
            return done
        async with sessions() as session, session.begin():
            for row_id, blob, key_id in rows:
                if blob is None:
                    continue
                try:
                    sealed = cipher.seal(cipher.open(blob, key_id, row_id), row_id)
                except SealedResultError:
                    done.unreadable += 1
                    continue
                was = (
                    Analysis.result_key.is_(None)
                    if key_id is None
                    else (Analysis.result_key == key_id)
                )
                updated = await session.execute(
                    update(Analysis)
                    .where(Analysis.id == row_id, was)
                    .values(result=sealed.blob, result_key=sealed.key_id)
                )
                done.sealed += updated.rowcount  # type: ignore[attr-defined]
        after = rows[-1][0]
