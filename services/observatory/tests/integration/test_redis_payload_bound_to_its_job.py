"""A queued conversation is sealed for its own job: one who can write to Redis (what the
sealing guards against) cannot copy another job's sealed conversation under their own
job's key and have a worker analyse it as theirs."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
import redis

from app.analysis import AnalysisOptions
from app.core.crypto import ResultCipher
from app.jobs.base import AnalysisJob
from app.jobs.envelope import PayloadSealError
from app.jobs.redisqueue import RedisQueue
from tests.conftest import make_settings
from tests.queues import QUEUE_REDIS_URL, redis_or_skip, redis_queue_settings, remove_queue

pytestmark = [pytest.mark.redis]


def job(analysis_id: str, payload: bytes) -> AnalysisJob:
    return AnalysisJob(
        analysis_id=analysis_id,
        payload=payload,
        options=AnalysisOptions(pattern_types=frozenset({"topics"})),
    )


@pytest.mark.parametrize("queue_key", ["", "configured"])
async def test_a_sealed_conversation_copied_to_another_jobs_key_is_refused(
    queue_key: str,
) -> None:
    redis_or_skip()
    overrides = redis_queue_settings(queue_name=f"obs-review2-{uuid.uuid4().hex[:10]}")
    if queue_key == "":
        overrides["queue_encryption_key"] = ""  # keys derived from the result keys
    settings = make_settings("sqlite+aiosqlite:///:memory:", **overrides)
    ctx = SimpleNamespace(cipher=ResultCipher([("k1", b"\x01" * 32)]))
    queue = RedisQueue(settings, ctx)  # type: ignore[arg-type]
    await queue.start()
    try:
        await queue.submit(job("victim", b"the victim's conversation"))
        await queue.submit(job("mine", b"my own conversation"))
        raw = redis.Redis.from_url(QUEUE_REDIS_URL)
        raw.set(queue.payload_key("mine"), raw.get(queue.payload_key("victim")))
        raw.close()
        with pytest.raises(PayloadSealError, match="sealed for another job"):
            await queue._take("mine")
    finally:
        await queue.stop()
        remove_queue(settings)
