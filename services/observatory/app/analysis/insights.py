"""Themes, key moments and summary points, built only from the computed findings.

Nothing here reads the transcript for new evidence except to name a speaker or quote a
short masked excerpt of a message a finding points at, so every sentence is traceable to
a number in the result.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.analysis.security import INJECTION
from app.analysis.text import excerpt
from app.analysis.text import words as text_words
from app.conversation import Conversation

MAX_THEMES = 8
MAX_KEY_MOMENTS = 10
MAX_SUMMARY_POINTS = 7
_THEME_KEYWORDS = 6
_THEME_MESSAGES = 20
_QUOTE_CHARS = 70
_TONE_NEUTRAL_BAND = 0.05
_NOTABLE_LATENCY_SECONDS = 60.0
_DOMINANT_SHARE = 0.6
# Below these a conversation is too short for shares of its words to mean anything.
_MIN_WORDS_FOR_SHARES = 60
_MIN_MESSAGES_FOR_SHARES = 4
_NAMED_SPEAKERS = 6
_TONE_ORDER = {"negative": -1, "mixed": 0, "neutral": 0, "positive": 1}


@dataclass(frozen=True, slots=True)
class _Moment:
    index: int
    kind: str
    why: str
    priority: float


def build_insights(
    conversation: Conversation,
    patterns: Mapping[str, Any],
    *,
    unanswered_questions: Sequence[int] = (),
    security_flags: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``{"themes", "key_moments", "summary_points"}`` for the findings in ``patterns``."""
    topics = _mapping(patterns.get("topics"))
    sentiment = _mapping(patterns.get("sentiment"))
    dynamics = _mapping(patterns.get("dynamics"))
    dialectic = [s for s in patterns.get("dialectic") or () if isinstance(s, Mapping)]
    return {
        "themes": build_themes(topics),
        "key_moments": build_key_moments(
            conversation, dialectic, sentiment, topics, security_flags
        ),
        "summary_points": build_summary_points(
            conversation,
            dialectic,
            sentiment,
            topics,
            dynamics,
            unanswered_questions,
            security_flags,
        ),
    }


# --- themes --------------------------------------------------------------------------------


def build_themes(topics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Topic segments that share keywords merged into themes, heaviest first.

    Two segments join when they share at least one keyword (two when both carry more than
    three), so a subject the conversation returns to becomes one theme. ``weight`` is the
    merged share of words; ``messages`` holds each span's first message and the messages
    where the theme's keyphrases occur (at most 20); ``spans`` lists the segments.
    """
    segments = [s for s in topics.get("segments") or () if isinstance(s, Mapping)]
    if not segments:
        return []
    keywords = [[str(k) for k in s.get("keywords") or ()] for s in segments]
    parent = list(range(len(segments)))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    # Keywords may be phrases ("statement timeout"); segments are compared word by word so
    # "migration" and "database migration" count as shared.
    vocabularies = [{w for phrase in words for w in phrase.lower().split()} for words in keywords]
    owners: dict[str, list[int]] = {}
    for position, vocabulary in enumerate(vocabularies):
        for word in sorted(vocabulary):
            owners.setdefault(word, []).append(position)
    shared: dict[tuple[int, int], int] = {}
    common = max(3, len(segments) // 2)
    for members in owners.values():
        if len(members) > common:
            continue  # a word in most segments ("code", "data") would link everything
        for a_position, a in enumerate(members):
            for b in members[a_position + 1 :]:
                shared[(a, b)] = shared.get((a, b), 0) + 1
    for (a, b), count in sorted(shared.items()):
        needed = 2 if min(len(vocabularies[a]), len(vocabularies[b])) > 3 else 1
        if count >= needed:
            parent[max(root(a), root(b))] = min(root(a), root(b))

    groups: dict[int, list[int]] = {}
    for position in range(len(segments)):
        groups.setdefault(root(position), []).append(position)
    phrases = [p for p in topics.get("keyphrases") or () if isinstance(p, Mapping)]
    themes = [_theme(segments, keywords, members, phrases) for members in groups.values()]
    themes.sort(key=lambda t: (-t["weight"], t["spans"][0][0]))
    return themes[:MAX_THEMES]


def _theme(
    segments: Sequence[Mapping[str, Any]],
    keywords: Sequence[Sequence[str]],
    members: Sequence[int],
    phrases: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    weight = math.fsum(float(segments[m].get("share") or 0.0) for m in members)
    scores: dict[str, float] = {}
    for m in members:
        share = float(segments[m].get("share") or 0.0)
        for rank, word in enumerate(keywords[m]):
            # Higher-ranked keywords of heavier segments lead; insertion order breaks ties.
            scores[word] = scores.get(word, 0.0) + share + 1.0 / (rank + 2) / 100
    ranked = sorted(scores, key=lambda w: -scores[w])[:_THEME_KEYWORDS]
    heaviest = max(members, key=lambda m: (float(segments[m].get("share") or 0.0), -m))
    vocabulary = set(ranked)
    messages = {int(segments[m].get("start") or 0) for m in members}
    for phrase in phrases:
        if vocabulary & set(str(phrase.get("phrase") or "").lower().split()):
            messages.update(int(i) for i in phrase.get("messages") or ())
    return {
        "label": str(segments[heaviest].get("label") or ", ".join(ranked[:2])),
        "keywords": ranked,
        "messages": sorted(messages)[:_THEME_MESSAGES],
        "weight": _round(weight),
        "spans": [
            [int(segments[m].get("start") or 0), int(segments[m].get("end") or 0)] for m in members
        ],
    }


# --- key moments ---------------------------------------------------------------------------


def build_key_moments(
    conversation: Conversation,
    dialectic: Sequence[Mapping[str, Any]],
    sentiment: Mapping[str, Any],
    topics: Mapping[str, Any],
    security_flags: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """At most ten moments, one per message, the most telling kept, ordered by index."""
    candidates: list[_Moment] = []
    candidates.extend(_injection_moment(conversation, security_flags))
    candidates.extend(_dialectic_moments(conversation, dialectic))
    candidates.extend(_tone_moments(conversation, sentiment))
    candidates.extend(_topic_moments(conversation, topics))
    best: dict[int, _Moment] = {}
    for moment in candidates:
        kept = best.get(moment.index)
        if kept is None or moment.priority > kept.priority:
            best[moment.index] = moment
    chosen = sorted(best.values(), key=lambda m: (-m.priority, m.index))[:MAX_KEY_MOMENTS]
    chosen.sort(key=lambda m: m.index)
    return [{"index": m.index, "kind": m.kind, "why": m.why} for m in chosen]


def _injection_moment(
    conversation: Conversation, flags: Sequence[Mapping[str, Any]]
) -> list[_Moment]:
    indices = _attempt_indices(flags)
    if not indices:
        return []
    first = min(indices)
    return [
        _Moment(
            first,
            "prompt_injection",
            f"{_speaker(conversation, first)} wrote text addressed to an analysing model "
            f"({_quote(conversation, first)}); it was flagged and not followed.",
            100.0,
        )
    ]


def _dialectic_moments(
    conversation: Conversation, dialectic: Sequence[Mapping[str, Any]]
) -> list[_Moment]:
    moments: list[_Moment] = []
    seen_disagreement = False
    for structure in dialectic:
        kind = structure.get("type")
        roles = _mapping(structure.get("roles"))
        strength = float(structure.get("strength") or 0.0)
        if kind == "correction":
            fixed, accepted = int(roles.get("correction", 0)), int(roles.get("acceptance", 0))
            if "claim" in roles:
                claim = int(roles["claim"])
                what = f"{_speaker(conversation, claim)}'s message {claim}"
            else:
                what = "earlier work"  # the corrected claim came before the transcript
            moments.append(
                _Moment(
                    fixed,
                    "correction",
                    f"{_speaker(conversation, fixed)} corrected {what} "
                    f"({_quote(conversation, fixed)}), and {_speaker(conversation, accepted)} "
                    f"accepted it at message {accepted}.",
                    90.0 + strength,
                )
            )
        elif kind == "thesis_antithesis_synthesis":
            thesis, antithesis, synthesis = (
                int(roles.get("thesis", 0)),
                int(roles.get("antithesis", 0)),
                int(roles.get("synthesis", 0)),
            )
            reconciler = _speaker(conversation, synthesis)
            owner = _speaker(conversation, thesis)
            position = "their own position" if owner == reconciler else f"{owner}'s position"
            moments.append(
                _Moment(
                    synthesis,
                    "synthesis",
                    f"{reconciler} reconciled {position} (message {thesis}) with "
                    f"{_speaker(conversation, antithesis)}'s objection (message {antithesis}): "
                    f"{_quote(conversation, synthesis)}.",
                    85.0 + strength,
                )
            )
        elif kind == "socratic_sequence":
            questions = [int(i) for i in structure.get("questions") or structure["messages"]]
            moments.append(
                _Moment(
                    questions[0],
                    "socratic_sequence",
                    f"{_speaker(conversation, questions[0])} began a chain of "
                    f"{len(questions)} probing questions (messages {questions[0]}–"
                    f"{questions[-1]}), each building on the previous answer.",
                    60.0 + strength,
                )
            )
        elif kind == "disagreement" and not seen_disagreement and strength >= 0.7:
            seen_disagreement = True
            reply, target = int(roles.get("response", 0)), int(roles.get("target", 0))
            moments.append(
                _Moment(
                    reply,
                    "disagreement",
                    f"{_speaker(conversation, reply)} first disagreed with "
                    f"{_speaker(conversation, target)} (message {target}): "
                    f"{_quote(conversation, reply)}.",
                    55.0 + strength,
                )
            )
    return moments


def _tone_moments(conversation: Conversation, sentiment: Mapping[str, Any]) -> list[_Moment]:
    shifts = [s for s in sentiment.get("shifts") or () if isinstance(s, Mapping)]
    ranked = sorted(shifts, key=lambda s: (-abs(float(s.get("magnitude") or 0.0)), s["index"]))
    moments = []
    for shift in ranked[:3]:
        index = int(shift["index"])
        before, after = str(shift.get("from")), str(shift.get("to"))
        signed = _signed_shift(float(shift.get("magnitude") or 0.0), before, after)
        moments.append(
            _Moment(
                index,
                "tone_shift",
                f"Tone turned from {before} to {after} ({signed:+.2f}) at "
                f"{_speaker(conversation, index)}'s message: {_quote(conversation, index)}.",
                70.0 + 10.0 * min(1.0, abs(signed)),
            )
        )
    return moments


def _signed_shift(magnitude: float, before: str, after: str) -> float:
    """Shifts may report an unsigned magnitude; the labels give the direction."""
    if magnitude < 0:
        return magnitude
    direction = _TONE_ORDER.get(after, 0) - _TONE_ORDER.get(before, 0)
    return -magnitude if direction < 0 else magnitude


def _topic_moments(conversation: Conversation, topics: Mapping[str, Any]) -> list[_Moment]:
    segments = [s for s in topics.get("segments") or () if isinstance(s, Mapping)]
    moments = []
    for previous, current in itertools.pairwise(segments):
        index = int(current.get("start") or 0)
        if not 0 <= index < len(conversation):
            continue
        share = float(current.get("share") or 0.0)
        moments.append(
            _Moment(
                index,
                "topic_transition",
                f"Topic moved from “{previous.get('label')}” to “{current.get('label')}” "
                f"({share:.0%} of the words follow) when {_speaker(conversation, index)} "
                f"wrote: {_quote(conversation, index)}.",
                40.0 + 10.0 * share,
            )
        )
    moments.sort(key=lambda m: (-m.priority, m.index))
    return moments[:3]


# --- summary points ------------------------------------------------------------------------


def build_summary_points(
    conversation: Conversation,
    dialectic: Sequence[Mapping[str, Any]],
    sentiment: Mapping[str, Any],
    topics: Mapping[str, Any],
    dynamics: Mapping[str, Any],
    unanswered_questions: Sequence[int] = (),
    security_flags: Sequence[Mapping[str, Any]] = (),
) -> list[str]:
    """Three to seven plain sentences, each carrying this conversation's names and numbers."""
    points = [
        _participation_point(conversation, dynamics),
        _topic_point(topics),
        _tone_point(sentiment),
        _dialectic_point(dialectic),
        _unanswered_point(unanswered_questions),
        _latency_point(dynamics),
        _security_point(conversation, security_flags),
    ]
    found = [p for p in points if p]
    if len(found) < 3:
        found.extend(p for p in (_engagement_point(sentiment), _rhythm_point(dynamics)) if p)
    return found[:MAX_SUMMARY_POINTS]


def _participation_point(conversation: Conversation, dynamics: Mapping[str, Any]) -> str | None:
    words = _words_by_speaker(conversation, dynamics)
    if not words:
        return None
    total_words = sum(w for w, _ in words.values())
    total_messages = sum(m for _, m in words.values())
    ranked = sorted(words.items(), key=lambda item: -item[1][0])
    if len(ranked) == 1:
        name, (count, messages) = ranked[0]
        return f"{name} wrote all {_count(messages, 'message')} ({_count(count, 'word')})."
    share = [
        (name, w / total_words if total_words else m / total_messages) for name, (w, m) in ranked
    ]
    top, top_share = share[0]
    if total_words < _MIN_WORDS_FOR_SHARES or total_messages < _MIN_MESSAGES_FOR_SHARES:
        # Shares of a handful of words say nothing about who carried the conversation.
        names = _listing([name for name, _ in ranked])
        return (
            f"{names} exchanged {_count(total_messages, 'message')} "
            f"({_count(total_words, 'word')})."
        )
    if len(ranked) == 2:
        other, other_share = share[1]
        if top_share >= _DOMINANT_SHARE:
            return (
                f"{top} dominated, writing {top_share:.0%} of the {total_words:,} words across "
                f"{words[top][1]} of the {total_messages} messages; {other} wrote "
                f"{other_share:.0%}."
            )
        return (
            f"{top} and {other} shared the conversation fairly evenly: {top_share:.0%} and "
            f"{other_share:.0%} of {total_words:,} words over {total_messages} messages."
        )
    # Everyone is named up to _NAMED_SPEAKERS; "and 1 other speaker" never hides a name.
    limit = len(share) if len(share) <= _NAMED_SPEAKERS + 1 else _NAMED_SPEAKERS
    named = share[1:limit]
    rest = len(share) - 1 - len(named)
    items = [f"{name} ({s:.0%})" for name, s in named]
    if rest > 0:
        items.append(_count(rest, "other speaker"))
    verb = "dominated" if top_share >= _DOMINANT_SHARE else "led"
    return (
        f"{top} {verb} with {top_share:.0%} of the {total_words:,} words, followed by "
        f"{_listing(items)}, over {total_messages} messages."
    )


def _listing(items: Sequence[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def _words_by_speaker(
    conversation: Conversation, dynamics: Mapping[str, Any]
) -> dict[str, tuple[int, int]]:
    speakers = _mapping(dynamics.get("speakers"))
    if speakers:
        return {
            str(name): (int(stats.get("words") or 0), int(stats.get("messages") or 0))
            for name, stats in speakers.items()
            if isinstance(stats, Mapping)
        }
    counts: dict[str, tuple[int, int]] = {}
    for message in conversation.messages:
        if message.role == "system":
            continue
        words, messages = counts.get(message.speaker, (0, 0))
        counts[message.speaker] = (words + len(text_words(message.text)), messages + 1)
    return counts


def _topic_point(topics: Mapping[str, Any]) -> str | None:
    segments = [s for s in topics.get("segments") or () if isinstance(s, Mapping)]
    labels: list[str] = []
    for segment in segments:
        label = str(segment.get("label") or "").strip()
        if label and (not labels or labels[-1] != label):
            labels.append(label)
    if not labels:
        return None
    if len(labels) == 1:
        label = labels[0].lower()
        extra = [str(k) for k in segments[0].get("keywords") or () if str(k).lower() not in label]
        detail = f" (also: {', '.join(extra[:3])})" if extra else ""
        return f"The conversation stayed on one topic, “{labels[0]}”{detail}."
    shown = [f"“{label}”" for label in labels[:4]]
    more = len(labels) - len(shown)
    listing = ", ".join(shown[:-1]) + f", then {shown[-1]}"
    if more:
        listing += f", and {_count(more, 'more topic')}"
    if len(shown) == 2:
        listing = f"{shown[0]}, then {shown[1]}"
    return f"It moved through {len(labels)} topics: {listing}."


def _tone_point(sentiment: Mapping[str, Any]) -> str | None:
    trajectory = [t for t in sentiment.get("trajectory") or () if isinstance(t, Mapping)]
    if not sentiment:
        return None
    overall = str(sentiment.get("overall_tone") or "neutral")
    score = float(sentiment.get("score") or 0.0)
    collaboration = _mapping(sentiment.get("collaboration")).get("label")
    tail = f", and the exchange read as {collaboration}" if collaboration else ""
    if len(trajectory) < 3:
        sides = _both_sides(trajectory, overall)
        return f"The overall tone was {overall} ({score:+.2f}){sides}{tail}."
    third = max(1, len(trajectory) // 3)
    start = _mean(float(t.get("score") or 0.0) for t in trajectory[:third])
    end = _mean(float(t.get("score") or 0.0) for t in trajectory[-third:])
    start_label, end_label = _tone_label(start), _tone_label(end)
    verdict = f"overall {overall} ({score:+.2f}){_both_sides(trajectory, overall)}{tail}"
    if start_label == end_label:
        return (
            f"The tone stayed {start_label} from start ({start:+.2f}) to end ({end:+.2f}); "
            f"{verdict}."
        )
    return (
        f"The tone moved from {start_label} in the first third ({start:+.2f}) to {end_label} "
        f"in the last ({end:+.2f}); {verdict}."
    )


def _both_sides(trajectory: Sequence[Mapping[str, Any]], overall: str) -> str:
    """For a mixed conversation, where it was most positive and most negative: the thirds
    can both lean one way ("stayed positive") while one stretch turned the other."""
    if overall != "mixed":
        return ""
    scored = [
        (float(t.get("score") or 0.0), int(t.get("index", position)))
        for position, t in enumerate(trajectory)
    ]
    high = max(scored, key=lambda item: (item[0], -item[1]))  # the first of equals
    low = min(scored)
    if _tone_label(high[0]) != "positive" or _tone_label(low[0]) != "negative":
        return ""
    return (
        f", most positive at message {high[1]} ({high[0]:+.2f}) and most negative at "
        f"message {low[1]} ({low[0]:+.2f})"
    )


def _dialectic_point(dialectic: Sequence[Mapping[str, Any]]) -> str | None:
    if not dialectic:
        return None
    counts: dict[str, int] = {}
    for structure in dialectic:
        kind = str(structure.get("type"))
        counts[kind] = counts.get(kind, 0) + 1
    parts = [
        f"{counts[kind]:,} {singular if counts[kind] == 1 else plural}"
        for kind, singular, plural in _STRUCTURE_NAMES
        if counts.get(kind)
    ]
    if not parts:
        return None
    listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" and {parts[-1]}"
    leaders = sorted(
        {str(s.get("leader")) for s in dialectic if s.get("type") == "socratic_sequence"}
    )
    led = f" (Socratic questioning led by {', '.join(leaders)})" if leaders else ""
    return f"Dialectic structure found: {listing}{led}."


_STRUCTURE_NAMES = (
    ("question_answer", "question–answer pair", "question–answer pairs"),
    ("socratic_sequence", "Socratic sequence", "Socratic sequences"),
    (
        "thesis_antithesis_synthesis",
        "thesis–antithesis–synthesis",
        "thesis–antithesis–synthesis arcs",
    ),
    ("disagreement", "disagreement", "disagreements"),
    ("agreement", "agreement", "agreements"),
    ("correction", "accepted correction", "accepted corrections"),
)


def _unanswered_point(unanswered: Sequence[int]) -> str | None:
    if not unanswered:
        return None
    shown = ", ".join(str(i) for i in unanswered[:5])
    more = f" and {len(unanswered) - 5} more" if len(unanswered) > 5 else ""
    if len(unanswered) == 1:
        return f"One question went unanswered (message {shown})."
    return f"{len(unanswered)} questions went unanswered (messages {shown}{more})."


def _latency_point(dynamics: Mapping[str, Any]) -> str | None:
    latency = _mapping(dynamics.get("response_latency"))
    timed = [
        (str(name), float(stats.get("median") or 0.0), float(stats.get("p90") or 0.0))
        for name, stats in latency.items()
        if isinstance(stats, Mapping)
    ]
    if not timed:
        return None
    slowest = max(timed, key=lambda t: (t[1], t[0]))
    if slowest[1] < _NOTABLE_LATENCY_SECONDS:
        return None
    fastest = min(timed, key=lambda t: (t[1], t[0]))
    text = (
        f"{slowest[0]} took a median of {_duration(slowest[1])} to reply "
        f"(90th percentile {_duration(slowest[2])})"
    )
    if fastest[0] != slowest[0]:
        text += f", against {_duration(fastest[1])} for {fastest[0]}"
    return text + "."


def _security_point(conversation: Conversation, flags: Sequence[Mapping[str, Any]]) -> str | None:
    indices = _attempt_indices(flags)
    if not indices:
        return None
    who = ", ".join(sorted({_speaker(conversation, i) for i in indices}))
    where = ", ".join(str(i) for i in indices[:5])
    if len(indices) > 5:
        where += f" and {len(indices) - 5} more"
    if len(indices) == 1:
        return (
            f"Message {where} (from {who}) tried to instruct an analysing model; it was "
            f"flagged and its instructions were left out of the analysis."
        )
    return (
        f"Messages {where} (from {who}) tried to instruct an analysing model; they were "
        f"flagged and their instructions were left out of the analysis."
    )


def _engagement_point(sentiment: Mapping[str, Any]) -> str | None:
    level = sentiment.get("engagement_level")
    if not level:
        return None
    signals = _mapping(sentiment.get("engagement_signals"))
    shown = ", ".join(
        f"{name.replace('_', ' ')} {value:g}" if isinstance(value, int | float) else name
        for name, value in list(signals.items())[:3]
    )
    return f"Engagement was {level}" + (f" ({shown})." if shown else ".")


def _rhythm_point(dynamics: Mapping[str, Any]) -> str | None:
    run = _mapping(_mapping(dynamics.get("turn_taking")).get("longest_run"))
    if not run or int(run.get("length") or 0) < 2:
        return None
    return (
        f"The longest run of one speaker was {run.get('speaker')} with "
        f"{run.get('length')} messages in a row from message {run.get('start')}."
    )


# --- small pieces --------------------------------------------------------------------------


def _attempt_indices(flags: Sequence[Mapping[str, Any]]) -> list[int]:
    """Messages flagged as attempts to instruct the analyser; mere discussions of prompt
    injection (``prompt_injection_mention``) are not findings about the conversation."""
    return sorted(
        {
            int(i)
            for flag in flags
            if flag.get("kind") == INJECTION
            for i in flag.get("messages") or ()
        }
    )


def _speaker(conversation: Conversation, index: int) -> str:
    if 0 <= index < len(conversation):
        return conversation.messages[index].speaker
    return "someone"


def _quote(conversation: Conversation, index: int) -> str:
    if not 0 <= index < len(conversation):
        return "“”"
    return f"“{excerpt(conversation.messages[index].text, _QUOTE_CHARS)}”"


def _tone_label(score: float) -> str:
    if score > _TONE_NEUTRAL_BAND:
        return "positive"
    if score < -_TONE_NEUTRAL_BAND:
        return "negative"
    return "neutral"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _mean(values: Any) -> float:
    collected = list(values)
    return math.fsum(collected) / len(collected) if collected else 0.0


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _round(value: float) -> float:
    return round(value, 4) + 0.0
