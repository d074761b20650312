"""The audit log after its retention removed every event it could (a service that was idle
for longer than the retention period): the newest event stays, the prune is recorded, and
later events are written and chained, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.database import utcnow


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


async def test_after_a_prune_of_every_event_the_log_still_takes_events(app: Any) -> None:
    sessions = app.state.service.sessions
    async with sessions() as session:
        existing = (await session.scalars(select(AuditEvent.id))).all()
    assert not existing, existing  # a fresh log
    old = utcnow() - timedelta(days=1000)
    await audit.append(sessions, [audit.Event("test.old", "system:test", "ok", at=old)] * 3)
    # Retention removes the older two and records that it did; the newest event stays,
    # the end of the chain, which the database refuses to delete.
    assert await audit.prune(sessions, utcnow() - timedelta(days=365)) == 2
    await audit.append(sessions, [audit.Event("test.after", "system:test", "ok")])
    async with sessions() as session:
        actions = (await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert list(actions) == ["test.old", "audit.pruned", "test.after"]
    assert (await audit.verify(sessions)).ok
