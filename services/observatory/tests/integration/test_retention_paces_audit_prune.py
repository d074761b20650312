"""Retention rests after each batch it deletes, as long as the batch took, so a large
backlog leaves the database and the API half of the time; the audit log's own prune is part
of the same run and rests between its batches too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.audit import service as audit
from app.core.database import utcnow
from app.retention import service as retention


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_audit_prune_rests_between_its_batches(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = app.state.service
    old = utcnow() - timedelta(days=1000)
    # Three prune batches' worth (5,000 each), then one recent event that stays.
    await audit.append(
        state.sessions, [audit.Event("test.old", "system:test", "ok", at=old)] * 12_000
    )
    await audit.append(state.sessions, [audit.Event("test.new", "system:test", "ok")])
    rests: list[float] = []

    async def rest(seconds: float) -> None:
        rests.append(seconds)

    monkeypatch.setattr(retention, "_wait", rest)
    removed = await retention.run(state.engine, state.sessions, state.settings, pause=1.0)
    assert removed.audit_events == 12_000
    # A rest after each of the audit prune's batches (nothing else was due).
    assert len(rests) >= 2, rests
