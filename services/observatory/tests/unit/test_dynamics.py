import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.analysis.dynamics import analyze_dynamics, count_questions
from app.conversation import Conversation, Message
from app.core.cancellation import AnalysisCancelled, AnalysisTimedOut, CancelToken

SERVICE_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ROLES = {"AI": "ai", "Assistant": "ai", "System": "system"}
VOCABULARY = (
    "index query table cache garden tomato train coast ticket novel chapter twist latency "
    "worker queue thread lock model token vector"
)


def conversation(*rows: tuple) -> Conversation:
    """Rows of (speaker, text) or (speaker, text, seconds after T0); role from the name."""
    messages = []
    for i, (speaker, text, *at) in enumerate(rows):
        timestamp = T0 + timedelta(seconds=at[0]) if at and at[0] is not None else None
        role = ROLES.get(speaker, "human")
        messages.append(
            Message(index=i, speaker=speaker, role=role, text=text, timestamp=timestamp)
        )
    return Conversation(tuple(messages))


def generated(n: int, words: int = 20, speakers: tuple[str, ...] = ("Human", "AI")):
    vocabulary = VOCABULARY.split()
    rows = []
    for i in range(n):
        text = " ".join(vocabulary[(i * 7 + k * 3) % len(vocabulary)] for k in range(words))
        if i % 5 == 0:
            text += ". Can you explain why?"
        rows.append((speakers[i % len(speakers)], text, i * 3 + (i % 4)))
    return conversation(*rows)


# --- a two-party chat ------------------------------------------------------------------------

TWO_PARTY = conversation(
    ("Human", "Hello there, can you help me with my garden?"),
    ("AI", "Of course. Tomatoes need six hours of sunlight every day."),
    ("Human", "Thanks! What about watering"),
    ("AI", "Water them every morning."),
    ("Human", "Different question: which train leaves for the coast tonight?"),
)


def test_two_party_counts_turns_words_and_shares():
    d = analyze_dynamics(TWO_PARTY)
    assert (d["total_turns"], d["human_turns"], d["ai_turns"]) == (5, 3, 2)
    assert d["system_messages"] == 0
    assert d["speaker_turns"] == 5
    # Human 9 + 4 + 9 words, AI 10 + 4 words: 36 words over 5 messages.
    assert d["avg_turn_length"] == 7.2
    assert list(d["speakers"]) == ["Human", "AI"]
    assert d["speakers"]["Human"] == {
        "role": "human",
        "messages": 3,
        "words": 22,
        "characters": 44 + 27 + 61,
        "share": 0.6111,
        "message_share": 0.6,
        "questions_asked": 3,
        "avg_length": 7.3333,
    }
    assert d["speakers"]["AI"] == {
        "role": "ai",
        "messages": 2,
        "words": 14,
        "characters": 57 + 25,
        "share": 0.3889,
        "message_share": 0.4,
        "questions_asked": 0,
        "avg_length": 7.0,
    }


def test_two_party_turn_taking_dominance_and_reciprocity():
    d = analyze_dynamics(TWO_PARTY)
    assert d["turn_taking"] == {
        "alternation_rate": 1.0,
        "longest_run": {"speaker": "Human", "length": 1, "start": 0},
        "mean_run_length": 1.0,
    }
    # Herfindahl (22² + 14²) / 36² = 0.52469, normalised for two speakers: 0.04938.
    assert d["dominance"] == {"speaker": "Human", "share": 0.6111, "index": 0.0494}
    # 0.5 * (1 - 0.04938) + 0.5 * 1.0
    assert d["reciprocity_score"] == 0.9753
    assert d["response_latency"] is None
    assert d["response_latency_skipped"] == 0


def test_two_party_initiative():
    d = analyze_dynamics(TWO_PARTY)
    assert d["initiative"] == {
        "questions_by_speaker": {"Human": 3, "AI": 0},
        # The human's train question shares no content word with the gardening before it.
        # The AI's first message brings six new content words but answers a question, so it
        # stays on the human's topic; the other messages have under five content words.
        "opened_topics_by_speaker": {"Human": 1, "AI": 0},
        "conversation_opener": "Human",
    }


# --- several people, one dominant voice ------------------------------------------------------


def test_three_person_chat_with_a_dominant_voice():
    d = analyze_dynamics(
        conversation(
            ("Ana", "one two three four five six seven eight"),
            ("Ana", "nine ten eleven twelve"),
            ("Ben", "ok sure"),
            ("Ana", "alpha beta gamma delta epsilon zeta"),
            ("AI", "noted, thanks for that"),
        )
    )
    assert (d["total_turns"], d["human_turns"], d["ai_turns"]) == (5, 4, 1)
    assert list(d["speakers"]) == ["Ana", "Ben", "AI"]
    assert [d["speakers"][s]["words"] for s in ("Ana", "Ben", "AI")] == [18, 2, 4]
    assert [d["speakers"][s]["share"] for s in ("Ana", "Ben", "AI")] == [0.75, 0.0833, 0.1667]
    assert d["speakers"]["Ben"]["role"] == "human"
    assert d["speaker_turns"] == 4
    assert d["turn_taking"] == {
        "alternation_rate": 0.75,
        "longest_run": {"speaker": "Ana", "length": 2, "start": 0},
        "mean_run_length": 1.25,
    }
    # Herfindahl 344/576 = 0.59722; (0.59722 - 1/3) / (2/3) = 0.39583.
    assert d["dominance"] == {"speaker": "Ana", "share": 0.75, "index": 0.3958}
    # 0.5 * (1 - 0.39583) + 0.5 * 0.75
    assert d["reciprocity_score"] == 0.6771


def test_dominance_grows_as_one_voice_takes_over():
    balanced = analyze_dynamics(
        conversation(("Ana", "a b c d"), ("Ben", "e f g h"), ("Cy", "i j k l"))
    )
    lopsided = analyze_dynamics(conversation(("Ana", "a b c d " * 20), ("Ben", "e"), ("Cy", "f")))
    assert balanced["dominance"]["index"] == 0.0
    assert balanced["reciprocity_score"] == 1.0
    assert lopsided["dominance"]["speaker"] == "Ana"
    # Shares 80/82, 1/82, 1/82: Herfindahl 6402/6724 = 0.95211, normalised 0.92817.
    assert lopsided["dominance"]["index"] == 0.9282
    assert lopsided["reciprocity_score"] == 0.5359


def test_longest_run_tie_goes_to_the_earliest_run():
    d = analyze_dynamics(
        conversation(("Ana", "x"), ("Ana", "x"), ("Ben", "y"), ("Ben", "y"), ("Ana", "z"))
    )
    assert d["turn_taking"]["longest_run"] == {"speaker": "Ana", "length": 2, "start": 0}


# --- response latency ------------------------------------------------------------------------


def test_response_latency_from_known_delays():
    d = analyze_dynamics(
        conversation(
            ("Human", "first", 0),
            ("AI", "reply", 10),  # AI after 10 s
            ("AI", "more", 15),  # same turn: not a response
            ("Human", "next", 45),  # Human after 30 s (from the AI's last message)
            ("System", "tool ran", 46),  # not a speaker: the AI answers the human at 45
            ("AI", "ok", 47),  # AI after 2 s
            ("Human", "then", 107),  # Human after 60 s
            ("AI", "sure", 147),  # AI after 40 s
            ("Human", "late", 140),  # out of order: -7 s, skipped
            ("AI", "done", 200),  # AI after 60 s
        )
    )
    assert d["response_latency"] == {
        # Human: [30, 60]; p90 = 30 + 0.9 * 30.
        "Human": {"mean": 45.0, "median": 45.0, "p90": 57.0, "count": 2},
        # AI: [2, 10, 40, 60]; median (10 + 40) / 2; p90 at rank 2.7 = 40 + 0.7 * 20.
        "AI": {"mean": 28.0, "median": 25.0, "p90": 54.0, "count": 4},
    }
    assert d["response_latency_skipped"] == 1


def test_response_latency_is_null_with_fewer_than_two_timestamps():
    d = analyze_dynamics(conversation(("Human", "hi", 0), ("AI", "hello"), ("Human", "bye")))
    assert d["response_latency"] is None


def test_response_latency_skips_pairs_without_timestamps():
    d = analyze_dynamics(
        conversation(("Human", "hi", 0), ("AI", "hello"), ("Human", "yes", 20), ("AI", "ok", 25))
    )
    assert d["response_latency"] == {"AI": {"mean": 5.0, "median": 5.0, "p90": 5.0, "count": 1}}


def test_naive_timestamps_are_read_as_utc_next_to_aware_ones():
    naive = Message(1, "AI", "ai", "hello", datetime(2026, 3, 2, 10, 0, 12))
    convo = Conversation((Message(0, "Human", "human", "hi", T0), naive))
    d = analyze_dynamics(convo)
    assert d["response_latency"] == {"AI": {"mean": 12.0, "median": 12.0, "p90": 12.0, "count": 1}}


# --- system messages, one speaker, one message -----------------------------------------------


def test_system_messages_are_left_out_of_everything_but_their_count():
    d = analyze_dynamics(
        conversation(
            ("System", "You are a helpful assistant. Can you answer briefly?"),
            ("Human", "Hi"),
            ("AI", "Hello"),
            ("System", "tool output: 42 results found in the catalogue index database"),
            ("AI", "I found 42 results."),
        )
    )
    assert d["system_messages"] == 2
    assert (d["total_turns"], d["human_turns"], d["ai_turns"]) == (3, 1, 2)
    assert list(d["speakers"]) == ["Human", "AI"]
    assert d["initiative"]["conversation_opener"] == "Human"
    assert d["initiative"]["questions_by_speaker"] == {"Human": 0, "AI": 0}
    # The tool output between the two AI messages does not break the AI's turn.
    assert d["speaker_turns"] == 2
    assert d["turn_taking"]["longest_run"] == {"speaker": "AI", "length": 2, "start": 2}
    assert d["turn_taking"]["alternation_rate"] == 0.5
    assert d["avg_turn_length"] == round((1 + 1 + 4) / 3, 4)


def test_only_system_messages():
    d = analyze_dynamics(conversation(("System", "be brief"), ("System", "tool output")))
    assert d["system_messages"] == 2
    assert d["total_turns"] == 0
    assert d["speakers"] == {}
    assert d["turn_taking"]["longest_run"] is None
    assert d["dominance"] == {"speaker": None, "share": 0.0, "index": 0.0}
    assert d["reciprocity_score"] == 0.0
    json.dumps(d, allow_nan=False)


def test_single_speaker_has_no_reciprocity_and_full_dominance():
    d = analyze_dynamics(
        conversation(("Ana", "First note about the garden", 0), ("Ana", "Second note.", 60))
    )
    assert d["reciprocity_score"] == 0.0
    assert d["dominance"] == {"speaker": "Ana", "share": 1.0, "index": 1.0}
    assert d["turn_taking"] == {
        "alternation_rate": 0.0,
        "longest_run": {"speaker": "Ana", "length": 2, "start": 0},
        "mean_run_length": 2.0,
    }
    assert d["speaker_turns"] == 1
    # Two timestamps but nobody responded to anybody.
    assert d["response_latency"] == {}


def test_one_message():
    d = analyze_dynamics(conversation(("Human", "How do I bake bread?", 0)))
    assert (d["total_turns"], d["human_turns"], d["ai_turns"]) == (1, 1, 0)
    assert d["avg_turn_length"] == 5.0
    assert d["speakers"]["Human"]["questions_asked"] == 1
    assert d["speakers"]["Human"]["share"] == 1.0
    assert d["turn_taking"] == {
        "alternation_rate": 0.0,
        "longest_run": {"speaker": "Human", "length": 1, "start": 0},
        "mean_run_length": 1.0,
    }
    assert d["reciprocity_score"] == 0.0
    assert d["response_latency"] is None


def test_words_ignore_punctuation_and_apostrophes_join():
    text = "Don't panic — it’s fine… really!!! See e.g.\u00a0page 3.14"
    d = analyze_dynamics(conversation(("Ana", text)))
    # dont panic its fine really see e g page 3 14
    assert d["speakers"]["Ana"]["words"] == 11
    assert d["speakers"]["Ana"]["characters"] == len(text)


def test_speakers_without_any_words_fall_back_to_message_shares():
    d = analyze_dynamics(conversation(("Ana", "..."), ("Ben", "!!"), ("Ana", "?")))
    assert d["avg_turn_length"] == 0.0
    assert d["speakers"]["Ana"]["share"] == 0.0
    assert d["dominance"]["speaker"] == "Ana"
    assert d["dominance"]["share"] == 0.6667
    json.dumps(d, allow_nan=False)


# --- questions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is a closure?", 1),
        ("how do i fix this", 1),
        ("Can you explain recursion.", 1),
        ("Could you check the logs, please", 1),
        ("So, is it safe to delete the cache", 1),
        ("- can you check the index\n- and the table", 1),
        ("Why", 1),
        ("Is it raining? Yes. How long will it last? A day.", 2),
        ('Are you sure?" she asked.', 1),
        ("What is needed is a cache.", 0),
        ("When you run it, it fails.", 0),
        ("Do the dishes first.", 0),
        ("Have a look at the docs.", 0),
        ("What a day!", 0),
        ("Can you believe it!", 0),
        ("See https://example.com/search?q=1 for more.", 0),
    ],
)
def test_count_questions(text, expected):
    assert count_questions(text) == expected


def test_questions_inside_code_are_not_counted():
    text = (
        "Here is the regex: `^a?b$` and the ternary `x ? y : z`.\n"
        "```python\n"
        "value = a if ok else b  # why? because\n"
        "print('is it working?')\n"
        "```\n"
        "Does this look right to you?"
    )
    assert count_questions(text) == 1
    d = analyze_dynamics(conversation(("Human", text), ("AI", "~~~\nwhat?\n~~~\nYes.")))
    assert d["initiative"]["questions_by_speaker"] == {"Human": 1, "AI": 0}


def test_code_counts_as_words_but_opens_no_topic():
    code = "```\nimport numpy pandas scipy matplotlib seaborn\n```"
    d = analyze_dynamics(conversation(("Human", "run it"), ("AI", code)))
    assert d["speakers"]["AI"]["words"] == 6
    assert d["initiative"]["opened_topics_by_speaker"] == {"Human": 0, "AI": 0}


def test_unclosed_fence_in_one_message_does_not_hide_the_next():
    d = analyze_dynamics(conversation(("AI", "```\nwhy? no"), ("Human", "is it done?")))
    assert d["initiative"]["questions_by_speaker"] == {"AI": 0, "Human": 1}


def test_each_message_is_counted_on_its_own_across_chunks():
    texts = [
        "Is it",  # no closing mark: the next message must not extend this sentence
        "ok. so what about it",
        "```\nunclosed? fence",
        "why? because. Can you check",
        "plain statement.",
        "what’s next",
        "a\x00b? c",
    ]
    rows = [(f"S{i}", texts[i % len(texts)]) for i in range(600)]
    d = analyze_dynamics(conversation(*rows))
    assert d["initiative"]["questions_by_speaker"] == {
        speaker: count_questions(text) for speaker, text in rows
    }
    assert [count_questions(t) for t in texts] == [1, 1, 0, 2, 0, 1, 1]


# --- topic initiative ------------------------------------------------------------------------


def test_follow_up_to_a_long_answer_is_not_a_new_topic():
    answer = (
        "An index stores sorted keys with pointers to rows, so the database finds matching "
        "rows without scanning the whole table; composite indexes cover several columns, "
        "partial indexes cover filtered rows, and vacuum keeps statistics fresh for planning. "
        "Run explain analyze to see whether the planner chooses a sequential scan."
    )
    d = analyze_dynamics(
        conversation(
            ("Human", "Why is my database query slow on the orders table?"),
            ("AI", answer),
            ("Human", "Would a composite index on customer and created columns help?"),
            ("AI", "Meanwhile: tomatoes, basil, peppers, cucumbers and zucchini love sunshine."),
            ("Human", "Unrelated: the train for the coast leaves central station tonight."),
        )
    )
    # Opened: the first question (five content words, nothing before it) and the train
    # remark, which shares nothing with the three messages before it. The follow-up shares
    # "composite", "index" and "columns" with the long answer: 3 of its 6 content words,
    # though only 3 of the 37 words of both together (Jaccard 0.081). Both AI messages answer
    # a question, so neither opens a topic, not even the garden digression.
    assert d["initiative"]["opened_topics_by_speaker"] == {"Human": 2, "AI": 0}


# --- output contract -------------------------------------------------------------------------


def test_result_is_json_ready_and_identical_across_runs():
    convo = generated(600, speakers=("Ana", "Ben", "AI"))
    first = json.dumps(analyze_dynamics(convo), allow_nan=False)
    assert first == json.dumps(analyze_dynamics(convo), allow_nan=False)


def test_result_does_not_depend_on_hash_seed():
    script = (
        "import json; from tests.unit.test_dynamics import generated;"
        "from app.analysis.dynamics import analyze_dynamics;"
        "print(json.dumps(analyze_dynamics(generated(300, speakers=('Ana', 'Ben', 'AI')))))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=SERVICE_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    [output] = outputs
    expected = analyze_dynamics(generated(300, speakers=("Ana", "Ben", "AI")))
    assert json.loads(output) == expected


def test_every_field_is_present():
    d = analyze_dynamics(TWO_PARTY)
    assert set(d) == {
        "total_turns",
        "human_turns",
        "ai_turns",
        "system_messages",
        "speaker_turns",
        "avg_turn_length",
        "speakers",
        "turn_taking",
        "initiative",
        "reciprocity_score",
        "dominance",
        "response_latency",
        "response_latency_skipped",
    }


# --- cancellation and speed ------------------------------------------------------------------


def test_cancelled_token_stops_the_analysis():
    token = CancelToken()
    token.cancel()
    with pytest.raises(AnalysisCancelled):
        analyze_dynamics(TWO_PARTY, token)


def test_expired_deadline_stops_a_long_analysis():
    convo = generated(20_000)
    token = CancelToken(timeout=1e-9)
    started = time.perf_counter()
    with pytest.raises(AnalysisTimedOut):
        analyze_dynamics(convo, token)
    assert time.perf_counter() - started < 0.5


def test_twenty_thousand_messages_stay_fast():
    convo = generated(20_000)
    started = time.perf_counter()
    d = analyze_dynamics(convo)
    elapsed = time.perf_counter() - started
    assert d["total_turns"] == 20_000
    # Typically ~0.1 s on a 2-core machine; the bound only catches a blow-up.
    assert elapsed < 1.5


def test_a_long_run_of_list_markup_is_counted_in_linear_time():
    # A "-----" rule (or "*****") at the start of a line once made the question opener
    # backtrack exponentially: 24 dashes took seconds, 60 never finished.
    started = time.perf_counter()
    texts = ["-" * 5000 + "x", "*" * 3000 + " so what?", "# - > can you help."]
    counts = [count_questions(text) for text in texts]
    assert time.perf_counter() - started < 1.0
    assert counts == [0, 1, 1]
