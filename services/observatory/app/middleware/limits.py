"""Pure ASGI middleware that reads request bodies under limits before anything parses them:
size (413), time (408: a body that pauses too long or takes too long in all), encoding
(415 for any ``Content-Encoding`` but identity), and text (400 for invalid UTF-8 or NUL),
each with a problem+json error naming the limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.problems import printable, send_problem

# The methods whose requests carry a body this middleware reads.
BODY_METHODS = ("POST", "PUT", "PATCH")


def _fmt(n: int) -> str:
    return f"{n:,} bytes ({n / 1024 / 1024:.1f} MB)"


CLOSE = ((b"connection", b"close"),)  # the rest of the body is not read: no reuse


class BodyLimitMiddleware:
    """``limit_for(path)`` gives the byte limit for a path, or None for no size and text
    checks; the encoding and time limits apply to every request with a body."""

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str], int | None],
        *,
        idle_timeout: float = 15.0,
        total_timeout: float = 120.0,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.idle_timeout = idle_timeout
        self.total_timeout = total_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            await send_problem(
                send,
                415,
                f"Content-Encoding '{printable(encoding.decode('latin-1'))}' is not supported; send the body "
                "uncompressed (the size limit applies to the uncompressed body)",
                headers=CLOSE,
            )
            return
        limit = self.limit_for(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        too_large = (
            f"request body is larger than the limit of {_fmt(limit)} for {scope['path']}; "
            "split the input or raise OBSERVATORY_MAX_CONVERSATION_BYTES"
        )
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await send_problem(send, 413, too_large, headers=CLOSE)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        deadline = time.monotonic() + self.total_timeout
        while more:
            wait = min(self.idle_timeout, deadline - time.monotonic())
            try:
                async with asyncio.timeout(max(wait, 0)):
                    message = await receive()
            except TimeoutError:
                what = (
                    f"the request body was not complete within {self.total_timeout:g} s"
                    if time.monotonic() >= deadline
                    else f"the request body stopped arriving for {self.idle_timeout:g} s"
                )
                await send_problem(
                    send,
                    408,
                    f"{what} (received {size:,} bytes); a body may pause at most "
                    f"{self.idle_timeout:g} s and must be complete within "
                    f"{self.total_timeout:g} s",
                    headers=CLOSE,
                )
                return
            if message["type"] == "http.disconnect":
                scope.setdefault("state", {})["client_disconnected"] = True
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_problem(send, 413, too_large, headers=CLOSE)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await send_problem(
                send,
                400,
                f"request body is not valid UTF-8 (invalid byte at offset {exc.start}); "
                "send UTF-8 encoded JSON",
                title="Invalid encoding",
            )
            return
        nul = body.find(b"\x00")
        if nul >= 0:
            await send_problem(
                send,
                400,
                f"request body contains a NUL byte at offset {nul}; NUL is not allowed",
                title="Invalid content",
            )
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
