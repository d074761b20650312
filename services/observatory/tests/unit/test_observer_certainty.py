"""Model certainty from log-probabilities, else from agreement with the local analysis."""

from __future__ import annotations

import math

import pytest

from app.observer.certainty import LogprobTally, agreement, is_content_token
from app.observer.schema import PatternJudgement


def test_geometric_mean_over_content_tokens_only() -> None:
    tally = LogprobTally()
    tally.add(
        [
            {"token": '{"', "logprob": -0.0001},
            {"token": "narr", "logprob": math.log(0.5)},
            {"token": '":"', "logprob": 0.0},
            {"token": " calm", "logprob": math.log(0.8)},
            {"token": ",", "logprob": -0.00001},
        ]
    )
    assert tally.count == 2
    assert tally.certainty() == pytest.approx(math.sqrt(0.5 * 0.8), abs=1e-4)


def test_tally_accumulates_across_answers_and_ignores_junk() -> None:
    tally = LogprobTally()
    tally.add([{"token": "a", "logprob": math.log(0.9)}])
    tally.add([{"token": "b", "logprob": math.log(0.1)}, {"token": "c"}, {"logprob": -1.0}])
    tally.add([{"token": "d", "logprob": float("-inf")}])
    assert tally.count == 2
    assert tally.certainty() == pytest.approx(0.3, abs=1e-4)


def test_no_logprobs_means_no_certainty() -> None:
    assert LogprobTally().certainty() is None


@pytest.mark.parametrize(
    ("token", "content"), [("{", False), ('":', False), ("  ", False), ("0", True), (" yes", True)]
)
def test_content_tokens(token: str, content: bool) -> None:
    assert is_content_token(token) is content


def judge(kind: str, messages: list[int], agree: bool) -> PatternJudgement:
    return PatternJudgement.model_validate(
        {"type": kind, "messages": messages, "agree": agree, "confidence": 0.9}
    )


def test_agreement_is_the_share_of_judgements_matching_the_local_analysis() -> None:
    local = [
        {"type": "question_answer", "messages": [0, 1]},
        {"type": "correction", "messages": [4, 5]},
    ]
    judgements = [
        judge("question_answer", [0, 1], True),  # confirms a local pattern
        judge("correction", [5], False),  # rejects a local pattern
        judge("disagreement", [7, 8], True),  # a pattern the local analysis did not find
        judge("agreement", [2, 3], False),  # rejects one it did not find either
    ]
    assert agreement(judgements, local) == 0.5
    assert agreement([], local) is None
