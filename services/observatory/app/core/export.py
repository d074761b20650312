"""Exports of a completed analysis: CSV (one row per finding) and a Markdown report.

Both carry only what the result already holds (masked excerpts, never the raw
conversation). CSV text cells that a spreadsheet would read as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return, also after spaces or invisible
characters, or in full-width form such as ``＝``) are prefixed with a quote; Markdown
escapes HTML and the characters Markdown would interpret, so a transcript that talks about
``<script>`` stays text, and breaks web addresses, ``www.`` names and e-mail addresses
(``http[:]//evil[.]example``) so no renderer turns them into links.
"""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from app.core import patterns

CSV_COLUMNS = ("section", "kind", "start", "end", "messages", "speakers", "label", "score", "text")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_MARKS = frozenset("=+-@")
# Characters that take no room on screen but are not whitespace to str.isspace(): format
# characters (category Cf: zero-width space and joiners, word joiner, BOM, soft hyphen,
# direction marks) are found by category; these others render blank.
_BLANK = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
# Every value sits inline after a prefix of ours ("- ", "| "), with newlines folded, so only
# inline syntax needs escaping: emphasis, code, links/images, table cells, strikethrough.
_MD_SPECIAL = patterns.compile(r"([\\`*_\[\]|~])")
# What Markdown renderers (GitHub's included) turn into links by themselves: an address
# with a scheme, a name starting "www.", an e-mail address, "mailto:"/"xmpp:". Each
# repetition is possessive or bounded and the e-mail form starts only where its run of
# name characters starts, so a long run is read once.
_LINKLIKE = patterns.compile(
    r"[a-z][a-z0-9+.-]{0,31}://[^\s/?#<>]*+"
    r"|www\.[^\s/?#<>]*+"
    r"|(?:mailto|xmpp):"
    r"|(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+",
    re.IGNORECASE,
)


def neutralise_cell(value: Any) -> Any:
    """Numbers stay numbers; text a spreadsheet could evaluate is prefixed with a quote."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) or _first_visible(text) in _FORMULA_MARKS:
        return "'" + text
    return text


def _first_visible(text: str) -> str:
    """The first character of ``text`` that shows, in its NFKC form (``＝`` reads "=")."""
    for char in text:
        if char.isspace() or char in _BLANK or unicodedata.category(char) == "Cf":
            continue
        return unicodedata.normalize("NFKC", char)[:1]
    return ""


def _indices(messages: Sequence[int] | None) -> tuple[Any, Any, str]:
    if not messages:
        return "", "", ""
    return min(messages), max(messages), " ".join(str(i) for i in messages)


def _rows(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield {"section": "analysis", "kind": "id", "text": doc.get("id")}
    yield {
        "section": "analysis",
        "kind": "confidence",
        "score": doc.get("confidence_score"),
        "text": (doc.get("confidence") or {}).get("explanation"),
    }
    patterns = doc.get("patterns") or {}
    for item in patterns.get("dialectic") or ():
        start, end, msgs = _indices(item.get("messages"))
        yield {
            "section": "dialectic",
            "kind": item.get("type"),
            "start": start,
            "end": end,
            "messages": msgs,
            "speakers": " | ".join(item.get("speakers") or ()),
            "score": item.get("strength"),
            "text": item.get("excerpt"),
        }
    sentiment = patterns.get("sentiment")
    if sentiment:
        yield {
            "section": "sentiment",
            "kind": "overall",
            "label": sentiment.get("overall_tone"),
            "score": sentiment.get("score"),
        }
        for name, tone in (sentiment.get("by_speaker") or {}).items():
            yield {
                "section": "sentiment",
                "kind": "speaker",
                "speakers": name,
                "label": tone.get("tone"),
                "score": tone.get("score"),
            }
        for shift in sentiment.get("shifts") or ():
            yield {
                "section": "sentiment",
                "kind": "shift",
                "start": shift.get("index"),
                "end": shift.get("index"),
                "messages": str(shift.get("index")),
                "label": f"{shift.get('from')} -> {shift.get('to')}",
                "score": shift.get("magnitude"),
            }
        collab = sentiment.get("collaboration") or {}
        yield {
            "section": "sentiment",
            "kind": "collaboration",
            "label": collab.get("label"),
            "score": collab.get("score"),
        }
    topics = patterns.get("topics") or {}
    for seg in topics.get("segments") or ():
        yield {
            "section": "topics",
            "kind": "segment",
            "start": seg.get("start"),
            "end": seg.get("end"),
            "label": seg.get("label"),
            "score": seg.get("share"),
            "text": ", ".join(seg.get("keywords") or ()),
        }
    dynamics = patterns.get("dynamics") or {}
    for name, stats in (dynamics.get("speakers") or {}).items():
        yield {
            "section": "dynamics",
            "kind": "speaker",
            "speakers": name,
            "label": stats.get("role"),
            "score": stats.get("share"),
            "text": ", ".join(
                _counted(stats.get(key), noun)
                for key, noun in (
                    ("messages", "message"),
                    ("words", "word"),
                    ("questions_asked", "question"),
                )
            ),
        }
    for theme in doc.get("themes") or ():
        start, end, msgs = _indices(theme.get("messages"))
        yield {
            "section": "themes",
            "kind": theme.get("source", "local"),
            "start": start,
            "end": end,
            "messages": msgs,
            "label": theme.get("label"),
            "score": theme.get("weight"),
            "text": ", ".join(theme.get("keywords") or ()),
        }
    for moment in doc.get("key_moments") or ():
        yield {
            "section": "key_moments",
            "kind": moment.get("kind"),
            "start": moment.get("index"),
            "end": moment.get("index"),
            "messages": str(moment.get("index")),
            "text": moment.get("why"),
        }
    for point in doc.get("summary_points") or ():
        yield {"section": "summary", "kind": "point", "text": point}
    for insight in doc.get("insights") or ():
        start, end, msgs = _indices(insight.get("messages"))
        yield {
            "section": "insights",
            "kind": insight.get("source", "observer"),
            "start": start,
            "end": end,
            "messages": msgs,
            "text": insight.get("text"),
        }
    for flag in (doc.get("security") or {}).get("flags") or ():
        start, end, msgs = _indices(flag.get("messages"))
        yield {
            "section": "security",
            "kind": flag.get("kind"),
            "start": start,
            "end": end,
            "messages": msgs,
            "text": flag.get("excerpt"),
        }


def to_csv(doc: Mapping[str, Any]) -> str:
    return csv_rows(doc)


def csv_rows(
    doc: Mapping[str, Any], leading: Mapping[str, Any] | None = None, header: bool = True
) -> str:
    """One row per finding of ``doc``; ``leading`` columns (e.g. a batch item's ids) first."""
    leading = leading or {}
    out = io.StringIO()
    columns = [*leading, *CSV_COLUMNS]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    if header:
        writer.writeheader()
    for row in _rows(doc):
        writer.writerow(
            {c: neutralise_cell(leading[c] if c in leading else row.get(c)) for c in columns}
        )
    return out.getvalue()


def md(text: Any) -> str:
    """Plain text made inert in Markdown: HTML escaped, Markdown syntax backslash-escaped."""
    if text is None:
        return ""
    flat = _LINKLIKE.sub(_unlinked, " ".join(str(text).split()))
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _unlinked(match: re.Match[str]) -> str:
    """An address kept readable but no longer a link: ``http[:]//evil[.]example``."""
    return match.group().replace(".", "[.]").replace(":", "[:]")


def _msgs(messages: Iterable[int] | None) -> str:
    return ", ".join(f"#{i}" for i in messages or ())


def to_markdown(doc: Mapping[str, Any]) -> str:
    lines = [f"# Conversation analysis {md(doc.get('id'))}", ""]
    conv = doc.get("conversation") or {}
    lines.append(
        f"{md(conv.get('messages'))} messages from {md(', '.join(conv.get('speakers') or ()))}; "
        f"confidence {doc.get('confidence_score')} — {md((doc.get('confidence') or {}).get('explanation'))}"
    )
    if doc.get("summary_points"):
        lines += ["", "## Summary", ""] + [f"- {md(p)}" for p in doc["summary_points"]]
    if doc.get("observer_output"):
        lines += ["", "## Observer", "", md(doc["observer_output"])]
    patterns = doc.get("patterns") or {}
    sentiment = patterns.get("sentiment")
    if sentiment:
        lines += [
            "",
            "## Sentiment",
            "",
            f"Overall {md(sentiment.get('overall_tone'))} ({sentiment.get('score')}), "
            f"engagement {md(sentiment.get('engagement_level'))}, "
            f"{md((sentiment.get('collaboration') or {}).get('label'))}.",
        ]
        for shift in sentiment.get("shifts") or ():
            lines.append(
                f"- #{shift.get('index')}: {md(shift.get('from'))} → {md(shift.get('to'))} "
                f"({shift.get('magnitude')})"
            )
    if patterns.get("dialectic"):
        lines += [
            "",
            "## Dialectic",
            "",
            "| type | messages | speakers | strength | excerpt |",
            "|---|---|---|---|---|",
        ]
        for item in patterns["dialectic"]:
            lines.append(
                f"| {md(item.get('type'))} | {_msgs(item.get('messages'))} | "
                f"{md(', '.join(item.get('speakers') or ()))} | {item.get('strength')} | "
                f"{md(item.get('excerpt'))} |"
            )
    topics = patterns.get("topics") or {}
    if topics.get("segments"):
        lines += ["", "## Topics", ""]
        for seg in topics["segments"]:
            lines.append(
                f"- #{seg.get('start')}–#{seg.get('end')} {md(seg.get('label'))}: "
                f"{md(', '.join(seg.get('keywords') or ()))}"
            )
    dynamics = patterns.get("dynamics") or {}
    if dynamics.get("speakers"):
        lines += [
            "",
            "## Dynamics",
            "",
            "| speaker | role | messages | words | share | questions |",
            "|---|---|---|---|---|---|",
        ]
        for name, s in dynamics["speakers"].items():
            lines.append(
                f"| {md(name)} | {md(s.get('role'))} | {s.get('messages')} | {s.get('words')} | "
                f"{s.get('share')} | {s.get('questions_asked')} |"
            )
    if doc.get("key_moments"):
        lines += ["", "## Key moments", ""]
        lines += [
            f"- #{m.get('index')} ({md(m.get('kind'))}): {md(m.get('why'))}"
            for m in doc["key_moments"]
        ]
    flags = (doc.get("security") or {}).get("flags") or ()
    if flags:
        lines += ["", "## Security", ""]
        lines += [f"- {md(f.get('kind'))}: {_msgs(f.get('messages'))}" for f in flags]
    return "\n".join(lines) + "\n"


def _counted(number: object, noun: str) -> str:
    """ "1 message", "3 messages": the noun agrees with the number."""
    return f"{number} {noun}" + ("" if number == 1 else "s")
