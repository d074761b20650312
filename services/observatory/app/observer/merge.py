"""Combining the observer's findings: across chunks, and into the local result.

The observer's opinion is bounded. It adds ``observer_output``, items marked
``"source": "observer"`` to themes, key moments, summary points and security flags, and the
model certainty (weight ≤ 0.25 in the confidence score). It never changes the tone, the
scores or the pattern lists of the local analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from app.analysis.confidence import MODEL_WEIGHT, score_confidence
from app.analysis.privacy import mask_pii
from app.conversation import Conversation
from app.observer.schema import (
    NARRATIVE_MAX,
    InjectionAttempt,
    Insight,
    NotableExchange,
    PatternJudgement,
    Synthesis,
    Theme,
)
from app.observer.validation import normalise

MAX_SUMMARY_ADDITIONS = 3
MAX_JUDGEMENTS_REPORTED = 200
MAX_FLAGS = 50
_THEMES = 5
_INSIGHTS = 5
_EXCHANGES = 4
_THEME_MESSAGES = 6

T = TypeVar("T")


def unique(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """First occurrence of each key, in order: overlapping chunks report the same things."""
    seen: set[Hashable] = set()
    kept: list[T] = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            kept.append(item)
    return kept


def judgement_key(j: PatternJudgement) -> Hashable:
    return (j.type, tuple(j.messages))


def injection_key(a: InjectionAttempt) -> Hashable:
    return tuple(a.messages)


def cut(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, marked with …"""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip(" ,;:") + "…"


def _merged_theme(group: Sequence[Theme]) -> Theme:
    """One theme for a group with the same label. The quote was checked against its own
    theme's messages, so those stay among the (capped) messages the merged theme cites."""
    quoted = next((t for t in group if t.quote), None)
    first = list(quoted.messages) if quoted else []
    rest = sorted({i for t in group for i in t.messages} - set(first))
    messages = sorted(set((first + rest)[:_THEME_MESSAGES]))
    return Theme(label=group[0].label, messages=messages, quote=quoted.quote if quoted else "")


def merge_locally(parts: Sequence[Synthesis]) -> Synthesis:
    """A deterministic merge of several syntheses, used when the model's merge failed."""
    narrative = cut(" ".join(p.narrative for p in parts if p.narrative.strip()), NARRATIVE_MAX)
    by_label: dict[str, list[Theme]] = {}
    for part in parts:
        for theme in part.themes:
            by_label.setdefault(normalise(theme.label), []).append(theme)
    ranked = sorted(by_label.values(), key=lambda group: -len(group))[:_THEMES]
    themes = [_merged_theme(group) for group in ranked]
    insights: list[Insight] = unique(
        (i for p in parts for i in p.insights), lambda i: normalise(i.text)
    )
    exchanges: list[NotableExchange] = unique(
        (e for p in parts for e in p.notable_exchanges), lambda e: tuple(e.messages)
    )
    return Synthesis(
        narrative=narrative,
        themes=themes,
        insights=insights[:_INSIGHTS],
        notable_exchanges=exchanges[:_EXCHANGES],
    )


def _theme_item(theme: Theme) -> dict[str, Any]:
    item: dict[str, Any] = {
        "label": mask_pii(theme.label),
        "keywords": [],
        "messages": list(theme.messages),
        # The observer measures no share of the conversation; 0 sorts it after local themes.
        "weight": 0.0,
        "source": "observer",
    }
    if theme.quote:
        item["quote"] = mask_pii(theme.quote)
    return item


def _moment_item(exchange: NotableExchange) -> dict[str, Any]:
    item: dict[str, Any] = {
        "index": exchange.messages[0],
        "kind": "notable_exchange",
        "why": mask_pii(exchange.why),
        "messages": list(exchange.messages),
        "source": "observer",
    }
    if exchange.quote:
        item["quote"] = mask_pii(exchange.quote)
    return item


def _flag_item(attempt: InjectionAttempt) -> dict[str, Any]:
    return {
        "kind": "prompt_injection_observer",
        "messages": list(attempt.messages),
        "excerpt": cut(mask_pii(attempt.quote), 200),
        "source": "observer",
    }


def _blend_confidence(result: dict[str, Any], conversation: Conversation, certainty: float) -> None:
    """Fold ``certainty`` into the confidence with at most :data:`MODEL_WEIGHT`.

    ``score_confidence`` is recomputed over the result's patterns; when those are only the
    requested subset of what the engine scored, its baseline differs from the stored score,
    and the same blend is applied to the stored score instead so nothing else moves.
    """
    old = result.get("confidence_score")
    confidence = result.get("confidence")
    if not isinstance(old, int | float) or not isinstance(confidence, dict):
        return
    patterns = result.get("patterns") or {}
    if score_confidence(conversation, patterns)["confidence_score"] == old:
        blended = score_confidence(conversation, patterns, model_certainty=certainty)
        result["confidence_score"] = blended["confidence_score"]
        result["confidence"] = blended["confidence"]
        return
    result["confidence_score"] = round((1 - MODEL_WEIGHT) * old + MODEL_WEIGHT * certainty, 4)
    confidence["model_certainty"] = certainty
    explanation = str(confidence.get("explanation") or "").rstrip(".")
    confidence["explanation"] = (
        f"{explanation}; observer certainty {certainty:.2f} weighted {MODEL_WEIGHT:.2f}."
    )


def merge_into(
    result: dict[str, Any],
    conversation: Conversation,
    synthesis: Synthesis,
    injections: Sequence[InjectionAttempt],
    certainty: float | None,
) -> None:
    """Add the observer's findings to ``result`` in place (a copy made by the caller)."""
    result["observer_output"] = mask_pii(synthesis.narrative) or None
    if isinstance(result.get("themes"), list):
        result["themes"].extend(_theme_item(t) for t in synthesis.themes)
    if isinstance(result.get("key_moments"), list):
        moments = result["key_moments"] + [_moment_item(e) for e in synthesis.notable_exchanges]
        result["key_moments"] = sorted(moments, key=lambda m: m["index"])
    # Summary points stay plain sentences (SPEC §4); the observer's insights, each with its
    # evidence, go beside them.
    result["insights"] = [
        {"text": mask_pii(i.text), "messages": list(i.messages), "source": "observer"}
        for i in synthesis.insights[:MAX_SUMMARY_ADDITIONS]
    ]
    security = result.setdefault("security", {"flags": []})
    flags = security.setdefault("flags", [])
    flags.extend(_flag_item(a) for a in injections[:MAX_FLAGS])
    if certainty is not None:
        _blend_confidence(result, conversation, certainty)


def judgement_items(judgements: Sequence[PatternJudgement]) -> list[dict[str, Any]]:
    ordered = sorted(judgements, key=lambda j: (j.messages[0], j.type))
    return [
        {
            "type": j.type,
            "messages": list(j.messages),
            "agree": j.agree,
            "confidence": round(j.confidence, 4),
        }
        for j in ordered[:MAX_JUDGEMENTS_REPORTED]
    ]


def local_dialectic(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    patterns = result.get("patterns")
    dialectic = patterns.get("dialectic") if isinstance(patterns, Mapping) else None
    if not isinstance(dialectic, list):
        return []
    return [p for p in dialectic if isinstance(p, Mapping) and isinstance(p.get("messages"), list)]
