"""Runs one analysis job: local analysis in a worker process, then the observer, then store.

One job is a few short transactions, each a conditional status update, so a cancel that
lands at any point wins: a cancelled analysis never gets a result stored. The work itself
runs in :mod:`app.jobs.pool` processes; this coroutine only moves the row along and waits.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analyses import repository as repo
from app.analysis import analyze
from app.core.cancellation import AnalysisTimedOut
from app.core.config import Settings
from app.core.crypto import ResultCipher
from app.core.database import utcnow
from app.jobs.base import AnalysisJob
from app.jobs.pool import WorkerLost, WorkerPool
from app.jobs.work import INTERNAL_ERROR, Done, Failed

log = structlog.get_logger(__name__)

__all__ = ["INTERNAL_ERROR", "JobContext", "TransientFailure", "execute", "retry_delay"]

OBSERVER_SHARE_OF_REMAINING = 0.9
WORKER_LOST = (
    "the worker process running this analysis stopped unexpectedly (it may have run out of "
    "memory); the conversation was not kept, so submit it again"
)


def retry_delay(settings: Settings, tries: int) -> float:
    """The wait before try ``tries + 1``: doubled on each try, with up to 25 % jitter."""
    base = settings.job_retry_seconds * 2 ** (tries - 1)
    return float(base * (1 + random.uniform(0, 0.25)))


class JobContext:
    """What a job needs: sessions, the worker processes, its time limit. ``analyze_fn`` runs
    in a worker process, so it must be picklable (a module-level function or an instance of
    a module-level class); tests replace it to control timing."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: WorkerPool,
        timeout: float,
        cipher: ResultCipher,
        observer_enabled: bool = True,
        analyze_fn: Callable[..., dict[str, Any]] = analyze,
        metrics: Any = None,
    ) -> None:
        self.sessions = sessions
        self.cipher = cipher
        self.pool = pool
        self.timeout = timeout
        self.observer_enabled = observer_enabled
        self.analyze_fn = analyze_fn
        self.metrics = metrics

    def count(self, outcome: str, seconds: float | None = None) -> None:
        if self.metrics is not None:
            self.metrics.analyses.labels(outcome).inc()
            if seconds is not None:
                self.metrics.analysis_duration.observe(seconds)

    def observed(self, outcome: Done | Failed) -> None:
        if self.metrics is not None and outcome.observer is not None:
            self.metrics.observed(outcome.observer)


async def _transition(
    ctx: JobContext, analysis_id: str, frm: tuple[str, ...], to: str, **values: Any
) -> bool:
    async with ctx.sessions() as session, session.begin():
        return await repo.transition(session, analysis_id, frm, to, **values)


async def _fail(ctx: JobContext, analysis_id: str, error: str) -> None:
    await _transition(
        ctx, analysis_id, repo.ACTIVE, repo.FAILED, finished_at=utcnow(), stage=None, error=error
    )


def _unwrap(analysis_id: str, outcome: Done | Failed) -> bytes:
    if isinstance(outcome, Failed):
        if outcome.timed_out:
            raise AnalysisTimedOut("analysis exceeded its time limit")
        if outcome.exception is not None:
            log.error("analysis.error", analysis_id=analysis_id, exception=outcome.exception)
        raise _StepFailed(outcome.detail, outcome.transient)
    return outcome.document


class _StepFailed(Exception):
    def __init__(self, detail: str, transient: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient


class TransientFailure(Exception):
    """The job failed for a reason that may pass (the observer is down) and its queue may try
    it again: its row is ``pending`` again and nothing was stored."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def execute(
    job: AnalysisJob, ctx: JobContext, *, retryable: bool = False, tries: int = 1
) -> str:
    """Run ``job`` to its end; returns the final status this worker wrote (or observed).

    Every path ends the row: completed, failed with a reason, or left cancelled by the
    caller. An unexpected error anywhere (including storing the result) fails the row.
    Cancelling the task that runs this kills the worker process doing the work.

    With ``retryable``, a transient failure puts the row back to ``pending`` and raises
    :class:`TransientFailure` for the queue to try again; ``tries`` (this one included) is
    named in the reason when it fails for good.
    """
    analysis_id = job.analysis_id
    payload = job.payload
    job.payload = None  # the raw text lives only as long as this job needs it
    if payload is None or not await _transition(
        ctx, analysis_id, (repo.PENDING,), repo.PROCESSING, started_at=utcnow(), stage="local"
    ):
        return "skipped"
    t0 = time.perf_counter()
    try:
        document = _unwrap(
            analysis_id,
            await ctx.pool.run_local(
                analysis_id, payload, job.options, ctx.timeout, ctx.analyze_fn
            ),
        )
        if ctx.observer_enabled and job.observer_mode != "off":
            async with ctx.sessions() as session, session.begin():
                await repo.set_stage(session, analysis_id, "observer")
            remaining = ctx.timeout - (time.perf_counter() - t0)
            if remaining <= 0:
                raise AnalysisTimedOut("analysis exceeded its time limit")
            # The observer gets most of what is left, so in auto mode it gives up and the
            # local result is stored before the job's own deadline fires.
            observed = await ctx.pool.run_observer(
                analysis_id,
                payload,
                document,
                job.observer_mode,
                remaining * OBSERVER_SHARE_OF_REMAINING,
            )
            ctx.observed(observed)
            document = _unwrap(analysis_id, observed)
        del payload
        sealed = ctx.cipher.seal(document, analysis_id)
        del document
        stored = await _transition(
            ctx,
            analysis_id,
            (repo.PROCESSING,),
            repo.COMPLETED,
            result=sealed.blob,
            result_key=sealed.key_id,
            finished_at=utcnow(),
            processing_ms=round((time.perf_counter() - t0) * 1000, 3),
            stage=None,
        )
    except AnalysisTimedOut:
        await _fail(
            ctx, analysis_id, f"analysis exceeded the time limit of {ctx.timeout:g} seconds"
        )
        log.warning("analysis.timeout", analysis_id=analysis_id)
        ctx.count("timed_out")
        return repo.FAILED
    except _StepFailed as exc:
        # An expected failure (e.g. the observer was required and could not contribute), or
        # an internal error in the worker process (logged by _unwrap).
        if exc.transient and retryable:
            if await _transition(
                ctx, analysis_id, (repo.PROCESSING,), repo.PENDING, started_at=None, stage=None
            ):
                ctx.count("retried")
                raise TransientFailure(exc.detail) from None
            return "skipped"  # cancelled meanwhile
        detail = exc.detail
        if exc.transient and tries > 1:
            detail = f"{detail} (gave up after {tries} tries)"
        await _fail(ctx, analysis_id, detail)
        ctx.count("failed")
        return repo.FAILED
    except WorkerLost:
        await _fail(ctx, analysis_id, WORKER_LOST)
        ctx.count("worker_lost")
        return repo.FAILED
    except asyncio.CancelledError:
        ctx.count("cancelled")
        raise
    except Exception:
        log.exception("analysis.error", analysis_id=analysis_id)
        await _fail(ctx, analysis_id, INTERNAL_ERROR)
        ctx.count("failed")
        return repo.FAILED
    log.info(
        "analysis.finished",
        analysis_id=analysis_id,
        stored=stored,
        messages=job.message_count,
        ms=round((time.perf_counter() - t0) * 1000, 1),
    )
    elapsed = time.perf_counter() - t0
    ctx.count("completed" if stored else "cancelled", elapsed if stored else None)
    return repo.COMPLETED if stored else repo.CANCELLED
