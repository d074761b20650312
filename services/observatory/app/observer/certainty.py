"""How sure the observer was: from token log-probabilities, else from agreement.

With log-probabilities (Ollama ≥ 0.12.11 answers ``logprobs: true``) the certainty is the
geometric mean probability of the content tokens of every accepted answer::

    model_certainty = exp( Σ logprob(t) / N )   over the N content tokens t

Content tokens are those carrying more than JSON punctuation and whitespace: a schema-bound
decoder emits braces, quotes and commas with probability ≈ 1, and counting them would make
every answer look certain. Without log-probabilities it is the share of the observer's pattern
judgements that agree with the local analysis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.observer.schema import PatternJudgement

_PUNCTUATION = frozenset('{}[]:,"')


def is_content_token(token: str) -> bool:
    stripped = token.strip()
    return bool(stripped) and not set(stripped) <= _PUNCTUATION


@dataclass(slots=True)
class LogprobTally:
    """A running sum of content-token log-probabilities over several answers."""

    total: float = 0.0
    count: int = 0

    def add(self, entries: Iterable[Mapping[str, Any]]) -> None:
        for entry in entries:
            token, logprob = entry.get("token"), entry.get("logprob")
            if not isinstance(token, str) or not isinstance(logprob, int | float):
                continue
            if math.isfinite(logprob) and is_content_token(token):
                self.total += min(0.0, float(logprob))
                self.count += 1

    def certainty(self) -> float | None:
        if not self.count:
            return None
        return round(math.exp(self.total / self.count), 4)


def _matches(judgement: PatternJudgement, pattern: Mapping[str, Any]) -> bool:
    return pattern.get("type") == judgement.type and bool(
        set(pattern.get("messages", ())) & set(judgement.messages)
    )


def agreement(
    judgements: Sequence[PatternJudgement], local: Sequence[Mapping[str, Any]]
) -> float | None:
    """Share of judgements that agree with the local analysis, or None without judgements.

    A judgement agrees when it confirms a pattern the local analysis found (same type,
    overlapping messages) or rejects one it did not find.
    """
    if not judgements:
        return None
    agreed = sum(1 for j in judgements if j.agree == any(_matches(j, p) for p in local))
    return round(agreed / len(judgements), 4)
