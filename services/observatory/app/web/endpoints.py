"""The web page at ``/``: its HTML and assets under a strict Content-Security-Policy, and the
transcript it shows beside a result (the service keeps no conversation text, so the page
asks for the parsed messages of what it submits)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from app.analyses.endpoints import ERRORS
from app.api.body import json_body
from app.api.deps import StateDep
from app.api.openapi import json_body as openapi_body
from app.auth.dependencies import AnalystDep
from app.conversation.parsers import Limits
from app.core.errors import InputError, ServiceUnavailable
from app.jobs.work import Refusal
from app.web.schemas import Transcript

STATIC = Path(__file__).resolve().parent / "static"
ASSETS_PATH = "/assets"

# Scripts, styles and connections from the service itself only: no inline script, no
# inline style attribute, no eval, no plugin, no framing; Trusted Types forbid assigning
# markup strings to the DOM at all, so conversation text can only ever become text.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def page() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


class _Assets(StaticFiles):
    """The page's scripts and styles, with the page's headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/assets``."""
    app.include_router(router)
    app.include_router(api)
    app.mount(ASSETS_PATH, _Assets(directory=STATIC / "assets"), name="assets")


api = APIRouter(prefix="/api/v1", tags=["analysis"])


@api.post(
    "/transcript",
    response_model=Transcript,
    responses=ERRORS,
    openapi_extra=openapi_body("AnalyzeRequest"),
)
async def transcript(state: StateDep, principal: AnalystDep, request: Request) -> Response:
    """The messages an analysis of the same body would index (personal data masked); nothing is stored."""
    parsed = await state.pool.transcript(
        await json_body(request), Limits.from_settings(state.settings)
    )
    if isinstance(parsed, Refusal):
        if parsed.status == 422:
            raise RequestValidationError(list(parsed.errors))
        if parsed.status == 503:
            raise ServiceUnavailable(parsed.detail, headers={"Retry-After": "1"})
        raise InputError(parsed.detail)
    return Response(parsed.document, media_type="application/json")
