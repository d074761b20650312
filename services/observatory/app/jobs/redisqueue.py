"""The Redis queue for scale-out: API processes submit, ``observatory worker`` processes on
any number of machines run the jobs. Built on arq (docs/decisions/0011-redis-job-queue.md).

What lives in Redis, under ``{queue_name}``:

- arq's sorted set ``{queue_name}`` of job ids. arq runs the lowest score first among those
  due, so a job's score is its submission time minus an offset per priority level: every
  ``high`` job comes before every ``normal`` one, first come first served within a level
  (a single analysis counting as submitted ``SINGLE_AHEAD_SECONDS`` earlier than batch
  items), and re-scoring a waiting job is how its priority changes. A job tried again
  after a passing failure is due when its delay ends (arq's re-scoring, which drops its
  level); while it waits out the delay it rests in ``{queue_name}:resting`` (id by the
  time its delay ends, by Redis's clock), and once due any API or worker process puts it
  back at its level, kept in ``{queue_name}:level`` from submission to its end and
  updated by every change of priority.
- arq's job record (``arq:job:{id}``): the JSON envelope of ids and options, never text.
- ``{queue_name}:payload:{id}``: the conversation, encrypted when a key is configured, with a
  time to live; a worker deletes it in the same command that reads it (``GETDEL``).
- ``{queue_name}:done:{id}``: a pub/sub channel on which the end of a job is announced, so
  ``wait()`` works from any process; ``{queue_name}:worker:{id}``: one key per live worker.

Recovery is arq's: a job whose worker vanished (``kill -9``) keeps its place in the sorted
set, and once its in-progress mark expires (its time limit plus ``job_lost_after_seconds``)
a worker takes it again. Its conversation went with the first worker, so that second run
fails the analysis with a reason instead of leaving it ``processing``. An API restart never
touches queued work: rows of this queue are not tied to an API process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, cast

import orjson
import structlog
from arq import Retry, Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix
from arq.jobs import serialize_job
from arq.typing import WorkerCoroutine
from arq.utils import timestamp_ms
from arq.worker import func

from app.analyses import repository as repo
from app.core.config import Settings
from app.core.database import utcnow
from app.jobs.base import PRIORITIES, SINGLE_AHEAD_SECONDS, AnalysisJob, JobQueue, QueueFull
from app.jobs.envelope import PayloadSealError, Sealer, envelope, from_envelope
from app.jobs.execute import (
    INTERNAL_ERROR,
    JobContext,
    TransientFailure,
    execute,
    retry_delay,
)
from app.jobs.repository import QUEUED_IN_REDIS

log = structlog.get_logger(__name__)

# The ``runner`` of rows whose job waits in Redis: no API process holds them, so the
# recovery of dead runners (app/jobs/runners.py) leaves them to this queue.
REDIS_RUNNER = QUEUED_IN_REDIS
FUNCTION = "analyse"
# A priority level is worth this many milliseconds of waiting (about three years).
LEVEL_MS = 10**11
WORKER_KEY_SECONDS = 15
POLL_SECONDS = 0.02
STATS_SECONDS = 1.0
INTERRUPTED = (
    "the worker running this analysis stopped (it was killed or lost its connection); the "
    "conversation was not kept, so submit it again"
)
EXPIRED = (
    "the conversation is no longer in the queue (it waited longer than the queue keeps it, "
    "or the worker that took it stopped); submit it again"
)
OVERRAN = (
    "the analysis did not end within the worker's time limit for a job and was stopped; "
    "the conversation was not kept, so submit it again"
)
UNREADABLE = "the queued conversation could not be read by the worker: {reason}"

# A waiting job is re-scored only if no worker has started it (arq keeps running jobs in
# the sorted set, marked by an in-progress key). Its level is the nearest whole number of
# levels it is ahead of now (a job waits far less than half a level, about 18 months, and
# a replica's clock may be a little behind the one that queued it).
_REPRIORITISE = """
if redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
  return 1
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local now = tonumber(ARGV[2])
local level = math.floor((now - tonumber(score)) / tonumber(ARGV[3]) + 0.5)
if level < 0 then level = 0 end
local submitted = tonumber(score) + level * tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], 'XX', submitted - tonumber(ARGV[4]) * tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return 1
"""

# A job about to be retried rests until its delay (ARGV[2], ms) is over, by Redis's clock
# so that processes whose clocks differ agree; arq then re-scores it as due at that time,
# at the level of a ``low`` job.
_REST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# Resting jobs whose delay is over (at most ARGV[3] per call) are re-scored to their level,
# kept in KEYS[3] since they were queued, from the time their score stands for (arq's
# re-scoring put them at level 0; with a delay of 0 they are still at their old level):
# unless a worker has taken the job already (ARGV[2] is arq's in-progress key prefix) or
# it has ended.
_WAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local span = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  local level = redis.call('HGET', KEYS[3], id)
  local score = redis.call('ZSCORE', KEYS[1], id)
  if level and score and redis.call('EXISTS', ARGV[2] .. id) == 0 then
    local implied = math.floor((now - tonumber(score)) / span + 0.5)
    if implied < 0 then implied = 0 end
    local at = tonumber(score) + implied * span
    redis.call('ZADD', KEYS[1], 'XX', at - tonumber(level) * span, id)
  end
end
return #due
"""
WAKE_BATCH = 500

# A job that no worker has started is removed with its record and conversation; 1 if so,
# 0 if it runs (the caller then asks its worker to abort it).
_DEQUEUE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
return 1
"""


def _level_offset(priority: str) -> int:
    """How many levels ahead of ``low`` a priority runs (``high`` 2, ``normal`` 1)."""
    return len(PRIORITIES) - 1 - PRIORITIES.get(priority, PRIORITIES["normal"])


class RedisQueue(JobQueue):
    """The API side (``submit``, ``cancel``, ``reprioritise``, ``wait``, ``stats``) and the
    worker side that runs jobs (:meth:`run_worker` for ``observatory worker``, with
    ``consume`` set so the process counts as a worker)."""

    def __init__(self, settings: Settings, ctx: JobContext, *, consume: bool = False) -> None:
        self._settings = settings
        self._ctx = ctx
        self._consume = consume
        self._name = settings.queue_name
        self._sealer = Sealer.for_queue(settings.queue_encryption_key, ctx.cipher)
        self._capacity = settings.queue_max_size + settings.queue_max_batch_items
        self._redis: ArqRedis | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[None]] = set()
        self._restores: set[asyncio.Task[None]] = set()
        self._reprioritise: Any = None
        self._rest: Any = None
        self._wake: Any = None
        self._dequeue: Any = None
        self.worker_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self._stats: dict[str, Any] = {"queued": 0, "workers": 0}
        self._stopping = False
        self.processed = 0
        self.running = 0

    # ---- keys ------------------------------------------------------------------------

    def payload_key(self, analysis_id: str) -> str:
        return f"{self._name}:payload:{analysis_id}"

    @property
    def resting_key(self) -> str:
        return f"{self._name}:resting"

    @property
    def level_key(self) -> str:
        return f"{self._name}:level"

    def done_channel(self, analysis_id: str) -> str:
        return f"{self._name}:done:{analysis_id}"

    def _worker_key(self) -> str:
        return f"{self._name}:worker:{self.worker_id}"

    @property
    def redis(self) -> ArqRedis:
        if self._redis is None:
            raise RuntimeError("queue not started")
        return self._redis

    # ---- life ------------------------------------------------------------------------

    async def start(self) -> None:
        self._redis = await create_pool(
            RedisSettings.from_dsn(self._settings.queue_redis),
            job_serializer=orjson.dumps,
            job_deserializer=orjson.loads,
            default_queue_name=self._name,
        )
        self._reprioritise = self._redis.register_script(_REPRIORITISE)
        self._dequeue = self._redis.register_script(_DEQUEUE)
        self._rest = self._redis.register_script(_REST)
        self._wake = self._redis.register_script(_WAKE)
        await self._refresh()
        self._stats_task = asyncio.create_task(self._watch_stats(), name="queue-stats")

    def consume_in_background(self) -> None:
        """Run jobs in a task of this event loop, without signal handlers (for tests and
        embedding); :meth:`stop` ends it."""
        self._consume = True
        self._worker = self._new_worker(handle_signals=False)
        self._worker_task = asyncio.create_task(self._run_worker(), name="queue-worker")

    def _new_worker(self, *, handle_signals: bool) -> Worker:
        # The job's own limits (analysis, observer) end it well before this; arq's limit is
        # the backstop, and a killed worker's job is taken again this long (plus 10 s) after
        # it started.
        timeout = (
            2 * self._settings.analysis_timeout_seconds + self._settings.job_lost_after_seconds
        )
        worker = Worker(
            functions=[func(cast(WorkerCoroutine, self._run), name=FUNCTION)],
            queue_name=self._name,
            redis_pool=self.redis,
            max_jobs=self._settings.worker_concurrency,
            job_timeout=timeout,
            # arq's own try limit would end a job without our code marking its row; ours
            # (job_max_tries, transient failures only) is applied in _run.
            max_tries=10_000,
            keep_result=0,
            # arq starts jobs only on a poll, at most max_jobs at a time: at 0.2 s a worker
            # running one analysis at a time managed 5 short ones a second (measured with
            # benchmarks/bench_batch.py --queue redis); an idle poll is three Redis calls.
            poll_delay=POLL_SECONDS,
            allow_abort_jobs=True,
            retry_jobs=True,
            handle_signals=handle_signals,
            job_completion_wait=int(self._settings.worker_shutdown_seconds),
            job_serializer=orjson.dumps,
            job_deserializer=orjson.loads,
            health_check_interval=WORKER_KEY_SECONDS,
        )
        worker.on_stop = self._on_stop
        return worker

    def _on_stop(self, _signal: Any) -> None:
        # Called by arq's signal handler right after it cancelled the running jobs, before
        # they resume: they see this and hand themselves back.
        self._stopping = True

    async def _run_worker(self) -> None:
        assert self._worker is not None
        try:
            await self._worker.main()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("queue.worker_failed")

    async def run_worker(self) -> None:
        """Run jobs until SIGTERM or SIGINT: no new job is taken, running ones get
        ``worker_shutdown_seconds`` to finish, and what still runs then is handed back."""
        await self._ctx.pool.ready()
        self._consume = True
        await self._refresh()
        self._worker = self._new_worker(handle_signals=True)
        log.info("worker.started", worker=self.worker_id, queue=self._name)
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker.async_run()
        # Jobs cancelled by the signal hand themselves back (see _run); let them finish.
        await asyncio.gather(*self._worker.tasks.values(), return_exceptions=True)
        log.info("worker.stopped", worker=self.worker_id)

    async def stop(self) -> None:
        if self._worker_task is not None:
            worker = self._worker
            assert worker is not None
            worker.allow_pick_jobs = False
            self._stopping = True
            for task in list(worker.tasks.values()):
                task.cancel()
            self._worker_task.cancel()
            await asyncio.gather(self._worker_task, return_exceptions=True)
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            self._worker_task = None
        if self._stats_task is not None:
            self._stats_task.cancel()
            await asyncio.gather(self._stats_task, return_exceptions=True)
            self._stats_task = None
        await self._stop_hooks()
        restores = list(self._restores)
        for task in restores:  # another process's stats loop wakes those jobs
            task.cancel()
        await asyncio.gather(*restores, return_exceptions=True)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.delete(self._worker_key())
            await self._redis.aclose()
            self._redis = None

    # ---- API side --------------------------------------------------------------------

    async def submit(self, job: AnalysisJob) -> None:
        if job.payload is None:
            raise ValueError("a job needs its payload to be queued")
        redis = self.redis
        if await redis.zcard(self._name) >= self._capacity:
            raise QueueFull(f"the job queue is full ({self._capacity} waiting)")
        now = timestamp_ms()
        ttl_ms = self._settings.queue_payload_ttl_seconds * 1000
        record = serialize_job(FUNCTION, (envelope(job),), {}, None, now, serializer=orjson.dumps)
        ahead = int(SINGLE_AHEAD_SECONDS * 1000) if job.batch_id is None else 0
        score = now - ahead - _level_offset(job.priority) * LEVEL_MS
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(
                self.payload_key(job.analysis_id),
                self._sealer.seal(job.payload, job.analysis_id),
                px=ttl_ms,
            )
            # The record outlives the conversation, so a job whose conversation expired
            # still reaches a worker, which fails its analysis with the reason.
            pipe.set(job_key_prefix + job.analysis_id, record, px=ttl_ms * 2)
            pipe.zadd(self._name, {job.analysis_id: score})
            pipe.hset(self.level_key, job.analysis_id, str(_level_offset(job.priority)))
            await pipe.execute()
        job.payload = None

    async def reprioritise(self, analysis_id: str, priority: str) -> bool:
        moved = await self._reprioritise(
            keys=[
                self._name,
                in_progress_key_prefix + analysis_id,
                self.level_key,
                self.resting_key,
            ],
            args=[analysis_id, timestamp_ms(), LEVEL_MS, _level_offset(priority)],
        )
        return bool(moved)

    async def cancel(self, analysis_id: str) -> None:
        removed = await self._dequeue(
            keys=[
                self._name,
                in_progress_key_prefix + analysis_id,
                job_key_prefix + analysis_id,
                self.payload_key(analysis_id),
                self.resting_key,
                self.level_key,
            ],
            args=[analysis_id],
        )
        if not removed:
            # Running: its worker cancels the job's task within a poll, which kills the
            # process doing the work (the row is already cancelled, so nothing is stored).
            await self.redis.zadd(abort_jobs_ss, {analysis_id: timestamp_ms()})
        await self._announce(analysis_id)

    async def wait(self, analysis_id: str, timeout: float) -> None:
        if timeout <= 0:
            return
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.done_channel(analysis_id))
            # Subscribed first, then checked: an end between the two is not missed.
            if await self._ended(analysis_id):
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (left := deadline - loop.time()) > 0:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if message is not None:
                    return
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _ended(self, analysis_id: str) -> bool:
        async with self._ctx.sessions() as session:
            status = await repo.status_of(session, analysis_id)
        return status not in repo.ACTIVE

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "queued": self._stats["queued"],
            "running": self.running,
            "workers": self._stats["workers"],
            "capacity": self._capacity,
            "processed": self.processed,
            "encrypted": self._sealer.encrypts,
        }

    async def _refresh(self) -> None:
        redis = self.redis
        if self._consume:
            await redis.set(self._worker_key(), str(self.running), ex=WORKER_KEY_SECONDS)
        workers = 0
        async for _ in redis.scan_iter(match=f"{self._name}:worker:*", count=100):
            workers += 1
        self._stats = {"queued": await redis.zcard(self._name), "workers": workers}

    async def _watch_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_SECONDS)
            try:
                await self._refresh()
                await self.wake_rested()
            except Exception as exc:
                log.warning("queue.stats_failed", error=type(exc).__name__)

    # ---- worker side -----------------------------------------------------------------

    async def _take(self, analysis_id: str) -> bytes | None:
        """The job's conversation, deleted from Redis in the same command."""
        stored: bytes | None = await self.redis.getdel(self.payload_key(analysis_id))
        return None if stored is None else self._sealer.open(stored, analysis_id)

    async def _put_back(self, analysis_id: str, payload: bytes) -> None:
        ttl_ms = self._settings.queue_payload_ttl_seconds * 1000
        await self.redis.set(
            self.payload_key(analysis_id), self._sealer.seal(payload, analysis_id), px=ttl_ms
        )

    async def _rest_before_retry(self, analysis_id: str, delay: float) -> None:
        """Let a job about to be retried rest for ``delay`` seconds, and wake it back to
        its level when they are over (any process's stats loop does too, so a worker that
        stops meanwhile loses nothing). A failure here costs the job only its level."""
        try:
            await self._rest(keys=[self.resting_key], args=[analysis_id, int(delay * 1000)])
        except Exception as exc:
            log.warning("queue.rest_failed", analysis_id=analysis_id, error=repr(exc))
            return
        task = asyncio.create_task(self._wake_after(delay))
        self._restores.add(task)
        task.add_done_callback(self._restores.discard)

    async def _wake_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.wake_rested()
        except Exception as exc:  # the stats loop tries again within a second
            log.warning("queue.wake_failed", error=repr(exc))

    async def wake_rested(self) -> int:
        """Give resting jobs whose delay is over their level back; how many were due."""
        woken = 0
        while True:
            count = int(
                await self._wake(
                    keys=[self._name, self.resting_key, self.level_key],
                    args=[LEVEL_MS, in_progress_key_prefix, WAKE_BATCH],
                )
            )
            woken += count
            if count < WAKE_BATCH:
                return woken

    async def _run(self, arq_ctx: dict[str, Any], data: dict[str, Any]) -> str:
        """One try of one job, as arq calls it."""
        job = from_envelope(data)
        analysis_id = job.analysis_id
        tries = int(arq_ctx.get("job_try", 1))
        self.running += 1
        status = "skipped"
        try:
            try:
                payload = await self._take(analysis_id)
            except PayloadSealError as exc:
                status = await self._fail_lost(analysis_id, UNREADABLE.format(reason=exc))
                return status
            if payload is None:
                status = await self._fail_lost(analysis_id)
                return status
            job.payload = payload
            try:
                status = await execute(
                    job, self._ctx, retryable=tries < self._settings.job_max_tries, tries=tries
                )
            except TransientFailure as exc:
                await self._put_back(analysis_id, payload)
                delay = retry_delay(self._settings, tries)
                log.info("analysis.retry", analysis_id=analysis_id, tries=tries, reason=exc.detail)
                await self._rest_before_retry(analysis_id, delay)
                raise Retry(defer=timedelta(seconds=delay)) from None
            except asyncio.CancelledError:
                # Aborted (the row is cancelled already), stopped by the worker's shutdown
                # (handed back), or past arq's time limit for a job (failed).
                if self._stopping:
                    await asyncio.shield(self._hand_back(analysis_id, payload))
                else:
                    status = await asyncio.shield(
                        self._fail_lost(analysis_id, OVERRAN, running=True)
                    )
                raise
            return status
        finally:
            self.running -= 1
            if status != "skipped":
                self.processed += 1
            if status in (repo.COMPLETED, repo.FAILED, repo.CANCELLED):
                with contextlib.suppress(Exception):
                    await cast(Awaitable[int], self.redis.hdel(self.level_key, analysis_id))
                await self._announce(analysis_id)

    async def _hand_back(self, analysis_id: str, payload: bytes) -> None:
        """A job cancelled here is either aborted (its row is already ``cancelled``) or
        stopped by the worker's shutdown: then its row goes back to ``pending`` and its
        conversation back to Redis, and arq queues it again."""
        try:
            async with self._ctx.sessions() as session, session.begin():
                back = await repo.transition(
                    session,
                    analysis_id,
                    (repo.PROCESSING,),
                    repo.PENDING,
                    started_at=None,
                    stage=None,
                )
            if back:
                await self._put_back(analysis_id, payload)
                log.info("analysis.handed_back", analysis_id=analysis_id)
        except Exception as exc:
            log.error("analysis.hand_back_failed", analysis_id=analysis_id, error=repr(exc))

    async def _fail_lost(
        self, analysis_id: str, reason: str | None = None, *, running: bool = False
    ) -> str:
        """No conversation to run: cancelled, expired, or taken by a worker that died (or,
        ``running``, a job stopped here). Its row, if still active, fails with the reason."""
        async with self._ctx.sessions() as session, session.begin():
            status = await repo.status_of(session, analysis_id)
            if status not in repo.ACTIVE:
                return "skipped"
            why = reason or (INTERRUPTED if status == repo.PROCESSING else EXPIRED)
            failed = await repo.transition(
                session,
                analysis_id,
                (repo.PROCESSING,) if running else repo.ACTIVE,
                repo.FAILED,
                finished_at=utcnow(),
                stage=None,
                error=why,
            )
        if failed:
            log.warning("analysis.lost", analysis_id=analysis_id, reason=why)
            self._ctx.count("worker_lost")
            return repo.FAILED
        return "skipped"

    async def _announce(self, analysis_id: str) -> None:
        """Tell waiters in any process, then run this process's hook."""
        try:
            await self.redis.publish(self.done_channel(analysis_id), b"1")
        except Exception as exc:
            log.warning("queue.publish_failed", error=type(exc).__name__)
        self._fire_finished(analysis_id)


__all__ = ["INTERNAL_ERROR", "REDIS_RUNNER", "RedisQueue"]
