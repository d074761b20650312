"""Scores the local analysis against the hand-labelled conversations in tests/fixtures/eval.

    uv run python benchmarks/evaluate.py                   # one row per metric
    uv run python benchmarks/evaluate.py --json            # machine-readable scores
    uv run python benchmarks/evaluate.py --verbose         # plus what each conversation missed
    uv run python benchmarks/evaluate.py --fixtures DIR    # score another folder of fixtures

``--fixtures`` takes any folder of ``*.json`` files in the same format; the default stays
tests/fixtures/eval.

The quality set (tests/fixtures/quality, richer labels, README there) is scored by part::

    uv run python benchmarks/evaluate.py --fixtures tests/fixtures/quality          # --parts
    uv run python benchmarks/evaluate.py --fixtures tests/fixtures/quality --json
    uv run python benchmarks/evaluate.py --fixtures tests/fixtures/quality/dev --verbose

``--parts`` (the default for that folder) prints one row per metric, a column per part
(blind first, then dev) with a 95 % bootstrap interval over conversations, and the target
for the blind part. The blind part is only ever reported in aggregate: ``--verbose`` shows
per-conversation misses for dev and refuses blind unless ``--i-am-moving-these-to-dev`` is
given (those conversations then belong in dev). The matching rules are listed with the
quality metrics below.

Every fixture is parsed with ``parse_conversation`` and analysed with ``analyze``; the
result is compared with the labels (format in ``tests/fixtures/eval/__init__.py``).
F1 scores are micro-averaged over the whole set. Boundaries and shifts count as found
within ±2 messages. A metric whose result field does not exist prints "n/a".

Questions are scored from the dialectic structures (question_answer roles and any
``questions`` list); ``questions_asked`` in dynamics is a secondary check only, since it
counts question sentences while the labels mark messages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis import analyze
from app.conversation import Conversation
from app.conversation.parsers import parse_conversation

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "eval"
TOLERANCE = 2
STRUCTURE_TYPES = (
    "socratic_sequence",
    "thesis_antithesis_synthesis",
    "correction",
    "disagreement",
    "agreement",
)


@dataclass(frozen=True)
class Metric:
    title: str
    higher_is_better: bool
    source: str  # the result field it reads

    @property
    def unavailable(self) -> str:
        return f"no result has {self.source}"


METRICS: dict[str, Metric] = {
    "question_f1": Metric("question F1", True, "patterns.dialectic"),
    "question_count_error": Metric(
        "questions_asked diff / conv.", False, "patterns.dynamics.speakers[].questions_asked"
    ),
    "qa_pair_f1": Metric("Q-A pair F1", True, "patterns.dialectic"),
    "structure_accuracy": Metric("structure accuracy", True, "patterns.dialectic"),
    "tone_accuracy": Metric("tone accuracy", True, "patterns.sentiment.overall_tone"),
    "shift_f1": Metric("shift F1 (±2)", True, "patterns.sentiment.shifts"),
    "collaboration_accuracy": Metric(
        "collaboration accuracy", True, "patterns.sentiment.collaboration"
    ),
    "topic_boundary_f1": Metric("topic boundary F1 (±2)", True, "patterns.topics"),
    "topic_pk": Metric("topic Pk", False, "patterns.topics"),
    "keyword_hit_rate": Metric("keyword hit rate", True, "patterns.topics or themes"),
    "dominant_speaker_accuracy": Metric(
        "dominant speaker accuracy", True, "patterns.dynamics.dominance"
    ),
    "latency_error_seconds": Metric(
        "mean latency abs. error (s)", False, "patterns.dynamics.response_latency"
    ),
    "injection_recall": Metric("injection recall", True, "security.flags"),
    "injection_precision": Metric("injection precision", True, "security.flags"),
    "pii_leaks": Metric("personal-data leaks", False, "any content (every analysis failed)"),
}


@dataclass(frozen=True)
class Fixture:
    name: str
    description: str
    format: str
    labels: dict[str, Any]
    messages: list[dict[str, Any]] | None = None
    conversation_text: str | None = None

    @property
    def input_text(self) -> str:
        if self.conversation_text is not None:
            return self.conversation_text
        return "\n".join(str(m.get("text", "")) for m in self.messages or [])


def load_fixtures(directory: Path = FIXTURE_DIR) -> list[Fixture]:
    fixtures = []
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        fixtures.append(
            Fixture(
                name=raw["name"],
                description=raw["description"],
                format=raw["format"],
                labels=raw["labels"],
                messages=raw.get("messages"),
                conversation_text=raw.get("conversation_text"),
            )
        )
    return fixtures


def parse_fixture(fixture: Fixture) -> Conversation:
    if fixture.format == "text":
        return parse_conversation(conversation_text=fixture.conversation_text)
    return parse_conversation(messages=fixture.messages)


# --- matching -------------------------------------------------------------------------


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, tp: int, fp: int, fn: int) -> None:
        self.tp += tp
        self.fp += fp
        self.fn += fn

    @property
    def precision(self) -> float:
        if self.tp + self.fp == 0:
            return 1.0 if self.fn == 0 else 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        return 1.0 if self.tp + self.fn == 0 else self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        if self.tp + self.fp + self.fn == 0:
            return 1.0
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn)


def match_within(
    truth: Iterable[int], predicted: Iterable[int], tolerance: int
) -> tuple[list[int], list[int], list[int]]:
    """One-to-one matching of positions within ``tolerance``: (matched, missed, spurious).

    Each true position takes the nearest unused prediction (the earlier one on a tie).
    """
    free = sorted(set(predicted))
    matched, missed = [], []
    for t in sorted(set(truth)):
        near = [p for p in free if abs(p - t) <= tolerance]
        if near:
            best = min(near, key=lambda p: (abs(p - t), p))
            free.remove(best)
            matched.append(t)
        else:
            missed.append(t)
    return matched, missed, free


def pk(truth: Sequence[int], predicted: Sequence[int], n: int) -> float:
    """Beeferman's Pk: how often a window of k messages is judged differently (same segment
    or not) by the truth and the prediction; k is half the mean true segment length."""
    k = max(1, math.floor(n / (len(truth) + 1) / 2 + 0.5))
    if n <= k:
        return 0.0

    def segment_ids(boundaries: Sequence[int]) -> list[int]:
        starts = set(boundaries)
        ids, current = [], 0
        for i in range(n):
            if i in starts and i > 0:
                current += 1
            ids.append(current)
        return ids

    ref, hyp = segment_ids(truth), segment_ids(predicted)
    errors = sum((ref[i] == ref[i + k]) != (hyp[i] == hyp[i + k]) for i in range(n - k))
    return errors / (n - k)


_TOKEN = re.compile(r"[^\W_]+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words_match(expected: str, found: str) -> bool:
    """Stem-tolerant word equality: same stem, one a prefix (of 4+ characters) of the
    other, or a shared 5-character prefix."""
    if expected == found or _stem(expected) == _stem(found):
        return True
    short, long_ = sorted((expected, found), key=len)
    if len(short) >= 4 and long_.startswith(short):
        return True
    return len(short) >= 5 and expected[:5] == found[:5]


def keyword_found(keyword: str, candidates: Sequence[str]) -> bool:
    """A labelled keyword is found when one candidate phrase holds all of its words."""
    wanted = _tokens(keyword)
    if not wanted:
        return False
    for candidate in candidates:
        words = _tokens(candidate)
        if all(any(words_match(w, f) for f in words) for w in wanted):
            return True
    return False


def leaked(pii: str, document: str) -> bool:
    """True when the personal-data string, or its digits-and-letters-only form for
    numbers written with spaces or dashes, appears in the serialised result."""
    if pii in document:
        return True
    compact = re.sub(r"[\s\-().]", "", pii)
    if compact != pii and sum(c.isdigit() for c in compact) >= 7:
        return compact in re.sub(r"[\s\-().]", "", document)
    return False


# --- reading the result ---------------------------------------------------------------


def _patterns(result: Mapping[str, Any], family: str) -> Any:
    patterns = result.get("patterns")
    return patterns.get(family) if isinstance(patterns, Mapping) else None


def _ints(values: Any) -> list[int]:
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def predicted_questions(result: Mapping[str, Any]) -> set[int] | None:
    dialectic = _patterns(result, "dialectic")
    if dialectic is None:
        return None
    found: set[int] = set(_ints(result.get("questions")))
    for item in dialectic:
        found.update(_ints(item.get("questions")))
        if item.get("type") == "question_answer":
            roles = item.get("roles") or {}
            question = roles.get("question", (item.get("messages") or [None])[0])
            if isinstance(question, int):
                found.add(question)
    return found


def predicted_pairs(result: Mapping[str, Any]) -> set[tuple[int, int]] | None:
    dialectic = _patterns(result, "dialectic")
    if dialectic is None:
        return None
    pairs: set[tuple[int, int]] = set()
    for item in dialectic:
        if item.get("type") != "question_answer":
            continue
        roles = item.get("roles") or {}
        indices = item.get("messages") or []
        question = roles.get("question", indices[0] if indices else None)
        answer = roles.get("answer", indices[-1] if indices else None)
        if isinstance(question, int) and isinstance(answer, int):
            pairs.add((question, answer))
    return pairs


def predicted_questions_asked(result: Mapping[str, Any]) -> int | None:
    dynamics = _patterns(result, "dynamics")
    speakers = dynamics.get("speakers") if isinstance(dynamics, Mapping) else None
    if not isinstance(speakers, Mapping):
        return None
    return sum(int(s.get("questions_asked", 0)) for s in speakers.values())


def predicted_boundaries(result: Mapping[str, Any]) -> list[int] | None:
    topics = _patterns(result, "topics")
    if not isinstance(topics, Mapping):
        return None
    if "transitions" in topics:
        return sorted(set(_ints(topics["transitions"])))
    segments = topics.get("segments") or []
    return sorted({s["start"] for s in segments[1:] if isinstance(s.get("start"), int)})


def keyword_candidates(result: Mapping[str, Any]) -> list[str] | None:
    topics = _patterns(result, "topics")
    themes = result.get("themes")
    if topics is None and themes is None:
        return None
    found: list[str] = []
    if isinstance(topics, Mapping):
        for segment in topics.get("segments") or []:
            found.extend(str(k) for k in segment.get("keywords") or [])
            found.append(str(segment.get("label") or ""))
        found.extend(str(p.get("phrase") or "") for p in topics.get("keyphrases") or [])
    for theme in themes or []:
        found.extend(str(k) for k in theme.get("keywords") or [])
        found.append(str(theme.get("label") or ""))
    return [c for c in found if c]


def predicted_dominant(result: Mapping[str, Any]) -> str | None:
    dynamics = _patterns(result, "dynamics")
    if not isinstance(dynamics, Mapping):
        return None
    dominance = dynamics.get("dominance")
    if isinstance(dominance, Mapping) and "speaker" in dominance:
        return str(dominance["speaker"])
    speakers = dynamics.get("speakers") or {}
    if not speakers:
        return ""
    return str(max(sorted(speakers), key=lambda name: speakers[name].get("share", 0)))


def predicted_injections(result: Mapping[str, Any]) -> set[int] | None:
    security = result.get("security")
    if not isinstance(security, Mapping) or "flags" not in security:
        return None
    found: set[int] = set()
    for flag in security["flags"] or []:
        if flag.get("kind") == "prompt_injection":
            found.update(_ints(flag.get("messages")))
    return found


# --- the evaluation -------------------------------------------------------------------


@dataclass
class _Scores:
    """Running totals for every metric; a metric stays n/a until its field is seen."""

    seen: set[str] = field(default_factory=set)
    tallies: dict[str, Tally] = field(default_factory=dict)
    hits: dict[str, list[bool]] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)

    def tally(self, metric: str) -> Tally:
        self.seen.add(metric)
        return self.tallies.setdefault(metric, Tally())

    def hit(self, metric: str, ok: bool) -> None:
        self.seen.add(metric)
        self.hits.setdefault(metric, []).append(ok)

    def value(self, metric: str, amount: float) -> None:
        self.seen.add(metric)
        self.values.setdefault(metric, []).append(amount)


@dataclass
class Evaluation:
    scores: dict[str, float | None]
    details: dict[str, dict[str, Any]]
    misses: dict[str, list[str]]
    errors: dict[str, str]
    fixtures: list[str]
    seconds: float


def _allowed(label: Any) -> list[str]:
    return [label] if isinstance(label, str) else list(label)


def _spans(items: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    spans = []
    for item in items:
        indices = _ints(item.get("messages"))
        if indices:
            spans.append((min(indices), max(indices)))
    return spans


def _score_fixture(
    fixture: Fixture,
    conversation: Conversation,
    result: Mapping[str, Any],
    scores: _Scores,
    miss: Callable[[str], None],
) -> None:
    labels = fixture.labels
    n = len(conversation)

    if "questions" in labels:
        truth = set(labels["questions"])
        found = predicted_questions(result)
        if found is not None:
            scores.tally("question_f1").add(
                len(truth & found), len(found - truth), len(truth - found)
            )
            if truth != found:
                miss(f"questions: missed {sorted(truth - found)}, spurious {sorted(found - truth)}")
        asked = predicted_questions_asked(result)
        if asked is not None:
            scores.value("question_count_error", abs(asked - len(truth)))
            if asked != len(truth):
                miss(f"questions_asked: {asked} counted, {len(truth)} labelled")

    if "qa_pairs" in labels:
        truth_pairs = {(q, a) for q, a in labels["qa_pairs"]}
        pairs = predicted_pairs(result)
        if pairs is not None:
            scores.tally("qa_pair_f1").add(
                len(truth_pairs & pairs), len(pairs - truth_pairs), len(truth_pairs - pairs)
            )
            if truth_pairs != pairs:
                miss(
                    f"qa pairs: missed {sorted(truth_pairs - pairs)}, "
                    f"spurious {sorted(pairs - truth_pairs)}"
                )

    dialectic = _patterns(result, "dialectic")
    if "structures" in labels and dialectic is not None:
        for kind, expected in labels["structures"].items():
            spans = _spans([d for d in dialectic if d.get("type") == kind])
            if isinstance(expected, list):
                low, high = expected[0] - TOLERANCE, expected[-1] + TOLERANCE
                ok = any(start <= high and end >= low for start, end in spans)
            else:
                ok = bool(spans) == bool(expected)
            scores.hit("structure_accuracy", ok)
            scores.hit(f"structure:{kind}", ok)
            if not ok:
                miss(f"structure {kind}: expected {expected}, found spans {spans}")

    sentiment = _patterns(result, "sentiment")
    if isinstance(sentiment, Mapping):
        if "tone" in labels and "overall_tone" in sentiment:
            tone = sentiment["overall_tone"]
            ok = tone in _allowed(labels["tone"])
            scores.hit("tone_accuracy", ok)
            if not ok:
                miss(f"tone: expected {labels['tone']}, got {tone}")
        if "shifts" in labels and "shifts" in sentiment:
            found_shifts = _ints([s.get("index") for s in sentiment["shifts"] or []])
            matched, missed, spurious = match_within(labels["shifts"], found_shifts, TOLERANCE)
            scores.tally("shift_f1").add(len(matched), len(spurious), len(missed))
            if missed or spurious:
                miss(f"shifts: missed {missed}, spurious {spurious}")
        collaboration = sentiment.get("collaboration")
        if "collaboration" in labels and isinstance(collaboration, Mapping):
            label = collaboration.get("label")
            ok = label in _allowed(labels["collaboration"])
            scores.hit("collaboration_accuracy", ok)
            if not ok:
                miss(f"collaboration: expected {labels['collaboration']}, got {label}")

    if "topic_boundaries" in labels:
        boundaries = predicted_boundaries(result)
        if boundaries is not None:
            truth_bounds = labels["topic_boundaries"]
            matched, missed, spurious = match_within(truth_bounds, boundaries, TOLERANCE)
            scores.tally("topic_boundary_f1").add(len(matched), len(spurious), len(missed))
            scores.value("topic_pk", pk(truth_bounds, boundaries, n))
            if missed or spurious:
                miss(f"topic boundaries: missed {missed}, spurious {spurious}")

    if "keywords" in labels:
        candidates = keyword_candidates(result)
        if candidates is not None:
            absent = [k for k in labels["keywords"] if not keyword_found(k, candidates)]
            for keyword in labels["keywords"]:
                scores.hit("keyword_hit_rate", keyword not in absent)
            if absent:
                miss(f"keywords: missing {absent} among {sorted(set(candidates))[:20]}")

    if "dominant_speaker" in labels:
        dominant = predicted_dominant(result)
        if dominant is not None:
            ok = dominant == labels["dominant_speaker"]
            scores.hit("dominant_speaker_accuracy", ok)
            if not ok:
                miss(f"dominant speaker: expected {labels['dominant_speaker']}, got {dominant}")

    dynamics = _patterns(result, "dynamics")
    if "mean_latency" in labels and isinstance(dynamics, Mapping):
        latency = dynamics.get("response_latency")
        if isinstance(latency, Mapping):
            for speaker, expected_mean in labels["mean_latency"].items():
                got = (latency.get(speaker) or {}).get("mean")
                error = abs(got - expected_mean) if isinstance(got, int | float) else expected_mean
                scores.value("latency_error_seconds", error)
                if error > 0.01:
                    miss(f"latency {speaker}: expected {expected_mean}, got {got}")

    injections = predicted_injections(result)
    if injections is not None:
        truth_inj = set(labels.get("injection", []))
        tp, fp, fn = (
            len(truth_inj & injections),
            len(injections - truth_inj),
            len(truth_inj - injections),
        )
        scores.tally("injection").add(tp, fp, fn)
        if fp or fn:
            miss(
                f"injection: missed {sorted(truth_inj - injections)}, "
                f"spurious {sorted(injections - truth_inj)}"
            )

    if labels.get("pii"):
        document = json.dumps(result, ensure_ascii=False)
        leaks = [p for p in labels["pii"] if leaked(p, document)]
        scores.value("pii_leaks", len(leaks))
        if leaks:
            miss(f"personal data leaked: {leaks}")


def evaluate(directory: Path = FIXTURE_DIR) -> Evaluation:
    scores = _Scores()
    misses: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    fixtures = load_fixtures(directory)
    elapsed = 0.0
    for fixture in fixtures:
        notes = misses.setdefault(fixture.name, [])
        try:
            conversation = parse_fixture(fixture)
            started = time.perf_counter()
            result = analyze(conversation)
            elapsed += time.perf_counter() - started
        except Exception as exc:  # one broken detector must not hide the other scores
            errors[fixture.name] = f"{type(exc).__name__}: {exc}"
            continue
        _score_fixture(fixture, conversation, result, scores, notes.append)
    return _summarise(scores, misses, errors, [f.name for f in fixtures], elapsed)


def _summarise(
    scores: _Scores,
    misses: dict[str, list[str]],
    errors: dict[str, str],
    names: list[str],
    elapsed: float,
) -> Evaluation:
    values: dict[str, float | None] = dict.fromkeys(METRICS)
    details: dict[str, dict[str, Any]] = {}
    for metric, tally in scores.tallies.items():
        counts = {"tp": tally.tp, "fp": tally.fp, "fn": tally.fn}
        if metric == "injection":
            values["injection_recall"] = tally.recall
            values["injection_precision"] = tally.precision
            details["injection_recall"] = details["injection_precision"] = counts
        else:
            values[metric] = tally.f1
            details[metric] = {
                **counts,
                "precision": round(tally.precision, 4),
                "recall": round(tally.recall, 4),
            }
    for metric, hits in scores.hits.items():
        rate = sum(hits) / len(hits)
        if metric.startswith("structure:"):
            details.setdefault("structure_accuracy", {})[metric.split(":", 1)[1]] = {
                "accuracy": round(rate, 4),
                "labelled": len(hits),
            }
        else:
            values[metric] = rate
            details.setdefault(metric, {}).update({"correct": sum(hits), "labelled": len(hits)})
    for metric, amounts in scores.values.items():
        total = sum(amounts)
        values[metric] = total if metric == "pii_leaks" else total / len(amounts)
        details[metric] = {"labelled": len(amounts)}
    return Evaluation(
        scores={k: None if v is None else round(v, 4) for k, v in values.items()},
        details=details,
        misses={name: notes for name, notes in misses.items() if notes},
        errors=errors,
        fixtures=names,
        seconds=round(elapsed, 4),
    )


# --- the quality set: richer labels, parts, confidence intervals ----------------------
#
# Fixtures with ``message_tones`` among their labels (tests/fixtures/quality, schema in its
# README) are scored per conversation, so that every metric gets a bootstrap confidence
# interval over conversations. The rules, one per metric:
#
# - conversation tone: ``overall_tone`` is one of the labelled acceptable tones.
# - per-message tone: ``trajectory[i].label`` against ``message_tones[i]``; F1 per class
#   over every message of the part, averaged over positive, negative and neutral (a class
#   with no labelled and no predicted message is left out of the average).
# - disagreement / agreement: message level, exact index. A ``disagreement`` (``agreement``)
#   finding predicts its responding message (``roles.response``, else its last message); a
#   ``correction`` finding predicts its correcting message as a disagreement and its
#   acceptance as an agreement. Compared as sets with the labelled indices; micro F1.
# - thesis–antithesis–synthesis and Socratic: a labelled ``[first, last]`` span is found
#   when a finding of that type overlaps it widened by ±2 messages (recall over the
#   conversations with a span); the false-positive rate is the share of conversations
#   labelled ``false`` that get any finding of that type.
# - Q–A pairs: exact ``(question, answer)`` pairs from ``question_answer`` findings; micro F1.
# - tone shifts: one-to-one within ±2 messages and in the labelled direction; a predicted
#   shift goes up when ``to`` ranks above ``from`` (negative < neutral, mixed < positive).
# - topic boundaries: starts of the predicted segments after the first, one-to-one within
#   ±2; micro F1. Single-topic chats (``topic_boundaries == []``): share with no boundary.
# - topic labels: each predicted segment is matched to the labelled segment it overlaps
#   most (the earlier on a tie); its label is acceptable when it contains one of that
#   segment's acceptable words (case-insensitive, inflections tolerated as for keywords)
#   and no word of a speaker's name. The rate is over predicted segments.
# - keywords: share of labelled keywords found among the topic keywords, labels and themes.
#
# ``dominant_speaker`` is not scored: writer c set it to null ("nobody dominates") in all
# but two conversations, and the result always names the speaker with the largest share.

QUALITY_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "quality"
BLIND = "blind"
PART_ORDER = (BLIND, "dev")
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 11
# The trained models' cross-validation folds: a conversation's fold is the SHA-256 of its
# name, mod FOLDS, the same in every trainer and in benchmarks/crossfit.py.
FOLDS = 5
TONE_CLASSES = ("positive", "negative", "neutral")
_TONE_RANK = {"negative": 0, "neutral": 1, "mixed": 1, "positive": 2}


def folds(names: Sequence[str]) -> np.ndarray:
    """The cross-validation fold of each conversation name."""
    return np.array([int(hashlib.sha256(n.encode()).hexdigest(), 16) % FOLDS for n in names])


@dataclass(frozen=True)
class QualityMetric:
    title: str
    kind: str  # "f1" (tp, fp, fn), "rate" (hits, total) or "macro_f1" (tp, fp, fn per class)
    target: float | None = None  # blind-part target; a ceiling when lower is better
    higher_is_better: bool = True

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'>=' if self.higher_is_better else '<='} {self.target:.2f}"


QUALITY_METRICS: dict[str, QualityMetric] = {
    "tone_accuracy": QualityMetric("conversation tone accuracy", "rate", 0.80),
    "message_tone_macro_f1": QualityMetric("per-message tone macro-F1", "macro_f1", 0.65),
    "disagreement_f1": QualityMetric("disagreement F1 (message)", "f1", 0.80),
    "agreement_f1": QualityMetric("agreement F1 (message)", "f1"),
    "tas_recall": QualityMetric("thesis-antithesis-synthesis recall", "rate", 0.80),
    "tas_false_positive_rate": QualityMetric(
        "thesis-antithesis-synthesis false pos.", "rate", 0.10, higher_is_better=False
    ),
    "socratic_recall": QualityMetric("Socratic recall", "rate", 0.80),
    "socratic_false_positive_rate": QualityMetric(
        "Socratic false pos.", "rate", 0.10, higher_is_better=False
    ),
    "qa_pair_f1": QualityMetric("Q-A pair F1", "f1", 0.90),
    "shift_f1": QualityMetric("tone-shift F1 (±2, direction)", "f1", 0.70),
    "topic_boundary_f1": QualityMetric("topic boundary F1 (±2)", "f1", 0.80),
    "single_topic_unsplit": QualityMetric("single-topic chats unsplit", "rate", 0.90),
    "topic_label_acceptable": QualityMetric("topic labels acceptable", "rate", 0.80),
    "keyword_hit_rate": QualityMetric("keyword hit rate", "rate"),
}

Counts = tuple[int, ...]


def is_quality_fixture(fixture: Fixture) -> bool:
    return "message_tones" in fixture.labels


def f1_from_counts(counts: Counts) -> float | None:
    tp, fp, fn = counts
    if tp + fp + fn == 0:
        return None
    return 2 * tp / (2 * tp + fp + fn)


def rate_from_counts(counts: Counts) -> float | None:
    hits, total = counts
    return None if total == 0 else hits / total


def macro_f1_from_counts(counts: Counts) -> float | None:
    scores = [f1_from_counts(tuple(counts[i : i + 3])) for i in range(0, len(counts), 3)]
    present = [s for s in scores if s is not None]
    return sum(present) / len(present) if present else None


_SCORERS: dict[str, Callable[[Counts], float | None]] = {
    "f1": f1_from_counts,
    "rate": rate_from_counts,
    "macro_f1": macro_f1_from_counts,
}


def set_counts(truth: Iterable[Any], predicted: Iterable[Any]) -> Counts:
    """(tp, fp, fn) of two sets compared exactly."""
    t, p = set(truth), set(predicted)
    return len(t & p), len(p - t), len(t - p)


def message_tone_counts(truth: Sequence[str], predicted: Sequence[str | None]) -> Counts:
    """Per class of TONE_CLASSES, (tp, fp, fn) of per-message labels; a message without a
    prediction is a miss of its labelled class."""
    counts = [0] * (3 * len(TONE_CLASSES))
    for i, expected in enumerate(truth):
        got = predicted[i] if i < len(predicted) else None
        for c, tone in enumerate(TONE_CLASSES):
            if expected == tone and got == tone:
                counts[3 * c] += 1
            elif got == tone:
                counts[3 * c + 1] += 1
            elif expected == tone:
                counts[3 * c + 2] += 1
    return tuple(counts)


def predicted_message_tones(result: Mapping[str, Any], n: int) -> list[str | None]:
    sentiment = _patterns(result, "sentiment")
    tones: list[str | None] = [None] * n
    trajectory = sentiment.get("trajectory") if isinstance(sentiment, Mapping) else None
    for point in trajectory or []:
        index = point.get("index")
        if isinstance(index, int) and 0 <= index < n:
            tones[index] = point.get("label")
    return tones


def predicted_reactions(result: Mapping[str, Any], kind: str) -> set[int]:
    """Responding messages of ``kind`` ("disagreement" or "agreement") findings, with the
    correcting message (disagreement) or the acceptance (agreement) of corrections."""
    found: set[int] = set()
    correction_role = "correction" if kind == "disagreement" else "acceptance"
    for item in _patterns(result, "dialectic") or []:
        roles = item.get("roles") or {}
        indices = _ints(item.get("messages"))
        if item.get("type") == kind:
            response = roles.get("response", indices[-1] if indices else None)
        elif item.get("type") == "correction":
            response = roles.get(correction_role)
        else:
            continue
        if isinstance(response, int):
            found.add(response)
    return found


def span_found(span: Sequence[int], spans: Iterable[tuple[int, int]], tolerance: int) -> bool:
    low, high = span[0] - tolerance, span[-1] + tolerance
    return any(start <= high and end >= low for start, end in spans)


def structure_spans(result: Mapping[str, Any], kind: str) -> list[tuple[int, int]]:
    dialectic = _patterns(result, "dialectic") or []
    return _spans([d for d in dialectic if d.get("type") == kind])


def shift_direction(frm: Any, to: Any) -> str | None:
    if frm not in _TONE_RANK or to not in _TONE_RANK:
        return None
    if _TONE_RANK[to] > _TONE_RANK[frm]:
        return "up"
    if _TONE_RANK[to] < _TONE_RANK[frm]:
        return "down"
    return None


def predicted_shifts(result: Mapping[str, Any]) -> list[tuple[int, str | None]]:
    sentiment = _patterns(result, "sentiment")
    shifts = sentiment.get("shifts") if isinstance(sentiment, Mapping) else None
    return [
        (s["index"], shift_direction(s.get("from"), s.get("to")))
        for s in shifts or []
        if isinstance(s.get("index"), int)
    ]


def shift_counts(
    truth: Sequence[Mapping[str, Any]],
    predicted: Sequence[tuple[int, str | None]],
    tolerance: int = TOLERANCE,
) -> Counts:
    """(tp, fp, fn): shifts matched one-to-one within ``tolerance`` in the same direction; a
    predicted shift without a direction matches nothing."""
    tp = fp = fn = 0
    for direction in ("up", "down"):
        wanted = [s["message"] for s in truth if s.get("direction") == direction]
        found = [index for index, d in predicted if d == direction]
        matched, missed, spurious = match_within(wanted, found, tolerance)
        tp, fp, fn = tp + len(matched), fp + len(spurious), fn + len(missed)
    labelled_other = [s for s in truth if s.get("direction") not in ("up", "down")]
    fn += len(labelled_other)
    fp += sum(1 for _, d in predicted if d is None)
    return tp, fp, fn


def segments_from_boundaries(boundaries: Sequence[int], n: int) -> list[tuple[int, int]]:
    starts = [0, *sorted(b for b in set(boundaries) if 0 < b < n)]
    ends = [s - 1 for s in starts[1:]] + [n - 1]
    return list(zip(starts, ends, strict=True))


def predicted_segments(result: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    topics = _patterns(result, "topics")
    segments = topics.get("segments") if isinstance(topics, Mapping) else None
    found = []
    for segment in segments or []:
        start, end = segment.get("start"), segment.get("end")
        if isinstance(start, int) and isinstance(end, int):
            found.append((start, end, str(segment.get("label") or "")))
    return found


def label_acceptable(label: str, acceptable: Sequence[str], speakers: Iterable[str]) -> bool:
    """True when ``label`` holds one of the acceptable words (all words of a multi-word
    one) and no word of a speaker's name."""
    words = set(_tokens(label))
    names = {w for speaker in speakers for w in _tokens(speaker)}
    if words & names:
        return False
    return any(keyword_found(word, [label]) for word in acceptable)


def topic_label_counts(
    predicted: Sequence[tuple[int, int, str]],
    boundaries: Sequence[int],
    acceptable: Sequence[Sequence[str]],
    n: int,
    speakers: Iterable[str],
) -> Counts:
    """(acceptable, judged) over the predicted segments, each judged against the labelled
    segment it overlaps most."""
    truth = segments_from_boundaries(boundaries, n)
    names = list(speakers)
    hits = total = 0
    for start, end, label in predicted:
        overlaps = [min(end, t_end) - max(start, t_start) + 1 for t_start, t_end in truth]
        best = max(range(len(truth)), key=lambda i: (overlaps[i], -i))
        total += 1
        words = acceptable[best] if best < len(acceptable) else []
        hits += label_acceptable(label, words, names)
    return hits, total


def score_quality_fixture(
    fixture: Fixture, conversation: Conversation, result: Mapping[str, Any]
) -> tuple[dict[str, Counts], list[str]]:
    """Per-metric counts for one conversation, and what it missed (for the dev part)."""
    labels = fixture.labels
    n = len(conversation)
    counts: dict[str, Counts] = {}
    notes: list[str] = []

    sentiment = _patterns(result, "sentiment")
    tone = sentiment.get("overall_tone") if isinstance(sentiment, Mapping) else None
    ok = tone in _allowed(labels["tone"])
    counts["tone_accuracy"] = (int(ok), 1)
    if not ok:
        notes.append(f"tone: expected {labels['tone']}, got {tone}")

    truth_tones = labels["message_tones"]
    tones = predicted_message_tones(result, n)
    counts["message_tone_macro_f1"] = message_tone_counts(truth_tones, tones)
    wrong = [f"{i}:{t}->{tones[i]}" for i, t in enumerate(truth_tones) if i < n and tones[i] != t]
    if wrong:
        notes.append(f"message tones ({len(wrong)}/{n} wrong): {', '.join(wrong)}")

    for kind, key in (("disagreement", "disagreements"), ("agreement", "agreements")):
        found = predicted_reactions(result, kind)
        counts[f"{kind}_f1"] = set_counts(labels[key], found)
        missed, spurious = sorted(set(labels[key]) - found), sorted(found - set(labels[key]))
        if missed or spurious:
            notes.append(f"{kind}s: missed {missed}, spurious {spurious}")

    structures = labels["structures"]
    for kind, name in (("thesis_antithesis_synthesis", "tas"), ("socratic_sequence", "socratic")):
        expected = structures.get(kind, False)
        spans = structure_spans(result, kind)
        if isinstance(expected, list):
            ok = span_found(expected, spans, TOLERANCE)
            counts[f"{name}_recall"] = (int(ok), 1)
            counts[f"{name}_false_positive_rate"] = (0, 0)
            if not ok:
                notes.append(f"{kind}: expected {expected}, found spans {spans}")
        else:
            counts[f"{name}_recall"] = (0, 0)
            counts[f"{name}_false_positive_rate"] = (int(bool(spans)), 1)
            if spans:
                notes.append(f"{kind}: none labelled, found spans {spans}")

    truth_pairs = {(q, a) for q, a in labels["qa_pairs"]}
    pairs = predicted_pairs(result) or set()
    counts["qa_pair_f1"] = set_counts(truth_pairs, pairs)
    if truth_pairs != pairs:
        notes.append(
            f"qa pairs: missed {sorted(truth_pairs - pairs)}, spurious {sorted(pairs - truth_pairs)}"
        )

    shifts = predicted_shifts(result)
    counts["shift_f1"] = shift_counts(labels["shifts"], shifts)
    if counts["shift_f1"][1] or counts["shift_f1"][2]:
        wanted = [(s["message"], s["direction"]) for s in labels["shifts"]]
        notes.append(f"shifts: labelled {wanted}, found {shifts}")

    truth_bounds = labels["topic_boundaries"]
    bounds = predicted_boundaries(result) or []
    matched, missed_b, spurious_b = match_within(truth_bounds, bounds, TOLERANCE)
    counts["topic_boundary_f1"] = (len(matched), len(spurious_b), len(missed_b))
    counts["single_topic_unsplit"] = (int(not bounds), 1) if not truth_bounds else (0, 0)
    if missed_b or spurious_b:
        notes.append(f"topic boundaries: missed {missed_b}, spurious {spurious_b}")

    segments = predicted_segments(result)
    counts["topic_label_acceptable"] = topic_label_counts(
        segments, truth_bounds, labels["topic_labels"], n, conversation.speakers
    )
    hits, judged = counts["topic_label_acceptable"]
    if hits < judged:
        notes.append(
            f"topic labels: {[label for _, _, label in segments]} "
            f"against acceptable {labels['topic_labels']}"
        )

    candidates = keyword_candidates(result) or []
    absent = [k for k in labels["keywords"] if not keyword_found(k, candidates)]
    counts["keyword_hit_rate"] = (len(labels["keywords"]) - len(absent), len(labels["keywords"]))
    if absent:
        notes.append(f"keywords: missing {absent} among {sorted(set(candidates))[:20]}")
    return counts, notes


@dataclass
class PartEvaluation:
    """One part of the quality set: scores over all its conversations, a 95 % bootstrap
    interval for each, the summed counts; ``misses`` only for a part that may be studied."""

    name: str
    conversations: int
    scores: dict[str, float | None]
    intervals: dict[str, tuple[float, float] | None]
    support: dict[str, Counts]
    errors: dict[str, str]
    misses: dict[str, list[str]]
    seconds: float

    @property
    def blind(self) -> bool:
        return self.name == BLIND


def bootstrap_intervals(
    per_conversation: Sequence[Mapping[str, Counts]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, tuple[float, float] | None]:
    """Percentile 95 % intervals: conversations drawn with replacement ``resamples`` times
    (the same draws for every metric), each metric recomputed from the summed counts; a
    draw where a metric is undefined is skipped for that metric."""
    intervals: dict[str, tuple[float, float] | None] = dict.fromkeys(QUALITY_METRICS)
    if not per_conversation:
        return intervals
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(per_conversation), size=(resamples, len(per_conversation)))
    for key, metric in QUALITY_METRICS.items():
        width = 9 if metric.kind == "macro_f1" else 3 if metric.kind == "f1" else 2
        table = np.array(
            [c.get(key, (0,) * width) for c in per_conversation], dtype=np.int64
        ).reshape(len(per_conversation), width)
        sums = table[draws].sum(axis=1)
        scorer = _SCORERS[metric.kind]
        values = [v for row in sums if (v := scorer(tuple(int(x) for x in row))) is not None]
        if values:
            low, high = np.percentile(values, [2.5, 97.5])
            intervals[key] = (float(low), float(high))
    return intervals


def summed_scores(
    counted: Sequence[Mapping[str, Counts]],
) -> tuple[dict[str, Counts], dict[str, float | None]]:
    """Each quality metric's counts summed over ``counted`` (conversations, or parts whose
    counts are already summed; an empty count is none) and its score from the sum."""
    support: dict[str, Counts] = {}
    scores: dict[str, float | None] = {}
    for key, metric in QUALITY_METRICS.items():
        rows = [c[key] for c in counted if c.get(key)]
        summed = tuple(int(sum(col)) for col in zip(*rows, strict=True)) if rows else ()
        support[key] = summed
        scores[key] = _SCORERS[metric.kind](summed) if summed else None
    return support, scores


def evaluate_part(
    directory: Path,
    keep_misses: bool | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PartEvaluation:
    """Scores one folder of quality fixtures. Per-conversation misses are kept only for a
    part that is not blind, unless ``keep_misses`` says otherwise."""
    name = directory.name
    if keep_misses is None:
        keep_misses = name != BLIND
    per_conversation: list[dict[str, Counts]] = []
    misses: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    elapsed = 0.0
    fixtures = load_fixtures(directory)
    for fixture in fixtures:
        try:
            conversation = parse_fixture(fixture)
            started = time.perf_counter()
            result = analyze(conversation)
            elapsed += time.perf_counter() - started
            counts, notes = score_quality_fixture(fixture, conversation, result)
        except Exception as exc:  # one broken detector must not hide the other scores
            errors[fixture.name] = f"{type(exc).__name__}: {exc}"
            continue
        per_conversation.append(counts)
        if notes and keep_misses:
            misses[fixture.name] = notes
    support, scores = summed_scores(per_conversation)
    return PartEvaluation(
        name=name,
        conversations=len(fixtures),
        scores=scores,
        intervals=bootstrap_intervals(per_conversation, resamples, seed),
        support=support,
        errors=errors,
        misses=misses,
        seconds=round(elapsed, 4),
    )


def quality_parts(directory: Path) -> list[Path]:
    """The part folders of a quality set, blind first, then dev, then any other."""
    folders = [p for p in directory.iterdir() if p.is_dir() and any(p.glob("*.json"))]
    order = {name: i for i, name in enumerate(PART_ORDER)}
    return sorted(folders, key=lambda p: (order.get(p.name, len(order)), p.name))


def evaluate_parts(directory: Path = QUALITY_DIR) -> list[PartEvaluation]:
    return [evaluate_part(part) for part in quality_parts(directory)]


def labelled_count(metric: QualityMetric, counts: Counts) -> int:
    """How many labelled items a score rests on: conversations or items for a rate, the
    labelled positives for an F1, messages for per-message tone."""
    if not counts:
        return 0
    if metric.kind == "rate":
        return counts[1]
    if metric.kind == "f1":
        return counts[0] + counts[2]
    return sum(counts[i] + counts[i + 2] for i in range(0, len(counts), 3))


def _cell(part: PartEvaluation, key: str) -> str:
    value = part.scores.get(key)
    if value is None:
        return "n/a"
    interval = part.intervals.get(key)
    shown = f"{value:.2f}"
    if interval is not None:
        shown += f" [{interval[0]:.2f}, {interval[1]:.2f}]"
    return f"{shown} ({labelled_count(QUALITY_METRICS[key], part.support[key])})"


def render_parts(parts: Sequence[PartEvaluation], show_misses: bool = False) -> str:
    """One row per metric, a column per part in the order given, then the target."""
    title_width = max(len(m.title) for m in QUALITY_METRICS.values()) + 2
    width = 26
    header = f"{'metric':{title_width}}" + "".join(
        f"{f'{p.name} ({p.conversations})':{width}}" for p in parts
    )
    lines = [header + "target", "-" * (title_width + width * len(parts) + 8)]
    for key, metric in QUALITY_METRICS.items():
        row = f"{metric.title:{title_width}}" + "".join(f"{_cell(p, key):{width}}" for p in parts)
        lines.append(row + metric.target_text)
    lines.append("-" * (title_width + width * len(parts) + 8))
    lines.append(
        f"score [95 % bootstrap interval, {BOOTSTRAP_RESAMPLES} resamples of conversations, "
        f"seed {BOOTSTRAP_SEED}] (labelled items); targets are for the blind part"
    )
    for part in parts:
        if part.errors:
            if part.blind:
                kinds = sorted({e.split(":", 1)[0] for e in part.errors.values()})
                lines.append(f"ERROR in {len(part.errors)} {part.name} conversations: {kinds}")
            else:
                for name, error in part.errors.items():
                    lines.append(f"ERROR in {part.name}/{name}: {error}")
    if show_misses:
        for part in parts:
            if not part.misses:
                continue
            lines.append(f"\n=== {part.name}: what each conversation missed")
            for name, notes in part.misses.items():
                lines.append(f"\n{name}")
                lines.extend(f"  - {note}" for note in notes)
    return "\n".join(lines)


def parts_document(parts: Sequence[PartEvaluation]) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    document: dict[str, Any] = {
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "level": 0.95},
        "targets": {
            key: {"value": m.target, "higher_is_better": m.higher_is_better}
            for key, m in QUALITY_METRICS.items()
            if m.target is not None
        },
        "parts": {},
    }
    for part in parts:
        entry: dict[str, Any] = {
            "conversations": part.conversations,
            "scores": {k: rounded(v) for k, v in part.scores.items()},
            "ci95": {
                k: None if v is None else [round(v[0], 4), round(v[1], 4)]
                for k, v in part.intervals.items()
            },
            "support": {k: list(v) for k, v in part.support.items()},
            "seconds": part.seconds,
        }
        if part.blind:
            entry["errors"] = len(part.errors)
        else:
            entry["errors"] = part.errors
        if part.misses:
            entry["misses"] = part.misses
        document["parts"][part.name] = entry
    return document


# --- output ---------------------------------------------------------------------------


def _support(detail: Mapping[str, Any]) -> str:
    if "precision" in detail:
        return (
            f"P {detail['precision']:.2f} R {detail['recall']:.2f} "
            f"(tp {detail['tp']}, fp {detail['fp']}, fn {detail['fn']})"
        )
    if "tp" in detail:
        return f"tp {detail['tp']}, fp {detail['fp']}, fn {detail['fn']}"
    if "correct" in detail:
        return f"{detail['correct']}/{detail['labelled']}"
    if "labelled" in detail:
        return f"{detail['labelled']} labelled"
    return ""


def render_table(evaluation: Evaluation, verbose: bool = False) -> str:
    lines = [f"{'metric':32} {'score':>8}  {'better':6}  support", "-" * 78]
    for key, metric in METRICS.items():
        value = evaluation.scores[key]
        shown = "n/a" if value is None else f"{value:.4f}"
        better = "higher" if metric.higher_is_better else "lower"
        detail = evaluation.details.get(key, {})
        support = _support(detail) if value is not None else metric.unavailable
        lines.append(f"{metric.title:32} {shown:>8}  {better:6}  {support}")
        if key == "structure_accuracy":
            for kind in STRUCTURE_TYPES:
                if isinstance(detail.get(kind), Mapping):
                    sub = detail[kind]
                    title = f"  {kind}"
                    lines.append(f"{title:32} {sub['accuracy']:>8.4f}  {'':6}  {sub['labelled']}")
    lines.append("-" * 78)
    lines.append(
        f"{len(evaluation.fixtures)} conversations, analysis time {evaluation.seconds:.3f} s"
    )
    by_error: dict[str, list[str]] = {}
    for name, error in evaluation.errors.items():
        by_error.setdefault(error, []).append(name)
    for error, names in by_error.items():
        shown = ", ".join(names) if len(names) <= 3 else f"{len(names)} conversations"
        lines.append(f"ERROR in {shown}: {error}")
    if verbose:
        for name, notes in evaluation.misses.items():
            lines.append(f"\n{name}")
            lines.extend(f"  - {note}" for note in notes)
    return "\n".join(lines)


def _quality_set(directory: Path) -> bool:
    """A folder of quality parts, or one part: fixtures labelled with ``message_tones``."""
    if directory.resolve() == QUALITY_DIR.resolve():
        return True
    files = sorted(directory.glob("*.json"))
    if not files:
        return any(p.is_dir() and any(p.glob("*.json")) for p in directory.iterdir())
    labels = json.loads(files[0].read_text(encoding="utf-8")).get("labels", {})
    return "message_tones" in labels


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable scores")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print per-conversation misses (never for a blind part)",
    )
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=FIXTURE_DIR,
        metavar="DIR",
        help="folder of labelled *.json conversations (default: tests/fixtures/eval)",
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="score each part folder of DIR (blind first, then dev) with 95%% bootstrap "
        "intervals and the targets; the default for tests/fixtures/quality",
    )
    parser.add_argument(
        "--i-am-moving-these-to-dev",
        dest="unblind",
        action="store_true",
        help="allow --verbose on a blind part; its conversations must then move to dev",
    )
    args = parser.parse_args(argv)
    if not args.fixtures.is_dir():
        parser.error(f"--fixtures: {args.fixtures} is not a directory")
    quality = args.parts or _quality_set(args.fixtures)
    if quality:
        parts_mode = args.parts or not any(args.fixtures.glob("*.json"))
        folders = quality_parts(args.fixtures) if parts_mode else [args.fixtures]
        if not folders:
            parser.error(f"--fixtures: {args.fixtures} holds no part folders of *.json fixtures")
        blind = [f for f in folders if f.name == BLIND]
        if args.verbose and not parts_mode and blind and not args.unblind:
            parser.error(
                "--verbose refuses the blind part: it is run only to report. Study dev, or "
                "give --i-am-moving-these-to-dev and move what you read to dev."
            )
        if args.verbose and blind and args.unblind:
            print(
                "blind details shown: move these conversations to dev and top up the blind "
                "part with new ones from a fresh writer",
                file=sys.stderr,
            )
        parts = [
            evaluate_part(f, keep_misses=args.verbose and (f.name != BLIND or args.unblind))
            for f in folders
        ]
        if args.json:
            print(json.dumps(parts_document(parts), indent=2, ensure_ascii=False))
        else:
            print(render_parts(parts, show_misses=args.verbose))
            if args.verbose and blind and not args.unblind:
                print("\n(blind: per-conversation details are not shown)")
        return 1 if any(p.errors for p in parts) else 0
    if not any(args.fixtures.glob("*.json")):
        parser.error(f"--fixtures: {args.fixtures} holds no *.json fixtures")
    evaluation = evaluate(args.fixtures)
    if args.json:
        document: dict[str, Any] = {
            "scores": evaluation.scores,
            "details": evaluation.details,
            "errors": evaluation.errors,
            "fixtures": evaluation.fixtures,
            "seconds": evaluation.seconds,
        }
        if args.verbose:
            document["misses"] = evaluation.misses
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(render_table(evaluation, verbose=args.verbose))
    return 1 if evaluation.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
