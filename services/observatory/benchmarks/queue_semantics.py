"""What arq does on the machine's Redis, as the Redis job queue relies on it: priority by
score, abort of a running job, ``kill -9`` of a worker, and retries.

    uv run python -m benchmarks.queue_semantics [redis://127.0.0.1:6379/14]

Prints one line per property. Uses its own queue name and removes its keys.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
import uuid
from typing import Any

from arq import Retry, Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import func

URL = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/14"
LEVEL_MS = 10**11
ORDER: list[str] = []
TRIES: list[float] = []


async def record(ctx: dict[str, Any], name: str) -> None:
    ORDER.append(name)


async def sleep_long(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(60)


async def flaky(ctx: dict[str, Any]) -> None:
    TRIES.append(time.monotonic())
    if ctx["job_try"] < 3:
        raise Retry(defer=0.2 * 2 ** (ctx["job_try"] - 1))


async def until(check: Any, step: float = 0.01, limit: float = 120.0) -> None:
    for _ in range(int(limit / step)):
        if check():
            return
        await asyncio.sleep(step)
    raise TimeoutError("condition not reached")


def worker(queue: str, fns: list[Any], redis: ArqRedis, **kw: Any) -> Worker:
    return Worker(
        functions=[func(f, name=f.__name__) for f in fns],
        queue_name=queue,
        redis_pool=redis,
        handle_signals=False,
        poll_delay=0.1,
        keep_result=0,
        **kw,
    )


async def priority(redis: ArqRedis, queue: str) -> str:
    now = int(time.time() * 1000)
    for i in range(20):  # low first, then normal, then high, interleaved in time
        level = i % 3
        await redis.enqueue_job(
            "record",
            f"{level}-{i}",
            _queue_name=queue,
            _defer_by=-(level * LEVEL_MS) / 1000 - 0.001,
            _expires=3600,
        )
    w = worker(queue, [record], redis, max_jobs=1, burst=True)
    await w.main()
    levels = [int(n.split("-")[0]) for n in ORDER]
    ordered = levels == sorted(levels, reverse=True)
    del now
    return f"priority by score: 20 jobs on 3 levels ran highest level first: {ordered}"


async def abort(redis: ArqRedis, queue: str) -> str:
    w = worker(queue, [sleep_long], redis, allow_abort_jobs=True, max_jobs=1)
    task = asyncio.create_task(w.main())
    job = await redis.enqueue_job("sleep_long", _queue_name=queue)
    assert job is not None
    await until(lambda: bool(w.job_tasks))
    t0 = time.monotonic()
    running = next(iter(w.job_tasks.values()))
    await redis.zadd("arq:abort", {job.job_id: int(time.time() * 1000)})  # what abort() does
    await until(running.done, 0.005)
    took = time.monotonic() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return f"abort of a running job: its task cancelled {took * 1000:.0f} ms after the abort"


CHILD = """
import asyncio, sys
from arq import Worker
from arq.connections import RedisSettings
async def sleep_long(ctx):
    await asyncio.sleep(60)
async def main():
    w = Worker(functions=[sleep_long], queue_name=sys.argv[2], job_timeout=3,
               redis_settings=RedisSettings.from_dsn(sys.argv[1]), poll_delay=0.1)
    await w.main()
asyncio.run(main())
"""


async def kill_9(redis: ArqRedis, queue: str) -> str:
    job = await redis.enqueue_job("sleep_long", _queue_name=queue)
    assert job is not None
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, URL, queue)
    for _ in range(3000):
        if await redis.exists(f"arq:in-progress:{job.job_id}"):
            break
        await asyncio.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    t0 = time.monotonic()
    started: list[float] = []

    async def sleep_long(ctx: dict[str, Any]) -> None:
        started.append(time.monotonic())

    w = worker(queue, [sleep_long], redis, job_timeout=3)
    task = asyncio.create_task(w.main())
    await until(lambda: bool(started), 0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return (
        f"kill -9 of a worker (job_timeout 3 s): the job ran again on another worker "
        f"{started[0] - t0:.1f} s later (arq waits job_timeout + 10 s)"
    )


async def retries(redis: ArqRedis, queue: str) -> str:
    await redis.enqueue_job("flaky", _queue_name=queue)
    w = worker(queue, [flaky], redis, burst=True, max_tries=5)
    await w.main()
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(TRIES)]
    return f"Retry(defer): {len(TRIES)} tries, gaps {gaps} s (asked 0.2, 0.4)"


async def main() -> None:
    redis = await create_pool(RedisSettings.from_dsn(URL))
    names = []
    try:
        for probe in (priority, abort, kill_9, retries):
            queue = f"obs-semantics-{uuid.uuid4().hex[:8]}"
            names.append(queue)
            print(await probe(redis, queue), flush=True)
    finally:
        for queue in names:
            await redis.delete(queue, f"{queue}:health-check")
        await redis.aclose()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    asyncio.run(main())
