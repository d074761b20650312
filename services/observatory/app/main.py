"""The FastAPI application: ``create_app()`` and the lifespan that owns engine, queue and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from app import __version__
from app.analyses import endpoints as analyses
from app.api.body import ENVELOPE_ALLOWANCE, request_body_limit
from app.api.openapi import install_openapi
from app.apidocs import endpoints as apidocs
from app.batches import endpoints as batches
from app.core.config import Settings, get_settings
from app.core.crypto import SealedResultError
from app.core.errors import ObservatoryError
from app.core.logging import configure_logging
from app.examples import endpoints as examples
from app.health import endpoints as health
from app.metrics import endpoints as metrics_endpoints
from app.middleware.limits import BodyLimitMiddleware
from app.middleware.request_id import RequestIdMiddleware
from app.runtime import runtime
from app.web import endpoints as web
from app.webhooks import endpoints as webhook_endpoints

log = structlog.get_logger(__name__)

BATCH_PATH = "/api/v1/analyze/batch"
EXAMPLES_PATH = "/examples/"
EXAMPLE_BODY_LIMIT = 64 * 1024


def _encodable(value: Any) -> Any:
    """``value`` with every string made encodable as UTF-8: an error message may quote input
    that holds a lone surrogate (``"\ud800"`` decoded from JSON), shown as its escape."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"

    def render(self, content: Any) -> bytes:
        return super().render(_encodable(content))


def _problem(
    status: int, detail: str, title: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return ProblemResponse(
        {"detail": detail, "title": title, "status": status},
        status_code=status,
        headers=headers,
    )


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route accepts at this path (Starlette's 405 names only the first
    route that matched the path). Routes written for exactly this path win over templates
    it happens to fit: ``/api/v1/analyze/batch`` is the batch collection, not an analysis
    whose id is "batch"."""
    exact: set[str] = set()
    methods: set[str] = set()
    probe = {**scope, "method": "\x00"}

    def walk(routes: Sequence[BaseRoute]) -> None:
        for route in routes:
            nested = getattr(route, "original_router", None)  # an included router
            if nested is not None:
                walk(nested.routes)
            elif (
                isinstance(route, APIRoute | Route)
                and route.methods
                and route.matches(probe)[0] == Match.PARTIAL
            ):
                (methods if route.param_convertors else exact).update(route.methods)

    walk(app.router.routes)
    return sorted(exact or methods)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            parts.append(
                f"body is not valid JSON at position {loc.split('.')[-1]}: {ctx.get('error', err.get('msg'))}"
            )
        else:
            parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ObservatoryError)
    async def _observatory(_: Request, exc: ObservatoryError) -> JSONResponse:
        return _problem(exc.status_code, exc.detail, exc.title, exc.headers)

    @app.exception_handler(SealedResultError)
    async def _sealed(request: Request, exc: SealedResultError) -> JSONResponse:
        log.error("result.unopenable", path=request.url.path, error=str(exc))
        return _problem(
            500,
            f"the stored result cannot be opened: {exc}; the operator must configure the key "
            "it was sealed with in OBSERVATORY_RESULT_KEYS",
            "Internal Server Error",
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()[:20]
        ]
        body = {
            "detail": _validation_detail(exc),
            "title": "Unprocessable Content",
            "status": 422,
            "errors": errors,
        }
        return ProblemResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            detail = f"method {request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return _problem(exc.status_code, detail, HTTPStatus(exc.status_code).phrase, headers)

    # Unexpected exceptions are answered (500 with a reference) and logged by
    # RequestIdMiddleware, inside the request's context.


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime(settings, "serve") as state:
            app.state.service = state
            yield

    app = FastAPI(
        title="Observatory",
        version=__version__,
        description=(
            "Conversation analysis: dialectic patterns, sentiment, topics, interaction dynamics, "
            "themes and a confidence score."
        ),
        lifespan=lifespan,
        docs_url=None,  # served from vendored assets by app.apidocs
        redoc_url=None,
    )

    def limit_for(path: str) -> int | None:
        if path.rstrip("/") == BATCH_PATH:
            return settings.max_batch_bytes + ENVELOPE_ALLOWANCE
        if path.startswith("/api/"):
            return request_body_limit(settings)
        if path.startswith(EXAMPLES_PATH):
            return EXAMPLE_BODY_LIMIT  # options only: the conversation is the example's
        return None

    install_error_handlers(app)
    install_openapi(app, body_limited=lambda path: limit_for(path) is not None)

    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=limit_for,
        idle_timeout=settings.body_idle_timeout_seconds,
        total_timeout=settings.body_timeout_seconds,
    )
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(batches.router)  # before /api/v1/analyze/{analysis_id}
    app.include_router(analyses.router)
    app.include_router(metrics_endpoints.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(examples.router)
    apidocs.install(app)
    web.install(app)
    return app
