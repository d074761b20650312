"""The shipped examples: the manifest names every file in the folder, each file parses in its
format to the message count the manifest states, and each shows what it claims to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.analysis import analyze
from app.conversation import Conversation
from app.conversation.parsers import FORMATS, parse_conversation
from app.examples.service import SHIPPED, Catalogue, Example, ManifestError, load_catalogue

CATALOGUE = load_catalogue(SHIPPED.resolve())
BY_NAME = {e.name: e for e in CATALOGUE.examples}


def parsed(example: Example) -> Conversation:
    return parse_conversation(**example.request())


def test_the_manifest_lists_every_file_and_only_files_that_exist() -> None:
    files = {p.name for p in SHIPPED.iterdir() if p.is_file()} - {"manifest.json"}
    assert {e.file for e in CATALOGUE.examples} == files
    assert len(CATALOGUE.examples) >= 10


def test_every_accepted_format_but_auto_is_shown_by_some_example() -> None:
    assert {e.format for e in CATALOGUE.examples} == set(FORMATS) - {"auto"}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_each_example_parses_to_its_stated_message_count(name: str) -> None:
    example = BY_NAME[name]
    conversation = parsed(example)
    assert len(conversation) == example.message_count
    assert conversation.source_format == example.format
    # Detected the same way without the format named, as a user's upload would be.
    detected = parse_conversation(**{**example.request(), "format": None})
    assert len(detected) == example.message_count
    assert example.title and example.description and example.demonstrates


def _result(name: str) -> dict[str, Any]:
    return analyze(parsed(BY_NAME[name]))


def test_the_debate_disagrees_then_agrees() -> None:
    kinds = [s["type"] for s in _result("rewrite-debate")["patterns"]["dialectic"]]
    assert "disagreement" in kinds and "agreement" in kinds
    assert kinds.index("disagreement") < len(kinds) - 1 - kinds[::-1].index("agreement")


def test_the_socratic_lesson_is_found() -> None:
    kinds = {s["type"] for s in _result("socratic-lesson")["patterns"]["dialectic"]}
    assert "socratic_sequence" in kinds


def test_the_injection_is_flagged_in_both_messages() -> None:
    flags = _result("prompt-injection")["security"]["flags"]
    assert [f["kind"] for f in flags] == ["prompt_injection"]
    assert flags[0]["messages"] == [0, 4]


def test_personal_data_never_appears_in_the_result() -> None:
    text = json.dumps(_result("personal-data"))
    for secret in ("maria.kowalska@", "m.kowalska@", "601 234 567", "4111 1111", "203.0.113.77"):
        assert secret not in text


def test_the_chatgpt_export_leaves_the_regenerated_answer_out() -> None:
    example = BY_NAME["chatgpt-export"]
    texts = [m.text for m in parsed(example).messages]
    assert not any(t.startswith("Use r'") for t in texts)
    assert "Use r'" in example.text  # it is in the file, on the abandoned branch


def test_the_long_chat_has_several_topics_and_the_group_chat_five_speakers() -> None:
    assert len(_result("long-multi-topic")["patterns"]["topics"]["segments"]) >= 3
    assert len(parsed(BY_NAME["group-standup"]).speakers) == 5


def _folder(tmp_path: Path, entry: dict[str, Any]) -> Path:
    (tmp_path / "a.txt").write_text("Human: hi\nAI: hello")
    (tmp_path / "manifest.json").write_text(json.dumps({"examples": [entry]}))
    return tmp_path


GOOD = {
    "name": "a",
    "file": "a.txt",
    "title": "A",
    "category": "c",
    "format": "text",
    "difficulty": "easy",
    "message_count": 2,
    "demonstrates": ["x"],
    "description": "d",
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"file": "../a.txt"}, "is not a file in"),
        ({"file": "missing.txt"}, "is not a file in"),
        ({"format": "xml"}, "format 'xml' is not one of"),
        ({"name": "A B"}, "must be lower-case"),
        ({"difficulty": "extreme"}, "difficulty must be one of"),
        ({"message_count": "2"}, "'message_count' must be a int"),
    ],
)
def test_a_broken_manifest_says_what_is_wrong(
    tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    folder = tmp_path / "examples"
    folder.mkdir()
    _folder(folder, {**GOOD, **change})
    with pytest.raises(ManifestError, match=says.replace("(", r"\(")):
        load_catalogue.__wrapped__(folder.resolve())


def test_a_folder_without_a_manifest_has_no_examples(tmp_path: Path) -> None:
    assert load_catalogue.__wrapped__(tmp_path) == Catalogue(())
