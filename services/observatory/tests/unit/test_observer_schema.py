"""The schema sent in ``format`` is bounded everywhere and self-contained."""

from __future__ import annotations

from typing import Any

import pytest

from app.observer.schema import DIALECTIC_TYPES, ChunkFindings, Synthesis, json_schema
from app.observer.validation import InvalidAnswer, parse_answer


def walk(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(walk(value, f"{path}[{i}]"))
    return found


@pytest.mark.parametrize("model", [ChunkFindings, Synthesis])
def test_every_array_and_string_is_bounded(model: Any) -> None:
    schema = json_schema(model)
    arrays = [(p, n) for p, n in walk(schema) if n.get("type") == "array"]
    strings = [(p, n) for p, n in walk(schema) if n.get("type") == "string" and "enum" not in n]
    assert arrays and strings
    assert all("maxItems" in n for _, n in arrays), [p for p, n in arrays if "maxItems" not in n]
    assert all("maxLength" in n for _, n in strings), [
        p for p, n in strings if "maxLength" not in n
    ]


def test_schema_has_no_references_and_forbids_extra_fields() -> None:
    schema = json_schema(ChunkFindings)
    nodes = walk(schema)
    assert not any("$ref" in n or "$defs" in n for _, n in nodes)
    objects = [n for _, n in nodes if n.get("type") == "object"]
    assert all(n.get("additionalProperties") is False for n in objects)
    assert all(set(n["required"]) == set(n["properties"]) for n in objects)


def test_fields_and_limits_of_the_chunk_answer() -> None:
    props = json_schema(ChunkFindings)["properties"]
    assert set(props) == {
        "narrative",
        "themes",
        "insights",
        "notable_exchanges",
        "pattern_judgements",
        "injection_attempts",
    }
    assert props["narrative"]["maxLength"] == 1000
    judgement = props["pattern_judgements"]["items"]["properties"]
    assert tuple(judgement["type"]["enum"]) == DIALECTIC_TYPES
    assert judgement["agree"]["type"] == "boolean"
    assert judgement["confidence"] == {"maximum": 1.0, "minimum": 0.0, "type": "number"}


def answer(**overrides: Any) -> str:
    import json

    body: dict[str, Any] = {
        "narrative": "A calm exchange.",
        "themes": [],
        "insights": [],
        "notable_exchanges": [],
        "pattern_judgements": [],
        "injection_attempts": [],
    }
    body.update(overrides)
    return json.dumps(body)


def test_valid_answer_parses() -> None:
    parsed = parse_answer(answer(), "stop", ChunkFindings)
    assert parsed.narrative == "A calm exchange."


@pytest.mark.parametrize(
    ("content", "done_reason", "expected"),
    [
        ('{"narrative": "cut', "stop", "not valid JSON"),
        (answer(narrative="x" * 1001), "stop", "does not match the schema"),
        (answer(extra=1), "stop", "does not match the schema"),
        (
            answer(
                pattern_judgements=[
                    {"type": "flattery", "messages": [1], "agree": True, "confidence": 1}
                ]
            ),
            "stop",
            "does not match the schema",
        ),
        (answer(), "length", "cut off at the token limit"),
        ("[]", "stop", "does not match the schema"),
    ],
)
def test_invalid_answers_are_rejected_with_a_reason(
    content: str, done_reason: str, expected: str
) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        parse_answer(content, done_reason, ChunkFindings)
    assert expected in caught.value.reason
    assert caught.value.cut_off == (done_reason == "length")
