"""The job-queue contract, the same tests over both queues: the embedded one (jobs run in
the API process, SQLite) and the Redis one (an API-only app and a worker runtime beside it,
PostgreSQL and the machine's Redis).

Submit and wait (``Prefer: wait``, answered through the queue's ``wait`` even when another
runtime ran the job), the hook when a job ends, cancel of queued and of running work (the
worker is freed, nothing is stored), priority of what is still queued, a full queue, and
failures that end with a reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.jobs.base import JobQueue
from app.main import create_app
from tests.conftest import make_settings
from tests.contract.test_analyze import TEXT, submit, wait_done
from tests.contract.test_batches import BREAD, batch, until_done
from tests.queues import redis_or_skip, redis_queue_settings, redis_worker, remove_queue
from tests.workers import Release, blocking_analysis


@pytest.fixture(
    params=[
        "inprocess",
        pytest.param("redis", marks=[pytest.mark.redis, pytest.mark.postgres]),
    ]
)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(kind: str) -> str:
    return "sqlite" if kind == "inprocess" else "postgres"


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any], kind: str) -> Settings:
    values = {"aggregate_min_conversations": 3, "max_batch_conversations": 10}
    if kind == "redis":
        redis_or_skip()
        values.update(redis_queue_settings())
    return make_settings(database_url, **{**values, **settings_overrides})


class Runner:
    """Where jobs run: the app's own queue, or the worker runtime's."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.order: list[str] = []
        hook = queue.on_finished

        async def record(analysis_id: str) -> None:
            self.order.append(analysis_id)
            if hook is not None:
                await hook(analysis_id)

        queue.on_finished = record

    def block(self) -> Release:
        release = Release()
        self.queue._ctx.analyze_fn = blocking_analysis(release)  # type: ignore[attr-defined]
        return release

    def unblock(self) -> None:
        from app.analysis import analyze

        self.queue._ctx.analyze_fn = analyze  # type: ignore[attr-defined]


@pytest.fixture
async def app_and_runner(settings: Settings, kind: str) -> AsyncIterator[tuple[Any, Runner]]:
    application = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            # Analysis processes answer before a test starts (a loaded machine may take
            # seconds to start them), so waits measure the queue, not the start-up.
            await application.state.service.pool.ready()
            if kind == "inprocess":
                yield application, Runner(application.state.service.queue)
            else:
                async with redis_worker(settings) as worker:
                    await worker.pool.ready()
                    yield application, Runner(worker.queue)
    finally:
        if kind == "redis":
            remove_queue(settings)


@pytest.fixture
async def client(app_and_runner: tuple[Any, Runner]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_and_runner[0], raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def runner(app_and_runner: tuple[Any, Runner]) -> Runner:
    return app_and_runner[1]


async def until_status(client: httpx.AsyncClient, analysis_id: str, status: str) -> None:
    for _ in range(400):
        if (await client.get(f"/api/v1/analyze/{analysis_id}")).json()["status"] == status:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"analysis {analysis_id} never became {status}")


async def test_submitted_work_runs_and_wait_sees_its_end(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    r = await submit(client, {"conversation_text": TEXT}, wait=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed" and body["patterns"]["dynamics"]["total_turns"] == 3
    for _ in range(100):  # the hook runs after the row was written
        if body["id"] in runner.order:
            break
        await asyncio.sleep(0.02)
    assert runner.order == [body["id"]]


async def test_wait_gives_up_after_its_time_while_work_is_queued(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    release = runner.block()
    try:
        r = await submit(client, {"conversation_text": TEXT}, wait=1)
        assert r.status_code == 202 and r.json()["status"] in ("pending", "processing")
    finally:
        release.set()
    assert (await wait_done(client, r.json()["id"]))["status"] == "completed"


@pytest.mark.parametrize("settings_overrides", [{"worker_concurrency": 1}])
async def test_cancel_stops_running_and_queued_work_for_real(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    runner.block()  # never released: only a cancel ends these
    running = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    await until_status(client, running, "processing")
    queued = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    for analysis_id in (queued, running):
        r = await client.post(f"/api/v1/analyze/{analysis_id}/cancel")
        assert r.status_code == 200, r.text
    # The only worker was freed: new work runs although the blocked job was never released.
    runner.unblock()
    r = await submit(client, {"conversation_text": TEXT}, wait=30)
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    for analysis_id in (running, queued):
        body = (await client.get(f"/api/v1/analyze/{analysis_id}")).json()
        assert body["status"] == "cancelled" and body.get("patterns") is None, body
    assert (await client.post(f"/api/v1/analyze/{running}/cancel")).status_code == 409


@pytest.mark.parametrize(
    "settings_overrides", [{"worker_concurrency": 1, "aggregate_min_conversations": 3}]
)
async def test_priority_moves_work_that_is_still_queued(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    release = runner.block()
    first = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    await until_status(client, first, "processing")
    low = (
        await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:3], priority="low"))
    ).json()
    normal = (await client.post("/api/v1/analyze/batch", json=batch(*BREAD[3:5]))).json()
    r = await client.post(
        f"/api/v1/analyze/batch/{low['batch_id']}/priority", json={"priority": "high"}
    )
    assert r.status_code == 200 and r.json()["moved"] == 3, r.text
    release.set()
    await until_done(client, low["batch_id"])
    await until_done(client, normal["batch_id"])
    low_ids = {
        i["analysis_id"]
        for i in (await client.get(f"/api/v1/analyze/batch/{low['batch_id']}")).json()["items"]
    }
    # After the job that was running, every item of the raised batch ran before the
    # normal batch's items, although it was submitted first at the lowest priority.
    assert runner.order[0] == first
    assert set(runner.order[1:4]) == low_ids, runner.order
    # Ended work does not move: a batch that has ended is told so.
    r = await client.post(
        f"/api/v1/analyze/batch/{low['batch_id']}/priority", json={"priority": "low"}
    )
    assert r.status_code == 409 and "ended" in r.json()["detail"]


@pytest.mark.parametrize("settings_overrides", [{"worker_concurrency": 1}])
async def test_within_a_priority_single_analyses_go_before_batch_items(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    release = runner.block()
    first = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    await until_status(client, first, "processing")
    waiting = (await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:3]))).json()
    single = (await submit(client, {"conversation_text": TEXT + " Later."})).json()["id"]
    release.set()
    await until_done(client, waiting["batch_id"])
    await until_status(client, single, "completed")
    # Submitted after the three items, at the same priority, it ran before them.
    assert runner.order[:2] == [first, single], runner.order


@pytest.mark.parametrize(
    "settings_overrides",
    [{"worker_concurrency": 1, "queue_max_size": 1, "queue_max_batch_items": 2}],
)
async def test_a_full_queue_refuses_a_batch_whole(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    release = runner.block()
    try:
        r = await client.post("/api/v1/analyze/batch", json=batch(*BREAD))
        assert r.status_code == 503 and "full" in r.json()["detail"], r.text
        assert r.headers["retry-after"] == "5"
    finally:
        release.set()
    r = await client.post("/api/v1/analyze/batch", json=batch(*BREAD[:2]))
    assert r.status_code == 202, r.text
    done = await until_done(client, r.json()["batch_id"])
    assert done["counts"]["completed"] == 2


async def test_a_failing_analysis_ends_failed_with_its_reason(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    runner.queue._ctx.analyze_fn = _broken  # type: ignore[attr-defined]
    r = await submit(client, {"conversation_text": TEXT})
    body = await wait_done(client, r.json()["id"], timeout=90)
    assert body["status"] == "failed", body
    assert "internal error" in body["error"] and "tries" not in body["error"]


def _broken(conversation: Any, options: Any, token: Any) -> dict[str, Any]:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    "settings_overrides",
    [{"observer_mode": "required", "job_max_tries": 3, "job_retry_seconds": 0.05}],
)
async def test_an_unreachable_observer_is_tried_again_then_fails_with_its_reason(
    client: httpx.AsyncClient, runner: Runner
) -> None:
    analysis_id = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    done = await wait_done(client, analysis_id, timeout=90)
    assert done["status"] == "failed", done
    assert "observer" in done["error"] and "gave up after 3 tries" in done["error"], done
    assert done.get("patterns") is None
    # The hook ran once, when the analysis ended, not on each try.
    for _ in range(100):
        if runner.order:
            break
        await asyncio.sleep(0.02)
    assert runner.order == [analysis_id]
