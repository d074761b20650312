"""``observatory worker`` for tests, as a process of its own: the settings come from the
environment like the real command's, and each analysis takes OBSERVATORY_TEST_ANALYSIS_SECONDS
(so a test can kill or stop the process while work runs)."""

from __future__ import annotations

import asyncio
import os

from app.core.config import Settings
from app.core.logging import configure_logging
from app.jobs.redisqueue import RedisQueue
from app.runtime import runtime
from tests.workers import SlowAnalysis


async def main() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    configure_logging(settings.log_level, settings.log_json)
    async with runtime(settings, "worker") as state:
        assert isinstance(state.queue, RedisQueue)
        seconds = float(os.environ.get("OBSERVATORY_TEST_ANALYSIS_SECONDS", "0"))
        state.queue._ctx.analyze_fn = SlowAnalysis(seconds)
        await state.queue.run_worker()


if __name__ == "__main__":
    asyncio.run(main())
