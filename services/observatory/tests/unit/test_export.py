"""CSV and Markdown exports: complete, inert, and free of personal data."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from app.analysis import analyze
from app.conversation.parsers import parse_conversation
from app.core.export import neutralise_cell, to_csv, to_markdown

EVAL = Path(__file__).resolve().parents[1] / "fixtures" / "eval"


def analysed(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    fixture = json.loads((EVAL / name).read_text())
    if "conversation_text" in fixture:
        conv = parse_conversation(conversation_text=fixture["conversation_text"])
    else:
        conv = parse_conversation(messages=fixture["messages"])
    return fixture, {"id": "a1", **analyze(conv)}


@pytest.mark.parametrize("name", sorted(p.name for p in EVAL.glob("*.json")))
def test_no_personal_data_in_any_export(name: str) -> None:
    fixture, doc = analysed(name)
    outputs = {
        "json": json.dumps(doc, ensure_ascii=False),
        "csv": to_csv(doc),
        "markdown": to_markdown(doc),
    }
    for secret in fixture["labels"].get("pii", []):
        for kind, text in outputs.items():
            assert secret not in text, f"{secret!r} leaked into the {kind} export of {name}"


def test_csv_has_a_row_per_finding_and_numbers_stay_numbers() -> None:
    _, doc = analysed("02_debate_synthesis.json")
    rows = list(csv.DictReader(io.StringIO(to_csv(doc))))
    sections = {r["section"] for r in rows}
    assert {"analysis", "dialectic", "sentiment", "topics", "dynamics", "summary"} <= sections
    dialectic = [r for r in rows if r["section"] == "dialectic"]
    assert len(dialectic) == len(doc["patterns"]["dialectic"])
    overall = next(r for r in rows if r["kind"] == "overall")
    assert float(overall["score"]) == doc["patterns"]["sentiment"]["score"]


def test_csv_neutralises_formulas_but_not_our_numbers() -> None:
    for dangerous in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise_cell(dangerous) == "'" + dangerous
    assert neutralise_cell(-0.42) == -0.42
    assert neutralise_cell("plain") == "plain"
    doc = {
        "id": "x",
        "patterns": {
            "dialectic": [
                {
                    "type": "disagreement",
                    "messages": [1, 2],
                    "speakers": ["=cmd|' /C calc'!A0"],
                    "excerpt": "=1+2",
                    "strength": 0.5,
                }
            ]
        },
    }
    rows = list(csv.DictReader(io.StringIO(to_csv(doc))))
    row = next(r for r in rows if r["section"] == "dialectic")
    assert row["text"] == "'=1+2" and row["speakers"].startswith("'=cmd")


def test_markdown_keeps_hostile_text_inert() -> None:
    conv = parse_conversation(
        conversation_text=(
            "Human: Why does <script>alert(1)</script> run? And [click](javascript:alert(1)) too?\n"
            "AI: Because the page does not escape it; `DROP TABLE users; --` is the SQL cousin."
        )
    )
    doc = {"id": "a1", **analyze(conv)}
    text = to_markdown(doc)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "[click](javascript" not in text and "\\[click\\](javascript" in text
    assert text.startswith("# Conversation analysis a1")
    assert "## Dialectic" in text and "## Dynamics" in text
