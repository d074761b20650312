"""The reply model: disagreement and agreement the phrase cues miss (decision 0016)."""

from __future__ import annotations

import numpy as np

from app.analysis import dialectic, reply_model
from app.analysis.dialectic import analyze_dialectic
from benchmarks import train_reply_model
from benchmarks.evaluate import QUALITY_DIR
from tests.unit.test_analysis_quality import FEE_OBJECTION, FEE_PROPOSAL, chat, responses

ARGUMENT = (
    ("Lee", "The club should raise the fees, everyone else has."),
    ("Kim", "That's nonsense, half the clubs froze them."),
)


def test_a_rebuttal_without_marker_words_is_a_disagreement_in_an_argument() -> None:
    fees = analyze_dialectic(
        chat(
            *ARGUMENT,
            FEE_PROPOSAL,
            FEE_OBJECTION,
        )
    )
    # Lee's restated proposal after "That's nonsense" may count too: holding one's ground.
    assert {1, 3} <= responses(fees, "disagreement") <= {1, 2, 3}


def test_a_cooperative_chat_gets_no_disagreement_from_the_model() -> None:
    for question, reply in [
        (
            "Hi, my order 4512 has not arrived yet, it was due on Friday.",
            "I'm sorry to hear that. I can see order 4512 was shipped on Monday, but the "
            "courier has not scanned it yet.",
        ),
        (
            "I'm making lasagne for 6 people, how many sheets of pasta?",
            "For 6 people I'd use about 12 sheets of pasta, three layers of four sheets.",
        ),
        (
            "The staging server is down again.",
            "The staging server went down at 9:40 when the disk filled up; ops are clearing "
            "the logs and restarting it.",
        ),
    ]:
        found = analyze_dialectic(chat(("Ana", question), ("Ben", reply)))
        assert responses(found, "disagreement") == set(), reply
        assert not [s for s in found if s["type"] == "thesis_antithesis_synthesis"]


def test_an_acceptance_without_marker_words_is_not_a_disagreement() -> None:
    found = analyze_dialectic(
        chat(
            ("Ana", "Could we move the meeting to Thursday at 3?"),
            ("Ben", "Thursday at 3 works for me, I'll move the invite."),
        )
    )
    # Refitted on 525 development conversations, the model puts this acceptance at
    # p = 0.34, just under AGREEMENT_FROM (0.35): a known miss (decision 0016).
    assert responses(found, "agreement") <= {1}
    assert responses(found, "disagreement") == set()


def test_a_found_reaction_names_its_target_and_stays_below_a_key_moment() -> None:
    found = analyze_dialectic(
        chat(
            *ARGUMENT,
            FEE_PROPOSAL,
            FEE_OBJECTION,
        )
    )
    (reaction,) = [s for s in found if s["type"] == "disagreement" and s["messages"] == [2, 3]]
    assert reaction["roles"] == {"target": 2, "response": 3}
    assert reply_model.DISAGREEMENT_FROM <= reaction["strength"] <= dialectic._MODELLED_STRENGTH


def test_long_conversations_use_the_cues_alone(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rows = (
        *ARGUMENT,
        FEE_PROPOSAL,
        FEE_OBJECTION,
    )
    monkeypatch.setattr(dialectic, "_MODELLED_MAX", 3)
    assert responses(analyze_dialectic(chat(*rows)), "disagreement") == {1}


def test_the_weights_in_the_module_are_what_the_training_script_fits() -> None:
    x, disagree, agree, _ = train_reply_model.examples(QUALITY_DIR / "dev")
    assert x.shape[1] == len(reply_model.FEATURES)
    for y, weights in (
        (disagree, reply_model.DISAGREEMENT_WEIGHTS),
        (agree, reply_model.AGREEMENT_WEIGHTS),
    ):
        fitted = train_reply_model.fit(x, y)
        np.testing.assert_allclose(fitted, weights, atol=0.006)
