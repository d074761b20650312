"""The error documents every endpoint answers with (RFC 9457 problem details), and the one
way to write one below the framework (middleware, the HTTP protocol) where no exception
handler runs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, detail: str, title: str | None = None) -> bytes:
    """The JSON of a problem; ASCII-escaped, so any text (a lone surrogate too) encodes."""
    return json.dumps(
        {"detail": detail, "title": title or HTTPStatus(status).phrase, "status": status}
    ).encode()


async def send_problem(
    send: Callable[[Any], Awaitable[None]],
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer an ASGI request with a problem document."""
    body = problem_body(status, detail, title)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def printable(value: str, limit: int = 40) -> str:
    """Something a client sent, quoted in an error message: printable ASCII, bounded."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in value[:limit])
    return clean + ("…" if len(value) > limit else "")


class Problem(BaseModel):
    """An error (RFC 9457 problem details, `application/problem+json`)."""

    detail: str
    type: str | None = None
    title: str | None = None
    status: int | None = None


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description="Where: `body`, `query` or `path`, then keys and indexes."
    )
    msg: str
    type: str


class ValidationProblem(Problem):
    """A 422: the body is not JSON or does not fit the schema; `errors` lists each place."""

    errors: list[FieldError]
