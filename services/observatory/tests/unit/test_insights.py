from app.analysis.dialectic import detect_dialectic
from app.analysis.insights import build_insights, build_key_moments, build_themes
from app.conversation import Conversation, Message

ROWS = [
    ("Ana", "The deploy failed again and the site is down, this is awful."),  # 0
    ("Bob", "I think the cache layer is the problem, it is serving stale config."),  # 1
    ("Ana", "But the cache was flushed; the config loader is the real problem."),  # 2
    ("Carol", "Perhaps we can combine both fixes: flush the cache and reload the config loader."),
    ("Bob", "The loader reads config from /etc/app.yaml at boot."),  # 4
    ("Ana", "That's incorrect, the loader reads config from the environment at boot."),  # 5
    ("Bob", "You're right, my mistake. Reloading the environment now."),  # 6
    ("Ana", "Great, it works now! Thanks, the site is back and fast."),  # 7
    ("Bob", "Next, should we plan the database migration for Friday?"),  # 8
    ("Ana", "Yes, the migration can run Friday after the backup."),  # 9
]


def conversation(rows=ROWS) -> Conversation:
    return Conversation(
        tuple(Message(index=i, speaker=s, role="human", text=t) for i, (s, t) in enumerate(rows))
    )


def patterns(conv: Conversation) -> dict:
    n = len(conv)
    scores = [-0.7, -0.3, -0.2, 0.1, 0.0, -0.1, 0.3, 0.8, 0.1, 0.4]
    return {
        "dialectic": detect_dialectic(conv).structures,
        "sentiment": {
            "overall_tone": "mixed",
            "score": 0.04,
            "trajectory": [
                {"index": i, "score": s, "label": "positive" if s > 0.05 else "negative"}
                for i, s in enumerate(scores)
            ],
            "shifts": [{"index": 7, "from": "negative", "to": "positive", "magnitude": 0.62}],
            "collaboration": {"label": "collaborative", "score": 0.4},
        },
        "topics": {
            "segments": [
                {
                    "label": "deploy cache",
                    "keywords": ["cache", "deploy", "site"],
                    "start": 0,
                    "end": 3,
                    "share": 0.45,
                },
                {
                    "label": "config loader",
                    "keywords": ["loader", "config", "boot"],
                    "start": 4,
                    "end": 7,
                    "share": 0.35,
                },
                {
                    "label": "database migration",
                    "keywords": ["migration", "friday", "backup"],
                    "start": 8,
                    "end": n - 1,
                    "share": 0.2,
                },
            ],
            "keyphrases": [{"phrase": "config loader", "score": 0.9, "messages": [2, 3, 4]}],
            "transitions": [4, 8],
        },
        "dynamics": {
            "speakers": {
                "Ana": {"messages": 5, "words": 60, "share": 0.6},
                "Bob": {"messages": 4, "words": 30, "share": 0.3},
                "Carol": {"messages": 1, "words": 10, "share": 0.1},
            },
            "response_latency": {
                "Ana": {"mean": 30.0, "median": 20.0, "p90": 50.0},
                "Bob": {"mean": 400.0, "median": 300.0, "p90": 660.0},
            },
        },
    }


def test_segments_that_share_keywords_merge_into_one_theme():
    topics = {
        "segments": [
            {"label": "cache", "keywords": ["cache", "redis"], "start": 0, "end": 4, "share": 0.3},
            {
                "label": "billing",
                "keywords": ["invoice", "vat"],
                "start": 5,
                "end": 9,
                "share": 0.45,
            },
            {
                "label": "cache again",
                "keywords": ["redis", "ttl"],
                "start": 10,
                "end": 12,
                "share": 0.25,
            },
        ],
        "keyphrases": [{"phrase": "redis ttl", "score": 0.8, "messages": [11]}],
    }
    themes = build_themes(topics)
    # The two cache segments together outweigh the single larger billing segment.
    assert [t["label"] for t in themes] == ["cache", "billing"]
    cache, billing = themes
    assert billing["weight"] == 0.45
    assert cache["weight"] == 0.55
    assert cache["spans"] == [[0, 4], [10, 12]]
    assert cache["keywords"][0] == "redis"
    assert set(cache["keywords"]) == {"cache", "redis", "ttl"}
    assert cache["messages"] == [0, 10, 11]


def test_no_topics_no_themes():
    assert build_themes({}) == []
    assert build_themes({"segments": []}) == []


def test_key_moments_name_concrete_evidence_in_index_order():
    conv = conversation()
    flags = [{"kind": "prompt_injection", "messages": [8]}]
    result = build_insights(conv, patterns(conv), security_flags=flags)
    moments = {m["kind"]: m for m in result["key_moments"]}
    indices = [m["index"] for m in result["key_moments"]]
    assert indices == sorted(indices)
    assert len(indices) == len(set(indices)) <= 10

    assert moments["synthesis"]["index"] == 3
    assert (
        "Carol reconciled Bob's position (message 1) with Ana's objection (message 2)"
        in (moments["synthesis"]["why"])
    )
    assert moments["correction"]["index"] == 5
    assert "Ana corrected Bob's message 4" in moments["correction"]["why"]
    assert "accepted it at message 6" in moments["correction"]["why"]
    assert moments["tone_shift"]["index"] == 7
    assert "from negative to positive (+0.62)" in moments["tone_shift"]["why"]
    assert "Great, it works now" in moments["tone_shift"]["why"]
    assert moments["prompt_injection"]["index"] == 8
    assert "Bob" in moments["prompt_injection"]["why"]
    assert moments["topic_transition"]["index"] == 4
    assert "“deploy cache” to “config loader”" in moments["topic_transition"]["why"]


def test_a_falling_tone_is_reported_with_a_negative_sign():
    conv = conversation()
    sentiment = {"shifts": [{"index": 2, "from": "positive", "to": "negative", "magnitude": 0.5}]}
    [moment] = build_key_moments(conv, [], sentiment, {})
    assert "from positive to negative (-0.50)" in moment["why"]


def test_key_moments_are_capped_and_keep_the_most_telling():
    rows = [("Ana" if i % 2 else "Bob", f"Message number {i} about things.") for i in range(60)]
    conv = conversation(rows)
    shifts = [
        {"index": i, "from": "negative", "to": "positive", "magnitude": i / 100}
        for i in range(1, 60, 2)
    ]
    segments = [
        {
            "label": f"topic {k}",
            "keywords": [f"k{k}"],
            "start": k * 5,
            "end": k * 5 + 4,
            "share": 1 / 12,
        }
        for k in range(12)
    ]
    moments = build_key_moments(
        conv,
        [],
        {"shifts": shifts},
        {"segments": segments},
        [{"kind": "prompt_injection", "messages": [40, 12]}],
    )
    assert len(moments) <= 10
    kinds = [m["kind"] for m in moments]
    assert kinds.count("tone_shift") == 3
    assert {m["index"] for m in moments if m["kind"] == "tone_shift"} == {55, 57, 59}
    assert [m["index"] for m in moments if m["kind"] == "prompt_injection"] == [12]


def test_summary_points_are_specific_to_the_conversation():
    conv = conversation()
    found = detect_dialectic(conv)
    result = build_insights(
        conv,
        patterns(conv),
        unanswered_questions=[8],
    )
    points = result["summary_points"]
    assert 3 <= len(points) <= 7
    text = "\n".join(points)
    assert "Ana dominated with 60% of the 100 words, followed by Bob (30%) and Carol (10%)" in text
    assert "“deploy cache”, “config loader”, then “database migration”" in text
    assert "from negative in the first third" in text
    assert "to positive in the last" in text
    assert "collaborative" in text
    assert "1 thesis–antithesis–synthesis" in text
    assert "1 accepted correction" in text
    assert "One question went unanswered (message 8)" in text
    assert "Bob took a median of 5.0 min to reply (90th percentile 11.0 min)" in text
    assert all(p.endswith(".") for p in points)
    assert found.structures  # the conversation really holds structures to report


def test_fast_replies_and_answered_questions_are_not_mentioned():
    conv = conversation()
    found = patterns(conv)
    found["dynamics"]["response_latency"] = {"Bob": {"mean": 5.0, "median": 4.0, "p90": 9.0}}
    text = " ".join(build_insights(conv, found)["summary_points"])
    assert "unanswered" not in text
    assert "median" not in text


def test_summary_without_dynamics_counts_words_itself():
    long = " ".join(["word"] * 48)
    rows = [("Ana", long), ("Bob", "nine ten three four"), ("Ana", long), ("Bob", "a b c d")]
    conv = conversation(rows)
    points = build_insights(conv, {"sentiment": {"overall_tone": "neutral", "score": 0.0}})[
        "summary_points"
    ]
    assert points[0] == (
        "Ana dominated, writing 92% of the 104 words across 2 of the 4 messages; Bob wrote 8%."
    )


def test_summary_of_a_tiny_chat_gives_no_shares():
    rows = [("Ana", "one two three four five six seven eight"), ("Bob", "nine ten")]
    points = build_insights(
        conversation(rows), {"sentiment": {"overall_tone": "neutral", "score": 0.0}}
    )["summary_points"]
    assert points[0] == "Ana and Bob exchanged 2 messages (10 words)."


def test_a_mixed_tone_says_where_it_was_most_positive_and_most_negative():
    # Both thirds lean positive, so "stayed positive … overall mixed" needs its reason.
    scores = [0.6, 0.7, 0.2, -0.1, -0.8, -0.6, 0.1, 0.4, 0.5]
    rows = [("Ana" if i % 2 else "Bob", f"message number {i}") for i in range(len(scores))]
    sentiment = {
        "overall_tone": "mixed",
        "score": 0.11,
        "trajectory": [{"index": i, "score": v} for i, v in enumerate(scores)],
    }
    points = build_insights(conversation(rows), {"sentiment": sentiment})["summary_points"]
    [tone] = [p for p in points if p.startswith("The tone")]
    assert tone == (
        "The tone stayed positive from start (+0.50) to end (+0.33); overall mixed (+0.11), "
        "most positive at message 1 (+0.70) and most negative at message 4 (-0.80)."
    )
    sentiment["overall_tone"] = "positive"
    points = build_insights(conversation(rows), {"sentiment": sentiment})["summary_points"]
    assert "most positive" not in " ".join(points)
    # Two messages: no thirds, the extremes all the same; a trajectory without indices is
    # read in order.
    sentiment = {
        "overall_tone": "mixed",
        "score": -0.05,
        "trajectory": [{"score": 0.7}, {"score": -0.8}],
    }
    points = build_insights(conversation(rows[:2]), {"sentiment": sentiment})["summary_points"]
    assert (
        "The overall tone was mixed (-0.05), most positive at message 0 (+0.70) and most "
        "negative at message 1 (-0.80)." in points
    )


def test_quotes_in_moments_are_masked():
    rows = [
        ("Ana", "Everything is broken and I hate this."),
        ("Bob", "Fixed it, mail me at bob.smith@example.org if it breaks again, great work!"),
    ]
    sentiment = {"shifts": [{"index": 1, "from": "negative", "to": "positive", "magnitude": 0.9}]}
    [moment] = build_key_moments(conversation(rows), [], sentiment, {})
    assert "example.org" not in moment["why"]
    assert "[email]" in moment["why"]


def test_keyphrases_that_share_a_word_join_segments():
    topics = {
        "segments": [
            {
                "label": "Database migration",
                "keywords": ["database migration", "alembic"],
                "start": 0,
                "end": 5,
                "share": 0.4,
            },
            {
                "label": "Frontend",
                "keywords": ["react", "css grid"],
                "start": 6,
                "end": 9,
                "share": 0.3,
            },
            {
                "label": "Migration rollback",
                "keywords": ["migration", "rollback"],
                "start": 10,
                "end": 14,
                "share": 0.3,
            },
        ]
    }
    themes = build_themes(topics)
    assert [(t["label"], t["spans"]) for t in themes] == [
        ("Database migration", [[0, 5], [10, 14]]),
        ("Frontend", [[6, 9]]),
    ]
    assert themes[0]["weight"] == 0.7


def test_a_correction_of_work_from_before_the_transcript_is_a_key_moment():
    rows = [
        ("Alice", "I have a concern about this part: the expire call runs after incr."),
        ("Bob", "Good catch, I'll move both calls into one pipeline."),
    ]
    conv = conversation(rows)
    [moment] = build_key_moments(conv, detect_dialectic(conv).structures, {}, {})
    assert moment["index"] == 0
    assert moment["kind"] == "correction"
    assert moment["why"].startswith("Alice corrected earlier work (“I have a concern")
    assert moment["why"].endswith("and Bob accepted it at message 1.")
