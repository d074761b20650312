import json
from pathlib import Path

import pytest

from app.analysis.dialectic import analyze_dialectic, detect_dialectic
from app.conversation import Conversation, Message
from app.core.cancellation import AnalysisCancelled, CancelToken


def conversation(*rows: tuple[str, str]) -> Conversation:
    roles = {"AI": "ai", "System": "system"}
    return Conversation(
        tuple(
            Message(index=i, speaker=s, role=roles.get(s, "human"), text=t)  # type: ignore[arg-type]
            for i, (s, t) in enumerate(rows)
        )
    )


def of_type(structures, kind):
    return [s for s in structures if s["type"] == kind]


def pairs(structures):
    return [tuple(s["messages"]) for s in of_type(structures, "question_answer")]


# --- questions and answers -----------------------------------------------------------------


def test_question_without_question_mark_is_paired_with_its_answer():
    found = analyze_dialectic(
        conversation(
            ("Ana", "how do I reset my password"),
            ("AI", "You can reset your password from the account settings page."),
        )
    )
    [qa] = of_type(found, "question_answer")
    assert qa["messages"] == [0, 1]
    assert qa["speakers"] == ["Ana", "AI"]
    assert qa["roles"] == {"question": 0, "answer": 1}
    assert qa["strength"] >= 0.7
    assert "reset my password" in qa["excerpt"]


@pytest.mark.parametrize(
    "question",
    [
        "Could you explain how the cache is invalidated.",
        "I wonder whether the cache is invalidated on deploy.",
        "The cache is invalidated on deploy, isn't it",
        "Is the cache invalidated on deploy",
        "Why not invalidate the cache on deploy",
    ],
)
def test_interrogative_syntax_counts_as_a_question(question):
    found = analyze_dialectic(
        conversation(("Ana", question), ("Bob", "The cache is invalidated by the deploy hook."))
    )
    assert pairs(found) == [(0, 1)]


@pytest.mark.parametrize(
    "rhetorical",
    [
        "Who cares?",
        "What's the point?",
        "How hard can it be?",
        "Isn't it obvious?",
        "Why would anyone write tests for this?",
        "He left a note on the fridge and moved out. Who does that?",
        "Three replays and he still gave it. What was he even looking at?",
        "Un colis de 40 cm dans une boîte aux lettres. Vous vous moquez de moi ?",
        "Resale seats are £300 now. Who is paying that?",
        "Tickets booked, car sorted, dog sitter found. Aren't we organised 😄",
    ],
)
def test_rhetorical_questions_are_neither_paired_nor_unanswered(rhetorical):
    findings = detect_dialectic(
        conversation(("Ana", rhetorical), ("Bob", "Tests for this module are pointless anyway."))
    )
    assert pairs(findings.structures) == []
    assert findings.unanswered_questions == []


@pytest.mark.parametrize(
    "command",
    [
        "Do it now and restart the worker.",
        "Have that ready by Friday.",
        "Do this first.",
        "don't you dare apologise. he was your best mate for 14 years",
        "Don't you worry about the worker.",
    ],
)
def test_imperatives_are_not_questions(command):
    findings = detect_dialectic(
        conversation(("Ana", command), ("Bob", "On it, the worker restarts."))
    )
    assert pairs(findings.structures) == []
    assert findings.unanswered_questions == []


def test_a_question_its_asker_answers_at_once_is_not_a_question_for_others():
    findings = detect_dialectic(
        conversation(
            ("Ana", "Why does the build fail? Because the lockfile is stale."),
            ("Bob", "The lockfile should be regenerated then."),
        )
    )
    assert pairs(findings.structures) == []
    assert findings.unanswered_questions == []


def test_questions_inside_code_blocks_and_logs_are_ignored():
    findings = detect_dialectic(
        conversation(
            ("Ana", "Here is the regex:\n```\nwhat_is_this = re.compile('a?b?')\nwhy?\n```"),
            (
                "Ana",
                'Traceback (most recent call last):\n  File "x.py", line 3\n'
                "ValueError: is the server running?\n\n"
                "ERROR could not connect: is the server running?",
            ),
            ("Ana", "> How do I exit vim?\nThat was the title of the thread."),
            ("Bob", "The regex matches optional characters."),
        )
    )
    assert pairs(findings.structures) == []
    assert findings.unanswered_questions == []


def test_answer_is_found_after_a_clarifying_question():
    found = analyze_dialectic(
        conversation(
            ("Ana", "How do I make the migration run on startup?"),
            ("Bob", "Which framework?"),
            ("Ana", "Alembic with FastAPI."),
            ("Bob", "Run the migration in the lifespan handler before startup finishes."),
        )
    )
    # The clarifying question itself gets Ana's reply; the original question gets Bob's.
    assert (0, 2) not in pairs(found)
    assert (0, 3) in pairs(found)
    assert (1, 2) in pairs(found)


def test_multiparty_answer_can_come_a_few_messages_later():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Where is the staging database hosted?"),
            ("Carl", "lunch at noon, anyone"),
            ("Dee", "The staging database is hosted on the Frankfurt cluster."),
        )
    )
    assert pairs(found) == [(0, 2)]


def test_unanswered_questions_are_reported():
    findings = detect_dialectic(
        conversation(
            ("Ana", "Has anyone checked the backup job?"),
            ("Ana", "Also, where are the logs kept?"),
        )
    )
    assert pairs(findings.structures) == []
    assert findings.unanswered_questions == [0, 1]


# --- Socratic sequences ----------------------------------------------------------------------


SOCRATIC = [
    ("Socrates", "What is courage?"),
    ("Laches", "Courage is endurance of the soul in battle."),
    ("Socrates", "So then is all endurance of the soul courage, even foolish endurance?"),
    ("Laches", "No, foolish endurance is harmful, so only wise endurance is courage."),
    ("Socrates", "And why is wise endurance noble when foolish endurance is harmful?"),
    ("Laches", "Because wisdom directs endurance toward what is good."),
    ("Socrates", "What follows if courage needs wisdom about what is good?"),
    ("Laches", "Then courage is a kind of wisdom."),
]


def test_socratic_sequence_covers_the_whole_chain():
    [chain] = of_type(analyze_dialectic(conversation(*SOCRATIC)), "socratic_sequence")
    assert chain["messages"] == list(range(8))
    assert chain["leader"] == "Socrates"
    assert chain["questions"] == [0, 2, 4, 6]
    assert chain["speakers"] == ["Socrates", "Laches"]
    assert chain["strength"] >= 0.7


def test_two_follow_up_questions_are_not_a_socratic_sequence():
    found = analyze_dialectic(conversation(*SOCRATIC[:4]))
    assert of_type(found, "socratic_sequence") == []
    assert len(of_type(found, "question_answer")) == 2


def test_unrelated_questions_do_not_form_a_chain():
    found = analyze_dialectic(
        conversation(
            ("Ana", "What time is the meeting?"),
            ("Bob", "At three in the afternoon."),
            ("Ana", "Where did you park the bike?"),
            ("Bob", "Behind the library building."),
            ("Ana", "Who baked the cake?"),
            ("Bob", "My neighbour Clara baked it."),
        )
    )
    assert of_type(found, "socratic_sequence") == []
    assert len(of_type(found, "question_answer")) == 3


# --- thesis, antithesis, synthesis -----------------------------------------------------------


DEBATE = [
    ("Ana", "I think Python is the best language for numeric work."),
    ("Bob", "But Python loops are slow for numeric work; Julia is much faster."),
    ("Carol", "Perhaps we can combine both: Python for the glue and Julia for numeric loops."),
]


def test_thesis_antithesis_synthesis():
    [arc] = of_type(analyze_dialectic(conversation(*DEBATE)), "thesis_antithesis_synthesis")
    assert arc["messages"] == [0, 1, 2]
    assert arc["roles"] == {"thesis": 0, "antithesis": 1, "synthesis": 2}
    assert arc["speakers"] == ["Ana", "Bob", "Carol"]
    assert arc["excerpt"].startswith("Perhaps we can combine both")


def test_no_synthesis_without_a_reconciling_message():
    found = analyze_dialectic(
        conversation(*DEBATE[:2], ("Carol", "Julia compiles numeric loops ahead of the run."))
    )
    assert of_type(found, "thesis_antithesis_synthesis") == []


def test_synthesis_must_talk_about_both_positions():
    found = analyze_dialectic(
        conversation(*DEBATE[:2], ("Carol", "Perhaps we can combine lunch and the retro today."))
    )
    assert of_type(found, "thesis_antithesis_synthesis") == []


# --- agreement, disagreement, correction -----------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("I disagree, the index will not help here.", "disagreement"),
        ("No, actually the index is never used by this query.", "disagreement"),
        ("I don't think so, the planner ignores it.", "disagreement"),
        ("I agree, the index is the fix.", "agreement"),
        ("Exactly. The index turns the scan into a lookup.", "agreement"),
        ("Fair enough, let's add the index.", "agreement"),
        ("That makes sense given the table size.", "agreement"),
    ],
)
def test_reactions_to_a_claim(reply, kind):
    found = analyze_dialectic(
        conversation(("Ana", "Adding an index on user_id will fix the slow query."), ("Bob", reply))
    )
    reactions = [s for s in found if s["type"] in ("agreement", "disagreement")]
    assert [(s["type"], s["messages"]) for s in reactions] == [(kind, [0, 1])]
    assert reactions[0]["strength"] > 0.5


@pytest.mark.parametrize(
    "reply",
    [
        "What exactly do you mean by slow?",
        "I don't agree that it makes sense to index everything.",
        "I'm not sure that makes sense.",
    ],
)
def test_agreement_words_in_other_roles_are_not_agreement(reply):
    found = analyze_dialectic(
        conversation(("Ana", "Adding an index on user_id will fix the slow query."), ("Bob", reply))
    )
    assert of_type(found, "agreement") == []


def test_compliance_with_a_request_is_not_agreement():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Can you help me write a migration?"),
            ("AI", "Absolutely! Start with an empty revision and add the column."),
        )
    )
    assert of_type(found, "agreement") == []
    assert pairs(found) == [(0, 1)]


def test_accepted_correction():
    found = analyze_dialectic(
        conversation(
            ("AI", "Python lists are immutable, so append returns a new list."),
            ("Ana", "That's incorrect, lists are mutable and append changes the list in place."),
            ("AI", "You're right, my mistake: append mutates the list and returns None."),
        )
    )
    [correction] = of_type(found, "correction")
    assert correction["messages"] == [0, 1, 2]
    assert correction["roles"] == {"claim": 0, "correction": 1, "acceptance": 2}
    assert correction["speakers"] == ["AI", "Ana"]
    # Accepting the correction is also agreeing with it; nobody disagreed.
    assert [s["messages"] for s in of_type(found, "agreement")] == [[1, 2]]
    assert of_type(found, "disagreement") == []


def test_correction_that_is_not_accepted_is_a_disagreement():
    found = analyze_dialectic(
        conversation(
            ("AI", "Python lists are immutable."),
            ("Ana", "That's incorrect, lists are mutable."),
            ("AI", "Lists are immutable in every version of Python."),
        )
    )
    assert of_type(found, "correction") == []
    # The correction disputes the claim, and the AI holding its ground disputes the
    # correction in turn.
    assert [s["messages"] for s in of_type(found, "disagreement")] == [[0, 1], [1, 2]]


# --- the shape of the output -------------------------------------------------------------------


def test_excerpts_are_masked_and_short():
    long_answer = "You can write to ana.lopez@example.com or call +44 20 7946 0958. " * 10
    found = analyze_dialectic(
        conversation(("Ana", "Who should I contact about billing?"), ("Bob", long_answer))
    )
    [qa] = of_type(found, "question_answer")
    assert len(qa["excerpt"]) <= 200
    assert "example.com" not in qa["excerpt"]
    assert "7946" not in qa["excerpt"]
    assert "[email]" in qa["excerpt"]


def test_output_is_sorted_deterministic_and_in_range():
    rows = [*SOCRATIC, *DEBATE, ("Dee", "I disagree with all of you.")]
    conv = conversation(*rows)
    first = analyze_dialectic(conv)
    assert json.dumps(first) == json.dumps(analyze_dialectic(conv))
    keys = [(s["messages"][0], s["type"]) for s in first]
    assert keys == sorted(keys)
    for structure in first:
        assert structure["messages"] == sorted(structure["messages"])
        assert all(0 <= i < len(rows) for i in structure["messages"])
        assert 0.0 <= structure["strength"] <= 1.0


def test_system_messages_take_no_part():
    found = analyze_dialectic(
        conversation(
            ("Ana", "What port does the service listen on?"),
            ("System", "Tool output: port scan finished."),
            ("AI", "The service listens on port 8000 by default."),
        )
    )
    assert pairs(found) == [(0, 2)]


def test_cancelled_token_stops_the_analysis():
    token = CancelToken()
    token.cancel()
    with pytest.raises(AnalysisCancelled):
        analyze_dialectic(conversation(*SOCRATIC), token)


def test_a_yes_to_an_offer_answers_it_even_when_it_asks_again():
    findings = detect_dialectic(
        conversation(
            ("AI", "Use session.get('user') instead. Would you like an example?"),
            ("Ana", "Yes please. Also, is it safe to keep the user object in the session?"),
            ("AI", "Keep only the user id in the session; the cookie is readable by the client."),
        )
    )
    assert pairs(findings.structures) == [(0, 1), (1, 2)]
    assert findings.unanswered_questions == []


def test_an_unmarked_request_after_a_rhetorical_question_is_still_a_question():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Why would anyone design it that way? Anyway, how do I set up Redis sessions"),
            ("AI", "Install flask-session, set SESSION_TYPE to redis and call Session(app)."),
        )
    )
    [qa] = of_type(found, "question_answer")
    assert qa["messages"] == [0, 1]
    assert qa["excerpt"].startswith("Anyway, how do I set up Redis sessions →")


def test_an_expert_answering_follow_up_questions_at_length_is_not_socratic():
    detail = "It is read once at start-up, so a change needs a restart of the worker process. "
    found = analyze_dialectic(
        conversation(
            ("Ana", "Why does the worker ignore the queue setting?"),
            ("AI", "The worker reads the queue setting only from the environment. " + detail * 3),
            ("Ana", "So the environment variable overrides the queue file?"),
            ("AI", "Yes, the environment variable wins over the queue file. " + detail * 3),
            ("Ana", "And why does the queue file exist then?"),
            ("AI", "The queue file exists for local runs without the variable. " + detail * 3),
        )
    )
    assert len(of_type(found, "question_answer")) == 3
    assert of_type(found, "socratic_sequence") == []


def test_a_reply_that_only_asks_back_is_not_the_answer():
    found = analyze_dialectic(
        conversation(
            ("Grace", "My order was due on Monday and the tracking stopped. Where is it?"),
            (
                "Luis",
                "Sorry for the wait, let me check with the courier. Can you confirm the postcode?",
            ),
            ("Grace", "It's 10115."),
            ("Luis", "The courier reports the parcel was damaged at the depot and is coming back."),
        )
    )
    assert pairs(found) == [(0, 3), (1, 2)]


def test_a_direct_reply_that_answers_then_asks_back_is_the_answer():
    found = analyze_dialectic(
        conversation(
            ("Sunil", "My tomatoes have brown patches on the leaves. What is it?"),
            ("Doreen", "Oh dear, that sounds like blight. Has it been warm and wet?"),
            ("Sunil", "Very, all week."),
            ("Doreen", "Then cut the affected leaves off and keep the plants dry."),
        )
    )
    assert (0, 1) in pairs(found)
    assert (0, 3) not in pairs(found)


def test_a_reply_that_only_greets_or_thanks_before_asking_back_is_not_the_answer():
    for reply in (
        "Good morning and welcome to support. What is your account number?",
        "Thanks for reaching out to us. Which model do you have?",
        "That's a really good question. Are you running the same Python version locally?",
        "Sorry, I need to look this up first. Can you confirm the postcode?",
    ):
        found = analyze_dialectic(
            conversation(
                ("Grace", "Why was I charged twice for the router this month?"),
                ("Luis", reply),
                ("Grace", "It's 10115."),
                ("Luis", "The second charge was the deposit; it is refunded on Friday."),
            )
        )
        assert (0, 1) not in pairs(found), reply
        assert (0, 3) in pairs(found), reply


def test_whether_or_not_is_no_question():
    found = analyze_dialectic(
        conversation(
            ("Ana", "We ship it on Friday whether it's ready or not."),
            ("Ben", "Then I'll start the release notes tonight."),
        )
    )
    assert pairs(found) == []


def test_a_chat_question_without_a_question_mark_is_asked():
    for question, answer in [
        ("is 2027 a leap year", "No. 2027 has 365 days; the next one is 2028."),
        ("you two going saturday or nah", "yeah got 3 tickets, block C"),
        ("Is 3pm ok for the call", "yes 3pm works"),
        ("is 10:30 too early", "no, that's fine"),
    ]:
        found = analyze_dialectic(conversation(("Ana", question), ("Ben", answer)))
        assert pairs(found) == [(0, 1)], question


def test_in_a_group_chat_the_direct_reply_is_the_answer_and_a_later_one_on_topic():
    rows = [
        ("Ana", "Who's coming to the climbing gym on Thursday?"),
        ("Ben", "Me!"),
        ("Chloe", "I'm in too, but I need to rent climbing shoes again"),
        ("Dan", "No promises, see you all there"),
    ]
    # A second voice is not paired: people pair a question with one answer (decision 0018).
    assert pairs(analyze_dialectic(conversation(*rows))) == [(0, 1)]
    # A later reply that takes up the question is.
    rows[2] = ("Chloe", "Coming to the climbing gym Thursday too, I need to rent shoes again")
    assert pairs(analyze_dialectic(conversation(*rows))) == [(0, 1), (0, 2)]


def test_no_after_a_question_answers_it_rather_than_disagrees():
    found = analyze_dialectic(
        conversation(
            ("AI", "I've flagged the duplicate payment. Is there anything else I can help with?"),
            ("Ana", "No, that's all. Thanks for sorting it out."),
        )
    )
    assert of_type(found, "disagreement") == []
    assert pairs(found) == [(0, 1)]


def test_conceding_on_the_way_to_objecting_is_not_agreement():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Bazel only rebuilds what changed, so CI would stay fast."),
            ("Bob", "True in principle, but nobody here has ever maintained Bazel."),
        )
    )
    assert of_type(found, "agreement") == []


def test_a_reviewer_opening_with_a_correction_that_is_accepted():
    found = analyze_dialectic(
        conversation(
            (
                "Alice",
                "I have a concern about this part: the expire call runs after incr, so a "
                "crash in between leaves a key without a TTL.",
            ),
            ("Bob", "Good catch, I'll move both calls into one pipeline."),
        )
    )
    [correction] = of_type(found, "correction")
    assert correction["messages"] == [0, 1]
    assert correction["roles"] == {"correction": 0, "acceptance": 1}


DEBATE_SETTLED = [
    ("Priya", "We should go back to the office full time, the juniors are struggling remote."),
    ("Tom", "I disagree. Remote work gave us long focus days and senior hires we'd never get."),
    ("Priya", "The seniors are fine. The juniors wait days for help with simple problems."),
    ("Tom", "That's a mentoring problem, not an office problem."),
    ("Priya", "Maybe. What would fix the mentoring then?"),
    ("Tom", "Pairing sessions, I suppose."),
    (
        "Priya",
        "Then two office days a week for pairing with the juniors, remote focus days "
        "the rest of the week.",
    ),
    ("Tom", "I could live with that."),
]


def test_a_proposal_the_other_side_accepts_settles_a_debate():
    [arc] = of_type(analyze_dialectic(conversation(*DEBATE_SETTLED)), "thesis_antithesis_synthesis")
    assert arc["roles"]["synthesis"] == 6
    assert arc["roles"]["thesis"] < arc["roles"]["antithesis"] < 6
    assert arc["speakers"][0] in {"Priya", "Tom"}


ON_CALL = [
    (
        "Erin",
        "Proposal for on-call: weekly rotation across all five of us, swaps allowed but "
        "logged in the calendar.",
    ),
    (
        "Lars",
        "A full seven days is brutal with the pager going off at 3am. And I'm away for my "
        "sister's wedding on the 20th.",
    ),
    (
        "Sunita",
        "Split it then: weekdays rotate weekly, weekends rotate separately, so nobody gets "
        "both back to back.",
    ),
    ("Lars", "That works for me."),
    ("Erin", "Great, I'll put it in the calendar tonight."),
]


@pytest.mark.parametrize("accepted", ["That works for me.", "Great, that works for me.", "Deal."])
def test_pushback_without_a_marker_word_counts_where_terms_are_then_accepted(accepted):
    # Nothing in "A full seven days is brutal…" says "but" or "I disagree"; the terms
    # accepted after it show it was a position in a negotiation.
    found = analyze_dialectic(conversation(*ON_CALL[:3], ("Lars", accepted), ON_CALL[4]))
    [objection] = of_type(found, "disagreement")
    assert objection["roles"] == {"target": 0, "response": 1}
    [arc] = of_type(found, "thesis_antithesis_synthesis")
    assert arc["roles"] == {"thesis": 0, "antithesis": 1, "synthesis": 2, "acceptance": 3}


@pytest.mark.parametrize(
    "reply",
    [
        "Sounds good.",
        "Agreed, nice one.",
        "I like that.",
        "That works?",
        "Deal with it, I'm not doing weekends.",
        "That could work if we had six people.",
        "Deal me in, I'll bring the snacks.",
        "Passt mir nicht, da bin ich beim Kunden.",
        "That works for you?",
    ],
)
def test_plain_assent_or_other_meanings_do_not_make_a_negotiation(reply):
    # A brainstorm or a support chat says the first three as often; the others are a
    # question, a refusal and a condition. The reply model's reading of the second
    # message alone is not enough to call it pushback.
    found = analyze_dialectic(conversation(*ON_CALL[:3], ("Lars", reply), ON_CALL[4]))
    assert of_type(found, "disagreement") == []
    assert of_type(found, "thesis_antithesis_synthesis") == []


BRAINSTORM = [
    (m["speaker"], m["text"])
    for m in json.loads(
        (Path(__file__).parents[1] / "fixtures/eval/14_brainstorming.json").read_text("utf-8")
    )["messages"]
]


@pytest.mark.parametrize("closing", ["Agreed,", "Works for me,", "Deal,", "That works,"])
def test_a_brainstorm_that_ends_in_terms_has_no_disagreement(closing):
    # "Ooh, and the kids who read the most…" and "That's great because it's concrete" read
    # to the reply model like rebuttals; a reply that opens in praise builds on the idea.
    rows = list(BRAINSTORM)
    rows[10] = ("Ben", f"{closing} this is a fun plan. I'll ask my neighbour about the reading.")
    found = analyze_dialectic(conversation(*rows))
    assert of_type(found, "disagreement") == []
    assert of_type(found, "thesis_antithesis_synthesis") == []


def test_a_deal_closing_a_plan_does_not_reopen_an_earlier_exchange():
    help_then_lunch = [
        ("Ivy", "Quick question, how do I add a second calendar to the shared view?"),
        ("Noah", "Click the plus next to 'Other calendars' and paste the calendar's address."),
        ("Ivy", "I don't have a plus there, just a gear icon. Maybe it's a different version?"),
        ("Noah", "Then it's under the gear icon, 'Add calendar', same thing."),
        ("Ivy", "Found it, thank you!"),
        ("Noah", "No problem. Are you coming to the team lunch on Friday?"),
        ("Ivy", "Yes! Where is it this time?"),
        ("Noah", "The Italian place on King Street, 12:30."),
        ("Ivy", "Lovely, I'll book us a table for eight then."),
        ("Noah", "Great, thanks for sorting it."),
        ("Ivy", "I'll also ask if they can do a cake for Maria's birthday."),
        ("Noah", "Deal, I'll chip in for it."),
    ]
    assert of_type(analyze_dialectic(conversation(*help_then_lunch)), "disagreement") == []


@pytest.mark.parametrize(
    "closing",
    [
        "That works now, the receipt scanned fine. Thanks!",
        "That works, the receipt scanned fine now. Thanks!",
        "Thanks, that works! The receipt scanned fine.",
        "Perfect, that works for me, it scanned.",
    ],
)
def test_a_fix_that_works_is_no_negotiation(closing):
    # "I updated and it still crashes" is troubleshooting, and the assistant's next
    # suggestion that works ends it: no objection, no synthesis.
    found = analyze_dialectic(
        conversation(
            ("Rosa", "The app crashes every time I open the camera to scan a receipt."),
            ("AI", "Sorry about that! Please update the app to 3.4, which fixes a camera crash."),
            ("Rosa", "I updated to 3.4 and the camera still crashes when I scan a receipt."),
            ("AI", "Thanks for checking. Then turn off HDR in the camera settings and try again."),
            ("Rosa", closing),
        )
    )
    assert of_type(found, "disagreement") == []
    assert of_type(found, "thesis_antithesis_synthesis") == []


def test_a_counter_offer_taken_at_once_is_pushback():
    found = analyze_dialectic(
        conversation(
            ("Sam", "I'd like £120 for the bike, it's barely ridden."),
            ("Jo", "£90 and I collect it today."),
            ("Sam", "Deal, see you at six."),
        )
    )
    [objection] = of_type(found, "disagreement")
    assert objection["roles"] == {"target": 0, "response": 1}


def test_praise_followed_by_but_is_still_pushback():
    rows = [
        ON_CALL[0],
        ("Lars", "That's great, but a full seven days is brutal with the pager going off at 3am."),
        *ON_CALL[2:],
    ]
    [objection] = of_type(analyze_dialectic(conversation(*rows)), "disagreement")
    assert objection["roles"] == {"target": 0, "response": 1}


def test_a_message_that_still_objects_does_not_reconcile():
    found = analyze_dialectic(
        conversation(
            ("Hannah", "I think we should move all our services into a monorepo."),
            ("Omar", "I don't think a monorepo fits us, our CI is already slow."),
            (
                "Omar",
                "And I'm not convinced the monorepo pays off. Let's bring both options to "
                "the architecture meeting.",
            ),
        )
    )
    assert of_type(found, "thesis_antithesis_synthesis") == []


# --- open argument, negotiation and holding one's ground -------------------------------


def disagreeing(found):
    return [s["roles"]["response"] for s in of_type(found, "disagreement")]


def test_holding_ones_ground_after_an_objection_is_a_disagreement():
    found = analyze_dialectic(
        conversation(
            ("Ana", "We should move the nightly jobs to the new cluster this sprint."),
            ("Ben", "I'd be careful. The new cluster has no monitoring yet."),
            ("Ana", "We already have monitoring gaps on the old cluster. It fell over twice."),
            ("Ben", "The old cluster fell over from overlapping jobs, which the move keeps."),
        )
    )
    assert disagreeing(found) == [1, 2, 3]


def test_a_reply_off_the_disputed_subject_ends_the_argument():
    found = analyze_dialectic(
        conversation(
            ("Ana", "We should move the nightly jobs to the new cluster this sprint."),
            ("Ben", "I'd be careful. The new cluster has no monitoring yet."),
            ("Ana", "We keep going round in circles. Let me put it on Friday's agenda."),
            ("Ben", "No worries, thanks."),
        )
    )
    assert disagreeing(found) == [1]


def test_counter_offers_in_a_haggle_are_disagreements():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Hi, would you take $300 for the bike?"),
            ("Ben", "It's nearly new. I could do $420."),
            ("Ana", "I've seen similar ones for less. Meet me at $350?"),
            ("Ben", "$420 works, sorry."),
        )
    )
    assert disagreeing(found) == [1, 2]


def test_turning_down_a_proposal_put_as_a_question_is_a_disagreement():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Band practice Monday then?"),
            ("Ben", "Can't Monday, I'm working late."),
        )
    )
    assert disagreeing(found) == [1]
    # An answer to a plain question is not a disagreement.
    found = analyze_dialectic(
        conversation(
            ("Ana", "Are you free Monday?"),
            ("Ben", "Not really, I'm working late."),
        )
    )
    assert disagreeing(found) == []


def test_a_second_sentence_that_turns_against_the_first_is_pushback():
    found = analyze_dialectic(
        conversation(
            ("Ana", "The ending was happy: they finally get together."),
            ("Ben", "Sort of! But the last scene is full of regret."),
        )
    )
    assert disagreeing(found) == [1]
    # After thanks, "But…" opens a new point, not an objection.
    found = analyze_dialectic(
        conversation(
            ("Ana", "The export runs every night at two."),
            ("Ben", "Thanks for checking. But where does it write the file?"),
        )
    )
    assert disagreeing(found) == []


def test_a_stance_after_a_discourse_marker_and_a_restricted_claim_are_pushback():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Renting is cheaper than buying, full stop."),
            ("Ben", "Cheaper for now. Rents rise every year."),
            ("Ana", "Look, that assumes prices keep climbing."),
        )
    )
    assert disagreeing(found) == [1, 2]


def test_advice_in_an_answer_is_not_agreement():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Do I need to book a seat?"),
            (
                "AI",
                "You should be fine without one, but at weekends a reserved seat is a good idea.",
            ),
        )
    )
    assert of_type(found, "agreement") == []


def tas_spans(found):
    return [s["roles"] for s in of_type(found, "thesis_antithesis_synthesis")]


def test_a_conditional_acceptance_settles_a_dispute():
    found = analyze_dialectic(
        conversation(
            ("Ana", "My pick is the cheaper hosting plan; it covers everything we run today."),
            ("Ben", "Cheaper for now. Once traffic doubles the hosting plan gets pricey."),
            ("Ana", "I priced the doubling, it still comes out ahead."),
            ("Cy", "Can we fix the price in the contract?"),
            (
                "Ben",
                "If the contract fixes the hosting price for three years, I could live with it.",
            ),
        )
    )
    assert tas_spans(found) == [{"thesis": 0, "antithesis": 1, "synthesis": 4}]


def test_an_accepted_plan_off_the_disputed_subject_is_no_synthesis():
    found = analyze_dialectic(
        conversation(
            ("Ana", "I think the ending was hopeful: she walks back to her husband."),
            ("Ben", "I see it differently though. The ending is about grief, not hope."),
            ("Ana", "Fair, there is grief in it."),
            ("Ben", "We should rewatch it together some weekend."),
            ("Ana", "Deal."),
        )
    )
    assert tas_spans(found) == []


def test_a_reply_that_only_accepts_is_not_the_synthesis():
    found = analyze_dialectic(
        conversation(
            ("Ana", "The kitchen is a mess again and nobody follows the cleaning rota."),
            ("Ben", "I cleaned the bathroom last week, so nobody is not true."),
            ("Cy", "Each of us takes one fixed area for a month, I'll take the kitchen."),
            ("Ben", "Sounds good, at least everyone knows the job."),
            ("Ana", "Agreed."),
        )
    )
    assert all(roles["synthesis"] != 3 for roles in tas_spans(found))


def test_denying_the_very_word_the_other_used_is_a_disagreement():
    found = analyze_dialectic(
        conversation(
            ("Ana", "You ignored my messages all weekend, that's twice now."),
            ("Ben", "I didn't ignore them, my phone died on Friday."),
        )
    )
    assert disagreeing(found) == [1]
    # A negation that does not take up the other's words is no denial.
    found = analyze_dialectic(
        conversation(
            ("Ana", "The new bakery on the corner opened today."),
            ("Ben", "Oh nice, I haven't tried it yet."),
        )
    )
    assert disagreeing(found) == []


def test_a_disputed_date_counts_as_the_subject_of_the_argument():
    found = analyze_dialectic(
        conversation(
            ("Ana", "The launch was due on the 9th and nothing has shipped."),
            ("Ben", "It was never the 9th. We agreed on the 16th at the review."),
            ("Ana", "The 9th is in my notes and on the board."),
        )
    )
    assert disagreeing(found) == [1, 2]


def test_a_hedged_answer_to_a_question_is_not_pushback():
    found = analyze_dialectic(
        conversation(
            ("AI", "That sounds hard. Is there anyone you can talk to about it?"),
            ("Ana", "My brother, sort of. But he's busy and I don't want to weigh on him."),
            ("AI", "Have you restarted the router since the cable was moved?"),
            ("Ana", "I restarted it twice. Still red."),
        )
    )
    assert disagreeing(found) == []


def test_the_asker_s_own_follow_up_is_not_the_direct_reply():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Are you coming to dinner tonight?"),
            ("Ana", "🙏"),
            ("Ben", "Yes, I'll be there at 7."),
        )
    )
    assert pairs(found) == [(0, 2)]


def test_an_assenting_word_turned_round_is_no_agreement():
    for reply in (
        "Absolutely not.",
        "Definitely not, that would break the build.",
        "Absolutely no way.",
        "Absolutely, no.",
        "Absolutely never.",
        "Totally disagree. The tests are red.",
        "Totally wrong, the tests are red.",
    ):
        found = analyze_dialectic(conversation(("Ana", "Let's merge it tonight."), ("Ben", reply)))
        assert of_type(found, "agreement") == [], reply
    for reply in ("Absolutely not.", "Totally disagree. The tests are red."):
        found = analyze_dialectic(conversation(("Ana", "Let's merge it tonight."), ("Ben", reply)))
        assert [s["messages"] for s in of_type(found, "disagreement")] == [[0, 1]], reply
    for reply in (
        "Absolutely.",
        "Exactly, no doubt about it.",
        "Absolutely, never again.",
        "Exactly, no one does.",
        "Great, no more late nights!",
    ):
        found = analyze_dialectic(conversation(("Ana", "Let's merge it tonight."), ("Ben", reply)))
        assert [s["messages"] for s in of_type(found, "agreement")] == [[0, 1]], reply


def test_the_answer_to_a_follow_up_question_is_not_given_to_the_first():
    found = analyze_dialectic(
        conversation(
            ("Ana", "Did you book the tickets for Saturday?"),
            ("Ana", "Also what time should we leave?"),
            ("Ben", "Around 6:30 should be fine."),
        )
    )
    assert pairs(found) == [(1, 2)]


def test_consolation_is_no_disagreement_unless_it_turns():
    grief = [
        ("Mia", "I should have taken her to the vet sooner. I keep thinking I missed the signs."),
        ("Tom", "It wasn't your fault. Nobody could've known, she hid it so well."),
        ("Mia", "I know. I just feel like I let her down."),
        ("Tom", "Don't beat yourself up. You gave her an amazing life."),
    ]
    assert of_type(analyze_dialectic(conversation(*grief)), "disagreement") == []
    cue = [("Ana", "I should have seen the bug in review."), ("Ben", "Nobody could have known.")]
    assert of_type(analyze_dialectic(conversation(*cue)), "disagreement") == []
    # The same words defend against an accusation, or ask back in sarcasm.
    for rows in (
        [
            ("Ana", "The outage was your team's fault."),
            ("Ben", "Nobody could have known, and no, it wasn't our team, it was the vendor."),
        ],
        [
            ("Ana", "The deploy broke because the config was wrong, my bad I guess."),
            ("Ben", "Not your fault? It was entirely your team's config change, not ours."),
        ],
    ):
        found = analyze_dialectic(conversation(*rows))
        assert [s["messages"] for s in of_type(found, "disagreement")] == [[0, 1]]
    argued = [
        ("Ana", "I'll roll the fix out on Friday evening, my fault the review missed it."),
        ("Ben", "It's not your fault the review missed it, but that's not how releases work."),
    ]
    found = analyze_dialectic(conversation(*argued))
    assert [s["messages"] for s in of_type(found, "disagreement")] == [[0, 1]]


def test_any_typed_apostrophe_reads_as_the_plain_one():
    rows = [("Ana", "The fix is in, deploy it now."), ("Ben", "That isn't ready, the tests fail.")]
    plain = analyze_dialectic(conversation(*rows))
    for mark in ("’", "ʼ", "´"):
        typed = analyze_dialectic(conversation(rows[0], ("Ben", rows[1][1].replace("'", mark))))
        assert [(s["type"], s["messages"], s["strength"]) for s in typed] == [
            (s["type"], s["messages"], s["strength"]) for s in plain
        ], mark


def test_a_compromise_accepted_after_a_question_about_it_settles_the_dispute():
    rows = [
        ("Ian", "Our quote is 3,700 a month for nightly cleaning, on a 24 month contract."),
        ("Grete", "That is above our budget, we were thinking nearer 3,000."),
        ("Ian", "Here is a middle ground: 3,450 a month for 18 months, full scope."),
        ("Grete", "Does the 3,450 include the consumables?"),
        ("Ian", "Yes, all chemicals and consumables are included."),
        ("Grete", "Deal. Send the contract over."),
    ]
    assert tas_spans(analyze_dialectic(conversation(*rows))) == [
        {"thesis": 0, "antithesis": 1, "synthesis": 2, "acceptance": 5}
    ]


def test_a_compromise_is_settled_only_by_accepting_it():
    rejected = [
        ("A", "We should launch on Monday."),
        ("B", "No, Monday is far too soon, QA hasn't even started."),
        ("C", "Could we compromise and launch Wednesday?"),
        ("A", "No, that's way too late."),
        ("B", "Exactly, pointless."),
    ]
    assert tas_spans(analyze_dialectic(conversation(*rejected))) == []
    unrelated = [
        ("A", "Let's paint the living room blue."),
        ("B", "No, blue will make it feel cold and small."),
        ("C", "I'm getting 2 pots from the shop at 5."),
        ("A", "Which shop?"),
        ("C", "The one on Main St."),
        ("A", "Great."),
    ]
    assert tas_spans(analyze_dialectic(conversation(*unrelated))) == []
    asked = [
        ("A", "Tom should lead the project."),
        ("B", "No, Tom has never run anything this size."),
        ("C", "What about Priya instead?"),
        ("A", "How long has she been here?"),
        ("C", "About 6 years."),
        ("A", "Deal, Priya it is."),
    ]
    assert tas_spans(analyze_dialectic(conversation(*asked))) == [
        {"thesis": 0, "antithesis": 1, "synthesis": 2, "acceptance": 5}
    ]
