"""Request bodies read as bytes, so that decoding and validating them can happen off the event
loop (in a worker process) instead of inside FastAPI's parameter handling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from app.core.errors import UnsupportedMediaType
from app.core.problems import printable

if TYPE_CHECKING:
    from app.core.config import Settings

_UTF8 = ("utf-8", "utf8")

# A request body may exceed the conversation's text size: JSON escapes non-ASCII text
# (`\u4e2d` is 6 bytes for a 3-byte character, an emoji 12 for 4) and adds keys and quotes.
JSON_ESCAPE_FACTOR = 3
ENVELOPE_ALLOWANCE = 1024 * 1024


def request_body_limit(settings: Settings) -> int:
    """The largest body accepted for one conversation: ``JSON_ESCAPE_FACTOR`` times
    ``max_conversation_bytes``, plus ``ENVELOPE_ALLOWANCE`` for keys, quotes and options."""
    return settings.max_conversation_bytes * JSON_ESCAPE_FACTOR + ENVELOPE_ALLOWANCE


def _not_json(media: str) -> str:
    detail = (
        f"Content-Type '{printable(media, 80)}' is not supported; send the body as "
        "application/json: a JSON object with the header Content-Type: application/json"
    )
    if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        detail += (
            " (curl's -d and -F send a form unless told otherwise: add "
            "-H 'Content-Type: application/json' and give -d the JSON)"
        )
    elif media.startswith("text/"):
        detail += (
            ' (a plain transcript goes inside the JSON: {"conversation_text": '
            '"Human: ...\\nAI: ..."})'
        )
    return detail


async def json_body(request: Request, *, required: str | None = None) -> bytes:
    """The raw body of a JSON request. ``Content-Type`` must be JSON (``application/json``
    or ``…+json``; absent is taken as JSON) in UTF-8; anything else is refused with 415.
    With ``required`` (what the body must hold), an empty body is a 422 that says so."""
    header = request.headers.get("content-type", "")
    media, _, params = header.partition(";")
    media = media.strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(_not_json(media))
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in _UTF8:
                raise UnsupportedMediaType(
                    f"charset '{printable(charset, 80)}' is not supported; JSON bodies must be UTF-8"
                )
    body = await request.body()
    if required is not None and not body.strip():
        raise RequestValidationError(
            [
                {
                    "loc": ["body"],
                    "msg": f"the request body is empty; send {required}, with the header "
                    "Content-Type: application/json",
                    "type": "missing",
                }
            ]
        )
    return body
