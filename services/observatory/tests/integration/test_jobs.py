"""The embedded job runner: bounded queue, timeouts, real cancellation, restart recovery."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.analyses import repository as repo
from app.analysis import analyze
from app.core.database import create_engine, session_factory
from app.core.migrate import upgrade
from app.jobs import inprocess
from app.main import create_app
from tests.contract.test_analyze import submit, wait_done
from tests.factories import messages
from tests.workers import (
    PidRecorder,
    Release,
    blocking_analysis,
    hangs_in_c,
    never_checks,
    process_alive,
    unserialisable,
)

SMALL = {"conversation_text": "Human: Is it raining?\nAI: No, it is sunny."}


async def _gone(pid: int, within: float) -> float | None:
    """Seconds until process ``pid`` has exited, or None if it still runs after ``within``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < within:
        if not process_alive(pid):
            return time.perf_counter() - t0
        await asyncio.sleep(0.01)
    return None


def service(app: Any) -> Any:
    return app.state.service


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"worker_concurrency": 1, "queue_max_size": 2, "analysis_timeout_seconds": 30}


async def test_cancel_running_20000_messages_stops_work_and_frees_worker(
    client: httpx.AsyncClient, app: Any
) -> None:
    queue = service(app).queue
    recorder = PidRecorder()
    queue._ctx.analyze_fn = recorder
    r = await submit(client, {"messages": messages(20_000, words=30)})
    assert r.status_code == 202, r.text
    analysis_id = r.json()["id"]
    pid = await asyncio.to_thread(recorder.pid)
    assert (await client.get(f"/api/v1/analyze/{analysis_id}")).json()["status"] == "processing"
    cancelled_at = time.perf_counter()
    r = await client.post(f"/api/v1/analyze/{analysis_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": analysis_id, "status": "cancelled"}
    # The worker process doing the analysis is killed, not left to finish.
    gone_after = await _gone(pid, 5)
    assert gone_after is not None, "the analysis process kept running after cancel"
    stop_latency = time.perf_counter() - cancelled_at
    assert stop_latency < 1.5, f"analysis kept running {stop_latency:.3f}s after cancel"
    body = (await client.get(f"/api/v1/analyze/{analysis_id}")).json()
    assert body["status"] == "cancelled"
    assert "patterns" not in body
    assert queue.stats()["running"] == 0
    # The single worker is free (its process replaced): a new analysis completes.
    queue._ctx.analyze_fn = analyze
    r = await submit(client, SMALL, wait=10)
    assert r.status_code == 200 and r.json()["status"] == "completed"
    # And the cancelled one stays cancelled, with no result stored.
    async with service(app).sessions() as session:
        row = await repo.get(session, analysis_id)
        assert row is not None and row.status == "cancelled" and row.result is None


async def test_cancel_queued_analysis_never_runs(client: httpx.AsyncClient, app: Any) -> None:
    release = Release()
    service(app).queue._ctx.analyze_fn = blocking_analysis(release)
    first = (await submit(client, SMALL)).json()["id"]
    second = (await submit(client, SMALL)).json()["id"]
    assert (await client.post(f"/api/v1/analyze/{second}/cancel")).status_code == 200
    release.set()
    assert (await wait_done(client, first))["status"] == "completed"
    body = await wait_done(client, second)
    assert body["status"] == "cancelled" and body["started_at"] is None


async def test_full_queue_is_503_with_retry_after(client: httpx.AsyncClient, app: Any) -> None:
    release = Release()
    service(app).queue._ctx.analyze_fn = blocking_analysis(release)
    codes = []
    for _ in range(5):
        r = await submit(client, SMALL)
        codes.append(r.status_code)
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) > 0
            assert "queue is full" in r.json()["detail"]
        await asyncio.sleep(0.05)  # let the worker take the first job
    release.set()
    # One running, two waiting, then refusals; nothing accepted is lost.
    assert codes[:3] == [202, 202, 202] and codes[3:] == [503, 503], codes


async def test_timeout_fails_the_analysis_with_a_clear_error(
    client: httpx.AsyncClient, app: Any
) -> None:
    release = Release()
    ctx = service(app).queue._ctx
    ctx.analyze_fn = blocking_analysis(release)
    ctx.timeout = 0.3
    r = await submit(client, SMALL)
    body = await wait_done(client, r.json()["id"])
    assert body["status"] == "failed"
    assert "time limit of 0.3 seconds" in body["error"]


async def test_status_never_goes_back(client: httpx.AsyncClient, app: Any) -> None:
    r = await submit(client, SMALL, wait=10)
    analysis_id = r.json()["id"]
    async with service(app).sessions() as session, session.begin():
        for target in ("pending", "processing", "cancelled", "failed"):
            moved = await repo.transition(session, analysis_id, repo.ACTIVE, target)
            assert not moved
    assert (await client.get(f"/api/v1/analyze/{analysis_id}")).json()["status"] == "completed"


async def _rows(
    settings: Any, rows: list[tuple[str | None, str]], runners: list[tuple[str, Any]]
) -> list[str]:
    """Analyses with the given (runner, status), and ``runners`` rows (id, heartbeat_at)."""
    from app.core.database import utcnow
    from app.jobs.models import Runner

    engine = create_engine(settings.database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    ids = []
    async with sessions() as session, session.begin():
        for runner_id, heartbeat_at in runners:
            session.add(Runner(id=runner_id, label="api", heartbeat_at=heartbeat_at))
        for runner, status in rows:
            row = await repo.create(
                session,
                fingerprint="0" * 64,
                message_count=2,
                char_count=10,
                source_format="text",
                options={},
                owner=None,
                result_ttl=timedelta(days=30),
                runner=runner,
            )
            row.status = status
            row.started_at = utcnow() if status == "processing" else None
            ids.append(row.id)
    await engine.dispose()
    return ids


async def test_start_fails_only_work_whose_runner_is_gone(settings: Any) -> None:
    from app.core.database import utcnow

    now = utcnow()
    ids = await _rows(
        settings,
        [
            ("api-dead-1", "pending"),  # its runner's heartbeat stopped long ago
            ("api-dead-1", "processing"),
            ("api-unknown-2", "processing"),  # no runner row at all (killed before 0002)
            ("api-live-3", "processing"),  # a live peer with the same label: untouched
            ("api-live-3", "pending"),
            ("api-dead-1", "completed"),  # finished: untouched
        ],
        [("api-dead-1", now - timedelta(minutes=5)), ("api-live-3", now)],
    )
    app = create_app(settings.model_copy(update={"instance_id": "api"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            states = [(await client.get(f"/api/v1/analyze/{i}")).json() for i in ids]
    assert [s["status"] for s in states] == [
        "failed",
        "failed",
        "failed",
        "processing",
        "pending",
        "completed",
    ]
    assert "submit it again" in states[0]["error"]
    assert states[5]["error"] is None


async def test_two_processes_with_the_same_label_never_fail_each_others_work(
    settings: Any,
) -> None:
    """The default label is the host name: a second instance started on the same machine
    and database must leave the first one's live work alone."""
    first_app = create_app(settings)
    release = Release()
    async with first_app.router.lifespan_context(first_app):
        first = service(first_app)
        first.queue._ctx.analyze_fn = blocking_analysis(release)
        transport = httpx.ASGITransport(app=first_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as a:
            ids = [(await submit(a, SMALL)).json()["id"] for _ in range(3)]
            second_app = create_app(settings)
            async with second_app.router.lifespan_context(second_app):
                assert service(second_app).runner != first.runner
                assert service(second_app).runner.split("-")[0] == first.runner.split("-")[0]
                await service(second_app).runners.recover()
                states = [(await a.get(f"/api/v1/analyze/{i}")).json()["status"] for i in ids]
                assert "failed" not in states, states
            release.set()
            for analysis_id in ids:
                assert (await wait_done(a, analysis_id))["status"] == "completed"


async def test_a_clean_stop_fails_what_the_process_still_held(settings: Any) -> None:
    app = create_app(settings)
    release = Release()
    async with app.router.lifespan_context(app):
        service(app).queue._ctx.analyze_fn = blocking_analysis(release)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as a:
            ids = [(await submit(a, SMALL)).json()["id"] for _ in range(2)]
    release.set()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as b:
            for analysis_id in ids:
                body = (await b.get(f"/api/v1/analyze/{analysis_id}")).json()
                assert body["status"] == "failed" and "submit it again" in body["error"]


async def test_cancelled_queued_jobs_free_their_place_and_wake_waiters(
    client: httpx.AsyncClient, app: Any
) -> None:
    release = Release()
    queue = service(app).queue
    queue._ctx.analyze_fn = blocking_analysis(release)
    try:
        assert (await submit(client, SMALL)).status_code == 202  # running
        await asyncio.sleep(0.05)
        queued = [(await submit(client, SMALL)).json()["id"] for _ in range(2)]
        assert (await submit(client, SMALL)).status_code == 503
        waiter = asyncio.create_task(submit(client, {**SMALL}, wait=5))  # refused: full
        assert (await waiter).status_code == 503
        for analysis_id in queued:
            assert (await client.post(f"/api/v1/analyze/{analysis_id}/cancel")).status_code == 200
        assert queue.stats()["queued"] == 0
        # Both places are free again, and the cancelled jobs hold no conversation.
        fresh = await submit(client, SMALL)
        assert fresh.status_code == 202
        t0 = asyncio.get_running_loop().time()
        waiting = asyncio.create_task(submit(client, SMALL, wait=5))
        await asyncio.sleep(0.1)
        waiting_id = next(i for i in queue._waiting if i != fresh.json()["id"])
        assert (await client.post(f"/api/v1/analyze/{waiting_id}/cancel")).status_code == 200
        r = await waiting
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert asyncio.get_running_loop().time() - t0 < 2, "the waiter was not woken by the cancel"
    finally:
        release.set()


async def test_an_error_while_storing_fails_the_row_instead_of_leaving_it_processing(
    client: httpx.AsyncClient, app: Any
) -> None:
    service(app).queue._ctx.analyze_fn = unserialisable
    r = await submit(client, SMALL, wait=10)
    body = r.json()
    assert body["status"] == "failed"
    assert "internal error" in body["error"]
    service(app).queue._ctx.analyze_fn = analyze
    assert (await submit(client, SMALL, wait=10)).json()["status"] == "completed"


@pytest.mark.parametrize("stuck", [never_checks, hangs_in_c], ids=["sleeps", "regex"])
async def test_a_detector_that_ignores_its_token_is_killed_at_the_deadline(
    client: httpx.AsyncClient, app: Any, stuck: Any
) -> None:
    queue = service(app).queue
    recorder = PidRecorder(then=stuck)
    queue._ctx.analyze_fn = recorder
    queue._ctx.timeout = 0.3
    body = (await submit(client, SMALL, wait=5)).json()
    assert body["status"] == "failed" and "time limit" in body["error"]
    # Its process was killed (not waited for), and the API answered all along.
    assert await _gone(recorder.pid(), 2) is not None
    assert (await client.get("/health")).status_code == 200
    # The worker is free for the next job, in a fresh process.
    queue._ctx.analyze_fn = analyze
    queue._ctx.timeout = 30
    assert (await submit(client, SMALL, wait=5)).json()["status"] == "completed"


async def test_a_body_whose_parsing_overruns_is_refused_and_its_process_replaced(
    client: httpx.AsyncClient, app: Any
) -> None:
    pool = service(app).pool
    normal = pool._settings
    pool._settings = normal.model_copy(update={"parse_timeout_seconds": 0.05})
    big = {"messages": messages(20_000, words=30)}
    r = await client.post("/api/v1/analyze", json=big)
    assert r.status_code == 400, r.text
    assert "could not be parsed within 0.05 seconds" in r.json()["detail"]
    assert (await client.get("/health")).status_code == 200
    pool._settings = normal
    r = await client.post("/api/v1/analyze", json={"messages": messages(200, words=30)})
    assert r.status_code == 202, r.text


async def test_a_cancel_through_another_process_stops_the_work(settings: Any) -> None:
    """Two processes share the database; the cancel lands on the one not running the job."""
    release = Release()
    recorder = PidRecorder(then=blocking_analysis(release))
    first_app, second_app = create_app(settings), create_app(settings)
    try:
        async with (
            first_app.router.lifespan_context(first_app),
            second_app.router.lifespan_context(second_app),
        ):
            service(first_app).queue._ctx.analyze_fn = recorder
            a = httpx.AsyncClient(transport=httpx.ASGITransport(app=first_app), base_url="http://a")
            b = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=second_app), base_url="http://b"
            )
            async with a, b:
                analysis_id = (await submit(a, SMALL)).json()["id"]
                pid = await asyncio.to_thread(recorder.pid)
                assert (await b.post(f"/api/v1/analyze/{analysis_id}/cancel")).status_code == 200
                assert await _gone(pid, 5) is not None, "the worker kept running"
                assert service(first_app).queue.stats()["running"] == 0
                assert (await a.get(f"/api/v1/analyze/{analysis_id}")).json()["status"] == (
                    "cancelled"
                )
    finally:
        release.set()


async def test_a_dead_parse_process_is_replaced_not_a_lasting_500(
    client: httpx.AsyncClient, app: Any
) -> None:
    import os
    import signal

    from app.jobs import work

    pool = service(app).pool
    pid = await pool._run("parse", 10, work.ping)
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.5)
    big = {"messages": messages(400, words=30)}  # over the inline limit: parsed in the pool
    codes = []
    for _ in range(3):
        r = await client.post("/api/v1/analyze", json=big)
        codes.append(r.status_code)
        if r.status_code == 202:
            break
        assert r.status_code == 503 and r.headers["retry-after"], r.text
    assert codes[-1] == 202, codes
    ready = (await client.get("/health/ready")).json()
    assert ready["checks"]["queue"]["pools_ok"] is True


async def test_the_cancel_watch_never_stops_work_that_started_while_it_looked(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watch asks the database which running jobs are still active; a job that started
    while it asked is not in the answer and must not be taken for stopped elsewhere. The
    watch runs without pause here so that the window is hit; every analysis must end
    completed, none stays pending or processing."""
    monkeypatch.setattr(inprocess, "WATCH_SECONDS", 0.0)
    application = create_app(
        settings.model_copy(update={"worker_concurrency": 2, "queue_max_size": 200})
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ids = [(await submit(client, SMALL)).json()["id"] for _ in range(150)]
            statuses = [(await wait_done(client, i)).get("status") for i in ids]
    assert statuses == ["completed"] * len(ids)
