"""`audit verify` while a long prune (many batches) runs: each batch the prune commits
moves the start of the log; that is retention, not tampering, however many of verify's
walks it overlaps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.database import utcnow


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


async def prune_one_batch(sessions: Any, size: int = 2) -> None:
    """One batch of a longer prune, as ``audit.prune`` commits it (the oldest events, the
    pruning flag, the new anchor)."""
    async with sessions() as session, session.begin():
        head = await audit._take_head(session)
        rows = (
            await session.execute(
                select(AuditEvent.id, AuditEvent.hash)
                .where(AuditEvent.action == "test.old")
                .order_by(AuditEvent.id)
                .limit(size)
            )
        ).all()
        if not rows:
            return  # the prune is over
        head.pruning = True
        await session.flush()
        await session.execute(delete(AuditEvent).where(AuditEvent.id <= rows[-1].id))
        head.pruning = False
        head.anchor = rows[-1].hash


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_verify_during_a_prune_of_many_batches_reports_no_tampering(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = app.state.service.sessions
    old = utcnow() - timedelta(days=1000)
    await audit.append(sessions, [audit.Event("test.old", "system:test", "ok", at=old)] * 12)
    await audit.append(sessions, [audit.Event("test.new", "system:test", "ok")])
    walk = audit._walk

    async def walk_after_a_prune_batch(s: Any, head: Any) -> audit.Verification:
        # The prune commits its next batch after verify read the head, on every try.
        await prune_one_batch(sessions)
        return await walk(s, head)

    monkeypatch.setattr(audit, "_walk", walk_after_a_prune_batch)
    report = await audit.verify(sessions)
    # No problem reported: only old events were removed by retention while it walked.
    assert report.ok, report.problems
