"""SQLite: ``INSERT OR REPLACE`` removes the row it replaces without firing DELETE or UPDATE
triggers. The audit head must not be moved back that way either, or events older than a
day can be cut off the end of the log (with the pruning flag a plain UPDATE may set) and
`audit verify` finds nothing wrong."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.database import utcnow


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_replace_cannot_move_the_head_back(app: Any) -> None:
    sessions = app.state.service.sessions
    two_days = utcnow() - timedelta(days=2)
    await audit.append(sessions, [audit.Event("test.kept", "system:test", "ok", at=two_days)])
    await audit.append(
        sessions, [audit.Event("analysis.delete", "key:intruder", "ok", at=two_days)]
    )
    async with sessions() as session:
        kept, cut = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    refused = False
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT OR REPLACE INTO audit_head (id, last_id, hash, anchor, pruning) "
                    "SELECT 1, :i, :h, anchor, 1 FROM audit_head WHERE id = 1"
                ),
                {"i": kept.id, "h": kept.hash},
            )
            await session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": cut.id})
            await session.execute(text("UPDATE audit_head SET pruning = 0"))
    except Exception:
        refused = True
    async with sessions() as session:
        left = (await session.scalars(select(AuditEvent.id).order_by(AuditEvent.id))).all()
    report = await audit.verify(sessions)
    # Expected: refused, or at least noticed by verify; seen: the intruder's event is gone
    # and verify reports a whole log.
    assert refused or not report.ok, (left, report)
