"""The job queues under test: the embedded one, and the Redis one with a worker beside the
API (the same runtime ``observatory worker`` builds), on the Redis server of the machine.

Each Redis test uses a queue name of its own in database ``QUEUE_REDIS_DB``, and removes
its keys afterwards, so concurrent runs do not meet.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from cryptography.fernet import Fernet

from app.api.deps import ServiceState
from app.core.config import Settings
from app.jobs.redisqueue import RedisQueue
from app.runtime import runtime
from tests.conftest import service_missing

QUEUE_REDIS_DB = 13
QUEUE_REDIS_URL = f"redis://127.0.0.1:6379/{QUEUE_REDIS_DB}"


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(QUEUE_REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {QUEUE_REDIS_URL}", repr(exc))


def redis_queue_settings(**overrides: Any) -> dict[str, Any]:
    return {
        "queue_backend": "redis",
        "queue_redis_url": QUEUE_REDIS_URL,
        "queue_name": f"obs-test-{uuid.uuid4().hex[:12]}",
        "queue_encryption_key": Fernet.generate_key().decode(),
        **overrides,
    }


def queue_keys(settings: Settings) -> list[bytes]:
    client = redis.Redis.from_url(QUEUE_REDIS_URL)
    try:
        return list(client.scan_iter(match=f"{settings.queue_name}*", count=1000))
    finally:
        client.close()


def remove_queue(settings: Settings) -> None:
    client = redis.Redis.from_url(QUEUE_REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{settings.queue_name}*", count=1000))
        for job_id in client.zrange(settings.queue_name, 0, -1):
            keys += [p + job_id for p in (b"arq:job:", b"arq:retry:", b"arq:in-progress:")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@asynccontextmanager
async def redis_worker(settings: Settings) -> AsyncIterator[ServiceState]:
    """A worker runtime in this event loop, taking jobs until the block ends."""
    async with runtime(settings, "worker") as state:
        assert isinstance(state.queue, RedisQueue)
        state.queue.consume_in_background()
        yield state
