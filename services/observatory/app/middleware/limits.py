"""Pure ASGI middleware that enforces the request-body size limit before anything parses the
body, and refuses bodies that are not valid UTF-8 text, with a JSON error naming the limit."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _fmt(n: int) -> str:
    return f"{n:,} bytes ({n / 1024 / 1024:.1f} MB)"


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"detail": detail, "title": title, "status": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """``limit_for(path)`` gives the byte limit for a path, or None for no body checks."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        too_large = (
            f"request body is larger than the limit of {_fmt(limit)} for {scope['path']}; "
            "split the input or raise OBSERVATORY_MAX_CONVERSATION_BYTES"
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _problem(send, 413, "Payload Too Large", too_large)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _problem(send, 413, "Payload Too Large", too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await _problem(
                send,
                400,
                "Invalid encoding",
                f"request body is not valid UTF-8 (invalid byte at offset {exc.start}); "
                "send UTF-8 encoded JSON",
            )
            return
        nul = body.find(b"\x00")
        if nul >= 0:
            await _problem(
                send,
                400,
                "Invalid content",
                f"request body contains a NUL byte at offset {nul}; NUL is not allowed",
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
