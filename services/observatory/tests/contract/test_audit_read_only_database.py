"""PostgreSQL that answers read-only (a failover left the service on a standby, or the
primary was demoted): no event can be written, for a reason that has nothing to do with
what the events hold. The writer keeps them until the database takes writes again, as it
does when the database is away, instead of setting every one of them aside."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from sqlalchemy import func, select

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.database import create_engine, session_factory


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_events_are_kept_while_the_database_is_read_only(app: Any) -> None:
    url = app.state.service.settings.database_url
    read_only = create_engine(
        url, connect_args={"server_settings": {"default_transaction_read_only": "on"}}
    )
    try:
        writer = audit.AuditLog(session_factory(read_only))
        for n in range(3):
            writer.record(audit.Event("test.kept", "system:test", "ok", detail={"n": n}))
        with contextlib.suppress(Exception):
            await writer.flush()
        # All three wait, to be written once the database takes writes again.
        assert writer.pending == 3
    finally:
        await read_only.dispose()
    async with app.state.service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0
