import pytest

from app.analysis.confidence import MODEL_WEIGHT, score_confidence
from app.conversation import Conversation, Message

RICH_SENTENCE = (
    "The migration adds a nullable column first, backfills it in batches of a thousand rows, "
    "then sets the constraint once every row has a value, which keeps the table writable. "
)


def conversation(count: int, text: str) -> Conversation:
    return Conversation(
        tuple(
            Message(index=i, speaker="Ana" if i % 2 == 0 else "Bob", role="human", text=text)
            for i in range(count)
        )
    )


def clear_patterns(count: int) -> dict:
    return {
        "dialectic": [
            {"type": "question_answer", "messages": [0, 1], "strength": 0.9},
            {"type": "agreement", "messages": [2, 3], "strength": 0.85},
        ],
        "sentiment": {
            "overall_tone": "positive",
            "score": 0.6,
            "trajectory": [{"index": i, "score": 0.6, "label": "positive"} for i in range(count)],
        },
        "topics": {
            "segments": [
                {
                    "label": "migration",
                    "keywords": ["migration", "column", "backfill", "rows", "constraint"],
                    "start": 0,
                    "end": count - 1,
                    "share": 1.0,
                }
            ]
        },
    }


def muddled_patterns(count: int) -> dict:
    labels = ["positive", "negative"]
    return {
        "dialectic": [
            {"type": "question_answer", "messages": [0, 1], "strength": 0.35},
            {"type": "disagreement", "messages": [2, 3], "strength": 0.4},
        ],
        "sentiment": {
            "overall_tone": "mixed",
            "score": 0.02,
            "trajectory": [
                {"index": i, "score": 0.5 if i % 2 else -0.5, "label": labels[i % 2]}
                for i in range(count)
            ],
        },
        "topics": {
            "segments": [
                {"label": "misc", "keywords": ["misc"], "start": 0, "end": count - 1, "share": 1.0}
            ]
        },
    }


def test_two_message_exchange_scores_below_a_rich_forty_message_one():
    short = score_confidence(conversation(2, "ok sure"), clear_patterns(2))
    rich = score_confidence(conversation(40, RICH_SENTENCE * 2), clear_patterns(40))
    assert short["confidence_score"] < 0.35
    assert rich["confidence_score"] > 0.8
    assert short["confidence"]["length"] < 0.1
    assert rich["confidence"]["length"] > 0.9


def test_longer_conversations_never_score_lower():
    scores = [
        score_confidence(conversation(n, RICH_SENTENCE), clear_patterns(n))["confidence_score"]
        for n in (2, 4, 8, 16, 32, 64)
    ]
    assert scores == sorted(scores)
    assert scores[0] < scores[-1]


def test_weak_and_contradictory_patterns_score_lower_than_clear_ones():
    conv = conversation(30, RICH_SENTENCE)
    clear = score_confidence(conv, clear_patterns(30))
    muddled = score_confidence(conv, muddled_patterns(30))
    assert muddled["confidence"]["clarity"] < clear["confidence"]["clarity"] - 0.3
    assert muddled["confidence_score"] < clear["confidence_score"]
    assert muddled["confidence"]["length"] == clear["confidence"]["length"]


def test_model_certainty_is_null_unless_given():
    result = score_confidence(conversation(10, RICH_SENTENCE), clear_patterns(10))
    assert result["confidence"]["model_certainty"] is None


@pytest.mark.parametrize("certainty", [0.0, 1.0])
def test_model_certainty_moves_the_score_by_at_most_its_weight(certainty):
    conv = conversation(10, RICH_SENTENCE)
    local = score_confidence(conv, clear_patterns(10))["confidence_score"]
    blended = score_confidence(conv, clear_patterns(10), model_certainty=certainty)
    assert blended["confidence"]["model_certainty"] == certainty
    assert abs(blended["confidence_score"] - local) <= MODEL_WEIGHT + 1e-9
    assert (blended["confidence_score"] > local) == (certainty > local)
    assert MODEL_WEIGHT <= 0.25


def test_score_and_components_stay_in_range_and_explanation_names_the_evidence():
    result = score_confidence(conversation(12, RICH_SENTENCE), muddled_patterns(12), 3.0)
    assert 0.0 <= result["confidence_score"] <= 1.0
    details = result["confidence"]
    assert details["model_certainty"] == 1.0
    assert 0.0 <= details["length"] <= 1.0
    assert 0.0 <= details["clarity"] <= 1.0
    assert "12 messages" in details["explanation"]
    assert "\n" not in details["explanation"]


def test_without_any_pattern_family_only_length_speaks():
    short = score_confidence(conversation(2, "hi"), {})
    rich = score_confidence(conversation(40, RICH_SENTENCE), {})
    assert short["confidence_score"] < rich["confidence_score"]
    assert rich["confidence_score"] > 0.5
