"""Bodies of the liveness and readiness endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    """`ready` (200) or `unavailable` (503), with each component's status."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, dict[str, Any]] = Field(
        description="`database`, `queue` and `observer`, each with its `status`."
    )
