"""The audit log on both databases: what requests write (who, what, which, how it ended,
never text or credentials), refusals sampled under a flood, the hash chain that
`verify` walks (an edit, a removal in the middle or at the end is reported), the database
refusing edits and deletions, the log's own retention, and appends racing from two
replicas."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.audit.models import AuditEvent, AuditHead
from app.core.database import create_engine, session_factory, utcnow
from app.retention import service as retention
from tests.contract.test_access import bearer, new_key
from tests.contract.test_analyze import submit, wait_done

# Words that appear in the conversation and in its result (topics, excerpts), never in audit.
TEXT = (
    "Quillon: The zephyrine gasket leaked again on the marrowgate pump.\n"
    "Brisk: Then we swap the zephyrine gasket before the marrowgate shift."
)
SECRET_WORDS = ("zephyrine", "marrowgate", "Quillon")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


async def events(app: Any) -> list[AuditEvent]:
    state = app.state.service
    await state.audit.flush()
    async with state.sessions() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def exported(app: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    await audit.export(app.state.service.sessions, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_requests_on_an_analysis_are_audited_without_its_text(
    client: httpx.AsyncClient, app: Any
) -> None:
    created = await submit(client, {"conversation_text": TEXT})
    analysis_id = created.json()["id"]
    await wait_done(client, analysis_id)
    read = await client.get(f"/api/v1/analyze/{analysis_id}")
    assert read.status_code == 200 and "zephyrine" in read.text
    assert (await client.get(f"/api/v1/analyze/{analysis_id}?format=csv")).status_code == 200
    assert (await client.post(f"/api/v1/analyze/{analysis_id}/cancel")).status_code == 409
    assert (await client.delete(f"/api/v1/analyze/{analysis_id}")).status_code == 204
    assert (await client.get(f"/api/v1/analyze/{analysis_id}")).status_code == 404

    rows = await events(app)
    mine = [r for r in rows if r.target == analysis_id]
    actions = [(r.action, r.outcome) for r in mine]
    assert actions[0] == ("analysis.create", "ok")
    assert ("analysis.read", "ok") in actions
    assert ("analysis.export", "ok") in actions
    assert ("analysis.cancel", "conflict") in actions
    assert ("analysis.delete", "ok") in actions
    assert actions[-1] == ("analysis.read", "not_found")
    export = next(r for r in mine if r.action == "analysis.export")
    assert export.detail == {"format": "csv"} and export.status == 200
    create = mine[0]
    assert create.request_id == created.headers["X-Request-ID"]
    # The public tier is a keyed hash of the address, never the address.
    assert create.principal.startswith("client:") and "127.0.0.1" not in create.principal
    assert len({r.principal for r in mine}) == 1

    dump = json.dumps(await exported(app))
    for word in SECRET_WORDS:
        assert word not in dump


async def test_the_principal_is_the_key_and_never_the_credential(
    client: httpx.AsyncClient, app: Any
) -> None:
    owner = await new_key(app, name="owner")
    other = await new_key(app, name="other")
    created = await client.post(
        "/api/v1/analyze", json={"conversation_text": TEXT}, headers=bearer(owner.secret)
    )
    analysis_id = created.json()["id"]
    probe = await client.get(f"/api/v1/analyze/{analysis_id}", headers=bearer(other.secret))
    assert probe.status_code == 404
    erased = await client.delete("/api/v1/analyze", headers=bearer(owner.secret))
    assert erased.status_code == 200

    rows = await events(app)
    by_action = {r.action: r for r in rows}
    assert by_action["analysis.create"].principal == f"key:{owner.key.principal_id}"
    read = by_action["analysis.read"]
    assert (read.principal, read.outcome, read.target) == (
        f"key:{other.key.principal_id}",
        "not_found",
        analysis_id,
    )
    erase = by_action["analysis.erase_owner"]
    assert erase.detail is not None and erase.detail["analyses"] == 1
    dump = json.dumps(await exported(app))
    assert owner.secret not in dump and other.secret not in dump


async def test_batches_are_audited(client: httpx.AsyncClient, app: Any) -> None:
    body = {"conversations": [{"id": "a", "conversation_text": TEXT}]}
    created = await client.post("/api/v1/analyze/batch", json=body)
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch_id"]
    await client.get(f"/api/v1/analyze/batch/{batch_id}")
    await client.get(f"/api/v1/analyze/batch/{batch_id}?format=jsonl")
    await client.post(f"/api/v1/analyze/batch/{batch_id}/cancel")
    rows = [r for r in await events(app) if r.target == batch_id]
    assert [r.action for r in rows][:3] == ["batch.create", "batch.read", "batch.export"]
    assert rows[-1].action == "batch.cancel"


async def test_a_flood_of_refusals_is_sampled_and_counted(
    client: httpx.AsyncClient, app: Any
) -> None:
    refused = 0
    for _ in range(40):
        r = await client.get("/api/v1/analyze/batch/x", headers=bearer("obs_live_" + "x" * 43))
        refused += r.status_code == 401
    assert refused == 40
    state = app.state.service
    written = [r for r in await events(app) if r.status == 401]
    assert len(written) == state.settings.audit_denials_per_principal
    assert written[0].action == "batch.read" and written[0].outcome == "unauthenticated"
    await state.audit.close()  # a process that stops writes what it counted
    summary = [r for r in await events(app) if r.action == "audit.suppressed"]
    assert summary and summary[-1].detail == {"refusals": 30, "principals": 1}
    state.audit.start()


async def test_a_refusal_on_any_route_is_audited(client: httpx.AsyncClient) -> None:
    r = await client.get("/metrics", headers=bearer("obs_live_" + "y" * 43))
    assert r.status_code == 401
    app = client._transport.app  # type: ignore[attr-defined]
    row = (await events(app))[-1]
    assert row.action == "access.refused" and row.detail == {"route": "/metrics", "method": "GET"}


async def test_verify_reports_an_edit_a_gap_and_a_cut_end(app: Any) -> None:
    sessions = app.state.service.sessions
    await app.state.service.audit.flush()
    for n in range(6):
        await audit.append(
            sessions, [audit.Event("test.event", "system:test", "ok", target=str(n))]
        )
    report = await audit.verify(sessions)
    assert report.ok, report.problems
    ids = [r.id for r in await events(app)]

    async with app.state.service.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER audit_events_no_update"))
            await conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        await conn.execute(
            update(AuditEvent).where(AuditEvent.id == ids[1]).values(outcome="forbidden")
        )
        await conn.execute(delete(AuditEvent).where(AuditEvent.id == ids[3]))
        await conn.execute(delete(AuditEvent).where(AuditEvent.id == ids[-1]))
    report = await audit.verify(sessions)
    assert not report.ok
    joined = "\n".join(report.problems)
    assert f"event {ids[1]}: its content does not match its hash" in joined
    assert f"event {ids[4]}: does not follow the event before it" in joined
    assert f"head records event {ids[-1]}" in joined


async def test_the_database_refuses_edits_and_deletions(app: Any) -> None:
    sessions = app.state.service.sessions
    await audit.append(sessions, [audit.Event("test.event", "system:test", "ok")])
    for statement in (
        update(AuditEvent).values(outcome="edited"),
        delete(AuditEvent),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with sessions() as session, session.begin():
                await session.execute(statement)
    if app.state.service.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with sessions() as session, session.begin():
                await session.execute(text("TRUNCATE audit_events"))
    assert (await audit.verify(sessions)).ok


async def test_the_log_keeps_its_events_for_its_own_period(app: Any) -> None:
    state = app.state.service
    await state.audit.flush()
    now = utcnow()
    old = [
        audit.Event("test.old", "system:test", "ok", at=now - timedelta(days=400 - n))
        for n in range(5)
    ]
    await audit.append(state.sessions, old)
    await audit.append(state.sessions, [audit.Event("test.new", "system:test", "ok", at=now)])
    before = now - timedelta(days=state.settings.audit_retention_days)

    assert await audit.prune(state.sessions, before, dry_run=True) == 5
    removed = await retention.run(state.engine, state.sessions, state.settings, now=now)
    assert removed.audit_events == 5
    rows = await events(app)
    assert [r.action for r in rows] == ["test.new", "audit.pruned"]
    assert rows[-1].detail is not None and rows[-1].detail["events"] == 5
    report = await audit.verify(state.sessions)
    assert report.ok, report.problems
    async with state.sessions() as session:
        head = await session.scalar(select(AuditHead))
        assert head is not None and head.pruning is False and head.anchor == rows[0].prev_hash


async def test_a_retention_deletion_is_audited(client: httpx.AsyncClient, app: Any) -> None:
    analysis_id = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    await wait_done(client, analysis_id)
    state = app.state.service
    later = utcnow() + timedelta(days=state.settings.result_ttl_days + 1)
    removed = await retention.run(state.engine, state.sessions, state.settings, now=later)
    assert removed.results == 1
    row = [r for r in await events(app) if r.action == "retention.delete"][-1]
    assert row.principal == "system:retention" and row.detail is not None
    assert row.detail["results"] == 1


@pytest.mark.postgres
async def test_two_replicas_appending_at_once_build_one_chain(postgres_url: str) -> None:
    from app.core.migrate import upgrade

    engines = [create_engine(postgres_url) for _ in range(2)]
    try:
        await upgrade(engines[0])
        replicas = [session_factory(e) for e in engines]

        async def writer(n: int) -> None:
            for i in range(25):
                batch = [
                    audit.Event("test.race", f"system:{n}", "ok", target=f"{n}-{i}-{j}")
                    for j in range(1 + i % 3)
                ]
                await audit.append(replicas[n % 2], batch)

        await asyncio.gather(*(writer(n) for n in range(4)))
        report = await audit.verify(replicas[0])
        assert report.ok, report.problems
        async with replicas[1]() as session:
            count = await session.scalar(select(func.count()).select_from(AuditEvent))
        assert count == report.events == 4 * sum(1 + i % 3 for i in range(25))
    finally:
        for engine in engines:
            await engine.dispose()
