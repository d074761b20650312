"""Binds a request id to every log line of a request and returns it as ``X-Request-ID``.

A client-supplied id is kept when it is short and plain (so a caller can trace its own
request across services); anything else is replaced by a fresh one.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.requests import events_for
from app.core import patterns
from app.core.problems import send_problem

_SAFE = patterns.compile(r"^[A-Za-z0-9._-]{1,64}$")
CREDENTIAL_PREFIX = "obs_"  # API keys (app.keys.service.KEY_PREFIX) and anything like them
# The client went away before the answer (nginx's code): not a server error.
CLIENT_CLOSED_REQUEST = 499
log = structlog.get_logger("app.access")


def _record(scope: Scope, status: int, seconds: float) -> None:
    """Count the request in the app's metrics, by route template (never the raw path)."""
    service = getattr(getattr(scope.get("app"), "state", None), "service", None)
    metrics = getattr(service, "metrics", None)
    if metrics is None:
        return
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    metrics.requests.labels(route, scope["method"], str(status)).inc()
    metrics.latency.labels(route, scope["method"]).observe(seconds)


def _audit(scope: Scope, status: int, request_id: str) -> None:
    """Hand the request's audit event, if it makes one, to the app's audit log (queued: the
    answer has been sent and nothing here waits for the database)."""
    service = getattr(getattr(scope.get("app"), "state", None), "service", None)
    audit = getattr(service, "audit", None)
    if audit is None:
        return
    try:
        for event in events_for(scope, status, request_id, getattr(service, "fingerprints", None)):
            audit.record(event)
    except Exception:
        log.exception("audit.record_failed", method=scope["method"], path=scope["path"])


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), ""
        )
        # A credential sent as the request id (a client's mix-up) is not kept: the id is
        # logged and written to the audit log.
        plain = _SAFE.match(supplied) and not supplied.lower().startswith(CREDENTIAL_PREFIX)
        request_id = supplied if plain else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.append("X-Request-ID", request_id)
                limited = getattr(scope.get("state", {}), "get", lambda _: None)(
                    "rate_limit_headers"
                )
                for name, value in (limited or {}).items():
                    if name not in headers:
                        headers.append(name, value)
                # Time spent in the service before answering (W3C Server Timing).
                elapsed = (time.perf_counter() - started) * 1000
                headers.append("Server-Timing", f"app;dur={elapsed:.1f}")
            await send(message)

        started_response = False

        async def send_tracked(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
            if not started_response and scope.get("state", {}).get("client_disconnected"):
                status = CLIENT_CLOSED_REQUEST
        except ClientDisconnect:
            status = CLIENT_CLOSED_REQUEST
        except Exception:
            # Handled here, inside the request's context, so the log line carries the request
            # id, the client gets it back as its reference, and nothing re-raises the
            # exception to the server (whose own log would print its message).
            status = 500
            log.exception("request.error", method=scope["method"], path=scope["path"])
            if not started_response:
                await send_problem(
                    send_with_id, 500, f"internal server error (reference {request_id})"
                )
        finally:
            _record(scope, status, time.perf_counter() - started)
            _audit(scope, status, request_id)
            (log.info if status != CLIENT_CLOSED_REQUEST else log.warning)(
                "request" if status != CLIENT_CLOSED_REQUEST else "request.client_disconnected",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")
