"""Interaction dynamics: who speaks, how much, in what rhythm, and who drives the exchange.

Vocabulary used throughout:

- A *message* is one entry of the conversation. ``system`` messages (system prompts, tool
  output) are counted in ``system_messages`` and left out of everything else: they are not
  turns, have no speaker statistics and do not interrupt a run of one speaker.
- ``total_turns`` is the number of non-system messages (the name the product contract
  uses); ``human_turns`` / ``ai_turns`` split it by role.
- A *speaker turn* is a run of consecutive non-system messages from one speaker: three
  messages in a row from Ana are one speaker turn. ``speaker_turns`` counts the runs.
- A *word* is what remains between spaces once punctuation is removed; apostrophes join
  (``don't`` is one word, ``e.g.`` two). Code counts towards words and characters.
- *Content words* are lower-cased words of three or more characters that are not common
  function words; code blocks are left out of them.
"""

from __future__ import annotations

import math
import re
import statistics
import string
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.analysis.text import AUXILIARIES, BE_OR_MODAL, DETERMINERS, SUBJECTS, WH_WORDS
from app.conversation import Conversation, Message
from app.core import patterns
from app.core.cancellation import NEVER, CancelToken

# Messages are processed in chunks of this size; the token is checked after each chunk.
_CHUNK = 256
_REPLY_WINDOW = 3600.0  # seconds
_SILENCE_FACTOR = 10.0

# A message opens a topic when it brings at least this many content words and hardly any of
# them, relative to the smaller vocabulary, occur in the previous few messages.
_TOPIC_WINDOW = 3
_TOPIC_MAX_OVERLAP = 0.1
_TOPIC_MIN_CONTENT_WORDS = 5

_CLOSERS = "\"')]}»”’*_"  # may follow a sentence's final mark
_TAIL = _CLOSERS + " \t\r"
_FENCE = patterns.compile(r"^[ \t]*(```|~~~)")
# A run of backticks up to the next run of the same length; a run that finds none is
# read as pairs of empty spans. The run and the text after it are each read once (a lazy
# body with a back-reference re-read a long run of backticks for every shorter opening).
_INLINE_CODE = patterns.compile(r"(`++)[^`]*+\1|(?:``)++")
_QUESTION_END = patterns.compile(rf"\?[{re.escape(_CLOSERS)}]*(?=\s|\Z)")

# Written with either apostrophe: this text is not normalised first.
_AUX = AUXILIARIES.replace("'", "['’]")
_SUBJECT = SUBJECTS
_DETERMINER = DETERMINERS
_WH = WH_WORDS
_WH_FOLLOWER = rf"{_AUX}|about|come|else|many|much|long|often|far"
# Matched against lower-cased text in which every sentence starts on a new line (see
# _count_questions); beginning with a literal line break lets the regex engine skip ahead.
_OPENER = patterns.compile(
    # List, quote and heading markup; one mark per repetition, so a long run such as a
    # "-----" rule is matched in linear time instead of being split every possible way.
    r"\n[ \t]*(?:[-*+>#][ \t]*|\d+[.)][ \t]+)*"
    r"(?:(?:and|but|so|ok|okay|also|then|well|now|oh|hmm|hey|hi|please)\b,?[ \t]+)?"
    # Auxiliary + subject ("can you", "is it", "do we") is interrogative word order even
    # when the writer ends with a period; "do the" or "have a" start imperatives instead.
    rf"(?:(?P<aux>(?:{_AUX})[ \t]+(?:{_SUBJECT})|(?:{BE_OR_MODAL})[ \t]+(?:{_DETERMINER}))\b"
    rf"|(?P<wh>(?:{_WH})(?:[ \t]+(?:{_WH_FOLLOWER})\b|['’]s\b|[ \t]*(?=[.!?]|\n|\Z))))"
)

# Message texts are joined with this separator so that one call to each string method or
# regex serves a whole chunk; the line breaks around it end the last sentence of a message.
_SEPARATOR = "\n\x00\n"
# Words are split on bytes: bytes.translate is a table lookup per byte, while str.translate
# on text with any non-ASCII character does a dict lookup per character, 100 times slower.
# Punctuation becomes a space; apostrophes join ("don't" -> "dont").
_ASCII_BREAKS = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
_UNICODE_BREAKS = "‘“”«»„…–—•·\u00a0\u2009\u202f"  # the common ones; each costs a scan
_UNICODE_APOSTROPHE = "’"
_ALNUM = string.ascii_lowercase + string.digits
# Listing every token shorter than three characters keeps the content-word filter a single
# membership test.
_SHORT_TOKENS = frozenset(_ALNUM) | frozenset(a + b for a in _ALNUM for b in _ALNUM)
_FUNCTION_WORDS = """
    about above after again against all also although always among and another any anybody
    anyone anything are arent around because been before being below between both but can
    cant cannot could couldnt did didnt does doesnt doing dont done down during each
    either else enough even ever every everyone everything few for from further get gets
    getting got had hadnt has hasnt have havent having hed hes her here heres
    hers herself him himself his how hows however im ive into isnt its
    itself just let lets like make makes made many may maybe might more most much must
    mustnt myself need needs never not now off once one only onto other others otherwise
    ought our ours ourselves out over own perhaps please quite rather really same say says
    said see seem seems shall shant she shes should shouldnt since some
    something still such sure take than that thats the their theirs them themselves then
    there theres these they theyd theyll theyre theyve thing things this those though
    through thus too under until upon use used using very want wants was wasnt way
    well were werent what whats when whens where wheres whether which
    while who whos whom whose why whys will with within without wont would wouldnt yes
    yet you youd youll youre youve your yours yourself yourselves okay thanks thank
"""
_STOPWORDS = frozenset(word.encode() for word in _SHORT_TOKENS | set(_FUNCTION_WORDS.split()))


def count_questions(text: str) -> int:
    """Count the questions in ``text`` with a deliberately simple heuristic.

    Fenced code blocks (``` or ~~~, an unclosed fence running to the end) and inline
    `code` are removed first, so a ``?`` in a regex or a URL query inside code is never a
    question. A sentence ends at a line break or at ``.``/``!``/``?`` followed by a space.
    A sentence is a question when

    - it ends with ``?`` (closing quotes, brackets and emphasis marks aside), or
    - it starts (after list/quote markup and a lead-in such as "so," or "ok") with an
      auxiliary followed by a subject — "can you", "could you", "is it", "do you",
      "are there", "should the" — and does not end with ``!``, or
    - it starts with a wh-word followed by an auxiliary or a word such as "many"/"about"
      ("how do", "what is", "how many", "what's", or a bare "why") and ends with neither
      ``.`` nor ``!``: "What is needed is a cache." is a statement.

    A ``?`` not followed by whitespace (``/search?q=x``) does not end a sentence.
    """
    return sum(_count_questions(_strip_code(text).lower()))


def analyze_dynamics(conversation: Conversation, token: CancelToken = NEVER) -> dict[str, Any]:
    """Describe the interaction dynamics of ``conversation`` as a JSON-ready dict.

    Turn-taking: ``alternation_rate`` is the share of consecutive non-system message pairs
    whose speakers differ; ``longest_run`` is the longest speaker turn (the earliest wins a
    tie; ``start`` is the index of its first message); ``mean_run_length`` is messages per
    speaker turn.

    Initiative: ``conversation_opener`` is the first non-system speaker. A message *opens a
    topic* when it has at least five content words ``A`` and their overlap coefficient with
    the content words ``C`` of the previous three non-system messages,
    ``|A & C| / min(|A|, |C|)``, is below 0.1; with no content words before it (the first
    message, say) any message of five content words opens a topic. Jaccard similarity
    ``|A & C| / |A | C|`` would call every long answer to a short question a new topic, as
    the answer's own vocabulary swamps the union. A reply to a question (a message right
    after another speaker's message that asked one) stays on the asker's topic and opens
    none, however new its words.

    Dominance: with word shares ``s_i`` over ``k`` speakers, ``index`` is the normalised
    Herfindahl index ``(sum(s_i**2) - 1/k) / (1 - 1/k)``: 0 when every speaker says as
    much as the others, 1 when one voice says everything (a lone speaker scores 1). The
    dominant speaker has the largest word share (the earliest to appear wins a tie). When
    nobody wrote a single word, message shares stand in for word shares.

    Reciprocity: ``0.5 * (1 - index) + 0.5 * alternation_rate``. Balanced volume and
    frequent hand-overs both make an exchange reciprocal; a one-speaker conversation
    scores 0.

    Response latency, in seconds, is measured for each message that starts a speaker turn:
    the delay since the message just before it (the last message of the previous speaker's
    turn), when both carry timestamps. Negative delays (messages out of order) and delays
    after a long silence (over an hour and over ten times the median delay: a new exchange,
    not a reply) are left out and counted in ``response_latency_skipped``. A timestamp without a time zone is taken
    as UTC when compared with one that has a time zone. ``p90`` interpolates linearly
    between closest ranks (numpy's default ``percentile`` method). ``response_latency`` is
    null when fewer than two non-system messages carry a timestamp.
    """
    token.check()
    spoken = [m for m in conversation.messages if m.role != "system"]
    words: list[int] = []
    questions: list[int] = []
    opens: list[bool] = []
    topics = _TopicWindow()
    for start in range(0, len(spoken), _CHUNK):
        chunk = spoken[start : start + _CHUNK]
        chunk_words, chunk_questions, contents = _features([m.text for m in chunk])
        words += chunk_words
        questions += chunk_questions
        opens += map(topics.opens, chunk, contents, chunk_questions)
        token.check()

    speakers = _speaker_table(spoken, words, questions, opens)
    total_words = sum(words)
    turns = len(spoken)
    runs = _runs(spoken)
    token.check()
    dominant, dominant_share, index = _dominance(_voice_shares(speakers, total_words, turns))
    alternation = (len(runs) - 1) / (turns - 1) if turns > 1 else 0.0
    reciprocity = 0.5 * (1.0 - index) + 0.5 * alternation if len(speakers) > 1 else 0.0
    human_turns = sum(1 for m in spoken if m.role == "human")
    timestamped = sum(1 for m in spoken if m.timestamp is not None)
    latencies, skipped = _latencies(spoken, runs) if timestamped >= 2 else ({}, 0)
    longest = max(runs, key=lambda run: run[1], default=None)  # the first of equals wins
    return {
        "total_turns": turns,
        "human_turns": human_turns,
        "ai_turns": turns - human_turns,
        "system_messages": len(conversation.messages) - turns,
        "speaker_turns": len(runs),
        "avg_turn_length": _ratio(total_words, turns),
        "speakers": {
            name: {
                "role": s.role,
                "messages": s.messages,
                "words": s.words,
                "characters": s.characters,
                "share": _ratio(s.words, total_words),
                "message_share": _ratio(s.messages, turns),
                "questions_asked": s.questions,
                "avg_length": _ratio(s.words, s.messages),
            }
            for name, s in speakers.items()
        },
        "turn_taking": {
            "alternation_rate": _round(alternation),
            "longest_run": (
                None
                if longest is None
                else {
                    "speaker": spoken[longest[0]].speaker,
                    "length": longest[1],
                    "start": spoken[longest[0]].index,
                }
            ),
            "mean_run_length": _ratio(turns, len(runs)),
        },
        "initiative": {
            "questions_by_speaker": {name: s.questions for name, s in speakers.items()},
            "opened_topics_by_speaker": {name: s.opened_topics for name, s in speakers.items()},
            "conversation_opener": next(iter(speakers), None),
        },
        "reciprocity_score": _round(reciprocity),
        "dominance": {"speaker": dominant, "share": _round(dominant_share), "index": _round(index)},
        "response_latency": (
            {name: _latency_summary(latencies[name]) for name in speakers if name in latencies}
            if timestamped >= 2
            else None
        ),
        "response_latency_skipped": skipped,
    }


@dataclass(slots=True)
class _SpeakerStats:
    role: str
    messages: int = 0
    words: int = 0
    characters: int = 0
    questions: int = 0
    opened_topics: int = 0


def _speaker_table(
    spoken: Sequence[Message], words: list[int], questions: list[int], opens: list[bool]
) -> dict[str, _SpeakerStats]:
    """Per-speaker totals, in order of first appearance; a speaker keeps their first role."""
    table: dict[str, _SpeakerStats] = {}
    for message, word_count, question_count, opened in zip(
        spoken, words, questions, opens, strict=True
    ):
        stats = table.get(message.speaker)
        if stats is None:
            stats = table[message.speaker] = _SpeakerStats(role=message.role)
        stats.messages += 1
        stats.words += word_count
        stats.characters += len(message.text)
        stats.questions += question_count
        stats.opened_topics += opened
    return table


def _runs(spoken: Sequence[Message]) -> list[tuple[int, int]]:
    """Speaker turns as (position of their first message in ``spoken``, length)."""
    starts = [
        position
        for position in range(len(spoken))
        if position == 0 or spoken[position].speaker != spoken[position - 1].speaker
    ]
    ends = [*starts[1:], len(spoken)] if spoken else []
    return [(start, end - start) for start, end in zip(starts, ends, strict=True)]


def _latencies(
    spoken: Sequence[Message], runs: list[tuple[int, int]]
) -> tuple[dict[str, list[float]], int]:
    """Delays before each speaker turn by responder, and how many were negative."""
    delays: dict[str, list[float]] = {}
    skipped = 0
    gaps: list[tuple[str, float]] = []
    for start, _ in runs[1:]:
        gap = _gap_seconds(spoken[start - 1], spoken[start])
        if gap is not None and gap < 0:
            skipped += 1
        elif gap is not None:
            gaps.append((spoken[start].speaker, gap))
    if not gaps:
        return delays, skipped
    # A message after a long silence opens a new exchange rather than replying: a gap
    # counts when it is within an hour, or within ten times the conversation's median
    # gap for correspondence that is slow throughout (e-mail threads).
    typical = statistics.median(gap for _, gap in gaps)
    limit = max(_REPLY_WINDOW, _SILENCE_FACTOR * typical)
    for speaker, gap in gaps:
        if gap <= limit:
            delays.setdefault(speaker, []).append(gap)
        else:
            skipped += 1
    return delays, skipped


class _TopicWindow:
    """Decides, message after message, which ones open a topic."""

    __slots__ = ("asked", "recent", "speaker")

    def __init__(self) -> None:
        self.recent: list[frozenset[bytes]] = []
        self.speaker: str | None = None
        self.asked = False

    def opens(self, message: Message, content: frozenset[bytes], questions: int) -> bool:
        answering = self.asked and message.speaker != self.speaker
        opened = (
            not answering
            and len(content) >= _TOPIC_MIN_CONTENT_WORDS
            and _is_new_topic(content, self.recent)
        )
        self.recent.append(content)
        if len(self.recent) > _TOPIC_WINDOW:
            del self.recent[0]
        self.speaker, self.asked = message.speaker, questions > 0
        return opened


def _features(texts: Sequence[str]) -> tuple[list[int], list[int], list[frozenset[bytes]]]:
    """Word counts, question counts and content words of the texts.

    The texts are joined so that lower-casing, punctuation removal and the question regexes
    run once per chunk instead of once per message; what is left per message is splitting
    into words and building the content-word set.
    """
    if not texts:
        return [], [], []
    prose = [_strip_code(text) if "`" in text or "~~~" in text else text for text in texts]
    joined = _SEPARATOR.join(prose).lower()
    if joined.count("\x00") != len(texts) - 1:  # a text carries the separator's NUL itself
        joined = _SEPARATOR.join(p.replace("\x00", " ") for p in prose).lower()
    word_counts = []
    contents = []
    for text, own_prose, words in zip(
        texts, prose, _word_bytes(joined).split(b"\x00"), strict=True
    ):
        tokens = words.split()
        if own_prose is text:
            word_counts.append(len(tokens))
        else:  # code is left out of the prose but counts as words
            word_counts.append(len(_word_bytes(text.lower()).split()))
        contents.append(frozenset(tokens) - _STOPWORDS)
    return word_counts, _count_questions(joined), contents


def _word_bytes(text: str) -> bytes:
    """``text`` in UTF-8 with punctuation turned into spaces and apostrophes dropped."""
    if not text.isascii():
        text = text.replace(_UNICODE_APOSTROPHE, "")
        for mark in _UNICODE_BREAKS:
            text = text.replace(mark, " ")
    return text.encode("utf-8", "surrogatepass").translate(_ASCII_BREAKS, b"'")


def _count_questions(joined: str) -> list[int]:
    """Questions per text in lower-cased, code-free texts joined with ``_SEPARATOR``."""
    starts = [0]
    position = joined.find("\x00")
    while position >= 0:
        starts.append(position + 1)
        position = joined.find("\x00", position + 1)
    counts = [0] * len(starts)
    if "?" in joined:
        for mark in _QUESTION_END.finditer(joined):
            counts[bisect_right(starts, mark.start()) - 1] += 1
    # One sentence per line; same-length replacements keep every offset in place, and the
    # leading line break shifts positions by one, which maps a match onto its first letter.
    lines = "\n" + joined.replace(". ", ".\n").replace("? ", "?\n").replace("! ", "!\n")
    for opener in _OPENER.finditer(lines):
        end = lines.find("\n", opener.end())
        sentence = lines[opener.start() + 1 : end if end >= 0 else len(lines)]
        last = sentence.rstrip(_TAIL)[-1:]
        if last == "!" or ("?" in sentence and _QUESTION_END.search(sentence)):
            continue  # an exclamation, or a question already counted by its mark
        if opener.lastgroup == "aux" or last != ".":
            counts[bisect_right(starts, opener.start()) - 1] += 1
    return counts


def _is_new_topic(content: frozenset[bytes], recent: Sequence[frozenset[bytes]]) -> bool:
    if all(map(content.isdisjoint, recent)):
        return True
    size = len(content)
    if _TOPIC_MAX_OVERLAP * size <= 1:  # a single shared word is overlap enough
        return False
    shared = size - len(content.difference(*recent))
    # The context is at least as large as its largest message; only when that is smaller
    # than this message does min(|A|, |C|) need the size of the union itself.
    context = size if max(map(len, recent)) >= size else len(frozenset().union(*recent))
    return shared < _TOPIC_MAX_OVERLAP * min(size, context)


def _strip_code(text: str) -> str:
    """``text`` without fenced blocks and inline code; ``text`` itself when it has none."""
    if "```" in text or "~~~" in text:
        kept: list[str] = []
        fence: str | None = None
        for line in text.split("\n"):
            marker = _FENCE.match(line)
            if marker is not None and (fence is None or marker.group(1) == fence):
                fence = marker.group(1) if fence is None else None
            elif fence is None:
                kept.append(line)
        text = "\n".join(kept)
    if "`" in text:
        text = _INLINE_CODE.sub(" ", text)
    return text


def _gap_seconds(previous: Message, message: Message) -> float | None:
    if previous.timestamp is None or message.timestamp is None:
        return None
    try:
        delta = message.timestamp - previous.timestamp
    except TypeError:  # one timestamp has a time zone and the other has none
        delta = _aware(message.timestamp) - _aware(previous.timestamp)
    return delta.total_seconds()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _voice_shares(
    speakers: dict[str, _SpeakerStats], total_words: int, total_messages: int
) -> list[tuple[str, float]]:
    if total_words > 0:
        return [(name, s.words / total_words) for name, s in speakers.items()]
    return [(name, s.messages / total_messages) for name, s in speakers.items()]


def _dominance(shares: list[tuple[str, float]]) -> tuple[str | None, float, float]:
    """The dominant speaker, their share and the normalised Herfindahl index."""
    if not shares:
        return None, 0.0, 0.0
    # max() keeps the first maximum: the speaker who appeared first wins a tie.
    speaker, share = max(shares, key=lambda pair: pair[1])
    k = len(shares)
    if k == 1:
        return speaker, share, 1.0
    herfindahl = math.fsum(s * s for _, s in shares)
    return speaker, share, min(1.0, max(0.0, (herfindahl - 1 / k) / (1 - 1 / k)))


def _latency_summary(delays: list[float]) -> dict[str, Any]:
    ordered = sorted(delays)
    return {
        "mean": _round(math.fsum(ordered) / len(ordered)),
        "median": _round(_percentile(ordered, 0.5)),
        "p90": _round(_percentile(ordered, 0.9)),
        "count": len(ordered),
    }


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (Hyndman & Fan type 7)."""
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ratio(numerator: float, denominator: float) -> float:
    return _round(numerator / denominator) if denominator else 0.0


def _round(value: float) -> float:
    # Adding 0.0 turns -0.0 into 0.0, so equal results serialise identically.
    return round(value, 4) + 0.0
