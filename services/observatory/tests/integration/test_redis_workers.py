"""The Redis queue with worker processes of their own (``tests/redis_worker_main.py`` is
``observatory worker`` with slowed analyses): ``kill -9`` of a worker mid-batch loses no
item, SIGTERM hands running work back, transient failures are tried again up to the limit,
and no conversation text is left in Redis (nor readable there while queued).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from app.analyses.models import Analysis
from app.core.config import Settings
from app.jobs.redisqueue import INTERRUPTED, RedisQueue
from app.main import create_app
from tests.conftest import CLOSED_PORT_URL, make_settings
from tests.contract.test_analyze import submit, wait_done
from tests.contract.test_batches import BREAD, batch
from tests.queues import (
    QUEUE_REDIS_URL,
    queue_keys,
    redis_or_skip,
    redis_queue_settings,
    remove_queue,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(300)]

SERVICE_DIR = Path(__file__).resolve().parents[2]
SECRET_WORDS = "Marigold-Zanzibar-Quokka"


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Iterator[Settings]:
    redis_or_skip()
    values = {
        **redis_queue_settings(),
        # Generous for a loaded machine: a killed worker's job is taken again
        # 2 × 10 + 5 + 10 s after it started.
        "analysis_timeout_seconds": 10.0,
        "job_lost_after_seconds": 5.0,
        "observer_mode": "off",
        **settings_overrides,
    }
    made = make_settings(database_url, **values)
    try:
        yield made
    finally:
        remove_queue(made)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


class Workers:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, seconds: float, **overrides: Any) -> subprocess.Popen[bytes]:
        s = self.settings
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("OBSERVATORY_") or k.startswith("OBSERVATORY_TEST_")
        }
        values: dict[str, Any] = {
            "environment": "test",
            "log_level": "WARNING",
            "database_url": s.database_url,
            "migrate_on_start": "false",
            "queue_backend": "redis",
            "queue_redis_url": s.queue_redis_url,
            "queue_name": s.queue_name,
            "queue_encryption_key": s.queue_encryption_key,
            "result_keys": s.result_keys,
            "fingerprint_secret": s.fingerprint_secret,
            "worker_concurrency": 2,
            "analysis_timeout_seconds": s.analysis_timeout_seconds,
            "job_lost_after_seconds": s.job_lost_after_seconds,
            "job_max_tries": s.job_max_tries,
            "job_retry_seconds": s.job_retry_seconds,
            "observer_mode": s.observer_mode,
            "observer_url": CLOSED_PORT_URL,
            "worker_shutdown_seconds": s.worker_shutdown_seconds,
            **overrides,
        }
        env.update({f"OBSERVATORY_{k.upper()}": str(v) for k, v in values.items()})
        env["OBSERVATORY_TEST_ANALYSIS_SECONDS"] = str(seconds)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.redis_worker_main"], cwd=SERVICE_DIR, env=env
        )
        self.procs.append(proc)
        return proc

    async def until_live(self, count: int) -> None:
        client = redis.Redis.from_url(QUEUE_REDIS_URL)
        try:
            for _ in range(2400):
                live = list(client.scan_iter(match=f"{self.settings.queue_name}:worker:*"))
                if len(live) >= count:
                    return
                await asyncio.sleep(0.05)
        finally:
            client.close()
        raise AssertionError(f"{count} workers did not start")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    pool = Workers(settings)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def batch_status(client: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/analyze/batch/{batch_id}", params={"limit": 100})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def until_batch(
    client: httpx.AsyncClient, batch_id: str, done: Any, timeout: float = 180
) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = await batch_status(client, batch_id)
        if done(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch {batch_id} never reached the state: {body}")


@pytest.mark.parametrize("settings_overrides", [{"max_batch_conversations": 100}])
async def test_kill_9_of_a_worker_mid_batch_loses_no_item(
    client: httpx.AsyncClient, app: Any, workers: Workers
) -> None:
    doomed = workers.spawn(seconds=1.0)
    await workers.until_live(1)
    texts = [BREAD[i % len(BREAD)] + f"\nNote: item {i}." for i in range(24)]
    batch_id = (await client.post("/api/v1/analyze/batch", json=batch(*texts))).json()["batch_id"]
    # Only this worker runs, so what is processing is its work: kill it mid-item.
    await until_batch(client, batch_id, lambda b: b["counts"]["processing"] >= 1)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    workers.spawn(seconds=1.0)
    body = await until_batch(client, batch_id, lambda b: b["status"] == "completed")
    counts = body["counts"]
    assert counts["pending"] == 0 and counts["processing"] == 0, counts
    assert counts["completed"] + counts["failed"] == 24, counts
    # What the killed worker was running ends failed with the reason, not stuck; the rest
    # completed on the other worker.
    failed = [i for i in body["items"] if i["status"] == "failed"]
    assert all(i["error"] == INTERRUPTED for i in failed), failed
    assert 1 <= len(failed) <= 2, counts
    # One stored result per completed item, none for a failed one.
    async with app.state.service.sessions() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Analysis).where(Analysis.result.is_not(None))
        )
    assert stored == counts["completed"]
    # Nothing of the batch is left in Redis.
    assert not [k for k in queue_keys(app.state.service.settings) if b":payload:" in k]


@pytest.mark.parametrize("settings_overrides", [{"worker_shutdown_seconds": 0}])
async def test_sigterm_hands_running_work_back_to_the_queue(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    first = workers.spawn(seconds=30.0)
    await workers.until_live(1)
    analysis_id = (await submit(client, {"conversation_text": BREAD[0]})).json()["id"]
    for _ in range(400):
        if (await client.get(f"/api/v1/analyze/{analysis_id}")).json()["status"] == "processing":
            break
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    body = (await client.get(f"/api/v1/analyze/{analysis_id}")).json()
    assert body["status"] == "pending", body
    workers.spawn(seconds=0)
    done = await wait_done(client, analysis_id, timeout=60)
    assert done["status"] == "completed" and done["error"] is None, done


@pytest.mark.parametrize(
    "settings_overrides",
    [{"observer_mode": "required", "job_max_tries": 3, "job_retry_seconds": 0.2}],
)
async def test_an_unreachable_observer_is_tried_again_then_fails_with_its_reason(
    client: httpx.AsyncClient, workers: Workers
) -> None:
    workers.spawn(seconds=0)
    await workers.until_live(1)
    analysis_id = (await submit(client, {"conversation_text": BREAD[1]})).json()["id"]
    done = await wait_done(client, analysis_id, timeout=60)
    assert done["status"] == "failed", done
    assert "observer" in done["error"] and "gave up after 3 tries" in done["error"], done


async def test_queued_text_is_encrypted_in_redis_and_gone_after_the_batch(
    client: httpx.AsyncClient, app: Any, workers: Workers
) -> None:
    settings = app.state.service.settings
    texts = [f"Ana: {SECRET_WORDS} number {i}?\nBen: Yes, {SECRET_WORDS}." for i in range(5)]
    batch_id = (await client.post("/api/v1/analyze/batch", json=batch(*texts))).json()["batch_id"]
    # No worker yet: the conversations wait in Redis, encrypted and with a time to live.
    client_ = redis.Redis.from_url(QUEUE_REDIS_URL)
    try:
        payloads = [k for k in queue_keys(settings) if b":payload:" in k]
        assert len(payloads) == 5
        for key in payloads:
            stored = client_.get(key)
            assert stored is not None and SECRET_WORDS.encode() not in stored
            assert 0 < client_.ttl(key) <= settings.queue_payload_ttl_seconds
        queue = app.state.service.queue
        assert isinstance(queue, RedisQueue)
        workers.spawn(seconds=0)
        await until_batch(client, batch_id, lambda b: b["status"] == "completed")
        everything = [(key, client_.dump(key)) for key in client_.scan_iter(match="*", count=1000)]
    finally:
        client_.close()
    assert not [k for k in queue_keys(settings) if b":payload:" in k]
    leaked = [key for key, value in everything if value and SECRET_WORDS.encode() in value]
    assert leaked == []
