"""Who is calling: every request resolves to exactly one principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["public", "api_key", "partner"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    # The key id, the token subject, or a hash of the client address (public).
    id: str
    tier: str
    scopes: frozenset[str] = frozenset()
    label: str = ""

    @property
    def owner(self) -> str | None:
        """What this principal's creations are stored under; public work has no owner and
        is reachable by its unguessable id."""
        if self.kind == "public":
            return None
        return f"{'key' if self.kind == 'api_key' else 'sub'}:{self.id}"

    def may(self, scope: str) -> bool:
        """Keys do what their scopes say, whatever their tier; the public tier may analyse
        and nothing else."""
        if self.kind == "public":
            return scope == "analyze"
        return scope in self.scopes
