"""Splitting a long transcript into parts that fit the model's context window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    """Messages ``start..end-1``; those before ``first_new`` repeat the previous chunk's end."""

    start: int
    end: int
    first_new: int

    @property
    def indices(self) -> range:
        return range(self.start, self.end)

    def __len__(self) -> int:
        return self.end - self.start


def plan_chunks(sizes: Sequence[int], budget: int, overlap: int) -> list[Chunk]:
    """Greedy split of messages with token ``sizes`` into chunks of at most ``budget`` tokens.

    Each chunk after the first starts with up to ``overlap`` messages of the previous one, so
    an exchange that straddles a border is seen whole; the overlap gives way (fully, if need
    be) when it would take more than half the budget or leave no room for a new message.
    Every chunk holds at least one new message, so the plan always advances; a single message
    larger than the budget gets a chunk of its own (its text is truncated when rendered).
    """
    chunks: list[Chunk] = []
    n = len(sizes)
    done = 0
    while done < n:
        carry = min(overlap, done)
        while carry > 0 and sum(sizes[done - carry : done]) > budget // 2:
            carry -= 1
        used = sum(sizes[done - carry : done])
        if carry and used + sizes[done] > budget:
            carry, used = 0, 0
        start = done - carry
        end = done
        while end < n and (end == done or used + sizes[end] <= budget):
            used += sizes[end]
            end += 1
        chunks.append(Chunk(start=start, end=end, first_new=done))
        done = end
    return chunks
