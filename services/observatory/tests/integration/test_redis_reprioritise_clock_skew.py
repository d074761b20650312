"""Re-scoring a waiting job on the Redis queue: the API process that moves it may run on
another machine than the one that queued it, whose clock is a few milliseconds behind.
A batch item queued at ``high`` and moved to ``normal`` must then rank as ``normal``."""

from __future__ import annotations

import uuid

import pytest
import redis

from app.jobs.redisqueue import _REPRIORITISE, LEVEL_MS, _level_offset
from tests.queues import QUEUE_REDIS_URL, redis_or_skip

pytestmark = [pytest.mark.redis]


@pytest.mark.parametrize("skew_ms", [5, 500])
def test_a_batch_item_moved_by_a_replica_with_a_clock_a_little_behind(skew_ms: int) -> None:
    redis_or_skip()
    client = redis.Redis.from_url(QUEUE_REDIS_URL)
    name = f"obs-review2-{uuid.uuid4().hex[:10]}"
    try:
        move = client.register_script(_REPRIORITISE)
        submitted = 1_800_000_000_000  # what the queuing replica read as the time
        # As RedisQueue.submit scores a batch item (no head start) at `high`.
        client.zadd(name, {"a-1": submitted - _level_offset("high") * LEVEL_MS})
        # Another replica moves it to `normal` a moment later by its own clock, which runs
        # skew_ms behind the first one.
        now = submitted + 2 - skew_ms
        keys = [name, f"arq:in-progress:{name}-a-1", f"{name}:level", f"{name}:resting"]
        assert move(keys=keys, args=["a-1", now, LEVEL_MS, 1])
        score = client.zscore(name, "a-1")
        # At the normal level: its submission time less one level.
        assert score == submitted - LEVEL_MS, (score - submitted) / LEVEL_MS
    finally:
        client.delete(name)
        client.close()
