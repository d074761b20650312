"""The local analysis on tests/fixtures/heldout: 14 conversations written and labelled
without reading the analysis code, and first scored blind (service README, "Analysis
quality"). Floors sit under today's scores: they guard against regressions; the gap to the
main set shows what the main set's scores owe to tuning.

``uv run python benchmarks/evaluate.py --fixtures tests/fixtures/heldout --verbose``
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.evaluate import METRICS, Evaluation, evaluate

HELDOUT = Path(__file__).resolve().parents[1] / "fixtures" / "heldout"

FLOORS: dict[str, float] = {
    "question_f1": 0.9,
    "qa_pair_f1": 0.88,
    "structure_accuracy": 0.85,
    "tone_accuracy": 0.45,
    "collaboration_accuracy": 0.7,
    "topic_boundary_f1": 0.6,
    "keyword_hit_rate": 0.8,
    "dominant_speaker_accuracy": 1.0,
    "latency_error_seconds": 0.01,
    "injection_recall": 1.0,
    "injection_precision": 1.0,
    "pii_leaks": 0,
}


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return evaluate(HELDOUT)


def test_every_heldout_conversation_is_analysed(evaluation: Evaluation) -> None:
    assert evaluation.errors == {}
    assert len(list(HELDOUT.glob("*.json"))) == 14


@pytest.mark.parametrize("metric", list(FLOORS))
def test_heldout_metric_reaches_its_floor(evaluation: Evaluation, metric: str) -> None:
    score = evaluation.scores[metric]
    assert score is not None, f"{metric} cannot be scored on the held-out set"
    if METRICS[metric].higher_is_better:
        assert score >= FLOORS[metric], f"held-out {metric} = {score} is below {FLOORS[metric]}"
    else:
        assert score <= FLOORS[metric], f"held-out {metric} = {score} is above {FLOORS[metric]}"
