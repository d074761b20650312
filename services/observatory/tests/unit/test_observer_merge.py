"""Merging chunk findings: deterministic fallback, bounded digests, a shrinking merge tree."""

from __future__ import annotations

import json

from app.observer.merge import cut, merge_locally
from app.observer.observer import _digest, _pack, _Part
from app.observer.schema import NARRATIVE_MAX, Insight, NotableExchange, Synthesis, Theme


def synthesis(n: int, narrative: str = "") -> Synthesis:
    return Synthesis(
        narrative=narrative or f"Part {n} discusses indexes at length. " * 10,
        themes=[
            Theme(label="Indexes" if n % 2 else "indexes ", messages=[n, n + 1], quote="index"),
            Theme(label=f"topic {n}", messages=[n], quote=""),
        ],
        insights=[Insight(text=f"Insight {n % 3}", messages=[n])],
        notable_exchanges=[NotableExchange(messages=[n, n + 1], quote="", why="w" * 150)],
    )


def test_local_merge_groups_themes_by_label_and_stays_within_limits() -> None:
    merged = merge_locally([synthesis(i) for i in range(10)])
    assert len(merged.narrative) <= NARRATIVE_MAX
    assert merged.narrative.endswith("…")
    assert merged.themes[0].label == "indexes "  # the most supported label, first spelling
    assert merged.themes[0].messages == [0, 1, 2, 3, 4, 5]
    assert merged.themes[0].quote == "index"
    assert len(merged.themes) == 5
    assert [i.text for i in merged.insights] == ["Insight 0", "Insight 1", "Insight 2"]
    assert len(merged.notable_exchanges) == 4
    assert merge_locally([synthesis(i) for i in range(10)]) == merged  # deterministic


def test_cut_keeps_words_whole() -> None:
    assert cut("alpha beta gamma delta", 12) == "alpha beta…"
    assert cut("short", 12) == "short"


def test_digest_fits_its_limit_and_stays_json() -> None:
    part = _Part(0, 40, synthesis(3, narrative="n" * NARRATIVE_MAX))
    for limit in (3000, 800, 200, 60):
        text = _digest(part, limit)
        body = json.loads(text)
        assert body["messages"] == "0-40"
        if limit >= 200:
            assert len(text) <= limit
        else:  # below the empty skeleton: everything optional is gone
            assert body["narrative"] == "" and not body["themes"] and not body["insights"]
    assert json.loads(_digest(part, 3000))["themes"]  # a roomy limit keeps the findings


def test_each_merge_level_shrinks_until_one_part_remains() -> None:
    parts = [_Part(i * 10, i * 10 + 9, synthesis(i)) for i in range(57)]
    limit = 2000
    levels = 0
    while len(parts) > 1:
        digests = [_digest(p, limit // 2 - 2) for p in parts]
        groups = _pack(digests, parts, limit)
        assert all(sum(len(d) + 1 for d, _ in g) <= limit for g in groups)
        assert len(groups) < len(parts)
        assert [p for g in groups for _, p in g] == parts  # order kept, nothing lost
        parts = [_Part(g[0][1].first, g[-1][1].last, g[0][1].synthesis) for g in groups]
        levels += 1
    assert parts[0].first == 0 and parts[0].last == 569
    assert levels <= 6


def test_local_merge_keeps_the_quoted_message_among_a_themes_messages() -> None:
    first = Synthesis(
        narrative="a",
        themes=[Theme(label="plans", messages=[10, 11, 12, 13, 14, 15], quote="")],
        insights=[],
        notable_exchanges=[],
    )
    second = Synthesis(
        narrative="b",
        themes=[Theme(label="Plans", messages=[40], quote="query plan")],
        insights=[],
        notable_exchanges=[],
    )
    [theme] = merge_locally([first, second]).themes
    assert theme.quote == "query plan"
    assert 40 in theme.messages  # the message the quote was checked in
    assert len(theme.messages) <= 6
