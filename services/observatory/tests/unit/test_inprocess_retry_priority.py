"""An item waiting for its retry on the embedded queue is still queued work (its row is
``pending``): moving its batch's priority moves it too, as the Redis queue re-scores a job
waiting for its retry."""

from __future__ import annotations

import asyncio
from typing import Any

from app.analysis import AnalysisOptions
from app.jobs.base import AnalysisJob
from app.jobs.inprocess import InProcessQueue


async def test_a_job_waiting_for_its_retry_moves_with_its_batch() -> None:
    queue = InProcessQueue(
        ctx=Any,  # type: ignore[arg-type]  # no job runs: no worker task is started
        concurrency=1,
        max_size=10,
        max_tries=3,
        retry_delay=lambda tries: 0.1,
    )
    job = AnalysisJob(
        analysis_id="a-1",
        payload=b"x",
        options=AnalysisOptions(pattern_types=frozenset({"topics"})),
        priority="low",
        batch_id="b-1",
    )
    queue._again(job, b"x", tries=1)  # its first try failed transiently
    moved = await queue.reprioritise("a-1", "high")
    await asyncio.sleep(0.3)  # the retry delay passes: it is queued again
    level, _, _, queued = queue._queue.get_nowait()
    assert queued is job
    assert (moved, level, job.priority) == (True, 0, "high")
