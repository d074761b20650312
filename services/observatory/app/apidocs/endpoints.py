"""``/docs`` and ``/redoc`` from vendored assets (no CDN), under a Content-Security-Policy of
their own: the page at ``/`` keeps its stricter one.

Swagger UI is started by one inline script that FastAPI writes; the policy admits exactly
that script by its hash, not inline script in general. Both viewers style elements from
script (inline styles) and draw icons as ``data:`` images; ReDoc runs its search in a worker
made from a ``blob:`` URL.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent / "static"
ASSETS_PATH = "/docs/assets"
SWAGGER_JS = f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS_PATH}/swagger-ui/swagger-ui.css"
REDOC_JS = f"{ASSETS_PATH}/redoc/redoc.standalone.js"
FAVICON = f"{ASSETS_PATH}/swagger-ui/favicon-32x32.png"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _script_hashes(html: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    ]


def docs_policy(inline_scripts: list[str]) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            " ".join(("script-src 'self'", *inline_scripts)),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_headers(docs_policy([])))
        return response


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve Swagger UI at ``/docs``, ReDoc at ``/redoc`` and their assets under
    ``/docs/assets`` (create the app with ``docs_url=None, redoc_url=None``)."""
    title = f"{app.title} API"
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=SWAGGER_JS,
        swagger_css_url=SWAGGER_CSS,
        swagger_favicon_url=FAVICON,
        # No call to the public validator service (it would leave the machine).
        swagger_ui_parameters={"validatorUrl": None},
    ).body
    redoc = get_redoc_html(
        openapi_url=openapi_url,
        title=title,
        redoc_js_url=REDOC_JS,
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    ).body
    swagger_headers = _headers(docs_policy(_script_hashes(bytes(swagger).decode())))
    redoc_headers = _headers(docs_policy(_script_hashes(bytes(redoc).decode())))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers=swagger_headers)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_ui() -> HTMLResponse:
        return HTMLResponse(redoc, headers=redoc_headers)

    app.mount(ASSETS_PATH, _Assets(directory=STATIC), name="docs-assets")
