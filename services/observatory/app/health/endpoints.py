"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app import __version__
from app.api.deps import StateDep
from app.health.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A required component is down."}},
)
async def ready(state: StateDep) -> JSONResponse:
    """Readiness: database reachable, queue accepting work, observer status."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = {"status": "ok", "backend": state.engine.dialect.name}
    except Exception as exc:
        ok = False
        checks["database"] = {"status": "error", "error": type(exc).__name__}
    stats = state.queue.stats()
    state.pool.heal()
    # Not ready: nothing can run work. A full queue is reported but stays ready: it refuses
    # new work with 503 and Retry-After by itself, and a probe that took replicas out while
    # they are busy (or every replica, when they share a Redis queue) would turn load into
    # an outage. Batch items wait under their own capacity and never count as full.
    runs = stats["workers"] > 0 and state.pool.healthy()
    singles = stats["queued"] - stats.get("batch_queued", 0)
    ok = ok and runs
    if not runs:
        status = "error"
    elif singles >= stats["capacity"]:
        status = "full"
    else:
        status = "ok"
    checks["queue"] = {"status": status, **stats, **state.pool.stats()}
    limiter = state.limiter
    if limiter is not None:
        # Limits fail open without their store, so readiness reports it without failing.
        reachable = await limiter.check()
        checks["limits"] = {
            "status": "ok" if reachable else "unavailable",
            "backend": limiter.backend,
        }
    if state.observer is not None:
        checks["observer"] = await state.observer.readiness()
    else:
        checks["observer"] = {"status": "disabled"}
    body = {"status": "ready" if ok else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)
