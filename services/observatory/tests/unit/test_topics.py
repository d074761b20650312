import json
import random
import string
import threading
import time
from itertools import pairwise

import pytest

from app.analysis.topics import analyze_topics
from app.conversation import Conversation, Message
from app.core.cancellation import AnalysisCancelled, CancelToken
from tests.factories import alternating

DOCKER = [
    "My Docker container can't reach the database container. Both run with docker compose but the connection times out.",
    "By default compose puts both services on one bridge network, so the container should reach the other by its service name. Are you using localhost in the connection string?",
    "Yes, I used localhost. Should I use the service name instead?",
    "Inside a container, localhost is the container itself. Use the service name, for example db, and the container port, not the published host port.",
    "Changed it to db:5432 and now the containers talk to each other. What about the bridge network for the other stack?",
    "Put both stacks on a shared external network: create it with docker network create and list it under networks in each compose file.",
    "Do I need to expose ports on the shared network too?",
    "No, containers on the same Docker network reach each other on container ports; publishing ports only matters for the host.",
]
PYTHON = [
    "Different question: my Python virtualenv keeps picking up the wrong package versions when I install requirements.",
    "Check which pip you are running. If the virtualenv is not activated, pip installs packages into the global Python instead.",
    "Activated the virtualenv and pip now points to it, but requests is still the old version.",
    "Pin the version in requirements and reinstall with pip install --upgrade; an old wheel in the cache can also win.",
    "Should I switch to a lock file for the package versions?",
    "A lock file makes the versions reproducible: uv or pip-tools resolve the requirements once and every virtualenv installs the same packages.",
    "Great, uv lock resolved the dependency versions and the virtualenv matches production now.",
    "Keep the lock file in version control so every machine installs identical package versions.",
]
POSTGRES = [
    "Last thing: a Postgres query on the orders table takes twelve seconds. Would an index help?",
    "Run EXPLAIN ANALYZE on the query. If it shows a sequential scan over orders filtered by customer, an index on that column will help.",
    "The plan shows a sequential scan on orders filtering by customer_id and created date.",
    "Create a composite index on customer and created date; Postgres can then use an index scan for both filters.",
    "The index made the query run in forty milliseconds. Does the index slow down inserts into the orders table?",
    "Every index adds some write cost on inserts, but one composite index on a table like orders is usually worth it.",
    "Should I vacuum or analyze the table after creating the index?",
    "Run ANALYZE so the planner has fresh statistics for the orders table; autovacuum handles the rest.",
]


conversation = alternating


def assert_tiles(result: dict, n: int) -> None:
    segments = result["segments"]
    assert segments[0]["start"] == 0
    assert segments[-1]["end"] == n - 1
    for before, after in pairwise(segments):
        assert after["start"] == before["end"] + 1
    assert result["transitions"] == [s["start"] for s in segments[1:]]
    assert sum(s["share"] for s in segments) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ((DOCKER, PYTHON, POSTGRES), [8, 16]),
        ((DOCKER[:5], PYTHON[:6], POSTGRES[:5]), [5, 11]),
    ],
)
def test_topic_changes_are_found_within_two_messages(
    groups: tuple[list[str], ...], expected: list[int]
) -> None:
    texts = [t for group in groups for t in group]
    result = analyze_topics(conversation(texts))
    assert_tiles(result, len(texts))
    assert len(result["transitions"]) == len(expected)
    for found, true in zip(result["transitions"], expected, strict=True):
        assert abs(found - true) <= 2


def test_two_subjects_are_split_where_the_subject_changes() -> None:
    result = analyze_topics(conversation(DOCKER + PYTHON))
    assert_tiles(result, 16)
    assert any(abs(t - 8) <= 2 for t in result["transitions"])
    # The Docker half moves from reaching a container by name to networks across stacks
    # and may split there; the Python half is one subject and stays one segment.
    assert all(t < 10 for t in result["transitions"])
    assert len(result["transitions"]) <= 2


def test_segments_are_labelled_by_their_own_subject() -> None:
    result = analyze_topics(conversation(DOCKER + PYTHON + POSTGRES))
    docker, python, postgres = result["segments"]
    assert {"container", "network"} & set(docker["keywords"])
    assert {"virtualenv", "pip", "lock file", "package version"} & set(python["keywords"])
    assert {"index", "orders table", "composite index", "query"} & set(postgres["keywords"])
    for segment, texts in zip(result["segments"], (DOCKER, PYTHON, POSTGRES), strict=True):
        assert 1 <= len(segment["keywords"]) <= 5
        assert segment["label"][0].isupper()
        # The label names what the segment keeps returning to, in the segment's own words.
        joined = " ".join(texts).lower()
        assert all(part.strip() in joined for part in segment["label"].lower().split(","))
    # A phrase of one subject does not label another.
    assert not {"container", "docker"} & set(postgres["keywords"])


def test_keyphrases_prefer_recurring_phrases_and_cite_messages() -> None:
    texts = DOCKER + PYTHON + POSTGRES
    result = analyze_topics(conversation(texts))
    phrases = [k["phrase"] for k in result["keyphrases"]]
    assert len(phrases) == len(set(phrases)) <= 10
    assert {"lock file", "orders table", "service name"} <= set(phrases)
    for k in result["keyphrases"]:
        assert k["messages"] == sorted(k["messages"])
        assert 1 <= len(k["messages"]) <= 5
        assert all(0 <= i < len(texts) for i in k["messages"])
        words = k["phrase"].split()
        assert 1 <= len(words) <= 3
        assert any(w in texts[k["messages"][0]].lower() for w in words)
    scores = [k["score"] for k in result["keyphrases"]]
    assert scores == sorted(scores, reverse=True)


CODE_HEAVY = [
    "How do I merge two pandas dataframes on the customer column?\n```python\nimport pandas as pd\ndf_left = pd.read_csv('left.csv')\ndf_right = pd.read_csv('right.csv')\nresult = df_left.join(df_right)\nprint(result.head())\n```",
    "Use `pd.merge` with `on='customer'`:\n```python\nresult = pd.merge(df_left, df_right, on='customer', how='inner')\nprint(result.shape)\nresult.to_csv('out.csv', index=False)\n```\nAn inner merge keeps only customers present in both dataframes.",
    "The merge drops customers that are missing from the right dataframe.\n```\nTraceback (most recent call last):\n  File \"merge.py\", line 4, in <module>\n    result = pd.merge(df_left, df_right, on='customer', how='inner')\nKeyError: 'customer'\n```",
    "The KeyError means the right dataframe has no customer column; check `df_right.columns`. For keeping unmatched customers use a left merge:\n```python\nresult = pd.merge(df_left, df_right, on='customer', how='left')\nresult = result.fillna(0)\n```",
    "The customer column was called client in the right dataframe. After renaming it the left merge keeps every customer.",
    "Good. Renaming columns before a merge is the usual fix; `validate='one_to_one'` also catches duplicate customers early.",
]


def test_code_heavy_conversation_keywords_are_not_code_tokens() -> None:
    result = analyze_topics(conversation(CODE_HEAVY))
    code_tokens = {
        *("pd", "df", "df_left", "df_right", "result", "print", "import", "csv", "read_csv"),
        *("head", "shape", "to_csv", "index", "false", "inner", "how", "on", "fillna"),
        *("traceback", "file", "line", "module", "keyerror", "py", "validate", "columns"),
    }
    phrases = [k["phrase"] for k in result["keyphrases"]]
    words = {w for p in phrases for w in p.split()}
    assert not words & code_tokens, phrases
    assert {"merge", "customer", "dataframe"} <= words
    assert result["segments"][0]["keywords"][0] in {
        "merge",
        "customer",
        "dataframe",
        "customer column",
    }


def test_short_and_empty_conversations() -> None:
    short = analyze_topics(conversation(DOCKER[:4]))
    assert len(short["segments"]) == 1
    assert short["segments"][0]["start"] == 0 and short["segments"][0]["end"] == 3
    assert short["segments"][0]["share"] == 1.0
    assert short["transitions"] == []
    only_code = analyze_topics(conversation(["```\nx = 1\n```", "`y`"]))
    assert only_code["segments"][0]["label"] == "general"
    assert only_code["keyphrases"] == []
    assert analyze_topics(Conversation(messages=())) == {
        "segments": [],
        "keyphrases": [],
        "transitions": [],
    }


def test_topics_are_deterministic_and_json_ready() -> None:
    conv = conversation(DOCKER + PYTHON + POSTGRES)
    first = analyze_topics(conv)
    assert first == analyze_topics(conv)
    assert json.loads(json.dumps(first)) == first


def test_cancelled_token_stops_topic_analysis() -> None:
    conv = conversation((DOCKER + PYTHON) * 1250)
    token = CancelToken()
    token.cancel()
    with pytest.raises(AnalysisCancelled):
        analyze_topics(conv, token)


def test_cancel_reaches_every_step_of_a_long_dense_conversation() -> None:
    # Every word a content word, none common: the phrase counting sorts millions of codes,
    # which took over a second without a check in between.
    rng = random.Random(3)
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(3000)]
    conv = conversation([" ".join(rng.choices(vocabulary, k=100)) for _ in range(20_000)])
    token = CancelToken()
    cancelled_at: list[float] = []

    def cancel() -> None:
        cancelled_at.append(time.monotonic())
        token.cancel()

    # Cancel while the phrases are being counted, past the reading of the messages.
    timer = threading.Timer(0.6, cancel)
    timer.start()
    try:
        with pytest.raises(AnalysisCancelled):
            analyze_topics(conv, token)
        stopped = time.monotonic()
    finally:
        timer.cancel()
    assert cancelled_at, "the analysis finished before it could be cancelled"
    assert stopped - cancelled_at[0] < 0.3


# --- labels a person would write, splits where the subject changes -----------------------

SHORT_CHAT = [
    "Gig is booked at the Anchor for Friday, we go on at nine",
    "nice",
    "How long do we play?",
    "45 mins",
    "Practice Tuesday then?",
    "Can't Tuesday",
    "Monday?",
    "Mon works",
    "Mon 👍",
    "Booked the studio for Mon",
    "Do we open with the slow one?",
    "Close with it",
    "Agree, close",
    "Fine",
    "Who brings the cables?",
    "Me",
    "Cool",
    "Do we need the lights?",
    "Venue has them",
    "Perfect",
    "See you Monday",
    "👍",
]


def test_a_short_chat_of_short_messages_is_not_split() -> None:
    # Three messages of a word or two each are too little text for a dip in similarity to
    # mean a change of subject.
    topics = analyze_topics(alternating(SHORT_CHAT))
    assert topics["transitions"] == []


def first_label(texts: list[str]) -> str:
    """The label of the first segment of ``texts`` said in turn by two people, lower case."""
    label: str = analyze_topics(alternating(texts))["segments"][0]["label"]
    return label.lower()


def test_the_label_names_what_the_opening_message_introduces() -> None:
    # "hike" is said once, when the subject is opened; the details after it repeat other
    # words.
    texts = [
        "Are we still doing the hike on Saturday?",
        "Yes! Can I bring Biscuit? Biscuit has been cooped up all week.",
        "Bring Biscuit, obviously. Biscuit and brownies, the full package.",
        "Biscuit approves. I'll bake brownies tonight.",
        "Double brownies please.",
        "Deal, double brownies.",
    ]
    label = first_label(texts)
    assert label.split(", ")[0] == "hike"


def test_an_agenda_marker_heading_a_message_starts_a_segment() -> None:
    texts = [
        "Three items today: the vendor contract, the team offsite and the new hire.",
        "The vendor contract renews in May and the vendor wants a price increase of ten percent.",
        "Ten percent on the vendor contract is too much, ask the vendor for a two year price lock.",
        "I'll ask the vendor for the price lock on the contract this week.",
        "Next: the offsite. The venue offers two weekends in June for the offsite.",
        "The first June weekend clashes with the release, so the second weekend for the offsite.",
        "Second weekend at the venue works for the offsite, I'll book the rooms.",
        "I'll send the offsite agenda once the venue confirms the rooms.",
    ]
    assert analyze_topics(alternating(texts))["transitions"] == [4]


def test_next_inside_a_quiz_message_is_not_a_change_of_subject() -> None:
    texts = [
        "Quiz me on rivers, one question at a time.",
        "Longest river in Europe?",
        "Danube",
        "No, it's the Volga. The Danube is second. Next: the river through Cairo?",
        "The Nile.",
        "Correct. Which river flows through Vienna?",
        "The Danube again.",
        "Correct. River through Paris?",
        "The Seine.",
    ]
    assert analyze_topics(alternating(texts))["transitions"] == []


def test_an_announcement_after_a_discourse_marker_starts_a_segment() -> None:
    texts = [
        "How was the concert last night?",
        "Loud and brilliant, the band played for three hours.",
        "Sounds like the concert of the year.",
        "Ha. Right, before I forget: did the landlord fix the boiler?",
        "The landlord sent a plumber, the boiler works again.",
        "Good, the boiler was overdue for a service anyway.",
        "The plumber said the boiler needs a new valve next year.",
    ]
    assert analyze_topics(alternating(texts))["transitions"] == [3]


def starts(texts: list[str]) -> list[int]:
    return [s["start"] for s in analyze_topics(alternating(texts))["segments"]][1:]


MEETING = [
    "Morning all, three things today.",
    "Morning!",
    "The release first. Payments migration is done, QA signs off tomorrow.",
    "Good, so the 14th stays.",
    "Agreed, the 14th.",
]


def test_an_agenda_heading_that_turns_to_someone_starts_a_segment() -> None:
    texts = [
        *MEETING,
        "Floodlights. Pete, you've had the quotes back?",
        "Two quotes, 9k and 11k, both LED.",
        "The cheaper one has a shorter warranty.",
        "Then we take the 11k one.",
    ]
    assert starts(texts) == [5]


def starts_after_meeting(message: str) -> list[int]:
    """Segment starts when ``message`` follows the opening of a meeting and four short
    replies follow it."""
    return starts([*MEETING, message, "Sure.", "Which dates?", "The 12th.", "Fine by me."])


@pytest.mark.parametrize(
    "announcement",
    [
        "Good, the 14th. On-call next. Mateus, you're down for release week.",
        "Noted. Last one, the offsite.",
        "great. second item, hiring. Lucia?",
        "Sophie, separate thing, the dress shop rang about the fitting.",
        "Great. While I've got you, can I book my blood pressure review?",
        "right while everyone's here. stag do. I'm thinking Prague",
        "Also! Street party on 14 June is confirmed with the council 🎉",
        "Hecho ❤️ Por cierto, ¿le has dicho ya a tu madre lo del domingo?",
        "Andere Frage, hat nichts damit zu tun: gilt das Ticket auch im ICE?",
        "Cambiando argomento: qualcuno sa se la nonna ha fatto il vaccino?",
        "In other news, the dog has eaten an entire sock.",
        "On a lighter note, have we decided where Christmas is this year?",
        "Also random, but did someone change the Netflix password?",
        "Before we wrap, can we move standup? 9:15 clashes with the school run.",
        "ok now the boring bit. insurance quotes are like £2,400.",
        "slight problem though. my brother knocked red wine onto the carpet.",
        "Right while Dad's not in this chat, what are we getting him?",
        "Anyway. Dinner Saturday, are we still doing the Italian place?",
        "Ha. Right, the renewal. We've got your quote: £0.84 a unit.",
        "Who's up for a street party in June?",
        "Et sinon, grosse nouvelle : j'ai eu le poste !",
        "totally random but is anyone around on the 30th? our dog sitter has flu",
        "Mach das bitte bis Ende des Monats. Letzter Punkt, Sommerfest. Anke?",
        "Wren, quick one: can Orrin have a sister in the Thieves Guild?",
        "Before the last questions I need to tell you something. The trip is off.",
        "Great :) totally unrelated, but are we still doing Lisbon?",
        "Great… totally unrelated, but are we still doing Lisbon?",
        "Great — totally unrelated, but are we still doing Lisbon?",
    ],
)
def test_an_agenda_marker_after_an_acknowledgement_starts_a_segment(announcement: str) -> None:
    assert starts_after_meeting(announcement) == [5]


@pytest.mark.parametrize(
    "reply",
    [
        "Anyway, thanks for sorting it!",
        "Good point. Ok, plan: Thursday release, flag on Tuesday.",
        "compromise: cottage, but we cook every meal there.",
        "September's better than people think btw, the last three were dry.",
        # one more detail of the same subject, whatever marker opens it
        "Reminder, the campsite gate shuts at 10pm.",
        "Quick update: the campsite confirmed our pitch.",
        "Last one, promise. Do we need pillows?",
        "I've packed mine. You next.",
        "Has anyone booked the campsite pitch yet?",
        "One problem, my car only seats four with the tent in the boot.",
        "Anyway, I'll bring the cooler and the camping chairs.",
        "The pitch is booked (two nights) btw, so we are sorted",
        "Mats sorted - by the way, did you get the gas?",
        "Speaking of which, does the campsite take card or only cash?",
        "Also I have to say, great work on the booking.",
        "Also I have a question about the campsite booking.",
        "Also we need to tell the campsite we arrive late.",
        "How did the booking go btw?",
    ],
)
def test_a_closing_or_a_summary_is_no_new_subject(reply: str) -> None:
    assert starts_after_meeting(reply) == []


@pytest.mark.parametrize(
    "opening",
    [
        # Every such message in the quality set's conversations opens a new subject.
        "speaking of quizzes, you coming thursday?",
        "i'll take him friday. speaking of bryn, did the vet call you back about his ear?",
    ],
)
def test_a_subject_named_after_a_marker_starts_a_segment(opening: str) -> None:
    assert starts_after_meeting(opening) == [5]


@pytest.mark.parametrize(
    "heading",
    [
        "So, the role. Tell me about yourself.",
        "Right, the tent. Who is bringing it?",
        "So, the role.",  # the heading as the whole message
    ],
)
def test_a_heading_after_a_lead_word_starts_a_segment(heading: str) -> None:
    assert starts_after_meeting(heading) == [5]


def test_the_last_question_of_a_quiz_is_no_new_subject() -> None:
    for last in ("Good. Last one: what did the GDR call it?", "ok last one. is the order random?"):
        texts = [*MEETING, last, "No idea.", "Think.", "Random.", "Yes."]
        assert starts(texts) == [], last


def test_a_colon_heading_starts_a_segment_and_a_clause_does_not() -> None:
    heading = [*MEETING, "offsite: venue's booked, the lake house.", "Nice.", "Dates?", "June."]
    assert starts(heading) == [5]
    clause = [*MEETING, "So Thursday is out. We could ship Friday?", "Fine.", "Sure.", "Ok."]
    assert starts(clause) == []
    answer = [*MEETING, "Vale. ¿Y cuándo me lo devuelven?", "Hoy.", "Gracias.", "De nada."]
    assert starts(answer) == []


def test_a_change_of_subject_said_in_words_may_close_the_chat() -> None:
    texts = [
        "did the consolidation loan work out for you?",
        "yes, two cards into one loan at 7.9%, monthly down by a lot",
        "nice, I'll look at the same lender then",
        "cut the cards up after, that's the trap",
        "totally different subject, are you still up for the walk on Saturday?",
        "yes! 7:30?",
    ]
    assert starts(texts) == [4]


def test_line_labels_quizzes_and_recipes_do_not_split_one_subject() -> None:
    quiz = []
    for q in range(1, 6):
        quiz += [
            f"Question {q}: what is {q} times 7 in the multiplication table?",
            str(q * 7),
            "Correct, well done with the multiplication table.",
        ]
    assert starts(quiz) == []
    bug = [
        "The token refresh fails after an hour.",
        "Which client library do you use for the token refresh?",
        "The official one, version 4, with the refresh hook.",
    ]
    for line in (
        "Traceback: KeyError in refresh_token",
        "Step 2: rerun the login tests with the refresh hook",
        "Status: still failing on the token refresh.",
        "Ben: the mock is stale.",
        "OMG. the refresh hook never fires",
        "Weird. Ben, did you see the refresh hook fire?",
        "Line 40. Ben, can you look at the refresh hook?",
        "Ok next thing I noticed is the refresh hook timing out",
    ):
        texts = [
            *bug,
            line,
            "Let me check the refresh hook.",
            "The token expiry is one hour.",
            "ok",
        ]
        assert starts(texts) == [], line


def test_a_sign_off_does_not_open_a_subject() -> None:
    texts = [*MEETING, "Thanks all, the 14th it is.", "Btw, great job on the budget overall!"]
    assert starts(texts) == []


def test_many_announced_subjects_are_capped() -> None:
    texts = [f"next item: subject {i} of the meeting, one thing to decide" for i in range(20_000)]
    assert len(analyze_topics(alternating(texts))["segments"]) == 50


def test_a_greeting_or_a_system_prompt_does_not_name_the_subject() -> None:
    rows = [
        ("system", "system", "You are a friendly airline assistant."),
        (
            "Priya",
            "human",
            "Hi, you're chatting with Priya from SkyBridge Airways customer "
            "care, the SkyBridge Airways care team. How can I help today?",
        ),
        ("Jo", "human", "My suitcase didn't arrive in Lisbon."),
        ("Priya", "human", "I'm sorry. Your suitcase is on the next flight."),
        ("Jo", "human", "Will the suitcase be delivered to the hotel?"),
        ("Priya", "human", "Yes, it goes to your hotel tonight."),
    ]
    conv = Conversation(
        messages=tuple(
            Message(index=i, speaker=s, role=r, text=t)  # type: ignore[arg-type]
            for i, (s, r, t) in enumerate(rows)
        )
    )
    label = analyze_topics(conv)["segments"][0]["label"].lower()
    assert label.startswith("suitcase"), label
    assert "airways" not in label and "care" not in label, label


def test_a_label_is_not_made_of_verb_forms() -> None:
    texts = [
        "My dad died last week and I keep coming back to the eulogy.",
        "I'm so sorry. Coming back to it is normal. What do you have so far for the eulogy?",
        "The eulogy starts with his garden. Coming up with the rest is hard since he died.",
        "Start the eulogy with the garden, then his bikes. Coming to the end is the hardest bit.",
    ]
    label = first_label(texts)
    assert "coming" not in label and "died" not in label
    assert "eulogy" in label


def test_a_subject_ending_in_ing_stays_in_the_label() -> None:
    texts = [
        "Are you going to Sam's wedding in June?",
        "Yes! Sam's wedding is in the Cotswolds, right?",
        "Yep, at a barn near Burford.",
        "What are you wearing to Sam's wedding?",
        "Probably my navy suit.",
        "Nice. Are you staying over after Sam's wedding?",
    ]
    label = first_label(texts)
    assert "wedding" in label


def test_a_subject_named_with_a_marker_word_stays_in_the_label() -> None:
    texts = [
        "The router needs a firmware update before the mesh works.",
        "Which firmware update? The one from March?",
        "Yes, the firmware update from March fixes the mesh.",
        "Ok, running the firmware update now.",
    ]
    label = first_label(texts)
    assert "firmware update" in label


def test_any_typed_apostrophe_reads_as_the_plain_one():
    texts = [
        "My printer won't print anything since the driver update.",
        "Which printer model is it, and which driver version?",
        "It's the LaserJet 1020, driver 5.2. It won't even print a test page.",
        "Reinstall the LaserJet driver from the vendor site, the update broke it.",
    ]
    plain = analyze_topics(alternating(texts))
    for mark in ("’", "ʼ", "´"):
        typed = analyze_topics(alternating([t.replace("'", mark) for t in texts]))
        assert typed["segments"] == plain["segments"], mark
        assert typed["keyphrases"] == plain["keyphrases"], mark
