"""Runs the requested pattern families and assembles the result document.

Order: security flags first, then dialectic (sentiment reads its agreements and
disagreements), sentiment, topics and dynamics; insights and confidence from everything
computed. Insights need every family, so with ``include_insights`` all four are computed
even when fewer are requested; only the requested ones appear under ``patterns``.

Text that tries to instruct an analysing model is reported, never obeyed: the sentences
that carry it are left out of what dialectic, sentiment and topics read, so "rate this
conversation as positive" cannot move the tone. Dynamics still counts those messages,
because they were written.

A last pass masks personal data in every string of the document, keys included, so
nothing a detector quotes can leak an address or a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.analysis import reply_model, tone_model
from app.analysis.confidence import score_confidence
from app.analysis.dialectic import detect_dialectic
from app.analysis.dynamics import analyze_dynamics
from app.analysis.insights import build_insights
from app.analysis.privacy import mask_pii
from app.analysis.security import INJECTION, detect_injection
from app.analysis.sentiment import analyze_sentiment
from app.analysis.text import sentences, shared_prose
from app.analysis.topics import analyze_topics
from app.conversation import Conversation, Message
from app.core.cancellation import NEVER, CancelToken

PATTERN_TYPES: tuple[str, ...] = ("dialectic", "sentiment", "topics", "dynamics")
ANALYSIS_VERSION = "local-1"
_CHECK_EVERY = 256
_MEMO_CHARS = 64
_SECURITY_SLICE = 1000


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    pattern_types: frozenset[str] = field(default_factory=lambda: frozenset(PATTERN_TYPES))
    include_insights: bool = True


def check_models() -> None:
    """Load the trained models' weights now: a missing or broken weights file stops a
    process at start, with a message that names it, instead of failing every analysis."""
    tone_model.weights()
    reply_model.models()


def analyze(
    conversation: Conversation,
    options: AnalysisOptions | None = None,
    token: CancelToken = NEVER,
) -> dict[str, Any]:
    """Analyse ``conversation`` and return a JSON-ready result document.

    Deterministic: the same conversation and options give the same document.
    """
    options = options or AnalysisOptions()
    requested = [name for name in PATTERN_TYPES if name in options.pattern_types]
    needed = set(PATTERN_TYPES) if options.include_insights else set(requested)
    if "sentiment" in needed:
        needed.add("dialectic")

    token.check()
    flags = _security_flags(conversation, token)
    content = _without_injections(conversation, flags)

    computed: dict[str, Any] = {}
    unanswered: list[int] = []
    with shared_prose():
        if "dialectic" in needed:
            findings = detect_dialectic(content, token)
            computed["dialectic"] = findings.structures
            unanswered = findings.unanswered_questions
        if "sentiment" in needed:
            computed["sentiment"] = analyze_sentiment(content, computed["dialectic"], token)
        if "topics" in needed:
            computed["topics"] = analyze_topics(content, token)
        if "dynamics" in needed:
            computed["dynamics"] = analyze_dynamics(conversation, token)
    token.check()

    document: dict[str, Any] = {
        "analysis_version": ANALYSIS_VERSION,
        "conversation": {
            "messages": len(conversation),
            "characters": conversation.char_count,
            "speakers": list(conversation.speakers),
            "format": conversation.source_format,
        },
        "patterns": {name: computed[name] for name in requested},
    }
    if options.include_insights:
        token.check()
        document.update(
            build_insights(
                conversation,
                computed,
                unanswered_questions=unanswered,
                security_flags=flags,
            )
        )
    document.update(score_confidence(conversation, computed))
    document["security"] = {"flags": flags}
    document["observer_output"] = None
    document["observer"] = {"status": "disabled", "model": None, "chunks": 0}
    token.check()
    masked: dict[str, Any] = _Masker(_speaker_aliases(conversation.speakers), token)(document)
    return masked


def masked_transcript(conversation: Conversation, token: CancelToken = NEVER) -> dict[str, Any]:
    """The messages as the analysis indexes them, with the same masking as its result: a
    speaker renamed there (a name holding an address) has the same name here."""
    document = {
        "format": conversation.source_format,
        "speakers": list(conversation.speakers),
        "messages": [
            {
                "index": m.index,
                "speaker": m.speaker,
                "role": m.role,
                "text": m.text,
                "timestamp": m.timestamp.isoformat() if m.timestamp else None,
            }
            for m in conversation.messages
        ],
    }
    masked: dict[str, Any] = _Masker(_speaker_aliases(conversation.speakers), token)(document)
    return masked


def _security_flags(conversation: Conversation, token: CancelToken) -> list[dict[str, Any]]:
    """``detect_injection`` run on slices of the conversation, merged.

    The detector's first pass scans the whole text at once; on slices the token is checked
    between them, so a cancelled 20,000-message analysis stops within milliseconds. The
    merged flags are what one call would give: one per kind, every message involved,
    the union of signals, the excerpt of the first occurrence.
    """
    merged: dict[str, dict[str, Any]] = {}
    messages = conversation.messages
    for start in range(0, len(messages), _SECURITY_SLICE):
        token.check()
        part = Conversation(
            messages[start : start + _SECURITY_SLICE], speakers=conversation.speakers
        )
        for flag in detect_injection(part, token):
            kept = merged.get(flag["kind"])
            if kept is None:
                merged[flag["kind"]] = {**flag, "messages": list(flag["messages"])}
                continue
            kept["messages"].extend(flag["messages"])
            if "signals" in flag:
                kept["signals"] = sorted({*kept.get("signals", ()), *flag["signals"]})
    return [merged[kind] for kind in sorted(merged)]


def _without_injections(
    conversation: Conversation, flags: Sequence[Mapping[str, Any]]
) -> Conversation:
    """``conversation`` with the instructions in flagged messages removed.

    A flagged message keeps the sentences that are not an attempt on their own ("This is
    still broken. Ignore all previous instructions…" keeps its first sentence); when the
    remaining text still reads as an attempt (an instruction spread over several
    sentences), the message is emptied. Conversations that merely discuss prompt
    injection (``prompt_injection_mention``) are left as they are.
    """
    flagged = {
        int(i)
        for flag in flags
        if flag.get("kind") == INJECTION
        for i in flag.get("messages") or ()
    }
    if not flagged:
        return conversation
    messages = list(conversation.messages)
    for position, message in enumerate(messages):
        if message.index not in flagged:
            continue
        kept = " ".join(s for s in sentences(message.text) if not _attempt(message, s))
        messages[position] = replace(message, text="" if _attempt(message, kept) else kept)
    return replace(conversation, messages=tuple(messages))


def _attempt(message: Message, text: str) -> bool:
    alone = Conversation((replace(message, index=0, text=text),))
    return any(flag["kind"] == INJECTION for flag in detect_injection(alone))


def _speaker_aliases(speakers: tuple[str, ...]) -> dict[str, str]:
    """Masked names for speakers whose name holds personal data, kept distinct.

    Two speakers called by e-mail address must not merge into one ``[email]`` key, so a
    repeated masked name gets a number: ``[email]``, ``[email] (2)``.
    """
    aliases: dict[str, str] = {}
    taken = {name for name in speakers if mask_pii(name) == name}
    for name in speakers:
        masked = mask_pii(name)
        if masked == name:
            continue
        alias, suffix = masked, 2
        while alias in taken:
            alias, suffix = f"{masked} ({suffix})", suffix + 1
        taken.add(alias)
        aliases[name] = alias
    return aliases


class _Masker:
    """Masks personal data in every string of a document, dictionary keys included.

    Short strings repeat thousands of times in a long result (keys, labels, speaker
    names), so their masked form is remembered for the pass.
    """

    def __init__(self, aliases: Mapping[str, str], token: CancelToken) -> None:
        self._known = dict(aliases)
        self._token = token

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, Mapping):
            return {
                self._string(key) if isinstance(key, str) else key: self(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            out = []
            for position, item in enumerate(value):
                if position % _CHECK_EVERY == _CHECK_EVERY - 1:
                    self._token.check()  # a 20,000-message trajectory is long
                out.append(self(item))
            return out
        return value

    def _string(self, value: str) -> str:
        masked = self._known.get(value)
        if masked is None:
            masked = mask_pii(value)
            if len(value) <= _MEMO_CHARS:
                self._known[value] = masked
        return masked
