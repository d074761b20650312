"""Finding and masking personal data: e-mail addresses, phone numbers, card numbers, IPs.

Every excerpt the service stores or returns goes through :func:`mask_pii`. The patterns
are tuned for transcripts about programming, which are full of numbers that are *not*
personal data: versions (``3.11.7``), dates (``2026-03-02``), times (``10:15:03``), ISBNs,
epoch timestamps and ids. So:

- a card number is 13–19 digits (optionally grouped by single spaces or dashes) that
  passes the Luhn check *and* starts with 2–6, the first digits of the card networks
  in use (Visa 4, Mastercard 2/5, Amex 3, Discover/UnionPay 6). That keeps ISBN-13s
  (978…/979…) and millisecond timestamps (1…) out even when they happen to pass Luhn;
- a phone number is an international number (``+`` and 8–15 digits), a North-American
  number with grouping (``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``), or a
  trunk-prefixed local or ``00``-international number (``020 7946 0958``, ``07700 900123``,
  ``0049 30 12345678``). A bare run of digits
  without ``+``, leading ``0`` or grouping is treated as an ordinary number;
- an e-mail address may use any script (``jöhn@exämple.com``); without a dot in its
  domain only ``…@localhost`` and ``mailto:…`` addresses count, so ``x@y`` (matrix
  product), ``@decorator`` and ``pkg@latest`` stay as they are;
- IPv4 needs four dotted octets of 0–255 not embedded in a longer dotted sequence;
  IPv6 candidates are validated with :mod:`ipaddress` and need at least two non-empty
  groups and a digit, so ``std::vector``, ``a::b``, times and MAC addresses stay as they
  are.

Matching runs on a copy of the text of the same length in which full-width and other
compatibility forms of ASCII characters (``４１１１``, ``＠``, ``．``, no-break spaces) and
digits of every script are folded to ASCII, so a span found in the copy is the same span
of the original, which is masked and otherwise left as it was.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Literal

from app.core import patterns

PiiKind = Literal["email", "phone", "card", "ip"]

PLACEHOLDERS: dict[str, str] = {
    "email": "[email]",
    "phone": "[phone]",
    "card": "[card]",
    "ip": "[ip]",
}

# When two candidates overlap the earlier kind in this order wins.
_PRIORITY: dict[str, int] = {"email": 0, "ip": 1, "card": 2, "phone": 3}

# Letters and digits of any script; a domain label of up to 63 of them and inner hyphens;
# a top-level domain of letters or its ASCII (punycode) form.
_ALNUM = r"[^\W_]"
_LABEL = rf"{_ALNUM}(?:(?:{_ALNUM}|-){{0,61}}{_ALNUM})?"
_LOCAL = rf"{_ALNUM}[\w.%+-]{{0,63}}@"
_EMAIL = patterns.compile(
    rf"(?<![\w.%+-]){_LOCAL}{_LABEL}(?:\.{_LABEL})*\.(?:xn--[a-z0-9-]{{1,59}}|[^\W\d_]{{2,24}})\b"
    # Without a dot: the local host, or a label right after "mailto:".
    rf"|(?<![\w.%+-]){_LOCAL}localhost\b(?![.-]\w)"
    rf"|(?<=(?i:mailto):){_LOCAL}{_LABEL}\b(?![.-]\w)"
)

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = patterns.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
_IPV6_CANDIDATE = patterns.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?:%[\w.]+)?(?![\w:]|\.\d)"
)

# Digits alone or grouped by spaces or dashes, or by dots in groups of three to six
# (4111.1111.1111.1111, 3782.822463.10005): a single dot between short groups is a version.
_CARD = patterns.compile(
    r"(?<![\w.+-])[2-6]\d{3}(?:(?:[ -]?\d){9,15}|(?:\.\d{3,6}){2,4}|(?:[ .-]\d{4}){3})"
    r"(?![\w]|[.-]\d)"
)

_PHONE_INTL = patterns.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?![\w]|[.-]\d)"
)
_PHONE_NANP = patterns.compile(
    r"(?<![\w.+-])(?:1[ .-])?(?:\([2-9]\d{2}\)[ ]?|[2-9]\d{2}([ .-]))\d{3}(?:\1|[ .-])\d{4}"
    r"(?![\w]|[.-]\d)"
)
_PHONE_LOCAL = patterns.compile(r"(?<![\w.+/-])0\d{1,4}(?:[ -]\d{2,8}){1,3}(?![\w/]|[.:-]\d)")
_PHONE_LOCAL_RUN = patterns.compile(r"(?<![\w.+/-])0[1-9]\d{8,9}(?![\w/]|[.:-]\d)")

_DIGITS = patterns.compile(r"\d")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class _FoldTable(dict[int, str]):
    """``str.translate`` table, filled as characters are met: a character whose NFKC form
    is one ASCII character becomes that character, a decimal digit of any script becomes
    its ASCII digit, and every other character stays (one character for one, so indices
    in the folded text are indices in the original)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        digit = unicodedata.decimal(char, None)
        if digit is not None:
            folded = str(digit)
        else:
            folded = unicodedata.normalize("NFKC", char)
            if len(folded) != 1 or not folded.isascii():
                folded = char
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """``text`` with compatibility forms of ASCII and digits of any script folded to
    ASCII, character for character (the result has the same length)."""
    return text if text.isascii() else text.translate(_FOLD)


# Characters that render as nothing: one between the digits of a card number or inside an
# address must not hide it from the patterns.
_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u3164\ufeff"
)


def _visible(text: str) -> tuple[str, list[int] | None]:
    """``text`` without invisible characters, and for each remaining character its index
    in ``text`` (None when there was nothing to remove)."""
    if text.isascii() or _INVISIBLE.isdisjoint(text):
        return text, None
    kept = [i for i, char in enumerate(text) if char not in _INVISIBLE]
    return "".join(text[i] for i in kept), kept


def _candidates(text: str) -> list[tuple[PiiKind, int, int]]:
    found: list[tuple[PiiKind, int, int]] = []
    if "@" in text:
        found.extend(("email", m.start(), m.end()) for m in _EMAIL.finditer(text))
    if "." in text:
        found.extend(("ip", m.start(), m.end()) for m in _IPV4.finditer(text))
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6_CANDIDATE.finditer(text):
            raw = m.group().split("%", 1)[0]
            groups = [g for g in raw.split(":") if g]
            if len(groups) < 2 or not _DIGITS.search(raw):
                continue
            try:
                ipaddress.IPv6Address(raw)
            except ValueError:
                continue
            found.append(("ip", m.start(), m.end()))
    for m in _CARD.finditer(text):
        digits = "".join(_DIGITS.findall(m.group()))
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            found.append(("card", m.start(), m.end()))
    if "+" in text:
        for m in _PHONE_INTL.finditer(text):
            n = len(_DIGITS.findall(m.group()))
            if 8 <= n <= 15:
                found.append(("phone", m.start(), m.end()))
    found.extend(("phone", m.start(), m.end()) for m in _PHONE_NANP.finditer(text))
    for m in _PHONE_LOCAL.finditer(text):
        # 0049 30 12345678: a European "00" international prefix runs a little longer.
        if 9 <= len(_DIGITS.findall(m.group())) <= (14 if m.group().startswith("00") else 12):
            found.append(("phone", m.start(), m.end()))
    found.extend(("phone", m.start(), m.end()) for m in _PHONE_LOCAL_RUN.finditer(text))
    return found


def find_pii(text: str) -> list[tuple[PiiKind, tuple[int, int]]]:
    """Non-overlapping personal-data spans in ``text``, ordered by position.

    Overlapping candidates are resolved by kind priority (e-mail, IP, card, phone), then
    by length, so ``john@10.0.0.1.example.com`` is one e-mail, not an e-mail and an IP.
    """
    if not text:
        return []
    text, kept = _visible(fold(text))
    if not _DIGITS.search(text) and "@" not in text:
        return []
    candidates = _candidates(text)
    if kept is not None:  # back to positions in the text as given
        candidates = [(kind, kept[start], kept[end - 1] + 1) for kind, start, end in candidates]
    candidates.sort(key=lambda c: (_PRIORITY[c[0]], -(c[2] - c[1]), c[1]))
    taken: list[tuple[PiiKind, int, int]] = []
    for kind, start, end in candidates:
        if all(end <= s or start >= e for _, s, e in taken):
            taken.append((kind, start, end))
    taken.sort(key=lambda c: c[1])
    return [(kind, (start, end)) for kind, start, end in taken]


def mask_pii(text: str) -> str:
    """``text`` with every personal-data span replaced by its placeholder, e.g. ``[email]``."""
    spans = find_pii(text)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for kind, (start, end) in spans:
        parts.append(text[pos:start])
        parts.append(PLACEHOLDERS[kind])
        pos = end
    parts.append(text[pos:])
    return "".join(parts)
