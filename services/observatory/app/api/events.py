"""Server-sent events by polling the database: an event whenever what is watched changes,
a comment line as heartbeat while nothing does (so proxies keep the stream open), until the
watched thing ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import StreamingResponse

HEARTBEAT_SECONDS = 15.0

Poll = Callable[[], Awaitable[tuple[list[bytes], bool]]]
"""One look: the events to send now, and whether the stream ends after them."""


def event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def polled(poll: Poll, every: float) -> StreamingResponse:
    async def stream() -> AsyncIterator[bytes]:
        quiet = 0.0
        while True:
            chunks, done = await poll()
            for chunk in chunks:
                yield chunk
                quiet = 0.0
            if done:
                return
            if quiet >= HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(every)
            quiet += every

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
