"""Running the ASGI app under uvicorn with limits on what a connection may hold.

uvicorn has no deadline for a request's headers (a client that sends them a byte at a time
holds a connection and a file descriptor for ever) and no bound on their size with its
httptools parser, and it answers malformed requests with a ``text/plain`` 400. The protocol
below adds a header deadline and a header size limit, and answers those errors with
``application/problem+json`` like every other error of the service. Bodies that stall are
cut off by :class:`app.middleware.limits.BodyLimitMiddleware`.
See docs/decisions/0007-connection-limits.md.
"""

from __future__ import annotations

import asyncio
import resource
from http import HTTPStatus
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import Settings
from app.core.problems import problem_body, send_problem

log = structlog.get_logger("app.server")


def problem_bytes(status: int, detail: str) -> bytes:
    """A whole HTTP response with a problem document, written straight to the transport
    (for errors met before there is an ASGI request to answer)."""
    body = problem_body(status, detail)
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode()),
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


async def _over_capacity(scope: Any, receive: Any, send: Any) -> None:
    await send_problem(
        send,
        503,
        "the server has too many open connections; retry in a moment",
        headers=((b"retry-after", b"1"), (b"connection", b"close")),
    )


class HardenedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a deadline and a size limit for each request's headers."""

    header_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._parsed_header_bytes = 0
        self._headers_too_large = False
        self._in_headers = False

    def _start_header_clock(self) -> None:
        self._stop_header_clock()
        self._in_headers = True
        self._header_bytes = 0
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_clock(self) -> None:
        self._in_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, status: int, detail: str) -> None:
        self._stop_header_clock()
        if not self.transport.is_closing():
            self.transport.write(problem_bytes(status, detail))
            self.transport.close()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._refuse(408, f"request headers did not arrive within {self.header_timeout:g} seconds")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        counting = self._in_headers
        super().data_received(data)
        # Only bytes fed while the headers were incomplete count, and only if they are still
        # incomplete afterwards (the same packet may carry the start of the body).
        if counting and self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(
                    431,
                    f"request line and headers exceed {self.max_header_bytes:,} bytes; "
                    "send fewer or shorter headers",
                )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parsed_header_bytes = 0
        if not self._in_headers:  # the next request on a kept-alive connection
            self._start_header_clock()

    def _count(self, size: int) -> None:
        self._parsed_header_bytes += size
        if self._parsed_header_bytes > self.max_header_bytes:
            # Raising inside a parser callback stops the parser; uvicorn then calls
            # send_400_response, which answers 431 for this case.
            self._headers_too_large = True
            raise ValueError("request headers too large")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_header_clock()
        limit = self.max_connections
        if limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit):
            # uvicorn's own limit answers text/plain; this one answers like every other error.
            app, self.app = self.app, _over_capacity
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._headers_too_large:
            self._refuse(
                431,
                f"request line and headers exceed {self.max_header_bytes:,} bytes; "
                "send fewer or shorter headers",
            )
            return
        self._stop_header_clock()
        if not self.transport.is_closing():
            self.transport.write(
                problem_bytes(
                    400,
                    f"malformed HTTP request ({msg.rstrip('.').lower()}); check the request "
                    "line, headers and chunked encoding",
                )
            )
            self.transport.close()


def raise_file_limit() -> int:
    """Lift this process's open-file limit to its hard limit (more connections before
    ``accept`` fails); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``."""

    class Protocol(HardenedHttpToolsProtocol):
        header_timeout = settings.header_timeout_seconds
        max_header_bytes = settings.max_header_bytes
        max_connections = settings.max_connections

    return {
        "http": Protocol,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "backlog": settings.listen_backlog,
        "proxy_headers": False,
        "access_log": False,  # requests are logged with their request id by RequestIdMiddleware
    }
