"""The runtime of a service process, built in one place for ``observatory serve`` and for
``observatory worker``: database, worker processes, observer client, metrics, the job queue
and the hook that runs when a job ends (webhooks, a batch's aggregate).

``serve`` with the embedded queue runs jobs itself; with ``queue_backend=redis`` it only
answers the API, and ``worker`` processes run the jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import structlog

from app.analysis.engine import check_models
from app.api.deps import ServiceState
from app.audit.service import AuditLog, DenialSampler
from app.auth.tokens import TokenVerifier
from app.batches import service as batch_service
from app.core.config import Settings
from app.core.crypto import cipher_from_settings, fingerprinter_from
from app.core.database import create_engine, session_factory
from app.core.migrate import upgrade
from app.jobs.base import JobQueue
from app.jobs.execute import JobContext, retry_delay
from app.jobs.inprocess import InProcessQueue
from app.jobs.pool import WorkerPool
from app.jobs.redisqueue import REDIS_RUNNER, RedisQueue
from app.jobs.runners import RunnerRegistry, default_label
from app.keys.service import KeyCache
from app.limits.service import RateLimiter
from app.metrics.service import Metrics
from app.observer import Observer
from app.retention.service import Scheduler as Retention
from app.webhooks import service as webhooks
from app.webhooks.service import Sender as WebhookSender

log = structlog.get_logger(__name__)

Role = Literal["serve", "worker"]


def _queue(settings: Settings, ctx: JobContext, role: Role) -> JobQueue:
    if settings.queue_backend == "redis":
        return RedisQueue(settings, ctx, consume=role == "worker")
    if role == "worker":
        raise ValueError("observatory worker needs OBSERVATORY_QUEUE_BACKEND=redis")
    return InProcessQueue(
        ctx,
        concurrency=settings.worker_concurrency,
        max_size=settings.queue_max_size,
        max_batch_items=settings.queue_max_batch_items,
        max_tries=settings.job_max_tries,
        retry_delay=lambda tries: retry_delay(settings, tries),
    )


@asynccontextmanager
async def runtime(settings: Settings, role: Role = "serve") -> AsyncIterator[ServiceState]:
    """Everything a process of ``role`` needs, started, and stopped on exit."""
    check_models()
    api = role == "serve"
    redis = settings.queue_backend == "redis"
    runs_jobs = role == "worker" or not redis
    engine = create_engine(settings.database_url)
    if settings.migrate_on_start:
        await upgrade(engine)
    sessions = session_factory(engine)
    # Runners hold work in memory; only the embedded queue does, but a replica with the
    # embedded queue may share the database, so an API process always takes part.
    runners: RunnerRegistry | None = None
    if api:
        runners = RunnerRegistry(
            sessions,
            default_label(settings.instance_id),
            interval=settings.runner_heartbeat_seconds,
            stale_after=settings.runner_stale_seconds,
        )
        await runners.start()
    # The API's own observer client only answers readiness; analyses use the one in their
    # worker process.
    observer = Observer(settings) if api else None
    pool = WorkerPool(
        settings,
        # An API-only process still computes batch aggregates in a worker process.
        analysis_workers=settings.worker_concurrency if runs_jobs else 1,
        parse_workers=settings.parse_workers,
    )
    pool.start()
    metrics = Metrics()
    tokens = TokenVerifier(settings) if api else None
    cipher = cipher_from_settings(
        settings.result_keys, settings.result_key_file, settings.database_url
    )
    queue = _queue(
        settings,
        JobContext(sessions, pool, settings.analysis_timeout_seconds, cipher, metrics=metrics),
        role,
    )
    runner = REDIS_RUNNER if redis else (runners.runner_id if runners else None)
    state = ServiceState(
        settings,
        engine,
        sessions,
        queue,
        pool,
        cipher,
        fingerprinter_from(settings.fingerprint_secret, cipher),
        observer,
        runner,
        runners,
        RateLimiter(settings) if api else None,
        metrics,
        tokens,
        KeyCache(settings.api_key_cache_seconds),
    )
    # Deliveries are rows; the API process's sender delivers those any process wrote.
    sender = WebhookSender(sessions, settings) if api else None
    state.webhooks = sender
    if sender is not None:
        sender.start()
    # Requests' audit events are queued and written in the background (API processes).
    audit = (
        AuditLog(
            sessions,
            interval=settings.audit_flush_seconds,
            metrics=metrics,
            sampler=DenialSampler(
                f"{settings.audit_denials_per_principal}/minute",
                f"{settings.audit_denials_overall}/minute",
            ),
        )
        if api
        else None
    )
    state.audit = audit
    if audit is not None:
        audit.start()
    # Retention runs beside the API (one scheduler per API process, as before).
    retention = Retention(engine, sessions, settings, metrics) if api else None
    if retention is not None:
        retention.start()

    async def finished(analysis_id: str) -> None:
        if await webhooks.analysis_finished(sessions, analysis_id) is not None and sender:
            sender.wake()
        await batch_service.finish_item(state, analysis_id)

    queue.on_finished = finished
    await queue.start()
    log.info(
        "service.started",
        role=role,
        queue=settings.queue_backend,
        database=engine.dialect.name,
        workers=settings.worker_concurrency if runs_jobs else 0,
    )
    try:
        yield state
    finally:
        if retention is not None:
            await retention.stop()
        await queue.stop()
        if sender is not None:
            await sender.stop()
        await pool.stop()
        if runners is not None:
            await runners.stop()
        if audit is not None:
            await audit.close()
        if tokens is not None:
            await tokens.aclose()
        if observer is not None:
            await observer.aclose()
        await engine.dispose()
