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

ACTIVE: Final = (PENDING, PROCESSING)
FINISHED: Final = (COMPLETED, FAILED, CANCELLED)
