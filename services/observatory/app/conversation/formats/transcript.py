"""Plain transcripts: ``Speaker: text`` lines, optionally timestamped (SPEC §3).

A line starts a new message when it begins with a speaker prefix that is believable as a
speaker at that point; every other line continues the current message. Believable means:
a role word (Human, AI, Assistant, …), a name already speaking in this transcript, a
timestamped line in a timestamped chat, or a new name that looks like a name and is not a
common label ("Note:", "Error:", "Step 2:") — either the first speaker of the transcript,
a name that opens lines at least twice, or a newcomer to a chat between people. Lines
inside fenced code blocks never start a message, so code, logs and ``key: value`` lines
stay inside the message that quotes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

from app.conversation.formats.common import (
    ROLE_WORDS,
    Draft,
    Parsed,
    role_for_name,
    strip_bom,
)
from app.conversation.labels import is_line_label
from app.conversation.model import Role
from app.core import patterns
from app.core.errors import InputError

_SP = r"[ \t\u00a0\u202f]"

# "Name: text" at the very start of a line; the name starts with a letter or digit and
# may hold spaces, dots, apostrophes and hyphens. Markdown bold (**User:**) is allowed
# because copies from chat web pages come that way, and so is a qualifier in parentheses
# after the name ("Jonah (support): …"). A colon must be followed by whitespace or the end
# of the line, so "http://x", "12:30" and "a:b" never match.
_SPEAKER = patterns.compile(
    r"\A(?:\*\*|__)?(?P<name>[^\W_](?:[\w.'’\- ]{0,38}[\w.'’])?(?:[ \t]{1,3}\([^():\n]{1,40}\))?)"
    r"(?:\*\*|__)?[ \t]*+:"
    r"(?:\*\*|__)?(?:[ \t]++(?P<rest>.*)|$)"
)
# After a timestamp the name may be anything WhatsApp allows (emoji, "+44 7700 900123").
_LOOSE_SPEAKER = patterns.compile(r"\A(?P<name>[^:\n]{1,60}?)[ \t]*+:(?:[ \t]++(?P<rest>.*)|$)")

_ISO_STAMP = (
    r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
)
_DMY_STAMP = (
    r"\d{1,2}[./]\d{1,2}[./]\d{2,4},?" + _SP + r"+\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:" + _SP + r"?[AaPp]\.?" + _SP + r"?[Mm]\.?)?"
)
_BRACKETED = patterns.compile(r"\A\[(?P<stamp>[^\]\n]{4,40})\]" + _SP + r"*+(?P<after>.*)")
_BARE_ISO = patterns.compile(
    rf"\A(?P<stamp>{_ISO_STAMP})(?:{_SP}++[-–]{_SP}++|{_SP}++)(?P<after>.*)"
)
# WhatsApp on Android: "02/03/2026, 10:15 - Ana: text".
_BARE_DMY = patterns.compile(
    r"\A(?P<stamp>" + _DMY_STAMP + r")" + _SP + r"++[-–]" + _SP + r"++(?P<after>.*)"
)
_ISO_PARTS = patterns.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_DMY_PARTS = patterns.compile(
    r"(\d{1,2})[./](\d{1,2})[./](\d{2,4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"(?:\s?([AaPp])\.?\s?[Mm]\.?)?"
)

_FENCE_OPEN = patterns.compile(r"\A[ \t]*+(?P<fence>`{3,}+|~{3,}+)(?P<info>.*)")
_FENCE_BARE = patterns.compile(r"\A[ \t]*+(?P<fence>`{3,}+|~{3,}+)[ \t]*+")


@dataclass(frozen=True, slots=True)
class _Head:
    """A line's speaker prefix: ``name`` is None for a timestamped line without a speaker."""

    name: str | None
    rest: str
    stamp: str | None


@dataclass(slots=True)
class _Message:
    speaker: str
    role: Role
    timestamp: datetime | None
    line_no: int
    lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Survey:
    """What a first pass learns about the whole text before any line is judged."""

    heads: list[_Head | None]
    name_counts: dict[str, int]
    stamped_style: bool
    month_first: bool
    last_bare_fence: dict[str, int]


def _is_stamp(text: str) -> bool:
    return bool(_ISO_PARTS.fullmatch(text) or _DMY_PARTS.fullmatch(text))


def _read_head(line: str) -> _Head | None:
    if ":" not in line:
        return None
    if line.startswith(("\u200e", "\u200f")):  # WhatsApp marks some lines with a direction mark
        line = line.lstrip("\u200e\u200f")
    stamp: str | None = None
    after = line
    first = line[:1]
    if first == "[":
        m = _BRACKETED.fullmatch(line)
        if m and _is_stamp(m["stamp"].strip()):
            stamp, after = m["stamp"].strip(), m["after"]
    elif first.isdigit():
        m = _BARE_ISO.fullmatch(line) or _BARE_DMY.fullmatch(line)
        if m:
            stamp, after = m["stamp"], m["after"]
    if stamp is not None:
        loose = _LOOSE_SPEAKER.fullmatch(after)
        if loose is None:
            return _Head(None, after, stamp)
        name = loose["name"].strip().strip("*_").strip()
        return _Head(name or None, loose["rest"] or "", stamp)
    m = _SPEAKER.fullmatch(line)
    if m is None or not any(ch.isalpha() for ch in m["name"]):
        return None
    return _Head(m["name"], m["rest"] or "", None)


def _opens_fence(text: str) -> tuple[str, int] | None:
    if "```" not in text and "~~~" not in text:
        return None
    m = _FENCE_OPEN.match(text)
    if m is None:
        return None
    fence = m["fence"]
    if fence[0] == "`" and "`" in m["info"]:  # ```inline``` code, not a fence
        return None
    return fence[0], len(fence)


def _closes_fence(text: str, fence: tuple[str, int]) -> bool:
    if fence[0] * 3 not in text:
        return False
    m = _FENCE_BARE.fullmatch(text)
    return m is not None and m["fence"][0] == fence[0] and len(m["fence"]) >= fence[1]


def _survey(lines: list[str]) -> _Survey:
    heads = [_read_head(line) for line in lines]
    counts: dict[str, int] = {}
    stamped_style: bool | None = None
    day_first_seen = month_first_seen = False
    last_bare: dict[str, int] = {"`": -1, "~": -1}
    fence: tuple[str, int] | None = None
    for i, (line, head) in enumerate(zip(lines, heads, strict=True)):
        bare = _FENCE_BARE.fullmatch(line) if "```" in line or "~~~" in line else None
        if bare:
            last_bare[bare["fence"][0]] = i
        if fence is not None:
            if _closes_fence(line, fence):
                fence = None
            continue
        fence = _opens_fence(head.rest if head else line)
        if head is None:
            continue
        if stamped_style is None and (head.stamp is not None or not _is_label_head(head)):
            stamped_style = head.stamp is not None
        if head.stamp is None and head.name is not None:
            key = head.name.casefold()
            counts[key] = counts.get(key, 0) + 1
        elif head.stamp is not None:
            dmy = _DMY_PARTS.match(head.stamp)
            if dmy:
                a, b = int(dmy[1]), int(dmy[2])
                day_first_seen = day_first_seen or a > 12
                month_first_seen = month_first_seen or (b > 12 and a <= 12)
    return _Survey(
        heads=heads,
        name_counts=counts,
        stamped_style=bool(stamped_style),
        # Day first (as WhatsApp writes it in most of the world) unless a date such as
        # 03/25/2026 can only be month first.
        month_first=month_first_seen and not day_first_seen,
        last_bare_fence=last_bare,
    )


def _bare(name: str) -> str:
    """``name`` without a qualifier in parentheses: "Jonah (support)" → "Jonah"."""
    if name.endswith(")") and " (" in name:
        return name[: name.index(" (")].rstrip()
    return name


def _one_name_per_person(messages: list[_Message]) -> None:
    """A name written with a qualifier ("Jonah (support)") and bare ("Jonah") is one
    person, unless the two forms take turns: every message then takes the form the person
    first wrote under, in place. "Sam:" answered by "Sam (IT):" and "Sam (IT):" answered by
    "Sam:" are two people who share a name (one person writing twice in a row is one
    order only), and two qualifiers ("Sam (sales)", "Sam (support)") may be too; those are
    left apart."""
    forms: dict[str, list[str]] = {}
    for m in messages:
        seen = forms.setdefault(_bare(m.speaker), [])
        if m.speaker not in seen:
            seen.append(m.speaker)
    pairs = {frozenset(names) for bare, names in forms.items() if len(names) == 2 and bare in names}
    if not pairs:
        return
    turns = {(a.speaker, b.speaker) for a, b in pairwise(messages)}
    rename: dict[str, str] = {}
    for pair in pairs:
        one, other = sorted(pair)
        if (one, other) in turns and (other, one) in turns:
            continue
        first = next(m.speaker for m in messages if m.speaker in pair)
        rename.update((name, first) for name in pair)
    for m in messages:
        m.speaker = rename.get(m.speaker, m.speaker)


def _is_label(key: str) -> bool:
    return is_line_label(_bare(key))


def _is_label_head(head: _Head) -> bool:
    return head.name is not None and _is_label(head.name.casefold())


def _looks_like_name(name: str) -> bool:
    words = _bare(name).split()  # "Jonah (support)": the qualifier is free text
    if not 1 <= len(words) <= 4 or len(name) > 40:
        return False
    # "Dr. Smith", "Speaker 2", "Mary-Jane": several words must each be capitalised, so
    # prose such as "Here is the fix:" or "SELECT a:" is not taken for a speaker.
    return len(words) == 1 or all(w[0].isupper() or w[0].isdigit() for w in words)


def _stamp_to_datetime(stamp: str, month_first: bool, line_no: int) -> datetime:
    try:
        iso = _ISO_PARTS.fullmatch(stamp)
        if iso:
            year, month, day, hour, minute, second, fraction, zone = iso.groups()
            return datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second or 0),
                int((fraction or "0")[:6].ljust(6, "0")),
                tzinfo=_zone(zone),
            )
        dmy = _DMY_PARTS.fullmatch(stamp)
        if dmy:
            day, month = int(dmy[1]), int(dmy[2])
            if month_first:
                day, month = month, day
            year = int(dmy[3])
            year += 2000 if year < 100 else 0
            hour, minute, second = int(dmy[4]), int(dmy[5]), int(dmy[6] or 0)
            if dmy[7]:
                if not 1 <= hour <= 12:
                    raise ValueError("hour out of range for a 12-hour clock")
                hour = hour % 12 + (12 if dmy[7] in "Pp" else 0)
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        pass
    raise InputError(
        f"line {line_no}: timestamp '{stamp}' is not a valid date and time; use forms such as "
        "[2026-03-02 10:15], 2026-03-02T10:15:00Z or WhatsApp's [02/03/2026, 10:15:03] "
        "(day first)"
    )


def _zone(text: str | None) -> timezone:
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


class _Reader:
    """Walks the lines once, deciding for each whether it starts a message."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.survey = _survey(lines)
        self.messages: list[_Message] = []
        self.preamble: list[str] = []
        self.fence: tuple[str, int] | None = None
        self.seen: set[str] = set()
        self.qualified: set[str] = set()  # bare forms of names written with a qualifier
        self.ai_seen = False
        self.people_seen = False  # a speaker that is not a role word, e.g. "Ana"
        self.handles_seen = False  # such a speaker written in lower case, e.g. "ana_92"
        self.times: dict[str, datetime] = {}  # chats repeat the same minute many times

    def read(self) -> list[_Message]:
        for i, line in enumerate(self.lines):
            head = self.survey.heads[i]
            if self.fence is not None:
                if _closes_fence(line, self.fence):
                    self.fence = None
                elif head is not None and self._ends_unclosed_fence(head, i):
                    self.fence = None
                    self._start(head, i)
                    continue
                self._append(line)
                continue
            if head is not None and self._starts_message(head):
                self._start(head, i)
            else:
                self._append(line)
                self.fence = _opens_fence(line)
        return self.messages

    def _starts_message(self, head: _Head) -> bool:
        if head.name is None:  # "02/03/2026, 10:16 - Ana added Ben"
            return self.survey.stamped_style
        key = head.name.casefold()
        if _bare(key) in ROLE_WORDS or key in self.seen:
            return True
        if key in self.qualified and (not self.messages or self.messages[-1].role != "ai"):
            # "Jonah:" after "Jonah (support):" is Jonah again, except inside an
            # assistant's answer, where "Priya: roadmap" is a line of the answer.
            return True
        if _is_label(key):
            return False
        if head.stamp is not None and self.survey.stamped_style:
            return True
        if not _looks_like_name(head.name):
            return False
        if not self.messages:
            return True
        repeated = self.survey.name_counts.get(key, 0) >= 2
        if head.name[0].isupper() or head.name[0].isdigit():
            # In a chat with an AI, a capitalised word opening one line is far more likely
            # a label in an answer ("Python: fast to write") than a new participant.
            return repeated or (self.people_seen and not self.ai_seen)
        return repeated and self.handles_seen

    def _ends_unclosed_fence(self, head: _Head, i: int) -> bool:
        # A fence that is never closed (a truncated answer) would otherwise swallow the
        # rest of the transcript; a clear speaker line after it ends it instead.
        assert self.fence is not None
        if self.survey.last_bare_fence[self.fence[0]] > i or head.name is None:
            return False
        key = head.name.casefold()
        return key in ROLE_WORDS or key in self.seen

    def _start(self, head: _Head, i: int) -> None:
        timestamp = None
        if head.stamp is not None:
            timestamp = self.times.get(head.stamp)
            if timestamp is None:
                timestamp = _stamp_to_datetime(head.stamp, self.survey.month_first, i + 1)
                self.times[head.stamp] = timestamp
        role: Role
        if head.name is None:
            speaker, role = "System", "system"
        else:
            speaker = head.name.strip()
            role = role_for_name(_bare(speaker))  # "AI (GPT-4)" is the AI
            key = speaker.casefold()
            self.seen.add(key)
            if _bare(key) != key:
                self.qualified.add(_bare(key))
            if role == "ai":
                self.ai_seen = True
            if key not in ROLE_WORDS:
                self.people_seen = True
                self.handles_seen = self.handles_seen or speaker[0].islower()
        message = _Message(speaker, role, timestamp, i + 1, [head.rest])
        self.messages.append(message)
        self.fence = _opens_fence(head.rest)

    def _append(self, line: str) -> None:
        if self.messages:
            self.messages[-1].lines.append(line)
        else:
            self.preamble.append(line)


def parse_transcript(text: str) -> Parsed:
    text = strip_bom(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return Parsed([], "text")
    reader = _Reader(text.split("\n"))
    messages = reader.read()
    _one_name_per_person(messages)
    if not messages:
        raise InputError(
            "no 'Speaker: text' lines were found; a plain transcript needs each message to "
            "start with its speaker, e.g. 'Human: …' then 'AI: …' (lines without a prefix "
            "continue the previous message)"
        )
    drafts: list[Draft] = []
    # Text before the first speaker (a heading, an export notice) is kept as a system
    # message rather than silently lost.
    if any(line.strip() for line in reader.preamble):
        drafts.append(Draft("System", "system", "\n".join(reader.preamble), None, "line 1", 1))
    drafts.extend(
        Draft(m.speaker, m.role, "\n".join(m.lines), m.timestamp, f"line {m.line_no}", m.line_no)
        for m in messages
    )
    return Parsed(drafts, "text")
