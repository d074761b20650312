"""The embedded queue: a bounded priority queue and N worker tasks in this process.

Each worker task hands its job's CPU-bound steps to a worker process (:mod:`app.jobs.pool`),
so the event loop keeps answering requests; cancelling a running job cancels its task,
which kills the process doing the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

import structlog

from app.analyses import repository as repo
from app.core.database import utcnow
from app.jobs.base import PRIORITIES, SINGLE_AHEAD_SECONDS, AnalysisJob, JobQueue, QueueFull
from app.jobs.execute import INTERNAL_ERROR, JobContext, TransientFailure, execute

log = structlog.get_logger(__name__)

WATCH_SECONDS = 1.0
STOPPED = "the analysis was stopped before it ended; submit it again"


class InProcessQueue(JobQueue):
    def __init__(
        self,
        ctx: JobContext,
        *,
        concurrency: int,
        max_size: int,
        max_batch_items: int = 10_000,
        max_tries: int = 1,
        retry_delay: Callable[[int], float] = lambda tries: 0.0,
    ) -> None:
        self._ctx = ctx
        self._max_tries = max_tries
        self._retry_delay = retry_delay
        # Tries so far of jobs that failed transiently and wait to be tried again.
        self._tries: dict[str, int] = {}
        self._retrying: dict[str, asyncio.Task[None]] = {}
        # The jobs waiting out their retry delay (still queued work: a priority moves them).
        self._resting: dict[str, AnalysisJob] = {}
        self._concurrency = concurrency
        self._max_size = max_size
        self._max_batch_items = max_batch_items
        self._batch_waiting = 0
        # The queue entry that counts for each waiting job (a reprioritised job leaves its
        # old entry behind as a husk).
        self._entry: dict[str, int] = {}
        self._queue: asyncio.PriorityQueue[tuple[int, float, int, AnalysisJob]] = (
            asyncio.PriorityQueue()
        )
        self._seq = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[str]] = {}
        # Jobs waiting in the queue by id; a cancelled one leaves this map (and drops its
        # conversation) at once, and the worker skips its husk when it comes up.
        self._waiting: dict[str, AnalysisJob] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[None]] = set()
        self.processed = 0

    async def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"analysis-worker-{i}")
            for i in range(self._concurrency)
        ]
        self._watcher = asyncio.create_task(self._watch(), name="analysis-cancel-watch")

    async def stop(self) -> None:
        for retry in list(self._retrying.values()):
            retry.cancel()
        await asyncio.gather(*self._retrying.values(), return_exceptions=True)
        self._retrying.clear()
        self._resting.clear()
        await self._stop_hooks()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        for task in list(self._running.values()):
            task.cancel()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        for job in self._waiting.values():
            job.payload = None
        self._waiting.clear()
        self._entry.clear()
        self._batch_waiting = 0

    async def submit(self, job: AnalysisJob) -> None:
        if job.batch_id is not None:
            if self._batch_waiting >= self._max_batch_items:
                raise QueueFull(
                    f"the batch queue is full ({self._max_batch_items} conversations waiting)"
                )
            self._batch_waiting += 1
        elif len(self._waiting) - self._batch_waiting >= self._max_size:
            raise QueueFull(f"the analysis queue is full ({self._max_size} waiting)")
        self._done[job.analysis_id] = asyncio.Event()
        self._waiting[job.analysis_id] = job
        self._put(job)

    def _put(self, job: AnalysisJob) -> None:
        seq = next(self._seq)
        self._entry[job.analysis_id] = seq
        # First come first served within a priority, single analyses with a head start
        # (SINGLE_AHEAD_SECONDS) over batch items; a job moved to another priority keeps
        # the time it was first queued.
        queued = job.extra.setdefault("queued_at", time.monotonic())
        ahead = SINGLE_AHEAD_SECONDS if job.batch_id is None else 0.0
        self._queue.put_nowait((PRIORITIES.get(job.priority, 1), queued - ahead, seq, job))

    def _take(self, analysis_id: str) -> AnalysisJob | None:
        job = self._waiting.pop(analysis_id, None)
        self._entry.pop(analysis_id, None)
        if job is not None and job.batch_id is not None:
            self._batch_waiting -= 1
        return job

    async def reprioritise(self, analysis_id: str, priority: str) -> bool:
        resting = self._resting.get(analysis_id)
        if resting is not None:  # queued again at its new priority when its delay is over
            resting.priority = priority
            return True
        job = self._waiting.get(analysis_id)
        if job is None:
            return False
        if job.priority != priority:
            job.priority = priority
            self._put(job)
        return True

    async def cancel(self, analysis_id: str) -> None:
        retry = self._retrying.pop(analysis_id, None)
        self._resting.pop(analysis_id, None)
        if retry is not None:
            retry.cancel()
            self._tries.pop(analysis_id, None)
            self._finished(analysis_id)
            return
        queued = self._take(analysis_id)
        if queued is not None:
            queued.payload = None
            self._finished(analysis_id)
            return
        task = self._running.get(analysis_id)
        if task is not None:
            task.cancel()
            # Wait until the job task has unwound so the worker is free when we return.
            await asyncio.gather(task, return_exceptions=True)

    async def wait(self, analysis_id: str, timeout: float) -> None:
        event = self._done.get(analysis_id)
        if event is None or timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def _watch(self) -> None:
        """Stop running work that was cancelled or deleted through another process sharing
        the database (that process cannot reach this one's workers): every
        ``WATCH_SECONDS``, running jobs whose row is no longer pending or processing are cancelled
        here, which kills their worker process."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await self._sweep()
            except Exception as exc:
                log.error("analysis.cancel_watch_failed", error=type(exc).__name__)

    async def _sweep(self) -> None:
        # Only the jobs that were asked about: one that started while the query ran is not
        # in its answer, and must not be taken for stopped.
        asked = list(self._running)
        if not asked:
            return
        async with self._ctx.sessions() as session:
            still = await repo.still_active(session, asked)
        for analysis_id in set(asked) - still:
            task = self._running.get(analysis_id)
            if task is None or task.done():
                continue  # it ended on its own meanwhile
            log.info("analysis.stopped_elsewhere", analysis_id=analysis_id)
            await self.cancel(analysis_id)

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "in-process",
            "queued": len(self._waiting),
            "running": len(self._running),
            "workers": len(self._workers),
            "capacity": self._max_size,
            "batch_queued": self._batch_waiting,
            "batch_capacity": self._max_batch_items,
            "processed": self.processed,
        }

    def _finished(self, analysis_id: str) -> None:
        event = self._done.pop(analysis_id, None)
        if event is not None:
            event.set()
        self._fire_finished(analysis_id)

    async def _work(self) -> None:
        while True:
            _, _, seq, job = await self._queue.get()
            if self._entry.get(job.analysis_id) != seq:
                # Cancelled while it waited (already finished), or queued again at another
                # priority (its newer entry counts).
                self._queue.task_done()
                continue
            self._take(job.analysis_id)
            payload = job.payload
            tries = self._tries.pop(job.analysis_id, 0) + 1
            again = False
            try:
                task = asyncio.create_task(
                    execute(job, self._ctx, retryable=tries < self._max_tries, tries=tries)
                )
                self._running[job.analysis_id] = task
                try:
                    await asyncio.gather(task, return_exceptions=True)
                finally:
                    self._running.pop(job.analysis_id, None)
                failure = None if task.cancelled() else task.exception()
                if isinstance(failure, TransientFailure) and payload is not None:
                    again = True
                    self._again(job, payload, tries)
                elif task.cancelled():
                    # Whoever cancelled it has ended the row (cancelled or deleted); should
                    # that not be so, the row is failed rather than left processing.
                    await self._last_resort(job.analysis_id, STOPPED)
                elif failure is not None:
                    log.error(
                        "analysis.worker_error",
                        analysis_id=job.analysis_id,
                        error=type(failure).__name__,
                    )
                    await self._last_resort(job.analysis_id, INTERNAL_ERROR)
            finally:
                del payload
                if not again:
                    job.payload = None
                    self.processed += 1
                    self._finished(job.analysis_id)
                self._queue.task_done()

    def _again(self, job: AnalysisJob, payload: bytes, tries: int) -> None:
        """Queue ``job`` again after its retry delay (its row is ``pending`` again)."""
        job.payload = payload
        self._tries[job.analysis_id] = tries
        delay = self._retry_delay(tries)
        log.info("analysis.retry", analysis_id=job.analysis_id, tries=tries)

        async def later() -> None:
            await asyncio.sleep(delay)
            self._retrying.pop(job.analysis_id, None)
            self._resting.pop(job.analysis_id, None)
            if job.batch_id is not None:
                self._batch_waiting += 1
            self._waiting[job.analysis_id] = job
            self._put(job)

        self._resting[job.analysis_id] = job
        self._retrying[job.analysis_id] = asyncio.create_task(later())

    async def _last_resort(self, analysis_id: str, error: str) -> None:
        """``execute`` ends every row itself; if even that failed (the database went away),
        or the job was stopped without its row being ended, fail the row (if it is still
        pending or processing) so none stays ``processing`` for ever."""
        try:
            async with self._ctx.sessions() as session, session.begin():
                await repo.transition(
                    session,
                    analysis_id,
                    repo.ACTIVE,
                    repo.FAILED,
                    finished_at=utcnow(),
                    stage=None,
                    error=error,
                )
        except Exception as again:
            log.error("analysis.unrecoverable", analysis_id=analysis_id, error=type(again).__name__)

    async def drain(self) -> None:
        """Wait until every queued job has run (for tests and the CLI)."""
        await self._queue.join()
