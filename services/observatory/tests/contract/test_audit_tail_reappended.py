"""With plain statements (no DDL), the last event of a log that has been quiet for a day
cannot be swapped for another one that `audit verify` accepts: the pruning flag lets old
events go, and the chain's hash is one anyone can compute, so the head moved forward to a
new last event hides the removal."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.database import utcnow


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


async def test_the_last_event_of_a_quiet_log_cannot_be_swapped_unnoticed(app: Any) -> None:
    sessions = app.state.service.sessions
    two_days = utcnow() - timedelta(days=2)
    await audit.append(sessions, [audit.Event("test.kept", "system:test", "ok", at=two_days)])
    await audit.append(
        sessions, [audit.Event("analysis.delete", "key:intruder", "ok", at=two_days)]
    )
    async with sessions() as session:
        kept, cut = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    fields = {
        "at": two_days,
        "action": "analysis.read",
        "principal": "key:someone-else",
        "target": None,
        "outcome": "ok",
        "status": 200,
        "request_id": None,
        "detail": None,
    }
    forged = audit.chain_hash(kept.hash, fields)
    with contextlib.suppress(DBAPIError):
        await swap(sessions, cut, fields, kept.hash, forged)
    async with sessions() as session:
        left = (await session.scalars(select(AuditEvent.principal).order_by(AuditEvent.id))).all()
    report = await audit.verify(sessions)
    # The swap is refused (the last event cannot be deleted), or verify reports it.
    assert "key:intruder" in left or not report.ok, (left, report)


async def swap(sessions: Any, cut: Any, fields: Any, prev: str, forged: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text("UPDATE audit_head SET pruning = true"))
        await session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": cut.id})
        session.add(AuditEvent(id=cut.id + 1, **fields, prev_hash=prev, hash=forged))
        await session.flush()
        await session.execute(
            text("UPDATE audit_head SET pruning = false, last_id = :i, hash = :h"),
            {"i": cut.id + 1, "h": forged},
        )
