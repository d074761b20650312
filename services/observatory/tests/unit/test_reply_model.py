"""The reply model: disagreement and agreement the phrase cues miss (decision 0016)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.analysis import dialectic, reply_model, tone_model
from app.analysis.dialectic import analyze_dialectic
from app.core.cancellation import NEVER
from benchmarks import crossfit, train_reply_model
from benchmarks.evaluate import QUALITY_DIR, load_fixtures, parse_fixture
from tests.factories import weights_refusal
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


LAUNCH = (
    ("Ana", "We should move the launch to March, the team is exhausted."),
    ("Ben", "Moving to March throws away the trade show, the only press window we get all year."),
    ("Ana", "That press window is worth nothing if the app crashes on stage."),
)


def _launch_readings() -> list[float]:
    """How sure the model is that each reply of LAUNCH pushes back on the one before."""
    turns = _turns(LAUNCH)
    reader = dialectic.reply_reader(turns, [])
    return [reader.probabilities(p, p - 1)[0] for p in (1, 2)]


def test_an_argument_without_any_cue_is_found_from_two_sure_replies() -> None:
    assert not [s for s in dialectic._reactions(_turns(LAUNCH), NEVER)]  # no cue at all
    # Both replies lean to pushback; whether they are sure enough to open the guard is the
    # shipped threshold's call, so the mechanism is checked on either side of it.
    readings = _launch_readings()
    assert min(readings) >= reply_model.DISAGREEMENT_FROM
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reply_model, "ARGUMENT_FROM", min(readings) - 0.01)
        assert responses(analyze_dialectic(chat(*LAUNCH)), "disagreement") == {1, 2}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reply_model, "ARGUMENT_FROM", min(readings) + 0.01)
        assert responses(analyze_dialectic(chat(*LAUNCH)), "disagreement") == set()


def test_one_sure_reply_does_not_make_an_argument(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(reply_model, "ARGUMENT_FROM", min(_launch_readings()) - 0.01)
    monkeypatch.setattr(reply_model, "ARGUMENT_REPLIES", 3)
    assert responses(analyze_dialectic(chat(*LAUNCH)), "disagreement") == set()


@pytest.mark.parametrize(
    "rows",
    [
        # Comfort that denies a self-criticism reads to the model like a rebuttal (p 0.8).
        (
            ("Jay", "I'm useless, I burned the dinner for her parents."),
            ("Max", "You're not useless. One burnt lasagne doesn't cancel out the rest."),
            ("Jay", "Still, they'll remember it."),
            ("Max", "They'll remember you laughing about it. Order pizza and make it a story."),
        ),
        (
            ("User", "I think I broke my laptop, I spilled a bit of water on the keyboard."),
            (
                "Assistant",
                "You probably haven't broken it. Turn it off right away, unplug it, and "
                "leave it upside down to dry for 48 hours before switching it on.",
            ),
            ("User", "Done. Fingers crossed."),
            ("Assistant", "Most laptops survive a small spill if they're dried like that."),
        ),
        # Answering comfort ("I know, but I keep replaying…") argues with nobody, even
        # when the comfort opened with a word of assent.
        (
            ("Sam", "I should have called him that night. I feel awful."),
            ("Jo", "Exactly. Nobody could have known."),
            ("Sam", "I know, but I keep replaying the last week. We were supposed to go away."),
            ("Jo", "You're not a bad brother, you're a grieving one."),
        ),
    ],
)
def test_comfort_and_reassurance_make_no_argument(rows: tuple[tuple[str, str], ...]) -> None:
    assert responses(analyze_dialectic(chat(*rows)), "disagreement") == set()


def test_comfort_that_denies_a_self_criticism_is_no_disagreement_inside_an_argument() -> None:
    rows = (
        ("Jay", "I burned the lasagne for her parents. I'm useless."),
        ("Max", "You're not useless. One burnt dinner doesn't cancel out the rest."),
        ("Jay", "I'm a terrible boyfriend, I should have ordered in."),
        ("Max", "You aren't a terrible boyfriend, you were cooking for six after a shift."),
        ("Lou", "Honestly that's nonsense, ordering in for her parents would have been worse."),
        ("Max", "No, it wouldn't. Nobody minds a takeaway."),
    )
    found = analyze_dialectic(chat(*rows))
    assert responses(found, "disagreement") & {4, 5}  # the argument is there
    assert not responses(found, "disagreement") & {1, 3}


def test_denying_an_apology_is_an_accusation_not_comfort() -> None:
    rows = (
        ("Ana", "Your report had the wrong figures again."),
        ("Ben", "They were right when I sent them."),
        ("Ana", "No, the Q3 column was off by a million."),
        ("Ben", "Fine. I'm sorry."),
        ("Ana", "You're not sorry, you just don't check your work."),
        ("Ben", "I do check my work, the source data was wrong."),
    )
    assert {4, 5} <= responses(analyze_dialectic(chat(*rows)), "disagreement")


def test_which_denials_console() -> None:
    def consoles(blame: str, reply: str) -> bool:
        turns = _turns((("A", blame), ("B", reply)))
        return dialectic._consoles(turns[1], turns[0])

    assert consoles("Sorry, I'm so useless at this.", "You're not useless, it's a hard level.")
    assert consoles(
        "I'm a terrible friend.", "Hey, you're not the problem and you're not terrible."
    )
    assert not consoles("I'm sorry.", "You're not sorry.")
    assert not consoles("I'm useless.", "You're not useless, you never test anything.")
    assert not consoles("I'm right about this.", "You're not right.")


@pytest.mark.parametrize(
    ("apology", "comfort"),
    [
        (
            "I'm so sorry I missed your recital, I feel awful.",
            "No, it wasn't your fault, the train was cancelled.",
        ),
        (
            "I ruined your birthday, I'm so sorry.",
            "Nobody could have known the restaurant would close.",
        ),
    ],
)
def test_comfort_after_an_apology_about_your_things_is_no_disagreement(
    apology: str, comfort: str
) -> None:
    rows = (
        ("Kai", apology),
        ("Mia", comfort),
        ("Kai", "I know, but I should have taken the earlier one."),
        ("Mia", "There'll be another one in June, come to that one."),
    )
    assert responses(analyze_dialectic(chat(*rows)), "disagreement") == set()


def test_a_defence_against_blame_is_no_consolation() -> None:
    found = analyze_dialectic(
        chat(
            ("Ops", "I'm telling you, your team's deploy took down checkout last night."),
            (
                "Dev",
                "Nobody could have known, the payment vendor changed their API without notice.",
            ),
            (
                "Ops",
                "Not without notice. It was in their changelog for three weeks, and you signed off.",
            ),
            (
                "Dev",
                "We get forty changelogs a week. Expecting us to read every line is unrealistic.",
            ),
        )
    )
    assert {1, 2} <= responses(found, "disagreement")
    found = analyze_dialectic(
        chat(
            ("Ops", "I can't believe you deployed on a Friday again and took checkout down."),
            (
                "Dev",
                "Nobody could have known, the payment vendor changed their API without notice.",
            ),
            ("Ops", "Not without notice. It was in their changelog for three weeks."),
        )
    )
    assert 1 in responses(found, "disagreement")


def _turns(rows: tuple[tuple[str, str], ...]) -> list[dialectic._Turn]:
    return dialectic.read_turns(chat(*rows))


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
    assert responses(found, "agreement") == {1}
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


def test_the_shipped_weights_are_what_the_development_part_fits() -> None:
    data = train_reply_model.examples(QUALITY_DIR / "dev")
    assert data.dense.shape[1] == len(reply_model.FEATURES)
    document, figures = train_reply_model.weights_document(data)
    shipped = json.loads(reply_model.WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert shipped["features"] == list(reply_model.FEATURES)
    for kind in reply_model.KINDS:
        fitted = document[kind]
        assert isinstance(fitted, dict)
        assert shipped[kind]["dense"] == pytest.approx(fitted["dense"], abs=2e-3), kind
        words = shipped[kind]["words"]
        # A word near the pruning edge may fall either side of it on another machine.
        for name in set(fitted["words"]) ^ set(words):
            assert abs(fitted["words"].get(name) or words[name]) < 5e-3, name
        for name in set(fitted["words"]) & set(words):
            assert words[name] == pytest.approx(fitted["words"][name], abs=2e-3), name
        # Retrain with `uv run python benchmarks/train_reply_model.py --write` when dev
        # changes. Held out, the model must add to what the cues find.
        assert figures[f"{kind}_f1_cross_validated"] > figures[f"{kind}_cues_f1"] + 0.1


def test_the_service_reads_the_weights_the_trainer_wrote() -> None:
    """The reader's probabilities (word sums kept per message, as reply and as target)
    against the trainer's own feature matrix and the weights document as written."""
    shipped = json.loads(reply_model.WEIGHTS_FILE.read_text(encoding="utf-8"))
    data = train_reply_model.examples(QUALITY_DIR / "dev")
    rows = [i for i, name in enumerate(data.names) if name[0] in "ab"]
    read = np.array(_read_all("ab"))
    for kind, column in (("disagreement", 0), ("agreement", 1)):
        vocab = sorted(shipped[kind]["words"])
        x = train_reply_model.matrix(data.dense[rows], [data.words[i] for i in rows], vocab)
        w = np.r_[shipped[kind]["dense"], [shipped[kind]["words"][n] for n in vocab]]
        expected = 1.0 / (1.0 + np.exp(-(x @ w)))
        np.testing.assert_allclose(read[:, column], expected, atol=1e-9)


def _read_all(writers: str) -> list[tuple[float, float]]:
    """The service's probabilities for every reply with a target of the dev
    conversations of ``writers``, in the trainer's order."""
    found: list[tuple[float, float]] = []
    for fixture in load_fixtures(QUALITY_DIR / "dev"):
        if fixture.name[0] not in writers:
            continue
        turns = dialectic.read_turns(parse_fixture(fixture))
        reader = dialectic.reply_reader(turns, dialectic._reactions(turns, NEVER))
        for position in range(len(turns)):
            target = dialectic._target(turns, position)
            if target is not None:
                found.append(reader.probabilities(position, target))
    return found


def test_the_cross_fitted_figures_leave_the_shipped_weights_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    part = tmp_path / "dev"
    part.mkdir()
    for path in sorted((QUALITY_DIR / "dev").glob("[ab]_*.json")):
        (part / path.name).symlink_to(path)
    shipped = reply_model.WEIGHTS_FILE, tone_model.WEIGHTS_FILE
    scores, misses = crossfit.crossfitted(part, cache=tmp_path / "cache")
    assert shipped == (reply_model.WEIGHTS_FILE, tone_model.WEIGHTS_FILE)
    written = json.loads(shipped[0].read_text(encoding="utf-8"))
    assert reply_model.models()["disagreement"].dense == tuple(written["disagreement"]["dense"])
    written = json.loads(shipped[1].read_text(encoding="utf-8"))
    assert tone_model.weights().bias == tuple(written["bias"])
    disagreement = scores["disagreement_f1"]
    assert disagreement is not None and 0.0 < disagreement < 1.0
    assert misses and set(misses) <= {
        json.loads(p.read_text(encoding="utf-8"))["name"] for p in part.glob("*.json")
    }
    # Every fold's weights were fitted without that fold: one fold's file differs.
    folds = sorted((tmp_path / "cache").glob("*/reply*.json"))
    assert len(folds) == crossfit.FOLDS
    assert len({f.read_text(encoding="utf-8") for f in folds}) == crossfit.FOLDS


def test_reassurance_in_grief_is_no_argument() -> None:
    found = analyze_dialectic(
        chat(
            ("Sam", "I can't stop thinking about him. I wasn't even there when it happened."),
            (
                "Jo",
                "You don't have to stop thinking about him. It's not your fault you weren't "
                "there, nobody could have known.",
            ),
            ("Sam", "I know, but I keep replaying the last week. We were supposed to go away."),
            (
                "Jo",
                "That's not something you need to carry alone. Those weeks with him were real.",
            ),
        )
    )
    assert responses(found, "disagreement") == set()


def test_words_of_any_script_are_whole_words() -> None:
    turns = _turns((("Jonas", "Wir treffen uns für das Spiel."), ("Anna", "Ich bin krank.")))
    reader = dialectic.reply_reader(turns, [])
    assert reader.tokens(0) == ["wir", "treffen", "uns", "für", "das", "spiel"]
    assert "t für" in reader.words(1, 0)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("", "unreadable"),
        ("{not json", "unreadable"),
        ('{"features": []}', "other features"),
        ("nan", "within"),
        ("huge", "within"),
    ],
)
def test_a_broken_weights_file_is_refused_by_name(tmp_path, monkeypatch, text, refused) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "reply_model.json"
    if text in ("nan", "huge"):
        shipped = json.loads(reply_model.WEIGHTS_FILE.read_text(encoding="utf-8"))
        shipped["agreement"]["dense"][3] = float("nan")
        if text == "huge":  # finite, but a sum of two overflows
            shipped["agreement"]["dense"][3] = 0.0
            shipped["agreement"]["words"]["w lunch"] = 1e308
        text = json.dumps(shipped)
    if text:
        broken.write_text(text, encoding="utf-8")
    message = weights_refusal(monkeypatch, reply_model, reply_model.models, broken)
    assert refused in message and str(broken) in message and "train_reply_model.py" in message
