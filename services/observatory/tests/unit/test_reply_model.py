"""The reply model: disagreement and agreement the phrase cues miss (decision 0016)."""

from __future__ import annotations

import numpy as np

from app.analysis import dialectic, reply_model
from app.analysis.dialectic import analyze_dialectic
from benchmarks import train_reply_model
from benchmarks.evaluate import QUALITY_DIR
from tests.unit.test_analysis_quality import chat, responses


def test_a_rebuttal_without_marker_words_is_a_disagreement() -> None:
    pan = analyze_dialectic(
        chat(
            ("Jess", "the pan from your curry has been in the sink since Sunday. it's Wednesday."),
            ("Ollie", "It's soaking. You can't just scrub burnt rice off the bottom of a pan."),
        )
    )
    assert responses(pan, "disagreement") == {1}
    fees = analyze_dialectic(
        chat(
            ("Lee", "My proposal is that senior membership goes from £120 to £160 next season."),
            (
                "Kim",
                "At £160 I lose half the older siblings of my under-18s who play seniors, "
                "most families are on one income.",
            ),
        )
    )
    assert responses(fees, "disagreement") == {1}


def test_an_acceptance_without_marker_words_is_an_agreement_and_not_a_disagreement() -> None:
    found = analyze_dialectic(
        chat(
            ("Ana", "Could we move the meeting to Thursday at 3?"),
            ("Ben", "Thursday at 3 works for me, I'll move the invite."),
        )
    )
    assert responses(found, "agreement") == {1}
    assert responses(found, "disagreement") == set()


def test_a_found_reaction_names_its_target_and_its_probability_as_strength() -> None:
    found = analyze_dialectic(
        chat(
            ("Jess", "the pan from your curry has been in the sink since Sunday. it's Wednesday."),
            ("Ollie", "It's soaking. You can't just scrub burnt rice off the bottom of a pan."),
        )
    )
    (reaction,) = [s for s in found if s["type"] == "disagreement"]
    assert reaction["roles"] == {"target": 0, "response": 1}
    assert reply_model.DISAGREEMENT_FROM <= reaction["strength"] <= 1.0


def test_long_conversations_use_the_cues_alone(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rows = (
        ("Jess", "the pan from your curry has been in the sink since Sunday. it's Wednesday."),
        ("Ollie", "It's soaking. You can't just scrub burnt rice off the bottom of a pan."),
    )
    monkeypatch.setattr(dialectic, "_MODELLED_MAX", 1)
    assert responses(analyze_dialectic(chat(*rows)), "disagreement") == set()


def test_the_weights_in_the_module_are_what_the_training_script_fits() -> None:
    x, disagree, agree, _ = train_reply_model.examples(QUALITY_DIR / "dev")
    assert x.shape[1] == len(reply_model.FEATURES)
    for y, weights in (
        (disagree, reply_model.DISAGREEMENT_WEIGHTS),
        (agree, reply_model.AGREEMENT_WEIGHTS),
    ):
        fitted = train_reply_model.fit(x, y)
        np.testing.assert_allclose(fitted, weights, atol=0.006)
