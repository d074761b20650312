"""Scores the local analysis against the hand-labelled conversations in tests/fixtures/eval.

    uv run python benchmarks/evaluate.py                   # one row per metric
    uv run python benchmarks/evaluate.py --json            # machine-readable scores
    uv run python benchmarks/evaluate.py --verbose         # plus what each conversation missed
    uv run python benchmarks/evaluate.py --fixtures DIR    # score another folder of fixtures

``--fixtures`` takes any folder of ``*.json`` files in the same format; the default stays
tests/fixtures/eval.

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
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable scores")
    parser.add_argument("--verbose", action="store_true", help="print per-conversation misses")
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=FIXTURE_DIR,
        metavar="DIR",
        help="folder of labelled *.json conversations (default: tests/fixtures/eval)",
    )
    args = parser.parse_args(argv)
    if not args.fixtures.is_dir():
        parser.error(f"--fixtures: {args.fixtures} is not a directory")
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
