"""The quality set (tests/fixtures/quality): the harness computes every metric on each part,
and its matching rules score hand-made results as intended.

The figures are reported in the service README, blind part first; FLOORS below hold each
part a little under them (a rate of false positives under a ceiling), so a change that
loses quality fails here and has to say so. The blind part is run here only for
aggregates; nothing per conversation is printed for it.

``uv run python benchmarks/evaluate.py --fixtures tests/fixtures/quality``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.conversation.parsers import parse_conversation
from benchmarks.evaluate import (
    QUALITY_DIR,
    QUALITY_METRICS,
    PartEvaluation,
    bootstrap_intervals,
    evaluate_part,
    evaluate_parts,
    label_acceptable,
    macro_f1_from_counts,
    main,
    message_tone_counts,
    predicted_reactions,
    render_parts,
    score_quality_fixture,
    segments_from_boundaries,
    set_counts,
    shift_counts,
    shift_direction,
    span_found,
    topic_label_counts,
)
from benchmarks.evaluate import Fixture as EvalFixture

LABEL_KEYS = {
    "tone",
    "message_tones",
    "shifts",
    "disagreements",
    "agreements",
    "questions",
    "qa_pairs",
    "structures",
    "topic_boundaries",
    "topic_labels",
    "keywords",
}


@pytest.fixture(scope="module")
def parts() -> list[PartEvaluation]:
    return evaluate_parts(QUALITY_DIR)


# Measured 2026-12-05 with both models refitted on 829 dev conversations (README "Quality
# set"); floors 0.03 under the score, or one item under for the recalls that rest on few
# spans (Socratic 13 / 17 and 30 / 34, thesis–antithesis–synthesis 48 / 83 and 116 / 191),
# and ceilings 0.04 over the false-positive rates. Both models were fitted on dev, so dev's
# tone and reaction figures are in-sample there (benchmarks/crossfit.py scores it
# cross-fitted). Raise them with the figures when quality improves; lower them only with a
# reason in the commit that does.
FLOORS: dict[str, dict[str, float]] = {
    "blind": {
        "tone_accuracy": 0.69,
        "message_tone_macro_f1": 0.65,
        "disagreement_f1": 0.58,
        "agreement_f1": 0.45,
        "tas_recall": 0.56,
        "socratic_recall": 0.70,
        "qa_pair_f1": 0.84,
        "shift_f1": 0.34,
        "topic_boundary_f1": 0.48,
        "single_topic_unsplit": 0.93,
        "topic_label_acceptable": 0.65,
        "keyword_hit_rate": 0.53,
    },
    "dev": {
        "tone_accuracy": 0.75,
        "message_tone_macro_f1": 0.81,
        "disagreement_f1": 0.70,
        "agreement_f1": 0.63,
        "tas_recall": 0.60,
        "socratic_recall": 0.85,
        "qa_pair_f1": 0.84,
        "shift_f1": 0.44,
        "topic_boundary_f1": 0.58,
        "single_topic_unsplit": 0.93,
        "topic_label_acceptable": 0.69,
        "keyword_hit_rate": 0.56,
    },
}
CEILINGS: dict[str, dict[str, float]] = {
    "blind": {"tas_false_positive_rate": 0.14, "socratic_false_positive_rate": 0.05},
    "dev": {"tas_false_positive_rate": 0.12, "socratic_false_positive_rate": 0.05},
}


# --- the set and the harness on it ---------------------------------------------------------


def test_the_parts_come_blind_first_then_dev(parts: list[PartEvaluation]) -> None:
    assert [p.name for p in parts] == ["blind", "dev"]
    assert [p.conversations for p in parts] == [419, 829]
    assert all(p.errors == {} for p in parts)


def test_no_metric_falls_below_its_floor_or_above_its_ceiling(
    parts: list[PartEvaluation],
) -> None:
    worse = []
    for part in parts:
        for metric, floor in FLOORS[part.name].items():
            score = part.scores[metric]
            if score is None or score < floor:
                worse.append(f"{part.name} {metric} {score} < {floor}")
        for metric, ceiling in CEILINGS[part.name].items():
            score = part.scores[metric]
            if score is None or score > ceiling:
                worse.append(f"{part.name} {metric} {score} > {ceiling}")
    assert not worse, "quality fell: " + "; ".join(worse)
    assert set(FLOORS["blind"]) | set(CEILINGS["blind"]) == set(QUALITY_METRICS)


def test_the_blind_part_keeps_no_per_conversation_details(parts: list[PartEvaluation]) -> None:
    assert parts[0].misses == {}
    assert parts[1].misses, "dev keeps what each conversation missed"


@pytest.mark.parametrize("metric", list(QUALITY_METRICS))
def test_every_metric_is_computed_within_zero_and_one(
    parts: list[PartEvaluation], metric: str
) -> None:
    for part in parts:
        score = part.scores[metric]
        interval = part.intervals[metric]
        assert score is not None, f"{part.name}: {metric} not computed"
        assert interval is not None, f"{part.name}: {metric} has no interval"
        assert 0.0 <= interval[0] <= interval[1] <= 1.0
        assert 0.0 <= score <= 1.0


def test_no_conversation_sits_in_both_parts() -> None:
    dev = {p.name for p in (QUALITY_DIR / "dev").glob("*.json")}
    blind = {p.name for p in (QUALITY_DIR / "blind").glob("*.json")}
    assert dev and blind and not dev & blind


@pytest.mark.parametrize(
    "path", sorted(QUALITY_DIR.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_every_file_parses_to_its_labelled_messages(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["name"] == path.stem
    assert set(raw["labels"]) >= LABEL_KEYS
    if raw["format"] == "text":
        conversation = parse_conversation(conversation_text=raw["conversation_text"])
    else:
        conversation = parse_conversation(messages=raw["messages"])
    assert len(conversation) == len(raw["labels"]["message_tones"])


def test_verbose_refuses_the_blind_part(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--fixtures", str(QUALITY_DIR / "blind"), "--verbose"])
    assert stopped.value.code == 2
    assert "blind" in capsys.readouterr().err


# --- the matching rules on hand-made results -------------------------------------------------


def _fixture(labels: dict[str, Any]) -> EvalFixture:
    return EvalFixture(name="x", description="", format="messages", labels=labels)


def _result(
    dialectic: list[dict[str, Any]] | None = None,
    tones: list[str] | None = None,
    overall: str = "neutral",
    shifts: list[dict[str, Any]] | None = None,
    segments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "patterns": {
            "dialectic": dialectic or [],
            "sentiment": {
                "overall_tone": overall,
                "trajectory": [{"index": i, "label": t} for i, t in enumerate(tones or [])],
                "shifts": shifts or [],
            },
            "topics": {"segments": segments or []},
        }
    }


def test_message_tone_macro_f1_averages_the_three_classes() -> None:
    counts = message_tone_counts(
        ["positive", "negative", "neutral", "neutral"],
        ["positive", "neutral", "neutral", None],
    )
    # positive: tp 1; negative: fn 1; neutral: tp 1, fp 1, fn 1
    assert counts == (1, 0, 0, 0, 0, 1, 1, 1, 1)
    assert macro_f1_from_counts(counts) == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    # a class nobody labelled or predicted is left out of the average
    assert macro_f1_from_counts(message_tone_counts(["neutral"], ["neutral"])) == 1.0


def test_disagreement_is_the_responding_message_and_corrections_count() -> None:
    result = _result(
        dialectic=[
            {"type": "disagreement", "messages": [2, 3], "roles": {"target": 2, "response": 3}},
            {"type": "agreement", "messages": [5], "roles": {"response": 5}},
            {
                "type": "correction",
                "messages": [6, 7, 8],
                "roles": {"claim": 6, "correction": 7, "acceptance": 8},
            },
            {"type": "question_answer", "messages": [0, 1], "roles": {"question": 0, "answer": 1}},
        ]
    )
    assert predicted_reactions(result, "disagreement") == {3, 7}
    assert predicted_reactions(result, "agreement") == {5, 8}
    # exact message: a disagreement one message off is a miss and a false positive
    assert set_counts([2, 7], {3, 7}) == (1, 1, 1)


def test_structure_spans_match_within_two_messages() -> None:
    assert span_found([4, 8], [(9, 10)], 2)
    assert span_found([4, 8], [(0, 2)], 2)
    assert not span_found([4, 8], [(11, 12)], 2)
    assert not span_found([4, 8], [], 2)


def test_shifts_need_the_right_direction_within_two_messages() -> None:
    assert shift_direction("negative", "positive") == "up"
    assert shift_direction("positive", "neutral") == "down"
    assert shift_direction("neutral", "mixed") is None
    truth = [{"message": 5, "direction": "up"}, {"message": 12, "direction": "down"}]
    # 6 up matches 5 up; 12 is found going the wrong way; 20 is spurious
    assert shift_counts(truth, [(6, "up"), (12, "up"), (20, "down")]) == (1, 2, 1)
    assert shift_counts(truth, [(3, "up"), (14, "down")]) == (2, 0, 0)
    assert shift_counts([], [(4, None)]) == (0, 1, 0)


def test_topic_labels_are_judged_against_the_most_overlapping_segment() -> None:
    assert segments_from_boundaries([5, 9], 12) == [(0, 4), (5, 8), (9, 11)]
    assert segments_from_boundaries([], 3) == [(0, 2)]
    acceptable = [["boiler", "heating"], ["dinner", "saturday"]]
    predicted = [(0, 6, "Boiler repair"), (7, 11, "Dinner plans"), (8, 11, "Friday, time")]
    assert topic_label_counts(predicted, [6], acceptable, 12, ["Dad", "Mia"]) == (2, 3)
    # mostly the second segment, so "boiler" is not acceptable for it
    assert topic_label_counts([(4, 11, "Boiler")], [6], acceptable, 12, []) == (0, 1)


def test_a_label_with_a_speaker_name_is_not_acceptable() -> None:
    assert label_acceptable("Dinner, saturday, actual", ["dinner"], ["Dad", "Mia"])
    assert not label_acceptable("Dad, last, boiler", ["boiler"], ["Dad", "Mia"])
    assert not label_acceptable("User, file, list", ["file"], ["User", "Assistant"])
    assert label_acceptable("Cancelled flights", ["cancellation"], [])
    assert not label_acceptable("Badly, bother, card", ["refund"], [])


def test_one_conversation_scores_every_metric() -> None:
    labels = {
        "tone": ["negative", "mixed"],
        "message_tones": ["negative", "neutral", "negative", "positive"],
        "shifts": [{"message": 3, "direction": "up"}],
        "disagreements": [2],
        "agreements": [3],
        "questions": [1],
        "qa_pairs": [[1, 2]],
        "structures": {
            "socratic_sequence": False,
            "thesis_antithesis_synthesis": [1, 3],
            "disagreement": True,
            "agreement": True,
        },
        "topic_boundaries": [],
        "topic_labels": [["refund"]],
        "keywords": ["refund", "parcel"],
    }
    conversation = parse_conversation(
        messages=[
            {"speaker": "Ann", "role": "human", "text": "The parcel never came."},
            {"speaker": "Bot", "role": "assistant", "text": "Shall I refund it?"},
            {"speaker": "Ann", "role": "human", "text": "No, resend it."},
            {"speaker": "Bot", "role": "assistant", "text": "Done, thanks!"},
        ]
    )
    result = _result(
        dialectic=[
            {"type": "question_answer", "messages": [1, 2], "roles": {"question": 1, "answer": 2}},
            {"type": "disagreement", "messages": [1, 2], "roles": {"target": 1, "response": 2}},
            {"type": "socratic_sequence", "messages": [0, 1, 2]},
        ],
        tones=["negative", "neutral", "neutral", "positive"],
        overall="mixed",
        shifts=[{"index": 2, "from": "negative", "to": "positive"}],
        segments=[{"start": 0, "end": 3, "label": "Refund, Ann", "keywords": ["parcel"]}],
    )
    counts, notes = score_quality_fixture(_fixture(labels), conversation, result)
    assert counts["tone_accuracy"] == (1, 1)
    assert counts["disagreement_f1"] == (1, 0, 0)
    assert counts["agreement_f1"] == (0, 0, 1)
    assert counts["tas_recall"] == (0, 1)
    assert counts["tas_false_positive_rate"] == (0, 0)
    assert counts["socratic_recall"] == (0, 0)
    assert counts["socratic_false_positive_rate"] == (1, 1)
    assert counts["qa_pair_f1"] == (1, 0, 0)
    assert counts["shift_f1"] == (1, 0, 0)
    assert counts["topic_boundary_f1"] == (0, 0, 0)
    assert counts["single_topic_unsplit"] == (1, 1)
    assert counts["topic_label_acceptable"] == (0, 1)  # names the speaker Ann
    assert counts["keyword_hit_rate"] == (2, 2)
    assert set(counts) == set(QUALITY_METRICS)
    assert any(note.startswith("agreements") for note in notes)


def test_bootstrap_intervals_are_seeded_and_bracket_a_fixed_rate() -> None:
    rows = [{"tone_accuracy": (1, 1)}, {"tone_accuracy": (0, 1)}] * 10
    first, again = bootstrap_intervals(rows, 200, 3), bootstrap_intervals(rows, 200, 3)
    assert first == again
    low, high = first["tone_accuracy"] or (0.0, 0.0)
    assert low < 0.5 < high
    constant = bootstrap_intervals([{"tone_accuracy": (1, 1)}] * 5, 50, 3)
    assert constant["tone_accuracy"] == (1.0, 1.0)


def test_the_table_puts_blind_first_and_shows_no_blind_conversation(tmp_path: Path) -> None:
    blind = PartEvaluation(
        name="blind",
        conversations=2,
        scores={k: 0.5 for k in QUALITY_METRICS},
        intervals={k: (0.25, 0.75) for k in QUALITY_METRICS},
        support={k: (1, 2) if m.kind == "rate" else (1, 1, 1) for k, m in QUALITY_METRICS.items()},
        errors={"b_secret": "ValueError: boom"},
        misses={},
        seconds=0.0,
    )
    dev = PartEvaluation(
        name="dev",
        conversations=1,
        scores=dict.fromkeys(QUALITY_METRICS),
        intervals=dict.fromkeys(QUALITY_METRICS),
        support={k: () for k in QUALITY_METRICS},
        errors={},
        misses={"d_one": ["tone: expected negative, got positive"]},
        seconds=0.0,
    )
    table = render_parts([blind, dev], show_misses=True)
    header = table.splitlines()[0]
    assert header.index("blind (2)") < header.index("dev (1)") < header.index("target")
    assert "0.50 [0.25, 0.75]" in table and ">= 0.80" in table and "<= 0.10" in table
    assert "b_secret" not in table and "boom" not in table
    assert "d_one" in table


def test_a_single_dev_folder_is_scored_as_one_part() -> None:
    part = evaluate_part(QUALITY_DIR / "dev", resamples=20)
    assert part.name == "dev" and part.conversations == 829 and part.misses
