"""Worker processes for everything CPU-bound, so the API's event loop never waits on it.

Two pools of processes (pebble's ``ProcessPool``): one parses submitted bodies, one runs
analyses. A task that outlives its deadline, or whose caller is cancelled, has its process
killed and replaced, so a stuck analysis costs its own process and nothing else; the API
keeps answering because the work is on another interpreter. Processes start from a fork
server that has already imported the analysis, so a replacement is ready in milliseconds.
See docs/decisions/0006-analysis-in-worker-processes.md.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from pebble import ProcessExpired, ProcessPool

from app.conversation.parsers import Limits
from app.core.cancellation import AnalysisTimedOut
from app.core.config import Settings
from app.jobs import work

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Bodies this small parse on the event loop (a tenth of a millisecond of linear-time work,
# less than the round trip to a process); larger ones go to a parsing process.
INLINE_PARSE_BYTES = 16 * 1024
# What the pool adds to a task's own deadline before it kills the process: the analysis
# checks its deadline cooperatively and normally reports its own timeout first.
KILL_GRACE_SECONDS = 1.0

_PRELOAD = ["app.jobs.work", "app.analysis", "app.observer"]


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class WorkerLost(Exception):
    """A worker process died under a task (killed by the system, out of memory, …)."""


class WorkerPool:
    """``parse`` and ``analysis`` processes; ``run_*`` await a task without blocking."""

    def __init__(self, settings: Settings, *, analysis_workers: int, parse_workers: int) -> None:
        self._settings = settings
        self.analysis_workers = analysis_workers
        self.parse_workers = parse_workers
        self._parse: ProcessPool | None = None
        self._analysis: ProcessPool | None = None

    def start(self) -> None:
        ctx = _context()
        self._parse = ProcessPool(
            self.parse_workers,
            initializer=work.init_worker,
            initargs=(self._settings,),
            context=ctx,
        )
        self._analysis = ProcessPool(
            self.analysis_workers,
            initializer=work.init_worker,
            initargs=(self._settings,),
            context=ctx,
        )
        # A first task starts each pool's processes now (and the fork server, which imports
        # the analysis once), instead of on the first request.
        for pool in (self._parse, self._analysis):
            pool.schedule(work.ping)

    async def stop(self) -> None:
        pools = [p for p in (self._parse, self._analysis) if p is not None]
        self._parse = self._analysis = None
        for pool in pools:
            pool.stop()  # type: ignore[no-untyped-call]
        # join() waits for the pool's threads and kills its processes; off the loop.
        await asyncio.gather(*(asyncio.to_thread(pool.join, 5) for pool in pools))

    async def prepare(self, body: bytes, limits: Limits) -> work.Submission | work.Refusal:
        if len(body) <= INLINE_PARSE_BYTES or self._parse is None:
            return work.prepare(body, limits)
        limit = self._settings.parse_timeout_seconds
        try:
            return await self._run(self._parse, limit, work.prepare, body, limits)
        except AnalysisTimedOut:
            log.error("parse.timeout", bytes=len(body), limit=limit)
            return work.Refusal(
                400,
                f"the request body could not be parsed within {limit:g} seconds and its parsing "
                "was stopped; split the conversation into smaller ones",
            )

    async def run_local(
        self,
        analysis_id: str,
        payload: bytes,
        options: Any,
        timeout: float,
        analyze_fn: Callable[..., Any],
    ) -> work.Done | work.Failed:
        assert self._analysis is not None, "pool not started"
        return await self._run(
            self._analysis,
            timeout + KILL_GRACE_SECONDS,
            work.run_local,
            analysis_id,
            payload,
            options,
            timeout,
            analyze_fn,
        )

    async def run_observer(
        self, analysis_id: str, payload: bytes, document: bytes, mode: str, time_limit: float
    ) -> work.Done | work.Failed:
        assert self._analysis is not None, "pool not started"
        return await self._run(
            self._analysis,
            time_limit + KILL_GRACE_SECONDS,
            work.run_observer,
            analysis_id,
            payload,
            document,
            mode,
            time_limit,
        )

    @staticmethod
    async def _run(pool: ProcessPool, timeout: float | None, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in ``pool``. Cancelling the awaiting task cancels the pebble
        future, which kills the process if the task already runs there."""
        future = pool.schedule(fn, args=args, timeout=timeout)
        try:
            return await asyncio.wrap_future(future)
        except TimeoutError:
            raise AnalysisTimedOut("analysis exceeded its time limit") from None
        except ProcessExpired as exc:
            log.error("worker.died", exitcode=exc.exitcode, function=fn.__name__)
            raise WorkerLost(f"worker process exited with code {exc.exitcode}") from None

    def stats(self) -> dict[str, int]:
        return {"analysis_processes": self.analysis_workers, "parse_processes": self.parse_workers}
