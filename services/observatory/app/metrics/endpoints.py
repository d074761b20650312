"""``GET /metrics``: Prometheus text format, for credentials with the ``metrics`` scope."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import StateDep
from app.auth.dependencies import PrincipalDep
from app.core.errors import NotFound, Unauthorized
from app.core.problems import Problem

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."},
        401: {"model": Problem, "description": "No credential, or not a valid one."},
        404: {"model": Problem, "description": "The credential lacks the `metrics` scope."},
    },
)
async def metrics(state: StateDep, principal: PrincipalDep) -> Response:
    """Prometheus metrics; needs an API key with the `metrics` scope."""
    if principal.kind == "public":
        raise Unauthorized("metrics need an API key with the 'metrics' scope")
    if not principal.may("metrics"):
        # Not revealed to keys that may not read it.
        raise NotFound("not found")
    body = state.metrics.render(state.queue.stats(), state.pool.stats())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
