import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SentimentIntensityAnalyzer

from app.analysis.sentiment import (
    VADER_LEXICON,
    _vader_compound,
    analyze_sentiment,
    rule_score,
)
from app.conversation import Conversation, Message
from app.core.cancellation import AnalysisCancelled, CancelToken

# Single messages are read here by the lexicon rules alone (``rule_score``); what the
# trained model makes of them, within the rules' bounds, is tested in test_tone_model.py.


def conversation(
    turns: list[tuple[str, str]], start: datetime | None = None, gap: float = 0
) -> Conversation:
    return Conversation(
        messages=tuple(
            Message(
                index=i,
                speaker=speaker,
                role="human" if speaker in ("user", "ana", "ben") else "ai",
                text=text,
                timestamp=None if start is None else start + timedelta(seconds=gap * i),
            )
            for i, (speaker, text) in enumerate(turns)
        )
    )


FRUSTRATED_THEN_SATISFIED = [
    (
        "user",
        "I've been fighting this for hours and I'm really frustrated. My script crashes every time:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/app/main.py", line 42, in <module>\n'
        "    main()\n"
        '  File "/app/main.py", line 12, in main\n'
        "    data = json.loads(raw)\n"
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    ),
    ("ai", "That error means `raw` is empty or not JSON. Can you print it before parsing?"),
    (
        "user",
        "This is so annoying. Here is what I get:\n"
        "$ curl -s http://localhost:8000/data\n"
        "FATAL ERROR: connection refused\n"
        "Killed\n\n"
        "Nothing works and I hate wasting my whole day on this.",
    ),
    ("ai", "Connection refused means nothing listens on port 8000. Is the server running?"),
    ("user", "Ugh, still broken. Same stupid error."),
    ("ai", "Let's check which port it binds to. Run `ss -ltnp` and look for python."),
    ("user", "Oh wait, it was on 8080. I changed the URL."),
    ("ai", "Great, then update the client to use 8080 and parse again."),
    ("user", "That fixed it! Thank you so much, this is perfect :)"),
    ("ai", "Glad it works now! Happy to help."),
    ("user", "Awesome, really appreciate your patience. Everything runs smoothly now."),
]


# Examples published with VADER (Hutto & Gilbert) and its README, plus conversational ones.
REFERENCE_SENTENCES = [
    "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "The book was good.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!",
    "Other sentiment analysis tools can be quite bad.",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the most compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Not such a badass after all.",
    "no problem at all",
    "No, that's not good",
    "I am so happy😀!!",
    "yeah right, that's the bomb",
    "It is kind of bad?? really??",
    "Thanks so much, that fixed it! :)",
    "I hate this, it keeps failing. WHY?!",
    "ok. fine, no. no good",
]


@pytest.mark.parametrize("sentence", REFERENCE_SENTENCES)
def test_scores_equal_vader_on_its_reference_sentences(sentence: str) -> None:
    expected = SentimentIntensityAnalyzer().polarity_scores(sentence)["compound"]
    assert _vader_compound(sentence, faithful=True) == pytest.approx(expected, abs=1e-4)


def test_scores_equal_vader_on_random_sentences_except_its_but_quirk() -> None:
    analyzer = SentimentIntensityAnalyzer()
    rng = random.Random(7)
    lexicon = sorted(VADER_LEXICON)
    pool = [
        *("good", "bad", "great", "terrible", "love", "hate", "ok", "no", "not", "never"),
        *("so", "this", "kind", "of", "least", "at", "very", "without", "doubt", "the"),
        *("shit", "bomb", "yeah", "right", "bad", "ass", "don't", "GOOD", "VERY", "I"),
        *(":)", ":(", "😀", "💔", "ok.", "no,", "wow!", "really?", "Great!", "nor"),
        *sorted(BOOSTER_DICT)[:30],
        *NEGATE[:15],
    ]
    differing = []
    for _ in range(3000):
        size = rng.randint(1, 12)
        tokens = [
            rng.choice(pool) if rng.random() < 0.7 else rng.choice(lexicon) for _ in range(size)
        ]
        sentence = " ".join(tokens) + rng.choice(["", "", "!", "!!!", "??", "?!?!"])
        expected = analyzer.polarity_scores(sentence)["compound"]
        if abs(_vader_compound(sentence, faithful=True) - expected) > 1e-4:
            differing.append(sentence)
    # VADER re-weights around "but" through list.index, which picks the wrong word when
    # two carry the same value; those are the only sentences allowed to differ.
    assert all(" but " in f" {s.lower()} " for s in differing), differing


def test_negation_keeps_not_bad_at_all_from_reading_negative() -> None:
    assert rule_score("Not bad at all") > 0.05
    assert rule_score("This is not good.") < -0.05


def test_emoticons_and_emoji_carry_tone() -> None:
    assert rule_score(":)") > 0.3
    assert rule_score("the build again :(") < -0.3
    assert rule_score("Deployed it 😀") > 0.3
    assert rule_score("Deployed it 😞") < -0.3


def test_pasted_logs_and_code_are_not_the_speakers_tone() -> None:
    log = "```\n2026-03-02 10:15:03 FATAL ERROR worker killed\nTypeError: cannot read property 'x'\n```"
    assert rule_score(log) is None
    assert rule_score(f"Here is the log:\n{log}\nThanks a lot for looking, much appreciated!") > 0.3
    assert rule_score("FATAL ERROR: out of memory\nKilled") is None


def test_quoted_text_weighs_less_than_the_speakers_own_words() -> None:
    quoted = rule_score("> This is terrible, awful and broken.\nI see, thanks, that helps.")
    assert quoted is not None and quoted > 0


def test_long_messages_are_scored_sentence_by_sentence() -> None:
    neutral = " ".join(f"Step {i} copies the file into the build folder." for i in range(12))
    # One heated sentence in a long explanation is diluted but not erased.
    score = rule_score(neutral + " This is absolutely horrible.")
    assert score is not None and -0.3 < score < -0.02


def test_frustrated_user_with_traceback_who_ends_satisfied() -> None:
    result = analyze_sentiment(conversation(FRUSTRATED_THEN_SATISFIED))
    assert result["overall_tone"] in ("mixed", "positive")
    assert result["shifts"], "the change of mood must be reported"
    shift = result["shifts"][0]
    assert shift["to"] == "positive"
    assert shift["from"] in ("negative", "neutral")
    assert 5 <= shift["index"] <= 9
    trajectory = result["trajectory"]
    assert [t["index"] for t in trajectory] == list(range(len(FRUSTRATED_THEN_SATISFIED)))
    assert trajectory[-1]["label"] == "positive"
    assert trajectory[0]["label"] == "negative"
    # The assistant's replies explain errors; they are not angry.
    assert result["by_speaker"]["ai"]["tone"] != "negative"


def test_steady_mood_has_no_shifts() -> None:
    turns = [
        ("user", "Thanks for the walkthrough yesterday, the new dashboard looks great."),
        ("ai", "Glad you like it! The charts load faster now too."),
        ("user", "Nice. Could we add a filter by region?"),
        ("ai", "Sure, a region dropdown is easy to add. I'll put it next to the date picker."),
        ("user", "Perfect, that would help the sales team a lot."),
        ("ai", "Done. The dropdown lists every region and remembers the last choice."),
        ("user", "Works nicely, thank you!"),
        ("ai", "You're welcome, happy to help."),
    ]
    result = analyze_sentiment(conversation(turns))
    assert result["shifts"] == []
    assert result["overall_tone"] == "positive"
    assert result["by_speaker"] == {
        "user": {"score": result["by_speaker"]["user"]["score"], "tone": "positive", "messages": 4},
        "ai": {"score": result["by_speaker"]["ai"]["score"], "tone": "positive", "messages": 4},
    }


def test_calming_down_to_practical_questions_is_not_a_shift() -> None:
    # The joy ends; no new mood begins. Readers mark a shift where the tone turns into a
    # feeling, not where it settles into logistics.
    turns = [
        ("ana", "We got the flat!!! I'm so happy, this is the best news all year 🎉"),
        ("ben", "AMAZING. I'm thrilled for you both, you deserve it!"),
        ("ana", "Thank you!! Honestly I could cry, it's perfect"),
        ("ben", "When do you get the keys?"),
        ("ana", "On the 3rd, at 10am at the agency on Mill Road."),
        ("ben", "Is parking included in the rent?"),
        ("ana", "One space, number 14, behind the building."),
    ]
    result = analyze_sentiment(conversation(turns))
    assert [t["label"] for t in result["trajectory"][3:]] == ["neutral"] * 4
    assert result["shifts"] == []
    assert result["overall_tone"] == "positive"


def test_a_heated_argument_is_mixed_or_negative_and_adversarial() -> None:
    turns = [
        ("ana", "Your plan is useless and you clearly did not read the spec."),
        ("ben", "That's wrong. I read it twice, you are just being rude."),
        ("ana", "You are an idiot if you think this design will scale."),
        ("ben", "I disagree, and your insults are pathetic."),
        ("ana", "Whatever. Your code is garbage."),
        ("ben", "You're wrong and you know it."),
    ]
    result = analyze_sentiment(conversation(turns))
    assert result["overall_tone"] == "negative"
    assert result["collaboration"]["label"] == "adversarial"
    assert result["collaboration"]["signals"]["hostile_messages"] >= 3


def test_collaboration_uses_the_dialectic_findings_when_given() -> None:
    turns = [
        ("ana", "We could cache the results per user."),
        ("ben", "Good point, and building on that we could expire the cache hourly."),
        ("ana", "Yes, and hourly expiry keeps the cache small."),
        ("ben", "Exactly, hourly expiry it is."),
    ]
    dialectic = [
        {
            "type": "agreement",
            "messages": [0, 1],
            "speakers": ["ana", "ben"],
            "excerpt": "",
            "strength": 0.8,
        },
        {
            "type": "agreement",
            "messages": [2, 3],
            "speakers": ["ana", "ben"],
            "excerpt": "",
            "strength": 0.8,
        },
        {
            "type": "agreement",
            "messages": [1, 2],
            "speakers": ["ben", "ana"],
            "excerpt": "",
            "strength": 0.7,
        },
    ]
    with_findings = analyze_sentiment(conversation(turns), dialectic)
    assert with_findings["collaboration"]["label"] == "collaborative"
    assert with_findings["collaboration"]["signals"]["source"] == "dialectic"
    assert with_findings["collaboration"]["signals"]["agreements"] == 3
    lexical = analyze_sentiment(conversation(turns), None)
    assert lexical["collaboration"]["signals"]["source"] == "lexical"
    assert lexical["collaboration"]["signals"]["building_cues"] >= 2
    assert lexical["collaboration"]["label"] == "collaborative"
    disagreeing = [
        {
            "type": "disagreement",
            "messages": [i, i + 1],
            "speakers": [],
            "excerpt": "",
            "strength": 0.9,
        }
        for i in range(3)
    ]
    assert (
        analyze_sentiment(conversation(turns), disagreeing)["collaboration"]["score"]
        < (with_findings["collaboration"]["score"])
    )


def test_engagement_reflects_length_questions_latency_and_overlap() -> None:
    lively = [
        ("user", "How does the connection pool decide when to open a new connection to Postgres?"),
        (
            "ai",
            "The pool opens a new connection when every pooled connection is busy and the pool is below its maximum size. Do you see timeouts?",
        ),
        (
            "user",
            "Yes, timeouts when the pool reaches its maximum size. Should I raise the maximum size or shorten the queries?",
        ),
        (
            "ai",
            "Shorten the slow queries first; a bigger pool only moves the timeouts to Postgres. Which queries hold connections longest?",
        ),
        (
            "user",
            "The report queries hold connections for minutes. Can the report queries use a separate pool?",
        ),
        (
            "ai",
            "Yes, a separate pool for report queries keeps the fast queries from waiting. Want an example configuration?",
        ),
    ]
    terse = [("user", "ok"), ("ai", "Fine."), ("user", "k"), ("ai", "Noted.")]
    start = datetime(2026, 3, 2, 10, 0, 0)
    high = analyze_sentiment(conversation(lively, start, gap=30))
    low = analyze_sentiment(conversation(terse, start, gap=7200))
    assert high["engagement_level"] == "high"
    assert low["engagement_level"] == "low"
    assert high["engagement_signals"]["median_response_seconds"] == 30.0
    assert low["engagement_signals"]["median_response_seconds"] == 7200.0
    assert (
        high["engagement_signals"]["lexical_overlap"] > low["engagement_signals"]["lexical_overlap"]
    )


def test_result_is_deterministic_json_with_rounded_floats_and_valid_indices() -> None:
    conv = conversation(FRUSTRATED_THEN_SATISFIED)
    first = analyze_sentiment(conv)
    assert first == analyze_sentiment(conv)
    text = json.dumps(first)
    assert json.loads(text) == first
    n = len(FRUSTRATED_THEN_SATISFIED)
    for point in first["trajectory"]:
        assert -1 <= point["score"] <= 1
        assert point["score"] == round(point["score"], 4)
    assert all(0 <= s["index"] < n for s in first["shifts"])
    assert -1 <= first["score"] <= 1
    assert -1 <= first["collaboration"]["score"] <= 1


def test_empty_and_single_message_conversations() -> None:
    empty = analyze_sentiment(Conversation(messages=()))
    assert (
        empty["trajectory"] == [] and empty["shifts"] == [] and empty["overall_tone"] == "neutral"
    )
    one = analyze_sentiment(conversation([("user", "Thanks, this is great!")]))
    assert one["overall_tone"] == "positive"
    assert one["engagement_level"] == "low"


def test_cancelled_token_stops_the_analysis() -> None:
    conv = conversation([("user", "This works great, thank you!")] * 20_000)
    token = CancelToken()
    token.cancel()
    with pytest.raises(AnalysisCancelled):
        analyze_sentiment(conv, None, token)
    with pytest.raises(AnalysisCancelled):
        analyze_sentiment(conv, None, CancelToken(timeout=0.001))


def test_like_as_a_preposition_carries_no_tone() -> None:
    assert rule_score("Why are tides in places like the Bay of Fundy so high?") == 0
    assert rule_score("It looks like a bug in the parser.") == 0
    assert rule_score("I like this design.") > 0.3
    assert rule_score("I don't like this design.") < -0.2


def test_resolution_words_read_as_positive() -> None:
    assert rule_score("Added the header and it works!") >= 0.15
    assert rule_score("That fixed it.") > 0.3
    assert rule_score("It still isn't fixed.") < -0.2
    # Accepting a date or a plan is agreement, not delight.
    for accepted in ("Works for me.", "29th works", "Sunday works for us"):
        assert abs(rule_score(accepted)) < 0.15, accepted


def test_questions_and_sympathy_are_not_hostility() -> None:
    turns = [
        (
            "ana",
            "Thanks for coming in. How do you handle disagreements and conflicts with teammates?",
        ),
        ("ben", "I turn the disagreement into an experiment we can measure together."),
        (
            "ana",
            "I'm sorry your last team was so difficult and stressful, that sounds awful for you.",
        ),
        ("ben", "It was hard, but I learned a lot. Thank you for asking."),
    ]
    result = analyze_sentiment(conversation(turns))
    assert result["collaboration"]["signals"]["hostile_messages"] == 0
    assert result["collaboration"]["label"] != "adversarial"


def test_plain_factual_question_and_answer_is_neutral_not_collaborative() -> None:
    turns = [
        ("user", "What causes the tides?"),
        ("ai", "Mainly the Moon's gravity, which pulls harder on the near side of the Earth."),
        ("user", "Why are there two high tides a day?"),
        ("ai", "The Earth rotates through two bulges of water, one on each side."),
        ("user", "Does the Sun affect the tides too?"),
        ("ai", "Yes, with about half the Moon's effect; aligned they make spring tides."),
    ]
    result = analyze_sentiment(conversation(turns))
    assert result["collaboration"]["label"] == "neutral"
    assert result["overall_tone"] == "neutral"
    warm = [
        ("user", "Could we plan the launch party together? I'd love your help."),
        ("ai", "Happy to help! Let's start with the guest list and a date."),
        ("user", "Great idea. We could invite the beta testers too."),
        ("ai", "Perfect, the beta testers will love that. Shall we book the rooftop?"),
    ]
    assert analyze_sentiment(conversation(warm))["collaboration"]["label"] == "collaborative"


TONE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tone"


def test_rhetorical_and_indignant_questions_read_as_negative() -> None:
    for text in (
        "Was I supposed to guess which version you meant?",
        "What's the point of deleting anything if it just comes back?",
        "Why does every single update move the settings around?",
        "Is that progress? Really?",
    ):
        score = rule_score(text)
        assert score is not None and score < -0.05, text
    # Genuine questions with the same words stay neutral.
    assert rule_score("Why does ice float on water?") == 0
    assert rule_score("What is the point of intersection of the two lines?") == 0


def test_grief_and_exasperation_idioms_read_as_negative() -> None:
    assert rule_score("My dad passed away last Tuesday.") < -0.1
    assert rule_score("I feel like I'm falling apart.") < -0.1
    assert rule_score("I'm so sick of this pipeline.") < -0.1
    assert rule_score("The train was late as usual.") < -0.1
    # Sadness words weigh about as much as people feel them.
    assert rule_score("I miss him.") < -0.2


def test_courtesy_and_one_word_acknowledgements_weigh_less_than_feeling() -> None:
    polite = rule_score("Great, thanks.")
    delighted = rule_score("This is great, I love it!")
    assert polite is not None and delighted is not None
    # Plain VADER reads "Great, thanks." as 0.79, nearly as warm as real delight.
    assert polite < _vader_compound("Great, thanks.", faithful=True) - 0.2
    assert polite < delighted - 0.3
    # "Oh, brilliant." after a mistake is not praise: it is sarcasm.
    assert rule_score("Oh, brilliant. So it's my fault now.") <= -0.15


def test_a_problem_that_is_solved_is_not_a_complaint() -> None:
    assert rule_score("It fixes the onboarding problem.") == 0
    assert rule_score("The new index solves the slow query problem.") > 0
    assert rule_score("The onboarding problem is awful.") < -0.3


def test_an_assistants_courtesy_does_not_outweigh_the_users_complaint() -> None:
    turns = [
        ("user", "Why does every single update move the settings around? Who asked for this?"),
        ("ai", "Thanks for reaching out! The update grouped the settings. Happy to help."),
        ("user", "Bluetooth used to be one tap away. Is that progress? Really?"),
        ("ai", "Great question. You can add it back to the quick panel, please try that."),
        ("user", "What's the point of deleting apps if they just come back?"),
        ("ai", "Thank you for the feedback! System apps are restored by design."),
    ]
    result = analyze_sentiment(conversation(turns))
    assert result["by_speaker"]["user"]["tone"] == "negative"
    assert result["overall_tone"] in ("negative", "mixed")


def test_relief_after_a_failing_deploy_is_a_shift_and_makes_the_tone_mixed() -> None:
    turns = [
        ("user", "The deploy failed again. This pipeline is driving me insane."),
        ("ai", "ImagePullBackOff means the cluster can't pull the image."),
        ("user", "Ugh, I'm so sick of this. Why is this so hard?"),
        ("ai", "Copy the pull secret into the new namespace and apply it."),
        ("user", "Applied. Redeploying now."),
        ("user", "Oh thank god, pods are running and the health checks pass!"),
        ("ai", "Good to hear, that's great."),
        ("user", "Awesome, you saved my evening."),
    ]
    result = analyze_sentiment(conversation(turns))
    assert [s["index"] for s in result["shifts"]] and 4 <= result["shifts"][0]["index"] <= 6
    assert result["shifts"][0]["to"] == "positive"
    assert result["overall_tone"] == "mixed"


def _tone_fixture_accuracy() -> tuple[int, int]:
    hits = total = 0
    for path in sorted(TONE_FIXTURES.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        turns = [(m["speaker"], m["text"]) for m in raw["messages"]]
        conv = Conversation(
            messages=tuple(
                Message(index=i, speaker=m["speaker"], role=m["role"], text=m["text"])
                for i, m in enumerate(raw["messages"])
            )
        )
        assert len(turns) == len(conv.messages)
        expected = raw["labels"]["tone"]
        allowed = expected if isinstance(expected, list) else [expected]
        hits += analyze_sentiment(conv)["overall_tone"] in allowed
        total += 1
    return hits, total


def test_tone_on_the_conversations_written_for_tone_stays_above_its_floor() -> None:
    # Complaints, grief, rants, debates and calm support chats; see tests/fixtures/tone.
    hits, total = _tone_fixture_accuracy()
    assert total >= 10
    assert hits / total >= 0.5
