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
import os
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
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
    """``parse`` and ``analysis`` processes; ``run_*`` await a task without blocking.

    A pebble pool whose processes all died while idle goes into an error state and refuses
    every task; such a pool is replaced by a new one on its next use (and reported by
    :meth:`stats` meanwhile), so losing a process never turns into lasting failures.
    """

    def __init__(self, settings: Settings, *, analysis_workers: int, parse_workers: int) -> None:
        self._settings = settings
        self.analysis_workers = analysis_workers
        self.parse_workers = parse_workers
        self._pools: dict[str, ProcessPool] = {}
        self._sizes = {"parse": parse_workers, "analysis": analysis_workers}
        self.replaced = 0

    def _new(self, kind: str) -> ProcessPool:
        pool = ProcessPool(
            self._sizes[kind],
            initializer=work.init_worker,
            initargs=(self._settings, os.getpid()),
            context=_context(),
        )
        # A first task starts the pool's processes now (and the fork server, which imports
        # the analysis once), instead of on the first request.
        pool.schedule(work.ping)
        return pool

    def start(self) -> None:
        for kind in self._sizes:
            self._pools[kind] = self._new(kind)

    async def ready(self, timeout: float = 300.0) -> None:
        """Return once an analysis process answers (the fork server has imported the
        analysis), so a worker announces itself only when it can run jobs at once."""
        await self._run("analysis", timeout, work.ping)

    def _pool(self, kind: str) -> ProcessPool:
        pool = self._pools.get(kind)
        if pool is None:
            raise RuntimeError("worker pool not started")
        if not pool.active:
            log.error("worker.pool_replaced", kind=kind)
            pool.stop()  # type: ignore[no-untyped-call]
            pool = self._pools[kind] = self._new(kind)
            self.replaced += 1
        return pool

    async def stop(self) -> None:
        pools = list(self._pools.values())
        self._pools = {}
        for pool in pools:
            pool.stop()  # type: ignore[no-untyped-call]
        # join() waits for the pool's threads and kills its processes; off the loop.
        await asyncio.gather(*(asyncio.to_thread(pool.join, 5) for pool in pools))

    async def prepare(self, body: bytes, limits: Limits) -> work.Submission | work.Refusal:
        return await self.parse(work.prepare, body, limits)

    async def parse(
        self, fn: Callable[..., T], body: bytes, *args: Any, time_limit: float | None = None
    ) -> T | work.Refusal:
        """``fn(body, *args)`` in a parse process (small bodies inline), within
        ``time_limit`` (default: the configured parse limit); an overrun is a 400."""
        if len(body) <= INLINE_PARSE_BYTES or not self._pools:
            return fn(body, *args)
        limit = time_limit or self._settings.parse_timeout_seconds
        try:
            return await self._run("parse", limit, fn, body, *args)
        except WorkerLost as exc:
            return work.Refusal(503, f"the body could not be parsed: {exc}; retry the request")
        except AnalysisTimedOut:
            log.error("parse.timeout", bytes=len(body), limit=limit)
            return work.Refusal(
                400,
                f"the request body could not be parsed within {limit:g} seconds and its parsing "
                "was stopped; split the conversation into smaller ones",
            )

    async def compute(self, fn: Callable[..., T], *args: Any, time_limit: float) -> T:
        """``fn(*args)`` in a parse process: CPU work that must not hold the event loop."""
        if not self._pools:
            return fn(*args)
        return await self._run("parse", time_limit, fn, *args)

    async def transcript(self, body: bytes, limits: Limits) -> work.Done | work.Refusal:
        """``work.transcript`` in a parsing process (small bodies inline), like ``prepare``."""
        return await self.parse(work.transcript, body, limits)

    async def run_local(
        self,
        analysis_id: str,
        payload: bytes,
        options: Any,
        timeout: float,
        analyze_fn: Callable[..., Any],
    ) -> work.Done | work.Failed:
        return await self._run(
            "analysis",
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
        return await self._run(
            "analysis",
            time_limit + KILL_GRACE_SECONDS,
            work.run_observer,
            analysis_id,
            payload,
            document,
            mode,
            time_limit,
        )

    async def _run(self, kind: str, timeout: float | None, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the ``kind`` pool. Cancelling the awaiting task cancels the
        pebble future, which kills the process if the task already runs there."""
        try:
            future = self._pool(kind).schedule(fn, args=args, timeout=timeout)
        except RuntimeError:  # the pool broke between the check and the schedule
            future = self._pool(kind).schedule(fn, args=args, timeout=timeout)
        try:
            return await asyncio.wrap_future(future)
        except TimeoutError:
            raise AnalysisTimedOut("analysis exceeded its time limit") from None
        except ProcessExpired as exc:
            log.error("worker.died", exitcode=exc.exitcode, function=fn.__name__)
            raise WorkerLost(f"worker process exited with code {exc.exitcode}") from None
        except (BrokenProcessPool, RuntimeError) as exc:
            log.error("worker.pool_broken", kind=kind, error=type(exc).__name__)
            raise WorkerLost(f"the {kind} worker pool failed ({type(exc).__name__})") from None

    def heal(self) -> None:
        """Replace any pool that broke while idle."""
        for kind in list(self._pools):
            self._pool(kind)

    def healthy(self) -> bool:
        return bool(self._pools) and all(pool.active for pool in self._pools.values())

    def stats(self) -> dict[str, Any]:
        return {
            "analysis_processes": self.analysis_workers,
            "parse_processes": self.parse_workers,
            "pools_ok": self.healthy(),
            "pools_replaced": self.replaced,
        }
