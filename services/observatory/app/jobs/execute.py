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


class Enricher(Protocol):
    async def enrich(
        self, conversation: Conversation, result: dict[str, Any], mode: str
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


async def _transition(
    ctx: JobContext, analysis_id: str, frm: tuple[str, ...], to: str, **values: Any
) -> bool:
    async with ctx.sessions() as session, session.begin():
        return await repo.transition(session, analysis_id, frm, to, **values)


async def execute(job: AnalysisJob, token: CancelToken, ctx: JobContext) -> str:
    """Run ``job`` to its end; returns the final status this worker wrote (or observed)."""
    analysis_id = job.analysis_id
    started = utcnow()
    if not await _transition(
        ctx, analysis_id, (repo.PENDING,), repo.PROCESSING, started_at=started, stage="local"
    ):
        return "skipped"
    conversation = job.conversation
    job.conversation = None  # the raw text lives only as long as this job needs it
    assert conversation is not None
    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        result = await loop.run_in_executor(
            ctx.executor, ctx.analyze_fn, conversation, job.options, token
        )
        token.check()
        if ctx.observer is not None and job.observer_mode != "off":
            async with ctx.sessions() as session, session.begin():
                await repo.set_stage(session, analysis_id, "observer")
            remaining = max(0.1, ctx.timeout - (time.perf_counter() - t0))
            try:
                result = await asyncio.wait_for(
                    ctx.observer.enrich(conversation, result, job.observer_mode), remaining
                )
            except TimeoutError:
                raise AnalysisTimedOut("analysis exceeded its time limit") from None
        token.check()
    except AnalysisTimedOut:
        await _transition(
            ctx,
            analysis_id,
            (repo.PROCESSING,),
            repo.FAILED,
            finished_at=utcnow(),
            stage=None,
            error=f"analysis exceeded the time limit of {ctx.timeout:g} seconds",
        )
        log.warning("analysis.timeout", analysis_id=analysis_id)
        return repo.FAILED
    except AnalysisCancelled:
        log.info("analysis.cancelled", analysis_id=analysis_id)
        return repo.CANCELLED
    except ObservatoryError as exc:
        # An expected failure, e.g. the observer was required and could not contribute.
        await _transition(
            ctx,
            analysis_id,
            (repo.PROCESSING,),
            repo.FAILED,
            finished_at=utcnow(),
            stage=None,
            error=exc.detail,
        )
        return repo.FAILED
    except asyncio.CancelledError:
        token.cancel()
        raise
    except Exception:
        log.exception("analysis.error", analysis_id=analysis_id)
        await _transition(
            ctx,
            analysis_id,
            (repo.PROCESSING,),
            repo.FAILED,
            finished_at=utcnow(),
            stage=None,
            error="the analysis failed because of an internal error; it has been logged",
        )
        return repo.FAILED
    finished = utcnow()
    stored = await _transition(
        ctx,
        analysis_id,
        (repo.PROCESSING,),
        repo.COMPLETED,
        result=orjson.dumps(result),
        finished_at=finished,
        processing_ms=round((time.perf_counter() - t0) * 1000, 3),
        stage=None,
    )
    log.info(
        "analysis.finished",
        analysis_id=analysis_id,
        stored=stored,
        messages=len(conversation),
        ms=round((time.perf_counter() - t0) * 1000, 1),
    )
    return repo.COMPLETED if stored else repo.CANCELLED
