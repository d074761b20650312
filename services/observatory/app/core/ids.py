"""Ids the service hands out are UUIDs in their canonical form: anything else names nothing,
and is answered 404 before it reaches a query (PostgreSQL refuses a NUL in text, and no
database should see what a client made up)."""

from __future__ import annotations

import uuid


def is_id(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
