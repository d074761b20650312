"""Checking the model's answer: shape first, then every citation against the conversation."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.observer.schema import (
    ChunkFindings,
    InjectionAttempt,
    Insight,
    NotableExchange,
    PatternJudgement,
    Synthesis,
    Theme,
)

Answer = TypeVar("Answer", bound=BaseModel)

_EDGE_QUOTES = "\"'“”‘’«»`"
_ELLIPSES = ("...", "…")
MIN_INJECTION_QUOTE = 12
"""Characters an injection report must quote, unless it quotes a whole shorter message: a
security flag backed by "the" or "e" is not evidence."""


class InvalidAnswer(Exception):
    """The model's answer cannot be used; ``reason`` says why, ``cut_off`` if it hit the cap."""

    def __init__(self, reason: str, *, cut_off: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cut_off = cut_off


def parse_answer(content: str, done_reason: str | None, model: type[Answer]) -> Answer:
    """Parse and validate one answer; raise :class:`InvalidAnswer` if it is unusable."""
    if done_reason == "length":
        raise InvalidAnswer("the answer was cut off at the token limit", cut_off=True)
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise InvalidAnswer(f"the answer is not valid JSON ({exc.args[0][:80]})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # A location part may be a key the model made up: show it only if it is short.
        where = ".".join(_loc_part(part) for part in first["loc"]) or "answer"
        raise InvalidAnswer(
            f"the answer does not match the schema ({exc.error_count()} errors; "
            f"{where}: {first['msg']})"
        ) from None


def _loc_part(part: int | str) -> str:
    text = str(part)
    return text if len(text) <= 40 and text.isprintable() else "(an unexpected key)"


def normalise(text: str) -> str:
    """Casefolded, whitespace-collapsed, without the backslashes the prompt escaping adds."""
    return " ".join(text.replace("\\", "").casefold().split())


def _clean_quote(quote: str) -> str:
    q = normalise(quote).strip(_EDGE_QUOTES).strip()
    for mark in _ELLIPSES:
        q = q.removeprefix(mark).removesuffix(mark)
    return q.strip(_EDGE_QUOTES).strip()


class CitationChecker:
    """Keeps only evidence that exists: indices within ``allowed`` and quotes found verbatim
    (after :func:`normalise`) in one of the cited messages. ``dropped`` counts what it removed.
    """

    def __init__(self, texts: Sequence[str], allowed: Collection[int]) -> None:
        self._texts = texts
        self._allowed = allowed
        self._normalised: dict[int, str] = {}
        self.dropped = 0

    def indices(self, cited: Sequence[int]) -> list[int]:
        kept = sorted({i for i in cited if i in self._allowed and 0 <= i < len(self._texts)})
        self.dropped += len(set(cited)) - len(kept)
        return kept

    def quote_found(self, quote: str, messages: Sequence[int]) -> bool:
        q = _clean_quote(quote)
        if not q:
            return False
        for i in messages:
            if i not in self._normalised:
                self._normalised[i] = normalise(self._texts[i])
            if q in self._normalised[i]:
                return True
        return False

    def _quoted(self, quote: str, messages: Sequence[int]) -> bool:
        """True when the quote checks out; a non-empty quote that does not is a dropped one."""
        if self.quote_found(quote, messages):
            return True
        if _clean_quote(quote):
            self.dropped += 1
        return False

    def theme(self, item: Theme) -> Theme | None:
        messages = self.indices(item.messages)
        if not messages:
            return None
        quote = item.quote if self._quoted(item.quote, messages) else ""
        return item.model_copy(update={"messages": messages, "quote": quote})

    def insight(self, item: Insight) -> Insight | None:
        messages = self.indices(item.messages)
        return item.model_copy(update={"messages": messages}) if messages else None

    def exchange(self, item: NotableExchange) -> NotableExchange | None:
        messages = self.indices(item.messages)
        if not messages:
            return None
        # A notable exchange may come without a quote; a quote that is not there sinks it.
        if _clean_quote(item.quote) and not self._quoted(item.quote, messages):
            return None
        return item.model_copy(update={"messages": messages})

    def judgement(self, item: PatternJudgement) -> PatternJudgement | None:
        messages = self.indices(item.messages)
        return item.model_copy(update={"messages": messages}) if messages else None

    def _too_short(self, quote: str, messages: Sequence[int]) -> bool:
        q = _clean_quote(quote)
        if len(q) >= MIN_INJECTION_QUOTE:
            return False
        return all(self._normalised.get(i, normalise(self._texts[i])) != q for i in messages)

    def injection(self, item: InjectionAttempt) -> InjectionAttempt | None:
        messages = self.indices(item.messages)
        if not messages:
            return None
        if _clean_quote(item.quote) and self._too_short(item.quote, messages):
            self.dropped += 1
            return None
        if not self._quoted(item.quote, messages):
            if not _clean_quote(item.quote):
                self.dropped += 1  # a claim of injection needs its words as evidence
            return None
        return item.model_copy(update={"messages": messages})


T = TypeVar("T")


def _keep(items: Sequence[T], check: Callable[[T], T | None]) -> list[T]:
    return [kept for item in items if (kept := check(item)) is not None]


def check_findings(findings: ChunkFindings, checker: CitationChecker) -> ChunkFindings:
    return ChunkFindings(
        narrative=findings.narrative,
        themes=_keep(findings.themes, checker.theme),
        insights=_keep(findings.insights, checker.insight),
        notable_exchanges=_keep(findings.notable_exchanges, checker.exchange),
        pattern_judgements=_keep(findings.pattern_judgements, checker.judgement),
        injection_attempts=_keep(findings.injection_attempts, checker.injection),
    )


def check_synthesis(synthesis: Synthesis, checker: CitationChecker) -> Synthesis:
    return Synthesis(
        narrative=synthesis.narrative,
        themes=_keep(synthesis.themes, checker.theme),
        insights=_keep(synthesis.insights, checker.insight),
        notable_exchanges=_keep(synthesis.notable_exchanges, checker.exchange),
    )
