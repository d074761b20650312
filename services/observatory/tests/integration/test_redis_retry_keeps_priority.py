"""A job that fails for a passing reason is tried again after a delay; on the Redis queue
it must come back at the level its priority gave it. arq re-scores a retried job as due
when its delay ends, which alone would put a ``high`` job behind every ``normal`` job
queued before that: behind a backlog it would wait for all of them."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from app.analysis import AnalysisOptions
from app.core.crypto import ResultCipher
from app.jobs import redisqueue
from app.jobs.base import AnalysisJob
from app.jobs.execute import TransientFailure
from app.jobs.redisqueue import _RESTORE_LEVEL, LEVEL_MS, RedisQueue
from tests.conftest import make_settings
from tests.queues import QUEUE_REDIS_URL, redis_or_skip, redis_queue_settings, remove_queue

pytestmark = [pytest.mark.redis]

NORMAL_JOBS = 6
JOB_SECONDS = 0.25


def job(analysis_id: str, priority: str) -> AnalysisJob:
    return AnalysisJob(
        analysis_id=analysis_id,
        payload=b"a conversation",
        options=AnalysisOptions(pattern_types=frozenset({"topics"})),
        priority=priority,
        batch_id="b-1",
    )


async def test_a_high_job_tried_again_runs_before_the_normal_backlog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redis_or_skip()
    overrides = redis_queue_settings(queue_name=f"obs-retry-{uuid.uuid4().hex[:10]}")
    settings = make_settings(
        "sqlite+aiosqlite:///:memory:",
        **overrides,
        worker_concurrency=1,
        job_retry_seconds=0.2,
        job_max_tries=3,
    )
    runs: list[tuple[str, int]] = []

    async def execute(job: AnalysisJob, ctx: Any, *, retryable: bool, tries: int) -> str:
        runs.append((job.analysis_id, tries))
        if job.analysis_id == "high" and tries == 1:
            raise TransientFailure("the observer did not answer")
        await asyncio.sleep(JOB_SECONDS)
        return "completed"

    monkeypatch.setattr(redisqueue, "execute", execute)
    ctx = SimpleNamespace(cipher=ResultCipher([("k1", b"\x01" * 32)]))
    queue = RedisQueue(settings, ctx)  # type: ignore[arg-type]
    await queue.start()
    try:
        await queue.submit(job("high", "high"))
        for i in range(NORMAL_JOBS):
            await queue.submit(job(f"normal-{i}", "normal"))
        queue.consume_in_background()
        for _ in range(400):
            if len(runs) == NORMAL_JOBS + 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await queue.stop()
        remove_queue(settings)
    order = [name for name, _ in runs]
    assert order[0] == "high" and runs.count(("high", 2)) == 1, runs
    # Its delay (0.2-0.25 s) ends while the first or second normal job runs; it is next.
    assert order.index("high", 1) <= 3, runs


def test_a_retried_job_moved_or_taken_meanwhile_is_left_alone() -> None:
    redis_or_skip()
    client = redis.Redis.from_url(QUEUE_REDIS_URL)
    name = f"obs-retry-{uuid.uuid4().hex[:10]}"
    try:
        restore = client.register_script(_RESTORE_LEVEL)
        now = 1_800_000_000_000
        due = now - 5  # as arq re-scored it: when its delay ended
        client.zadd(name, {"waiting": due, "moved": due - LEVEL_MS, "taken": due})
        client.set(f"arq:in-progress:{name}-taken", b"1")
        keys = {job_id: [name, f"arq:in-progress:{name}-{job_id}"] for job_id in ("waiting",)}
        assert restore(keys=keys["waiting"], args=["waiting", now, LEVEL_MS, 2]) == 1
        assert client.zscore(name, "waiting") == due - 2 * LEVEL_MS
        # Moved to another priority during its delay: the move stands.
        assert restore(keys=[name, "none"], args=["moved", now, LEVEL_MS, 2]) == 0
        assert client.zscore(name, "moved") == due - LEVEL_MS
        # Taken by a worker already.
        assert (
            restore(keys=[name, f"arq:in-progress:{name}-taken"], args=["taken", now, LEVEL_MS, 2])
            == 0
        )
        assert client.zscore(name, "taken") == due
        # Ended and gone.
        assert restore(keys=[name, "none"], args=["gone", now, LEVEL_MS, 2]) == 0
    finally:
        client.delete(name, f"arq:in-progress:{name}-taken")
        client.close()
