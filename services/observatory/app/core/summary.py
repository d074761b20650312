"""A result document as a short human-readable text, for a terminal (``observatory analyze
--format text``). Every part is optional: a result holds only the pattern types asked for."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any


def _messages(indices: Any) -> str:
    if not isinstance(indices, list) or not indices:
        return ""
    shown = ", ".join(str(i) for i in indices[:8])
    return f"message{'s' if len(indices) > 1 else ''} {shown}{', …' if len(indices) > 8 else ''}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def to_text(doc: Mapping[str, Any]) -> str:
    lines: list[str] = []
    conv = doc.get("conversation") or {}
    patterns = doc.get("patterns") or {}
    lines.append(
        f"Conversation: {_count(conv.get('messages', 0), 'message')}, "
        f"{conv.get('characters', 0):,} characters, format {conv.get('format', '?')}"
    )
    dynamics = patterns.get("dynamics")
    if dynamics:
        speakers = [
            f"{name} ({_count(s.get('messages', 0), 'message')}, {s.get('share', 0):.0%} of words)"
            for name, s in (dynamics.get("speakers") or {}).items()
        ]
        lines.append("Speakers: " + "; ".join(speakers))
    sentiment = patterns.get("sentiment")
    if sentiment:
        tone = (
            f"Tone: {sentiment.get('overall_tone')} ({sentiment.get('score', 0):+.2f}), "
            f"engagement {sentiment.get('engagement_level')}"
        )
        shifts = sentiment.get("shifts") or []
        if shifts:
            tone += "; shifts: " + ", ".join(
                f"{s.get('from')} → {s.get('to')} at message {s.get('index')}" for s in shifts[:5]
            )
        lines.append(tone)
    topics = patterns.get("topics")
    if topics:
        lines.append("Topics:")
        lines += [
            f"  - {seg.get('label')} (messages {seg.get('start')}–{seg.get('end')})"
            for seg in topics.get("segments") or []
        ]
    dialectic = patterns.get("dialectic")
    if dialectic is not None:
        counts = Counter(s.get("type") for s in dialectic)
        found = ", ".join(f"{kind} ×{n}" for kind, n in counts.most_common()) or "none found"
        lines.append(f"Dialectic: {found}")
    moments = doc.get("key_moments") or []
    if moments:
        lines.append("Key moments:")
        lines += [f"  - [{m.get('index')}] {m.get('why')}" for m in moments]
    points = doc.get("summary_points") or []
    if points:
        lines.append("Summary:")
        lines += [f"  - {p}" for p in points]
    flags = (doc.get("security") or {}).get("flags") or []
    lines.append(
        "Security: "
        + (
            "; ".join(f"{f.get('kind')} in {_messages(f.get('messages'))}" for f in flags)
            if flags
            else "no flags"
        )
    )
    if "confidence_score" in doc:
        explanation = (doc.get("confidence") or {}).get("explanation")
        lines.append(
            f"Confidence: {doc['confidence_score']:.2f}"
            + (f" ({explanation})" if explanation else "")
        )
    observer = doc.get("observer") or {}
    if observer:
        lines.append(f"Observer: {observer.get('status')}")
    return "\n".join(lines) + "\n"
