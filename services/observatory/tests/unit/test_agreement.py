"""The second annotator's reading (benchmarks/agreement.py, tests/fixtures/agreement)."""

from __future__ import annotations

import pytest

from benchmarks.agreement import agreement, labels_as_result, relabelled
from benchmarks.evaluate import parse_fixture, score_quality_fixture


def test_every_second_reading_labels_every_message_of_a_dev_conversation() -> None:
    pairs = relabelled()
    assert len(pairs) == 45
    for fixture, labels in pairs:
        assert len(labels["message_tones"]) == len(parse_fixture(fixture)), fixture.name


def test_the_writers_own_labels_score_perfectly_as_a_result() -> None:
    """The conversion from labels to a result document loses nothing: read back against
    themselves, the writers' labels match on every metric."""
    for fixture, _ in relabelled():
        conversation = parse_fixture(fixture)
        document = labels_as_result(fixture.labels, len(conversation))
        counts, notes = score_quality_fixture(fixture, conversation, document)
        assert notes == [], (fixture.name, notes)
        assert counts["tone_accuracy"] == (1, 1)


def test_a_tone_both_readings_accept_is_agreement() -> None:
    labels = {**_MINIMAL, "tone": ["neutral", "positive"]}
    writers = {"tone": ["positive", "mixed"]}
    document = labels_as_result(labels, 2, writers)
    assert document["patterns"]["sentiment"]["overall_tone"] == "positive"
    assert labels_as_result(labels, 2)["patterns"]["sentiment"]["overall_tone"] == "neutral"


def test_odd_structures_and_boundaries_are_read_safely() -> None:
    labels = {
        **_MINIMAL,
        "structures": {"socratic_sequence": True, "thesis_antithesis_synthesis": False},
        "topic_boundaries": [1, 1, 0, 7],
        "topic_labels": [["a"], ["b"]],
    }
    topics = labels_as_result(labels, 2)["patterns"]["topics"]
    assert topics["transitions"] == [1]
    assert [s["label"] for s in topics["segments"]] == ["a", "b"]


_MINIMAL = {
    "tone": "neutral",
    "message_tones": ["neutral", "neutral"],
    "shifts": [],
    "disagreements": [],
    "agreements": [],
    "questions": [],
    "qa_pairs": [],
    "structures": {"socratic_sequence": False, "thesis_antithesis_synthesis": False},
    "topic_boundaries": [],
    "topic_labels": [["a"]],
    "keywords": ["a"],
}


def test_the_second_reading_agrees_with_the_writers_well_beyond_the_targets() -> None:
    # The service README reports these; the targets are 0.80 and 0.65.
    human, analysis = agreement(with_analysis=False)
    assert analysis is None
    assert human["tone_accuracy"] == pytest.approx(0.978, abs=0.001)
    assert human["message_tone_macro_f1"] == pytest.approx(0.955, abs=0.001)
    assert human["disagreement_f1"] == pytest.approx(0.929, abs=0.001)
    assert human["topic_boundary_f1"] == pytest.approx(0.917, abs=0.001)
