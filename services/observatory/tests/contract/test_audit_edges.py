"""The audit log at its edges: verify on a log that is being written, an event a client can
shape that the database cannot store, credentials a client puts where the log copies them,
refused bodies of a create, the database guard's reach, and the export's --since."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.database import utcnow
from app.main import create_app
from tests.conftest import make_settings
from tests.contract.test_access import bearer, new_key

SECRET = "s" * 48
ISS, AUD = "https://partner.example", "observatory"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"retention_interval_seconds": 0, "audit_flush_seconds": 10}


async def rows(app: Any) -> list[AuditEvent]:
    async with app.state.service.sessions() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


class AfterFirstSession:
    """A session factory that runs ``hook`` once, between the first session it gave (verify
    reads the head there) and the next one (verify reads the events): what another
    process does while `audit verify` walks."""

    def __init__(self, sessions: Any, hook: Any) -> None:
        self._sessions, self._hook, self._calls = sessions, hook, 0

    def __call__(self) -> Any:
        self._calls += 1
        if self._calls != 2:
            return self._sessions()
        outer = self

        class _Session:
            async def __aenter__(self) -> Any:
                await outer._hook()
                self._cm = outer._sessions()
                return await self._cm.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                return await self._cm.__aexit__(*exc)

        return _Session()


async def test_verify_while_requests_are_being_written_reports_no_tampering(app: Any) -> None:
    """`audit verify` on a running service: an event appended while it walks is not
    evidence that events were removed from the end."""
    sessions = app.state.service.sessions
    await audit.append(sessions, [audit.Event("test.seed", "system:test", "ok")])

    async def another_request() -> None:
        await audit.append(sessions, [audit.Event("test.live", "system:test", "ok")])

    report = await audit.verify(AfterFirstSession(sessions, another_request))
    assert report.ok, report.problems
    assert (await audit.verify(sessions)).ok


async def test_verify_while_the_log_is_pruned_reports_no_tampering(app: Any) -> None:
    """Retention pruning the oldest events while `audit verify` walks is not tampering."""

    sessions = app.state.service.sessions
    old = utcnow() - timedelta(days=1000)
    await audit.append(sessions, [audit.Event("test.old", "system:test", "ok", at=old)] * 3)
    await audit.append(sessions, [audit.Event("test.new", "system:test", "ok")])

    async def retention() -> None:
        assert await audit.prune(sessions, utcnow() - timedelta(days=365)) == 3

    report = await audit.verify(AfterFirstSession(sessions, retention))
    assert report.ok, report.problems
    assert (await audit.verify(sessions)).ok


@pytest.mark.parametrize("subject", ["acme\x00", "acme\ud800"], ids=["nul", "lone-surrogate"])
async def test_a_token_subject_the_database_cannot_store_is_still_written(
    database_url: str, subject: str
) -> None:
    """A partner token's subject is the principal. JSON (so a JWT) may carry a NUL, which
    PostgreSQL's text cannot hold, or a lone surrogate, which neither database can encode:
    the event is written with the character replaced, and the events after it too."""
    app = create_app(
        make_settings(
            database_url,
            jwt_issuer=ISS,
            jwt_audience=AUD,
            jwt_secret=SECRET,
            jwt_algorithms="HS256",
            audit_flush_seconds=10,
            retention_interval_seconds=0,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            claims = {"iss": ISS, "aud": AUD, "sub": subject, "exp": int(time.time()) + 300}
            token = jwt.encode(claims, SECRET, algorithm="HS256")
            probe = await c.get(f"/api/v1/analyze/{uuid.uuid4()}", headers=bearer(token))
            assert probe.status_code == 404, probe.text
            later = await c.get(f"/api/v1/analyze/{uuid.uuid4()}")
            assert later.status_code == 404
        state = app.state.service
        await state.audit.flush()
        written = {r.request_id: r for r in await rows(app)}
    assert later.headers["X-Request-ID"] in written
    principal = written[probe.headers["X-Request-ID"]].principal
    assert principal.startswith("sub:acme") and "\x00" not in principal


async def test_a_credential_sent_as_the_request_id_is_not_written(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Credentials in URLs are refused because URLs are logged; the audit log copies
    X-Request-ID verbatim, so a key sent there (a client bug) must not be kept either."""
    created = await new_key(app, name="lab")
    r = await client.get(
        f"/api/v1/analyze/{uuid.uuid4()}",
        headers={**bearer(created.secret), "X-Request-ID": created.secret},
    )
    assert r.status_code == 404
    await app.state.service.audit.flush()
    out = io.StringIO()
    await audit.export(app.state.service.sessions, out)
    assert created.secret not in out.getvalue()


async def test_a_key_in_the_format_parameter_is_not_written(
    client: httpx.AsyncClient, app: Any
) -> None:
    created = await new_key(app, name="lab")
    r = await client.get(f"/api/v1/analyze/{uuid.uuid4()}?format={created.secret}")
    assert r.status_code == 400
    await app.state.service.audit.flush()
    out = io.StringIO()
    await audit.export(app.state.service.sessions, out)
    assert created.secret[:16] not in out.getvalue()


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Length": "999999999"}, b"{}", 413),
        ({"Content-Encoding": "gzip"}, b"{}", 415),
        ({}, b'{"conversation_text": "A: \x00"}', 400),
    ],
)
async def test_a_create_refused_for_its_body_is_audited(
    client: httpx.AsyncClient, app: Any, headers: dict[str, str], body: bytes, status: int
) -> None:
    """A refused attempt to create an analysis is written like a 422 one. These bodies are
    turned away before the credential is checked, so the event names the client address
    (hashed), never a key nobody verified."""
    created = await new_key(app, name="lab")
    r = await client.post(
        "/api/v1/analyze",
        content=body,
        headers={**bearer(created.secret), "Content-Type": "application/json", **headers},
    )
    assert r.status_code == status, r.text
    await app.state.service.audit.flush()
    creates = [e for e in await rows(app) if e.action == "analysis.create"]
    assert [e.status for e in creates] == [status]
    assert creates[0].principal.startswith("client:")
    assert creates[0].outcome == {413: "too_large", 415: "refused", 400: "refused"}[status]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_replace_cannot_overwrite_an_event(app: Any) -> None:
    sessions = app.state.service.sessions
    await audit.append(sessions, [audit.Event("test.event", "system:test", "ok")])
    [row] = await rows(app)
    refused = True
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT OR REPLACE INTO audit_events (id, at, action, principal, outcome,"
                    " prev_hash, hash) SELECT id, at, 'test.forged', 'system:someone-else',"
                    " outcome, prev_hash, hash FROM audit_events WHERE id = :id"
                ),
                {"id": row.id},
            )
        refused = False
    except Exception:
        pass
    [after] = await rows(app)
    assert refused and after.action == "test.event", (after.action, after.principal)


@pytest.mark.postgres
async def test_postgres_a_committed_pruning_flag_does_not_open_the_log(postgres_url: str) -> None:
    """The flag that lets a DELETE through is meant to live inside a prune's transaction;
    committed by anyone else, it leaves the log deletable by every later session."""
    app = create_app(make_settings(postgres_url, retention_interval_seconds=0))
    async with app.router.lifespan_context(app):
        sessions = app.state.service.sessions
        await audit.append(sessions, [audit.Event("test.event", "system:test", "ok")])
        async with sessions() as session, session.begin():
            await session.execute(text("UPDATE audit_head SET pruning = true"))
        deleted = 0
        try:
            async with sessions() as session, session.begin():
                deleted = (await session.execute(text("DELETE FROM audit_events"))).rowcount
        except Exception:
            pass
        async with sessions() as session:
            left = await session.scalar(select(func.count()).select_from(AuditEvent))
        assert deleted == 0 and left == 1


@pytest.mark.parametrize(
    "since", ["999999d", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00+01:00"]
)
def test_export_since_out_of_range_is_a_usage_error(tmp_path: Path, since: str) -> None:
    env = {**os.environ, "OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", "export", "--since", since],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr[-400:]
    assert "Traceback" not in done.stderr and "OverflowError" not in done.stderr


async def kept_and_cut(app: Any, days_old: int = 0) -> tuple[AuditEvent, AuditEvent]:
    """Two events: one an intruder wants to keep, then the one recording what he did."""
    sessions = app.state.service.sessions
    at = utcnow() - timedelta(days=days_old)
    await audit.append(sessions, [audit.Event("test.kept", "system:test", "ok", at=at)])
    await audit.append(sessions, [audit.Event("analysis.delete", "key:intruder", "ok", at=at)])
    kept, cut = await rows(app)
    return kept, cut


async def test_the_end_cannot_be_cut_with_statements_alone(app: Any) -> None:
    """With plain UPDATE and DELETE statements (no DDL, no dropped trigger), neither the
    newest event can be removed, even with the pruning flag set, nor the head moved back."""
    sessions = app.state.service.sessions
    kept, cut = await kept_and_cut(app)
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions() as session, session.begin():
            await session.execute(text("UPDATE audit_head SET pruning = true"))
            await session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": cut.id})
    with pytest.raises(DBAPIError, match="only moves forward"):
        async with sessions() as session, session.begin():
            await session.execute(
                text("UPDATE audit_head SET hash = :h, last_id = :i"),
                {"h": kept.hash, "i": kept.id},
            )
    with pytest.raises(DBAPIError, match="only moves forward"):
        async with sessions() as session, session.begin():
            await session.execute(text("DELETE FROM audit_head"))
    assert [r.id for r in await rows(app)] == [kept.id, cut.id]
    assert (await audit.verify(sessions)).ok


async def test_the_last_event_of_a_quiet_log_cannot_be_swapped(app: Any) -> None:
    """Events older than a day may be pruned, and anyone can compute the unkeyed chain's
    hash: still, the newest event cannot be deleted and replaced by a forged one."""
    sessions = app.state.service.sessions
    kept, cut = await kept_and_cut(app, days_old=2)
    fields = {
        "at": cut.at,
        "action": "analysis.read",
        "principal": "key:someone-else",
        "target": None,
        "outcome": "ok",
        "status": 200,
        "request_id": None,
        "detail": None,
    }
    forged = audit.chain_hash(kept.hash, fields)
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions() as session, session.begin():
            await session.execute(text("UPDATE audit_head SET pruning = true"))
            await session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": cut.id})
            session.add(AuditEvent(id=cut.id + 1, **fields, prev_hash=kept.hash, hash=forged))
            await session.flush()
            await session.execute(
                text("UPDATE audit_head SET pruning = false, last_id = :i, hash = :h"),
                {"i": cut.id + 1, "h": forged},
            )
    assert [r.principal for r in await rows(app)] == [kept.principal, "key:intruder"]
    assert (await audit.verify(sessions)).ok


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_replace_cannot_move_the_head_back(app: Any) -> None:
    """``INSERT OR REPLACE`` removes the row it replaces without firing DELETE or UPDATE
    triggers: the head still cannot be moved back that way."""
    sessions = app.state.service.sessions
    kept, cut = await kept_and_cut(app, days_old=2)
    with pytest.raises(DBAPIError, match="only moves forward"):
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT OR REPLACE INTO audit_head (id, last_id, hash, anchor, pruning) "
                    "SELECT 1, :i, :h, anchor, 1 FROM audit_head WHERE id = 1"
                ),
                {"i": kept.id, "h": kept.hash},
            )
    assert [r.id for r in await rows(app)] == [kept.id, cut.id]
    assert (await audit.verify(sessions)).ok


async def test_a_refusal_flood_from_many_addresses_does_not_hide_a_keys_forbidden_delete(
    database_url: str,
) -> None:
    """The overall budget of written refusals (600 a minute) is shared by every principal:
    sixty addresses spending it must not leave an authenticated key's refused attempt to
    delete an analysis unrecorded."""
    app = create_app(
        make_settings(
            database_url,
            trusted_proxies="127.0.0.1/32",
            audit_flush_seconds=10,
            retention_interval_seconds=0,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            wrong = bearer("obs_live_" + "z" * 43)
            for n in range(60):
                forwarded = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
                await asyncio.gather(
                    *(c.get("/metrics", headers={**wrong, **forwarded}) for _ in range(10))
                )
            metrics_only = await new_key(app, name="metrics", scopes=["metrics"])
            r = await c.delete(
                f"/api/v1/analyze/{uuid.uuid4()}", headers=bearer(metrics_only.secret)
            )
            assert r.status_code == 403, r.text
        await app.state.service.audit.flush()
        mine = [e for e in await rows(app) if e.principal == f"key:{metrics_only.key.principal_id}"]
        assert [(e.action, e.outcome) for e in mine] == [("analysis.delete", "forbidden")]


def test_a_key_change_whose_event_cannot_be_written_is_not_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keys create|revoke|rotate` commit their change and its event in one transaction:
    when the event cannot be written, the key is not made either."""
    import sqlite3

    from typer.testing import CliRunner

    from app.cli import cli
    from app.core.config import get_settings

    db = tmp_path / "keys.db"
    monkeypatch.setenv("OBSERVATORY_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    get_settings.cache_clear()

    async def unavailable(*_: Any, **__: Any) -> int:
        raise OSError("the database went away")

    monkeypatch.setattr(audit, "append_in", unavailable)
    result = CliRunner().invoke(cli, ["keys", "create", "--name", "unlogged"])
    get_settings.cache_clear()
    with sqlite3.connect(db) as conn:
        keys = conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]
        logged = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    assert (keys, logged) in {(0, 0), (1, 1)}, (keys, logged, result.exit_code)


def test_the_suppressed_summary_says_when_it_stopped_counting_principals() -> None:
    """`audit.suppressed` reports how many principals were refused unwritten, and past the
    10,000 it keeps in memory, that there were more."""
    sampler = audit.DenialSampler("1/minute", "1000000/minute")
    for n in range(10_050):
        sampler.admit(f"client:{n}")
        sampler.admit(f"client:{n}")
    assert sampler.take_suppressed() == (10_050, 10_000, True)
    assert sampler.take_suppressed() == (0, 0, False)


async def test_an_analysis_created_in_a_batch_can_be_found_in_the_log_by_its_id(
    client: httpx.AsyncClient, app: Any
) -> None:
    """SPEC §8: every request that creates an analysis is written. A batch creates one
    analysis per item; the log names only the batch, so `audit export | grep <analysis id>`
    finds nothing about how that analysis came to be (and batch items, the only link, are
    deleted after 90 days while the log keeps a year)."""
    body = {"conversations": [{"id": "a", "conversation_text": "A: hi\nB: hello"}]}
    created = await client.post("/api/v1/analyze/batch", json=body)
    assert created.status_code == 202, created.text
    batch_id = created.json()["batch_id"]
    status = (await client.get(f"/api/v1/analyze/batch/{batch_id}")).json()
    analysis_id = status["items"][0]["analysis_id"]
    await app.state.service.audit.flush()
    out = io.StringIO()
    await audit.export(app.state.service.sessions, out)
    assert analysis_id in out.getvalue()


async def test_after_a_rotation_the_log_tells_the_old_key_from_the_new(
    client: httpx.AsyncClient, app: Any
) -> None:
    """A key is rotated because it may have leaked; during the grace period both secrets
    work. Both are written as `key:<principal id>`, so the log cannot say whether the
    leaked secret was used."""

    from app.keys import service as keys

    old = await new_key(app, name="rotated")
    async with app.state.service.sessions() as session, session.begin():
        new = await keys.rotate(session, old.key.id, timedelta(hours=24))
    missing = f"/api/v1/analyze/{uuid.uuid4()}"
    by_old = await client.get(missing, headers=bearer(old.secret))
    by_new = await client.get(missing, headers=bearer(new.secret))
    assert by_old.status_code == by_new.status_code == 404
    await app.state.service.audit.flush()
    written = {e.request_id: e for e in await rows(app)}
    a, b = written[by_old.headers["X-Request-ID"]], written[by_new.headers["X-Request-ID"]]
    assert (a.principal, a.detail) != (b.principal, b.detail)


async def test_a_retention_run_that_fails_after_deleting_still_records_the_deletion(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention commits its deletions batch by batch, then prunes the audit log, and only
    then writes `retention.delete`: when the prune fails (SQLite busy past its retries, the
    connection lost) the results are gone and the log never says so."""
    from app.retention import service as retention
    from tests.contract.test_analyze import submit, wait_done

    analysis_id = (await submit(client, {"conversation_text": "A: hi\nB: hello"})).json()["id"]
    await wait_done(client, analysis_id)
    state = app.state.service

    async def failing_prune(*_: Any, **__: Any) -> int:
        raise OSError("database is locked")

    monkeypatch.setattr(audit, "prune", failing_prune)
    later = utcnow() + timedelta(days=state.settings.result_ttl_days + 1)
    with contextlib.suppress(OSError):
        await retention.run(state.engine, state.sessions, state.settings, now=later)
    async with state.sessions() as session:
        left = await session.scalar(
            text("SELECT count(*) FROM analyses WHERE id = :id AND result IS NOT NULL"),
            {"id": analysis_id},
        )
    deletions = [e for e in await rows(app) if e.action == "retention.delete"]
    assert left == 1 or deletions, "results deleted, no retention.delete event"


def test_an_erasure_event_names_the_whole_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`observatory erase --owner sub:<subject>` writes the owner as the target; a token
    subject may be 100 characters, the target column holds 64, and the cut value no longer
    says whose data was erased."""
    import sqlite3

    from typer.testing import CliRunner

    from app.cli import cli
    from app.core.config import get_settings

    db = tmp_path / "erase.db"
    monkeypatch.setenv("OBSERVATORY_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    get_settings.cache_clear()
    owner = "sub:" + "tenant-7/" + "u" * 60 + "-0042"
    result = CliRunner().invoke(cli, ["erase", "--owner", owner])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        target, detail = conn.execute(
            "SELECT target, detail FROM audit_events WHERE action = 'analysis.erase_owner'"
        ).fetchone()
    assert owner in (target, *(detail or "").split('"')), (target, detail)


def test_verify_on_a_database_that_does_not_exist_is_not_a_clean_bill(tmp_path: Path) -> None:
    """`audit verify` migrates first: pointed at a mistyped path it creates an empty
    database and answers ok (exit 0), the same answer as a verified log."""
    db = tmp_path / "typo.db"
    env = {**os.environ, "OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode != 0 or not db.exists(), done.stdout


async def test_a_flush_while_the_writer_is_writing_writes_each_event_once(app: Any) -> None:
    """The writer task wakes when a batch has gathered; a caller flushing at the same time
    (shutdown, a test, an export that wants the log current) must not write the same chunk
    a second time."""
    writer = audit.AuditLog(app.state.service.sessions, chunk=20)
    for n in range(200):
        writer.record(audit.Event("test.once", "system:test", "ok", detail={"n": n}))
    await asyncio.gather(writer.flush(), writer.flush(), writer.flush())
    written = [e.detail["n"] for e in await rows(app) if e.action == "test.once"]
    assert sorted(written) == list(range(200))
