"""The one status vocabulary of an analysis: ``pending → processing → completed | failed |
cancelled``, never back (every change is a conditional update, see repository.py)."""

from __future__ import annotations

from typing import Final, Literal

Status = Literal["pending", "processing", "completed", "failed", "cancelled"]

PENDING: Final = "pending"
PROCESSING: Final = "processing"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"

# Not a status an analysis is ever read in: what an erased analysis leaves (id, owner,
# timestamps) until its metadata period ends. Reads treat it as gone.
TOMBSTONE: Final = "deleted"

ACTIVE: Final = (PENDING, PROCESSING)
FINISHED: Final = (COMPLETED, FAILED, CANCELLED)
