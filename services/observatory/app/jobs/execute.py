"""Runs one analysis job: local analysis in a worker thread, then the observer, then store.

One job is a few short transactions, each a conditional status update, so a cancel that
lands at any point wins: a cancelled analysis never gets a result stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analysis import analyze
from app.conversation import Conversation
from app.core.cancellation import AnalysisCancelled, AnalysisTimedOut, CancelToken
from app.core.errors import ObservatoryError
from app.jobs.base import AnalysisJob
from app.models import repository as repo
from app.models.database import utcnow

log = structlog.get_logger(__name__)


OBSERVER_SHARE_OF_REMAINING = 0.9


class Enricher(Protocol):
    async def enrich(
        self,
        conversation: Conversation,
        result: dict[str, Any],
        mode: str,
        *,
        time_limit: float | None = None,
    ) -> dict[str, Any]: ...


class JobContext:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        executor: Executor,
        timeout: float,
        observer: Enricher | None = None,
        analyze_fn: Callable[..., dict[str, Any]] = analyze,
    ) -> None:
        self.sessions = sessions
        self.executor = executor
        self.timeout = timeout
        self.observer = observer
        self.analyze_fn = analyze_fn


INTERNAL_ERROR = "the analysis failed because of an internal error; it has been logged"


async def _transition(
    ctx: JobContext, analysis_id: str, frm: tuple[str, ...], to: str, **values: Any
) -> bool:
    async with ctx.sessions() as session, session.begin():
        return await repo.transition(session, analysis_id, frm, to, **values)


async def _fail(ctx: JobContext, analysis_id: str, error: str) -> None:
    await _transition(
        ctx, analysis_id, repo.ACTIVE, repo.FAILED, finished_at=utcnow(), stage=None, error=error
    )


async def _run_local(
    job: AnalysisJob, conversation: Conversation, token: CancelToken, ctx: JobContext, budget: float
) -> dict[str, Any]:
    """The CPU-bound analysis on the worker thread pool, with a hard deadline: a detector that
    stops checking its token cannot hold the job past its time limit (the thread is left to
    finish on its own and its result is discarded)."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(ctx.executor, ctx.analyze_fn, conversation, job.options, token)
    try:
        # A small grace period lets a cooperative detector raise its own timeout first.
        return await asyncio.wait_for(asyncio.shield(future), budget + 0.5)
    except TimeoutError:
        token.cancel()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise AnalysisTimedOut("analysis exceeded its time limit") from None
    except asyncio.CancelledError:
        token.cancel()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise


async def execute(job: AnalysisJob, token: CancelToken, ctx: JobContext) -> str:
    """Run ``job`` to its end; returns the final status this worker wrote (or observed).

    Every path ends the row: completed, failed with a reason, or left cancelled by the
    caller. An unexpected error anywhere (including storing the result) fails the row.
    """
    analysis_id = job.analysis_id
    conversation = job.conversation
    job.conversation = None  # the raw text lives only as long as this job needs it
    if conversation is None or not await _transition(
        ctx, analysis_id, (repo.PENDING,), repo.PROCESSING, started_at=utcnow(), stage="local"
    ):
        return "skipped"
    t0 = time.perf_counter()
    try:
        result = await _run_local(job, conversation, token, ctx, ctx.timeout)
        token.check()
        if ctx.observer is not None and job.observer_mode != "off":
            async with ctx.sessions() as session, session.begin():
                await repo.set_stage(session, analysis_id, "observer")
            remaining = max(0.1, ctx.timeout - (time.perf_counter() - t0))
            try:
                # The observer gets most of what is left, so in auto mode it gives up and
                # the local result is stored before the job's own deadline fires.
                result = await asyncio.wait_for(
                    ctx.observer.enrich(
                        conversation,
                        result,
                        job.observer_mode,
                        time_limit=remaining * OBSERVER_SHARE_OF_REMAINING,
                    ),
                    remaining,
                )
            except TimeoutError:
                raise AnalysisTimedOut("analysis exceeded its time limit") from None
        token.check()
        document = orjson.dumps(result)
        stored = await _transition(
            ctx,
            analysis_id,
            (repo.PROCESSING,),
            repo.COMPLETED,
            result=document,
            finished_at=utcnow(),
            processing_ms=round((time.perf_counter() - t0) * 1000, 3),
            stage=None,
        )
    except AnalysisTimedOut:
        await _fail(
            ctx, analysis_id, f"analysis exceeded the time limit of {ctx.timeout:g} seconds"
        )
        log.warning("analysis.timeout", analysis_id=analysis_id)
        return repo.FAILED
    except AnalysisCancelled:
        log.info("analysis.cancelled", analysis_id=analysis_id)
        return repo.CANCELLED
    except ObservatoryError as exc:
        # An expected failure, e.g. the observer was required and could not contribute.
        await _fail(ctx, analysis_id, exc.detail)
        return repo.FAILED
    except asyncio.CancelledError:
        token.cancel()
        raise
    except Exception:
        log.exception("analysis.error", analysis_id=analysis_id)
        await _fail(ctx, analysis_id, INTERNAL_ERROR)
        return repo.FAILED
    log.info(
        "analysis.finished",
        analysis_id=analysis_id,
        stored=stored,
        messages=len(conversation),
        ms=round((time.perf_counter() - t0) * 1000, 1),
    )
    return repo.COMPLETED if stored else repo.CANCELLED
