"""How far the quality targets are from what careful readers agree on.

    uv run python benchmarks/agreement.py

A second annotator, given the writers' brief and label schema and none of their labels,
relabelled 45 development conversations (``tests/fixtures/agreement/``: one file per
conversation, named after it, holding only the second labels). Each second labelling is
turned into a result document (its tones as the trajectory, its disagreements as findings,
its first label word as each segment's label, …) and scored against the writers' labels
by the quality set's own matching rules, as if it were the analysis. Beside it, the
analysis on the same conversations, each analysed by both models fitted on the other
folds (``benchmarks/crossfit.py``), since the shipped models were fitted on dev.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import crossfit
from benchmarks.evaluate import (
    QUALITY_DIR,
    QUALITY_METRICS,
    Fixture,
    load_fixtures,
    parse_fixture,
    score_quality_fixture,
    segments_from_boundaries,
    summed_scores,
)

AGREEMENT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "agreement"
_OPPOSITE = {"up": ("negative", "positive"), "down": ("positive", "negative")}


def labels_as_result(
    labels: Mapping[str, Any], n: int, judged_against: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A result document that says what ``labels`` say, for ``n`` messages. Where the
    labels accept several conversation tones, the one that ``judged_against`` also accepts
    is reported, if any: two readers who both allow "positive" agree."""
    tones = [labels["tone"]] if isinstance(labels["tone"], str) else list(labels["tone"])
    if judged_against is not None:
        other = judged_against["tone"]
        accepted = [other] if isinstance(other, str) else list(other)
        tones = [t for t in tones if t in accepted] + tones
    dialectic: list[dict[str, Any]] = []
    for key, kind in (("disagreements", "disagreement"), ("agreements", "agreement")):
        dialectic += [
            {"type": kind, "messages": [i], "roles": {"response": i}} for i in labels[key]
        ]
    dialectic += [
        {"type": "question_answer", "messages": [q, a], "roles": {"question": q, "answer": a}}
        for q, a in labels["qa_pairs"]
    ]
    for kind in ("socratic_sequence", "thesis_antithesis_synthesis"):
        span = labels["structures"].get(kind)
        if isinstance(span, list) and len(span) == 2:
            dialectic.append({"type": kind, "messages": list(range(span[0], span[1] + 1))})
    bounds = sorted({b for b in labels["topic_boundaries"] if 0 < b < n})
    words = labels["topic_labels"]
    segments = [
        {"start": s, "end": e, "label": words[k][0] if k < len(words) and words[k] else ""}
        for k, (s, e) in enumerate(segments_from_boundaries(bounds, n))
    ]
    return {
        "questions": list(labels["questions"]),
        "patterns": {
            "sentiment": {
                "overall_tone": tones[0],
                "trajectory": [
                    {"index": i, "label": label} for i, label in enumerate(labels["message_tones"])
                ],
                "shifts": [
                    {
                        "index": s["message"],
                        "from": _OPPOSITE[s["direction"]][0],
                        "to": _OPPOSITE[s["direction"]][1],
                    }
                    for s in labels["shifts"]
                ],
            },
            "dialectic": dialectic,
            "topics": {
                "segments": segments,
                "transitions": list(bounds),
                "keyphrases": [{"phrase": k} for k in labels["keywords"]],
            },
        },
    }


def relabelled(
    directory: Path = AGREEMENT_DIR, dev: Path = QUALITY_DIR / "dev"
) -> list[tuple[Fixture, dict[str, Any]]]:
    """Each relabelled dev conversation with its second labels."""
    fixtures = {f.name: f for f in load_fixtures(dev)}
    pairs = []
    for path in sorted(directory.glob("*.json")):
        second = json.loads(path.read_text(encoding="utf-8"))
        pairs.append((fixtures[second["relabels"]], second["labels"]))
    return pairs


def agreement(
    directory: Path = AGREEMENT_DIR, with_analysis: bool = True
) -> tuple[dict[str, float | None], dict[str, float | None] | None]:
    """Scores of the second labels against the writers', and of the cross-fitted analysis
    on the same conversations (None when not asked for)."""
    pairs = relabelled(directory)
    human = []
    for fixture, labels in pairs:
        conversation = parse_fixture(fixture)
        document = labels_as_result(labels, len(conversation), fixture.labels)
        human.append(score_quality_fixture(fixture, conversation, document)[0])
    _, scores = summed_scores(human)
    if not with_analysis:
        return scores, None
    analysis, _ = crossfit.crossfitted(only={fixture.name for fixture, _ in pairs})
    return scores, analysis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable scores")
    args = parser.parse_args(argv)
    human, machine = agreement()
    if args.json:
        print(json.dumps({"second_annotator": human, "analysis_crossfitted": machine}))
        return 0
    print(f"{len(relabelled())} conversations relabelled")
    print(f"{'metric':<40}{'second annotator':>18}{'analysis':>10}")
    for key, metric in QUALITY_METRICS.items():
        cells = [human[key], (machine or {}).get(key)]
        shown = ["-" if v is None else f"{v:.3f}" for v in cells]
        print(f"{metric.title:<40}{shown[0]:>18}{shown[1]:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
