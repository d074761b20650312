"""The error documents every endpoint answers with (RFC 9457 problem details)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
