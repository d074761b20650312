"""The local analysis measured against the hand-labelled conversations in tests/fixtures/eval.

``uv run python benchmarks/evaluate.py --verbose`` shows the same scores with every miss.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from app.conversation import Conversation
from benchmarks.evaluate import (
    FIXTURE_DIR,
    METRICS,
    STRUCTURE_TYPES,
    Evaluation,
    Fixture,
    evaluate,
    keyword_found,
    leaked,
    load_fixtures,
    match_within,
    parse_fixture,
    pk,
    words_match,
)
from tests.fixtures.eval.generator import FIXTURE_NAME, FIXTURE_PATH, generate

# The scores the analysis must reach. For metrics where lower is better (per-conversation
# errors, Pk, leaked personal data) the number is a ceiling instead of a floor.
FLOORS: dict[str, float] = {
    # Set a little under the scores measured when the set was last calibrated (service
    # README), so a regression fails while harmless noise does not.
    "question_f1": 0.95,
    "question_count_error": 0.5,
    "qa_pair_f1": 0.95,
    "structure_accuracy": 0.95,
    "tone_accuracy": 0.8,
    "shift_f1": 0.6,
    "collaboration_accuracy": 0.95,
    "topic_boundary_f1": 0.9,
    "topic_pk": 0.1,
    "keyword_hit_rate": 0.8,
    "dominant_speaker_accuracy": 1.0,
    "latency_error_seconds": 0.01,
    "injection_recall": 1.0,
    "injection_precision": 1.0,
    "pii_leaks": 0,
}

FIXTURES = load_fixtures()
HAND_WRITTEN = [f for f in FIXTURES if f.name != FIXTURE_NAME]
LABEL_KEYS = {
    "questions",
    "qa_pairs",
    "structures",
    "tone",
    "shifts",
    "collaboration",
    "topic_boundaries",
    "keywords",
    "dominant_speaker",
    "mean_latency",
    "injection",
    "pii",
}
TONES = {"positive", "negative", "neutral", "mixed"}
COLLABORATION = {"collaborative", "adversarial", "neutral"}


# --- the analysis against the labels -----------------------------------------------------


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return evaluate()


def test_floors_cover_every_metric() -> None:
    assert set(FLOORS) == set(METRICS)


def test_every_conversation_is_analysed(evaluation: Evaluation) -> None:
    assert evaluation.errors == {}


@pytest.mark.parametrize("metric", list(FLOORS))
def test_metric_reaches_its_floor(evaluation: Evaluation, metric: str) -> None:
    score = evaluation.scores[metric]
    if score is None:
        pytest.fail(
            f"{metric} cannot be scored: {METRICS[metric].unavailable}",
            pytrace=False,
        )
    bound = FLOORS[metric]
    hint = "see `uv run python benchmarks/evaluate.py --verbose`"
    if METRICS[metric].higher_is_better:
        assert score >= bound, f"{metric} = {score} is below the floor {bound}; {hint}"
    else:
        assert score <= bound, f"{metric} = {score} is above the ceiling {bound}; {hint}"


# --- the fixtures themselves -------------------------------------------------------------


def _conversation(fixture: Fixture) -> Conversation:
    return parse_fixture(fixture)


def test_the_set_has_enough_hand_written_conversations_and_one_long_generated_one() -> None:
    assert len(HAND_WRITTEN) >= 28
    generated = [f for f in FIXTURES if f.name == FIXTURE_NAME]
    assert len(generated) == 1
    assert len(_conversation(generated[0])) >= 400
    numbers = [f.name[:2] for f in FIXTURES]
    assert len(numbers) == len(set(numbers))


def test_every_label_kind_is_exercised() -> None:
    used = {key for f in FIXTURES for key in f.labels}
    assert used == LABEL_KEYS
    assert {f.format for f in FIXTURES} == {"messages", "text"}
    assert any(f.labels.get("injection") for f in FIXTURES)
    assert any(f.labels.get("questions") == [] for f in FIXTURES)


def test_the_generated_fixture_matches_its_generator() -> None:
    on_disk = json.loads(FIXTURE_PATH.read_text(encoding="utf-8"))
    assert on_disk == generate(), "run `uv run python -m tests.fixtures.eval.generator`"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.name)
def test_fixture_is_well_formed(fixture: Fixture) -> None:
    path = FIXTURE_DIR / f"{fixture.name}.json"
    assert path.is_file()
    assert re.fullmatch(r"\d\d_[a-z0-9_]+", fixture.name)
    assert fixture.description.strip()
    assert fixture.format in {"messages", "text"}
    if fixture.format == "text":
        assert fixture.conversation_text and fixture.messages is None
    else:
        assert fixture.messages and fixture.conversation_text is None
    n = len(_conversation(fixture))
    if fixture in HAND_WRITTEN:
        assert n == 2 or 6 <= n <= 60, f"{n} messages"
    assert set(fixture.labels) <= LABEL_KEYS


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.name)
def test_fixture_labels_point_inside_the_conversation(fixture: Fixture) -> None:
    labels = fixture.labels
    conversation = _conversation(fixture)
    n = len(conversation)

    def inside(index: int) -> bool:
        return isinstance(index, int) and 0 <= index < n

    questions = labels.get("questions", [])
    assert questions == sorted(set(questions)) and all(map(inside, questions))
    for question, answer in labels.get("qa_pairs", []):
        assert inside(question) and inside(answer) and question < answer
        assert question in questions, f"pair ({question}, {answer}) asks no labelled question"
        speakers = conversation.messages[question].speaker, conversation.messages[answer].speaker
        assert speakers[0] != speakers[1], f"pair ({question}, {answer}) has one speaker"
    for kind, value in labels.get("structures", {}).items():
        assert kind in STRUCTURE_TYPES
        if isinstance(value, list):
            assert len(value) == 2 and inside(value[0]) and inside(value[1])
            assert value[0] < value[1]
        else:
            assert isinstance(value, bool)
    if "tone" in labels:
        allowed = labels["tone"] if isinstance(labels["tone"], list) else [labels["tone"]]
        assert allowed and set(allowed) <= TONES
    if "collaboration" in labels:
        allowed = labels["collaboration"]
        allowed = allowed if isinstance(allowed, list) else [allowed]
        assert allowed and set(allowed) <= COLLABORATION
    for key in ("shifts", "injection"):
        assert all(map(inside, labels.get(key, [])))
    boundaries = labels.get("topic_boundaries", [])
    assert boundaries == sorted(set(boundaries))
    assert all(0 < b < n for b in boundaries)
    if "dominant_speaker" in labels:
        assert labels["dominant_speaker"] in conversation.speakers


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.name)
def test_fixture_labels_agree_with_the_text(fixture: Fixture) -> None:
    labels = fixture.labels
    conversation = _conversation(fixture)
    text = fixture.input_text
    for keyword in labels.get("keywords", []):
        assert keyword_found(keyword, [text]), f"keyword {keyword!r} is not in the conversation"
    for item in labels.get("pii", []):
        assert item in text, f"personal data {item!r} is not in the conversation"
    # Every question in this set is written with a question mark, which catches labels
    # shifted by one message.
    for question in labels.get("questions", []):
        assert "?" in conversation.messages[question].text, f"message {question}"
    if "dominant_speaker" in labels:
        words: dict[str, int] = defaultdict(int)
        for message in conversation.messages:
            words[message.speaker] += len(message.text.split())
        assert max(words, key=lambda name: words[name]) == labels["dominant_speaker"]
    if "mean_latency" in labels:
        assert _mean_reply_delays(conversation) == pytest.approx(labels["mean_latency"], abs=1e-3)


def _mean_reply_delays(conversation: Conversation) -> dict[str, float]:
    """Seconds from one message to the next by a different speaker, averaged per responder."""
    delays: dict[str, list[float]] = defaultdict(list)
    for previous, message in zip(conversation.messages, conversation.messages[1:], strict=False):
        assert previous.timestamp is not None and message.timestamp is not None
        if message.speaker != previous.speaker:
            gap = (message.timestamp - previous.timestamp).total_seconds()
            delays[message.speaker].append(gap)
    return {name: sum(values) / len(values) for name, values in delays.items()}


# --- the yardstick's own arithmetic ------------------------------------------------------


def test_boundaries_match_one_to_one_within_the_tolerance() -> None:
    assert match_within([6, 12], [5, 13, 20], 2) == ([6, 12], [], [20])
    assert match_within([5, 6], [5], 2) == ([5], [6], [])
    assert match_within([10], [7, 13], 2) == ([], [10], [7, 13])


def test_pk_is_zero_for_a_perfect_segmentation_and_counts_disagreeing_windows() -> None:
    assert pk([5], [5], 10) == 0.0
    # k = 3; windows starting at 2, 3 and 4 straddle the true boundary but not a predicted one.
    assert pk([5], [], 10) == pytest.approx(3 / 7)
    assert pk([], [], 2) == 0.0


def test_keywords_match_across_inflections_but_not_unrelated_words() -> None:
    assert words_match("tides", "tide")
    assert words_match("tax", "taxes")
    assert words_match("freelance", "freelancing")
    assert not words_match("sun", "sum")
    assert not words_match("index", "indian")
    assert keyword_found("contract tests", ["we need contract testing here"])
    assert not keyword_found("contract tests", ["contract", "testing"])


def test_a_card_number_counts_as_leaked_with_or_without_its_spaces() -> None:
    assert leaked("4539 1488 0343 6467", '{"excerpt": "card 4539148803436467"}')
    assert leaked("+351 912 345 678", '{"excerpt": "call +351-912-345-678"}')
    assert not leaked("4539 1488 0343 6467", '{"excerpt": "card [card]"}')


def test_fixture_directory_holds_only_fixtures_and_their_generator() -> None:
    names = {p.name for p in Path(FIXTURE_DIR).iterdir() if not p.name.startswith("__")}
    assert names == {f"{f.name}.json" for f in FIXTURES} | {"generator.py"}
