"""A job that fails for a passing reason is tried again after a delay; on the Redis queue
it must come back at the level its priority gave it. arq re-scores a retried job as due
when its delay ends, which alone would put a ``high`` job behind every ``normal`` job
queued before that: behind a backlog it would wait for all of them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from arq.utils import timestamp_ms

from app.analysis import AnalysisOptions
from app.core.config import Settings
from app.core.crypto import ResultCipher
from app.jobs import redisqueue
from app.jobs.base import AnalysisJob
from app.jobs.execute import TransientFailure
from app.jobs.redisqueue import LEVEL_MS, RedisQueue
from tests.conftest import make_settings
from tests.queues import redis_or_skip, redis_queue_settings, remove_queue

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


def _queue(settings: Settings | None = None) -> RedisQueue:
    if settings is None:
        overrides = redis_queue_settings(queue_name=f"obs-retry-{uuid.uuid4().hex[:10]}")
        settings = make_settings("sqlite+aiosqlite:///:memory:", **overrides)
    ctx = SimpleNamespace(cipher=ResultCipher([("k1", b"\x01" * 32)]))
    return RedisQueue(settings, ctx)  # type: ignore[arg-type]


@pytest.fixture
async def queue() -> AsyncIterator[RedisQueue]:
    """A started queue of its own, removed with its jobs' arq keys afterwards."""
    redis_or_skip()
    started = _queue()
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
        remove_queue(started._settings)


async def _retried(queue: RedisQueue, analysis_id: str, priority: str, delay: float) -> int:
    """Queue a job at ``priority``, let it rest as a worker does before a retry, and
    re-score it as arq does; the time its delay ends (ms)."""
    await queue.submit(job(analysis_id, priority))
    await queue._rest_before_retry(analysis_id, delay)
    due = timestamp_ms() + int(delay * 1000)
    await queue.redis.zadd(queue._name, {analysis_id: due})
    return due


async def test_a_move_during_the_delay_is_the_level_it_wakes_at(queue: RedisQueue) -> None:
    due = {}
    for name, moved_to in (("to-low", "low"), ("to-normal", "normal"), ("stays", None)):
        # Moved while its worker still holds it, just after the failure: the row is
        # pending again, so the move must count.
        await queue.redis.set(f"arq:in-progress:{name}", b"1", px=5000)
        due[name] = await _retried(queue, name, "high", 0.3)
        if moved_to is not None:
            assert await queue.reprioritise(name, moved_to)
        await queue.redis.delete(f"arq:in-progress:{name}")
        # The delay is kept: still due only when it ends.
        assert await queue.redis.zscore(queue._name, name) == due[name]
    await asyncio.sleep(0.4)
    await queue.wake_rested()
    scores = {n: await queue.redis.zscore(queue._name, n) for n in due}
    assert scores["to-low"] == due["to-low"]
    assert scores["to-normal"] == due["to-normal"] - LEVEL_MS
    assert scores["stays"] == due["stays"] - 2 * LEVEL_MS
    assert await queue.redis.zcard(queue.resting_key) == 0


async def test_a_job_whose_worker_stopped_during_the_delay_is_woken_by_another_process(
    queue: RedisQueue,
) -> None:
    worker = _queue(queue._settings)
    await worker.start()
    due = await _retried(worker, "flaky", "high", 0.2)
    await worker.stop()  # its own wake-up is cancelled
    await asyncio.sleep(0.3)
    assert await queue.wake_rested() == 1
    assert await queue.redis.zscore(queue._name, "flaky") == due - 2 * LEVEL_MS


async def test_a_job_taken_cancelled_or_not_rescored_is_left_alone(queue: RedisQueue) -> None:
    taken = await _retried(queue, "taken", "high", 0.1)
    await queue.redis.set("arq:in-progress:taken", b"1", px=5000)
    await _retried(queue, "cancelled", "high", 0.1)
    await queue.cancel("cancelled")
    assert await queue.redis.zscore(queue.resting_key, "cancelled") is None
    # A delay of 0: arq leaves the score where it was, already at its level; a move
    # made before the wake still counts.
    await queue.submit(job("instant", "high"))
    await queue.submit(job("instant-moved", "high"))
    before = await queue.redis.zscore(queue._name, "instant")
    moved_before = await queue.redis.zscore(queue._name, "instant-moved")
    await queue._rest_before_retry("instant", 0.0)
    await queue._rest_before_retry("instant-moved", 0.0)
    assert await queue.reprioritise("instant-moved", "low")
    await asyncio.sleep(0.2)
    await queue.wake_rested()
    assert await queue.redis.zscore(queue._name, "taken") == taken
    assert await queue.redis.zscore(queue._name, "instant") == before
    assert await queue.redis.zscore(queue._name, "instant-moved") == moved_before + 2 * LEVEL_MS
    assert await queue.redis.zscore(queue._name, "cancelled") is None


async def test_an_early_wake_does_not_cut_a_later_retry_short(queue: RedisQueue) -> None:
    await _retried(queue, "twice", "high", 0.1)
    await asyncio.sleep(0.15)
    await queue.wake_rested()
    # Tried again and failed again: a second, longer rest.
    second = await _retried(queue, "twice", "high", 5.0)
    await queue.wake_rested()  # e.g. the first retry's late wake-up
    assert await queue.redis.zscore(queue._name, "twice") == second


async def test_a_job_taken_before_its_wake_keeps_its_level_for_the_next_retry(
    queue: RedisQueue,
) -> None:
    await _retried(queue, "again", "high", 0.05)
    # An idle worker takes it the moment it is due, before any wake-up.
    await queue.redis.set("arq:in-progress:again", b"1", px=5000)
    await asyncio.sleep(0.1)
    await queue.wake_rested()
    await queue.redis.delete("arq:in-progress:again")
    # It fails again: the next rest wakes it at its level.
    second = await _retried(queue, "again", "high", 0.05)
    await asyncio.sleep(0.1)
    await queue.wake_rested()
    assert await queue.redis.zscore(queue._name, "again") == second - 2 * LEVEL_MS


async def test_a_failure_to_rest_costs_the_job_its_level_not_its_retry(queue: RedisQueue) -> None:
    async def broken(**_: Any) -> None:
        raise ConnectionError("Redis went away")

    queue._rest = broken
    await queue._rest_before_retry("any", 1.0)  # logged, not raised: the retry goes ahead
