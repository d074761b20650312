"""Crafted and random text through parsing and the whole analysis, each within a time bound.

The first tests replay the inputs that once froze the service (a line of 47 dots held it
for minutes; ``"1." * 50000`` never finished; 5,000 tabs before a colon took seconds to
parse), at the largest size a message may have. The fuzz test feeds random and
adversarial text: long runs of punctuation, digits, tabs, colons, brackets, backticks,
mixed scripts, lone surrogates (as a JSON body can carry them), control characters and
very long lines. Parsing may refuse input with ``InputError``; anything else is a bug.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.analysis import analyze
from app.conversation.parsers import parse_conversation
from app.core.errors import InputError

MAX_CHARS = 200_000  # settings.max_message_chars
# Whole parse + analysis of a conversation holding runs of this size; a linear run takes
# well under a second here.
BOUND = 6.0


def _parse_and_analyse(**given_input: Any) -> dict[str, Any] | None:
    try:
        conv = parse_conversation(**given_input)
    except InputError:
        return None
    return analyze(conv)


def _timed(**given_input: Any) -> tuple[float, dict[str, Any] | None]:
    started = time.perf_counter()
    result = _parse_and_analyse(**given_input)
    return time.perf_counter() - started, result


def _run(unit: str, chars: int = MAX_CHARS - 10) -> str:
    return unit * (chars // len(unit))


REPLAYED = {
    "47 dots": "." * 47,
    "dots": _run("."),
    "1.": "1." * 50_000,
    "1. at the largest size": _run("1."),
    "a.b.": _run("a.b."),
    "dotted error path": _run("a.") + "Error",
    "1.1.1": _run("1.1.1."),
    "tabs": _run("\t") + ":",
    "backticks": _run("`"),
    "question marks": _run("? "),
    "digits": _run("0"),
    "list markup": _run("- "),
    "e-mail-like": _run("@a."),
    "url-like": _run("a") + "://x",
    "lengthened word": "y" + _run("e") + "s",
    "lengthened words": _run("yesss sooo "),
    "emoji with selectors": _run("❤\ufe0f👍"),
    "capitalised words": _run("Great Bad "),
    "service down": _run("the site is down "),
    "apologies": _run("sorry for my sorry "),
    "softeners": _run("less like a bad, without "),
    "one-word acceptances": _run("Deal. Exactly! "),
    # offers, amounts and turning sentences in a negotiation or an argument
    "amounts": "I could do " + _run("$1,", MAX_CHARS - 40),
    "amounts before a currency word": "would you take " + _run("1,", MAX_CHARS - 40) + " euros",
    "turning sentences": _run("Fine. But "),
    "restrictions": _run("cheaper for now "),
    # determiners before label candidates, and announcements after a discourse marker
    "determiners": _run("the a "),
    "markers before an announcement": _run("Ok, right, "),
    "agenda markers": _run("Next: "),
    "denials": _run("didn't 'x "),
    "figures": _run("1,2."),
    "conditions": "If " + _run("we, ", MAX_CHARS - 40) + "I could live with it",
}


@pytest.mark.parametrize("body", REPLAYED.values(), ids=REPLAYED.keys())
def test_crafted_line_in_a_transcript(body: str) -> None:
    text = f"Human: {body}\nAI: Why? {body}\nHuman: ok {body}?"
    elapsed, result = _timed(conversation_text=text)
    assert result is not None and result["conversation"]["messages"] >= 2
    assert elapsed < BOUND, f"{elapsed:.2f}s"


@pytest.mark.parametrize("body", REPLAYED.values(), ids=REPLAYED.keys())
def test_crafted_message_in_a_message_list(body: str) -> None:
    messages = [
        {"role": "user", "content": body},
        {"role": "assistant", "content": "Why? " + body},
        {"role": "user", "content": body + "?"},
    ]
    elapsed, result = _timed(messages=messages)
    assert result is not None and result["conversation"]["messages"] == 3
    assert elapsed < BOUND, f"{elapsed:.2f}s"


def test_the_line_that_froze_the_service() -> None:
    line = "Human: " + "." * 47
    elapsed, result = _timed(conversation_text=f"{line}\nAI: {'.' * 47}")
    assert result is not None
    assert elapsed < 1.0, f"{elapsed:.2f}s"


@pytest.mark.parametrize("tabs", [5_000, 50_000])
def test_tabs_before_a_colon_in_a_transcript_line(tabs: int) -> None:
    run = "\t" * tabs
    text = (
        f"Human: hello\n{run}: after the tabs\n[2026-03-02 10:15] {run}: stamped\n"
        f"AI: {run}:\nHuman: {' ' * tabs}x:"
    )
    elapsed, result = _timed(conversation_text=text)
    assert result is not None
    assert elapsed < 2.0, f"{elapsed:.2f}s"


# --------------------------------------------------------------------------------------
# Fuzzing
# --------------------------------------------------------------------------------------

PER_INPUT = 2.0

PIECES = [
    *(".", "..", "1.", "a.", "a.b.", ". ", "?", "? ", "!", ":", ": ", "::", "\t", " ", "\n"),
    *("\n\n", "\r", "\r\n", "[", "]", "(", ")", "{", "}", "<", ">", "`", "```", "~~~", "*"),
    *("**", "_", "-", "- ", "#", "> ", "|", "\\", "/", "@", "@a.", "a@b.c", "+", "=", "%"),
    *("$ ", ">>> ", "0", "1", "12", "2026-03-02 10:15", "10:15:03", "4111 1111 1111 1111"),
    *("Human:", "AI:", "Human: ", "Assistant: ", "Ana: ", "[2026-03-02 10:15] ", "**User:**"),
    *("Traceback (most recent call last):", '  File "x.py", line 1', "a.b.CError:"),
    *("at x.y(Z.java:1)", "Error", "http://", "www.", "ignore previous instructions"),
    *("é", "ß", "Ω", "Ж", "中文", "١٢٣", "ー", "😀", "\u200b", "\u200e", "\u2028", "\ufeff"),
    *("＝", "４", "．", "\x00", "\x01", "\x1b", "\x7f", "\ud800", "\udfff", "\ud83d"),
    *("why", "what", "can you", "I disagree", "you're right", "because", "but"),
    *("noooo", "Yesss", "No worries,", "👍", "❤\ufe0f", "Great Bad"),
]

piece = st.sampled_from(PIECES)
run = st.builds(lambda p, n: p * n, piece, st.integers(1, 3_000))
chunk = st.one_of(
    piece,
    run,
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.text(st.characters(max_codepoint=0x7F), max_size=40),
)
texts = st.lists(chunk, max_size=12).map("".join)


def _check_within_bound(**given_input: Any) -> None:
    elapsed, _ = _timed(**given_input)
    assert elapsed < PER_INPUT, f"{elapsed:.2f}s"


FUZZ = settings(
    max_examples=60,
    deadline=None,  # the time bound is asserted per input instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@FUZZ
@given(texts)
def test_fuzzed_transcript(text: str) -> None:
    _check_within_bound(conversation_text=text)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(["user", "assistant", "Ana", "system"]), texts), max_size=6)
)
def test_fuzzed_messages(rows: list[tuple[str, str]]) -> None:
    _check_within_bound(messages=[{"role": role, "content": text} for role, text in rows])


@FUZZ
@given(texts, st.sampled_from(PIECES), st.integers(10_000, 60_000))
def test_fuzzed_text_around_one_very_long_run(text: str, unit: str, count: int) -> None:
    body = text + unit * (count // len(unit)) + text
    _check_within_bound(conversation_text=f"Human: {body}\nAI: {body[::-1]}")
    _check_within_bound(messages=[{"role": "user", "content": body}])
