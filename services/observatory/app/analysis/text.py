"""Text utilities shared by the detectors: prose extraction, sentences, words, excerpts.

Conversations about programming carry code, stack traces, log lines and shell sessions
that are not the speaker's own words. :func:`strip_code` removes them so sentiment does
not read "FATAL ERROR" in a pasted log as anger and topic keywords are not dominated by
identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from app.analysis.privacy import mask_pii
from app.core import patterns

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against ago all almost along already also although always am
    among an and another any anybody anyone anything anyway anywhere are aren't around as
    at away back be became because become been before being below beside besides between
    beyond both but by can can't cannot could couldn't did didn't do does doesn't doing done
    don't down during each either else enough etc even ever every everybody everyone
    everything everywhere few for from further get gets getting give given gives go goes
    going gone got gotten had hadn't has hasn't have haven't having he he'd he'll he's her
    here here's hers herself him himself his how how's however i i'd i'll i'm i've if in
    inside instead into is isn't it it'd it'll it's its itself just least less let let's
    like likely lot lots made make makes making many may maybe me might mine more most
    mostly much must mustn't my myself near need needs neither never next no nobody none
    nor not nothing now of off often oh ok okay on once one ones only onto or other others
    otherwise ought our ours ourselves out over own per perhaps please probably put quite
    rather re really right said same say says see seem seems seen shall shan't she she'd
    she'll she's should shouldn't since so some somebody someone something sometimes
    somewhat still such sure take takes than thank thanks that that's the their theirs them
    themselves then there there's therefore these they they'd they'll they're they've thing
    things think this those though through thus to together too toward towards try trying
    two under unless until up upon us use used uses using very via want wants was wasn't way
    we we'd we'll we're we've well went were weren't what what's whatever when when's where
    where's whether which while who who's whole whom whose why why's will with within
    without won't would wouldn't yeah yes yet you you'd you'll you're you've your yours
    yourself yourselves
    """.split()  # noqa: SIM905 - a word list reads better than 300 quoted strings
)
"""English function words plus conversational filler ("thanks", "okay", "really").

Hand-written rather than scikit-learn's list, which drops content words such as
"system", "computer", "fire" and "interest" that are topics in real conversations.
"""

# Auxiliary verbs, as regex alternatives, for the question detectors: "can you…", "is the…",
# "how do…" read as interrogative word order.
BE_OR_MODAL = r"am|is|are|was|were|can|could|would|will|should|shall|may|might|must"
AUXILIARIES = (
    BE_OR_MODAL
    + r"|do|does|did|have|has|had"
    + r"|isn't|aren't|wasn't|weren't|can't|couldn't|wouldn't|won't|shouldn't"
    + r"|don't|doesn't|didn't|haven't|hasn't"
)
# Words that follow an auxiliary in a question ("can *you*", "is *the*") and open one ("*why*").
SUBJECTS = r"i|you|we|they|he|she|it|there|this|that|these|those|someone|anyone|anybody|one"
DETERMINERS = r"the|a|an|any|some|my|your|our|their|his|her|its"
WH_WORDS = r"what|why|how|when|where|which|who|whom|whose"

_FENCE = patterns.compile(r"(?ms)^[ \t]*(```|~~~).*?(?:^[ \t]*\1[^\n]*$|\Z)")
_INLINE_CODE = patterns.compile(r"`[^`\n]+`")
_WORD = patterns.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# The same tokens in lower-cased ASCII text, found about a third faster.
_ASCII_WORD = patterns.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")

# A line that is machine output rather than prose. Each alternative is anchored at the
# start of the line so prose that merely mentions an error ("I got a TypeError") stays.
_MACHINE_PATTERN = r"""^[ \t]*+(?:
        Traceback\ \(most\ recent\ call\ last\)
      | File\ "[^"]*",\ line\ \d+
      | (?:[A-Za-z_][\w.]*)?(?:Error|Exception|Warning|Interrupt|Exit|Fault)\b(?::|$)
      | [\w.]+?\.[A-Z]\w*(?:Error|Exception)
      | Caused\ by:
      | Exception\ in\ thread
      | at\ [\w$.<>/\\-]++\ ?\((?>.*?(?::\d|native|unknown)).*\)
      | at\ [\w$.<>/\\:-]+:\d+:\d+
      | at\ async[ ]
      | \.\.\.\ \d+\ more
      | panic:
      | goroutine\ \d+\ \[
      | thread\ '[^']*'\ panicked
      | npm\ (?:ERR!|WARN)
      | (?:Killed|Terminated|Aborted|Segmentation\ fault|Bus\ error)(?:\ \(core\ dumped\))?\s*$
      | make(?:\[\d+\])?:\ \*\*\*
      | \[?(?:DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT|SEVERE|TRACE|PANIC)
        (?:\]|:|\s|$)
      | (?:\[?\d{4}-\d{2}-\d{2}[T\ ]\d{2}:\d{2}\S*+
         |\d{2}:\d{2}:\d{2}(?:[.,]\d++)?)\s++\S
      | [\w./\\-]+\.\w+:\d+(?::\d+)?:\s*(?:error|warning|note|fatal)
      | E\ {2,}\S
      | [$%]\ \S
      | >>>[ ]
      | PS\ [A-Za-z]:\\[^>]*>
      | [\w.-]+@[\w.-]+:[^\s$#]*[$#][ ]
      | [A-Za-z]:\\[^>\s]*>\S
      | \^+\s*$
      | ~*\^~*\s*$
    )"""
_MACHINE_LINE = patterns.compile(_MACHINE_PATTERN, re.VERBOSE)
# The same test at any line start (``^`` matches after a line break): most messages have
# no machine output at all and are returned after one test per line.
_MACHINE_ANYWHERE = patterns.compile(_MACHINE_PATTERN, re.VERBOSE | re.MULTILINE)
# Lines that open a block of machine output: everything after them until a blank line is
# output too (a traceback body, the output of a shell command).
_BLOCK_OPENER = patterns.compile(
    r"""^[ \t]*+(?:
        Traceback\ \(most\ recent\ call\ last\)
      | [$%]\ \S
      | PS\ [A-Za-z]:\\[^>]*>
      | [\w.-]+@[\w.-]+:[^\s$#]*[$#][ ]
      | [A-Za-z]:\\[^>\s]*>\S
      | Exception\ in\ thread
      | goroutine\ \d+\ \[
    )""",
    re.VERBOSE,
)
# Split points: whitespace after sentence-final punctuation (optionally closed by a quote
# or bracket, group 1) before a capital or digit, a blank line, or a line break before a
# list item. The pattern opens with one character class so the scanner can skip ahead.
_SENTENCE_END = patterns.compile(
    r"[.!?…\n](?:(?<=[.!?…])([\"')\]]?)\s+(?=[\"'(\[]?[A-Z0-9¿¡])"
    r"|(?<=\n)\s*\n|(?<=\n)(?=\s*[-*•]\s|\s*\d+[.)]\s))"
)
_ABBREVIATION = patterns.compile(
    r"\b(?:[eE]\.g|[iI]\.e|etc|vs|[MD]rs?|Ms|Prof|Sr|Jr|St|[Ff]ig|approx|cf|al|[A-Z])\.$"
)
_ABBREVIATION_TAILS = (
    *("e.g", "E.g", "i.e", "I.e", "etc", "vs", "Mr", "Mrs", "Dr", "Drs", "Ms", "Prof"),
    *("Sr", "Jr", "St", "fig", "Fig", "approx", "cf", "al"),
)
_PROSE_LINE = patterns.compile(r"^[A-Z][a-z']*+(?:,?[ ][A-Za-z][a-z',]*+){2,}[.!?:]?\s*$")


# Within one analysis, dialectic, sentiment and topics each read the prose of every
# message; the first to ask computes it and the others reuse it.
_PROSE_MEMO: ContextVar[dict[str, str] | None] = ContextVar("prose_memo", default=None)


@contextmanager
def shared_prose() -> Iterator[None]:
    """Within the block, :func:`strip_code` remembers the prose of each text it is given,
    so detectors reading the same messages strip each one once."""
    reset = _PROSE_MEMO.set({})
    try:
        yield
    finally:
        _PROSE_MEMO.reset(reset)


def strip_code(text: str, *, remember: bool = True) -> str:
    """The prose of ``text``: code blocks, inline code and machine-output lines removed.

    Removed lines are dropped (not replaced), so the remaining prose keeps its line
    structure; a blank line takes the place of each removed block, which keeps sentence
    splitting from gluing the prose before and after it together. ``remember=False``
    keeps a text read only once (a slice of a message) out of :func:`shared_prose`.
    """
    memo = _PROSE_MEMO.get() if remember else None
    if memo is None:
        return _strip_code(text)
    prose = memo.get(text)
    if prose is None:
        prose = memo[text] = _strip_code(text)
    return prose


def _strip_code(text: str) -> str:
    if "`" in text or "~~~" in text:
        text = _FENCE.sub("\n", text)
        if "`" in text:
            text = _INLINE_CODE.sub(" ", text)
    if not _has_machine_line(text):
        return text
    kept: list[str] = []
    block: str | None = None
    for line in text.split("\n"):
        if not line.strip():
            block = None
            kept.append("")
            continue
        opener = _BLOCK_OPENER.match(line)
        if opener:
            block = "traceback" if opener.group().lstrip().startswith("Traceback") else "output"
        elif not _MACHINE_LINE.match(line) and not _continues_block(block, line):
            block = None
            kept.append(line)
            continue
        if kept and kept[-1] != "":
            kept.append("")
    return "\n".join(kept).strip("\n")


def _has_machine_line(text: str) -> bool:
    """``_MACHINE_ANYWHERE.search(text)``, tried only where ``^`` can match: scanning
    every character of a long message costs twice as much as matching at its few line
    starts."""
    start = 0
    while True:
        if _MACHINE_ANYWHERE.match(text, start):
            return True
        start = text.find("\n", start) + 1
        if start == 0:
            return False


def _continues_block(block: str | None, line: str) -> bool:
    """Whether ``line`` still belongs to the machine output opened earlier.

    A traceback body is indented; its last line (the exception) is caught by the
    machine-line pattern. Command output is anything up to a blank line or a line that
    reads like a sentence of prose.
    """
    if block is None:
        return False
    if line[:1] in (" ", "\t"):
        return True
    return block == "output" and not _PROSE_LINE.match(line)


def sentences(text: str) -> list[str]:
    """Sentences of ``text``, split at ., !, ? (not after common abbreviations or initials),
    at blank lines and before list items."""
    out: list[str] = []
    pending = ""
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        start = m.start()
        if text[start] == "\n":
            piece = text[pos:start]
        else:
            piece = text[pos : start + 1] + (m.group(1) or "")
            # Only the tail can hold an abbreviation; searching the whole piece is O(length).
            if _ABBREVIATION.search(piece[-8:]):
                pending += piece + " "
                pos = m.end()
                continue
        pos = m.end()
        sentence = (pending + piece).strip() if pending else piece.strip()
        pending = ""
        if sentence:
            out.append(sentence)
    last = (pending + text[pos:]).strip()
    if last:
        out.append(last)
    return out


_CLOSERS = "\"')]"
_OPENERS = "\"'(["


def is_sentence_end(token: str, next_token: str | None) -> bool:
    """Whether whitespace-separated ``token`` ends a sentence, by the same rule as
    :func:`sentences`, for callers that work on token lists."""
    last = token[-1]
    if last in _CLOSERS and len(token) > 1:
        last = token[-2]
    if last not in ".!?…":
        return False
    # Most sentence ends are ordinary words; only run the pattern when the tail could be
    # an abbreviation or an initial.
    if last == "." and token[-1] == "." and len(token) > 1:
        stem = token[:-1]
        if (stem.endswith(_ABBREVIATION_TAILS) or stem[-1].isupper()) and _ABBREVIATION.search(
            token[-8:]
        ):
            return False
    return next_token is None or starts_sentence(next_token)


def starts_sentence(token: str) -> bool:
    """Whether whitespace-separated ``token`` can open a sentence (a capital or a digit,
    possibly after an opening quote or bracket): the second half of
    :func:`is_sentence_end`."""
    first = token[0]
    if first in _OPENERS and len(token) > 1:
        first = token[1]
    return "A" <= first <= "Z" or first.isdigit() or first in "¿¡"


# Apostrophes as keyboards type them: ’ (the default of phone keyboards), ʼ and ´.
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "´": "'"})


def plain_apostrophes(text: str) -> str:
    """``text`` with every typed apostrophe the plain one: "isnʼt" reads as "isn't"."""
    return text if text.isascii() else text.translate(_APOSTROPHES)


def words(text: str) -> list[str]:
    """Lower-cased word tokens in order (letters and digits; inner apostrophes kept)."""
    lowered = text.lower()
    if lowered.isascii():
        return _ASCII_WORD.findall(lowered)
    return _WORD.findall(plain_apostrophes(lowered))


def content_words(text: str) -> list[str]:
    """:func:`words` without stopwords, one-letter tokens and pure numbers, in order;
    a possessive ``'s`` is dropped so "Docker's" counts as "docker"."""
    out: list[str] = []
    for w in words(text):
        if w.endswith("'s"):
            w = w[:-2]
        if len(w) > 1 and w not in STOPWORDS and not w.isdigit():
            out.append(w)
    return out


def vocabulary(text: str) -> frozenset[str]:
    """The distinct content words of ``text`` (as :func:`content_words`, possessives
    aside), built with set operations for speed on long conversations."""
    found = set(words(text))
    found -= STOPWORDS
    return frozenset(w for w in found if len(w) > 1 and not w.isdigit())


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` with whitespace collapsed and personal data masked, at most ``limit``
    characters, cut at a word boundary with an ellipsis.

    Masking happens before cutting so a cut never leaves half an e-mail address readable.
    """
    flat = mask_pii(" ".join(text.split()))  # str.split's whitespace is the regex's \s
    if len(flat) <= limit:
        return flat
    cut = flat[: max(limit - 1, 0)]
    boundary = cut.rfind(" ")
    if boundary >= limit // 2:
        cut = cut[:boundary]
    return cut.rstrip(" ,;:.-") + "…"
