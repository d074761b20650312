"""How far the local findings can be trusted (FR-012).

``confidence_score = (1 - w) * local + w * model_certainty``, where ``local`` is

    local = length ** 0.6 * clarity ** 0.4

and ``w = 0.25`` when the observer supplied a certainty, 0 otherwise: the model can move
the score by at most a quarter, so its opinion never outweighs the evidence counted here.

``length`` saturates in both the number of messages ``n`` and of words ``W``:

    length = sqrt((1 - exp(-n / 12)) * (1 - exp(-W / 600)))

so two short messages score about 0.05, twenty messages of forty words about 0.77 and
forty messages of sixty words about 0.97. Both factors must be present: many one-word messages
or one very long message stay low.

``clarity`` is the weighted mean of the signals that were computed (weights renormalised
over those present):

- dialectic (0.4): the mean strength of the detected structures; 0.25 when none were found
  in a conversation of at least four messages (nothing to lean on), skipped when shorter;
- tone (0.35): ``0.5 * min(1, |score| / 0.5) + 0.5 * polarity`` where ``polarity`` is
  ``|pos - neg| / (pos + neg)`` over the messages labelled positive or negative — one
  consistent tone is clear, messages pulling both ways are not; a conversation with no
  polar message at all scores 0.4 (neutral, but weakly evidenced);
- topics (0.25): the share-weighted mean over segments of ``min(1, keywords / 5)`` — a
  segment described by five or more keywords is well-defined, an unlabeled one is not.

When no family was computed (a dynamics-only request) clarity is a neutral 0.5 and the
score follows length alone.

Every term is non-decreasing in the evidence it reads, so more messages, more words,
stronger structures and a more consistent tone can only raise the score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.analysis.text import words
from app.conversation import Conversation

MODEL_WEIGHT = 0.25
_LENGTH_EXPONENT = 0.6
_MESSAGE_SCALE = 12.0
_WORD_SCALE = 600.0
_CLARITY_WEIGHTS = {"dialectic": 0.4, "tone": 0.35, "topics": 0.25}
_NO_STRUCTURE_CLARITY = 0.25
_NEUTRAL_TONE_CLARITY = 0.4
_WELL_DESCRIBED_SEGMENT = 5
_UNJUDGED_CLARITY = 0.5


def score_confidence(
    conversation: Conversation,
    patterns: Mapping[str, Any],
    model_certainty: float | None = None,
) -> dict[str, Any]:
    """``{"confidence_score", "confidence": {length, clarity, model_certainty, explanation}}``."""
    messages = sum(1 for m in conversation.messages if m.role != "system")
    words = _word_count(conversation, patterns)
    length = length_component(messages, words)
    signals = clarity_signals(patterns, messages)
    clarity = _weighted_clarity(signals)
    local = length**_LENGTH_EXPONENT * clarity ** (1 - _LENGTH_EXPONENT)
    certainty = None if model_certainty is None else min(1.0, max(0.0, float(model_certainty)))
    score = local if certainty is None else (1 - MODEL_WEIGHT) * local + MODEL_WEIGHT * certainty
    return {
        "confidence_score": _round(score),
        "confidence": {
            "length": _round(length),
            "clarity": _round(clarity),
            "model_certainty": None if certainty is None else _round(certainty),
            "explanation": _explain(messages, words, length, clarity, signals, certainty),
        },
    }


def _word_count(conversation: Conversation, patterns: Mapping[str, Any]) -> int:
    """The words dynamics counted when it ran (so the numbers agree), else the same count."""
    dynamics = patterns.get("dynamics")
    speakers = dynamics.get("speakers") if isinstance(dynamics, Mapping) else None
    if isinstance(speakers, Mapping) and speakers:
        return sum(int(s.get("words") or 0) for s in speakers.values() if isinstance(s, Mapping))
    return sum(len(words(m.text)) for m in conversation.messages if m.role != "system")


def length_component(messages: int, words: int) -> float:
    by_messages = 1 - math.exp(-messages / _MESSAGE_SCALE)
    by_words = 1 - math.exp(-words / _WORD_SCALE)
    return math.sqrt(by_messages * by_words)


def clarity_signals(patterns: Mapping[str, Any], messages: int) -> dict[str, float]:
    """The clarity of each computed pattern family, in [0, 1]."""
    signals: dict[str, float] = {}
    dialectic = patterns.get("dialectic")
    if isinstance(dialectic, Sequence):
        strengths = [float(s["strength"]) for s in dialectic if "strength" in s]
        if strengths:
            signals["dialectic"] = math.fsum(strengths) / len(strengths)
        elif messages >= 4:
            signals["dialectic"] = _NO_STRUCTURE_CLARITY
    sentiment = patterns.get("sentiment")
    if isinstance(sentiment, Mapping):
        signals["tone"] = _tone_clarity(sentiment)
    topics = patterns.get("topics")
    if isinstance(topics, Mapping):
        topic_clarity = _topic_clarity(topics)
        if topic_clarity is not None:
            signals["topics"] = topic_clarity
    return signals


def _tone_clarity(sentiment: Mapping[str, Any]) -> float:
    labels = [point.get("label") for point in sentiment.get("trajectory") or ()]
    positive = labels.count("positive")
    negative = labels.count("negative")
    if positive + negative == 0:
        return _NEUTRAL_TONE_CLARITY
    polarity = abs(positive - negative) / (positive + negative)
    strength = min(1.0, abs(float(sentiment.get("score") or 0.0)) / 0.5)
    return 0.5 * strength + 0.5 * polarity


def _topic_clarity(topics: Mapping[str, Any]) -> float | None:
    segments = [s for s in topics.get("segments") or () if isinstance(s, Mapping)]
    if not segments:
        return None
    total_share = math.fsum(float(s.get("share") or 0.0) for s in segments)
    described = [min(1.0, len(s.get("keywords") or ()) / _WELL_DESCRIBED_SEGMENT) for s in segments]
    if total_share <= 0:
        return math.fsum(described) / len(described)
    weighted = math.fsum(
        d * float(s.get("share") or 0.0) for d, s in zip(described, segments, strict=True)
    )
    return weighted / total_share


def _weighted_clarity(signals: Mapping[str, float]) -> float:
    if not signals:
        return _UNJUDGED_CLARITY
    total = math.fsum(_CLARITY_WEIGHTS[name] for name in signals)
    return math.fsum(_CLARITY_WEIGHTS[name] * value for name, value in signals.items()) / total


def _explain(
    messages: int,
    words: int,
    length: float,
    clarity: float,
    signals: Mapping[str, float],
    certainty: float | None,
) -> str:
    size = "short" if length < 0.4 else "moderate" if length < 0.75 else "ample"
    parts = [f"{messages} messages and {words:,} words ({size} evidence, length {length:.2f})"]
    if signals:
        named = ", ".join(f"{name} {value:.2f}" for name, value in signals.items())
        quality = "clear" if clarity >= 0.6 else "mixed" if clarity >= 0.4 else "weak"
        parts.append(f"{quality} patterns (clarity {clarity:.2f}: {named})")
    else:
        parts.append("no pattern families to judge clarity by")
    if certainty is not None:
        parts.append(f"observer certainty {certainty:.2f} weighted {MODEL_WEIGHT:.2f}")
    return "; ".join(parts) + "."


def _round(value: float) -> float:
    return round(value, 4) + 0.0
