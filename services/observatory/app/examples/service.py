"""The catalogue of example conversations: ``manifest.json`` and the files it names.

The manifest is the operator's (or the project's) data, checked when it is loaded: every
entry names a file inside the folder, a format the parsers know and the metadata the
endpoints show. Each example is turned into the very body ``POST /api/v1/analyze`` takes,
so analysing an example by name and submitting that body are the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.conversation.parsers import FORMATS
from app.core.config import Settings
from app.core.errors import NotFound
from app.core.problems import printable

SHIPPED = Path(__file__).resolve().parents[2] / "examples"
MANIFEST = "manifest.json"
DIFFICULTIES = ("easy", "medium", "hard")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class ManifestError(ValueError):
    """The examples folder or its manifest is not usable (an operator's mistake)."""


@dataclass(frozen=True, slots=True)
class Example:
    name: str
    file: str
    title: str
    category: str
    format: str
    difficulty: str
    message_count: int
    demonstrates: tuple[str, ...]
    description: str
    text: str  # the file as shipped

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "category": self.category,
            "format": self.format,
            "difficulty": self.difficulty,
            "message_count": self.message_count,
            "demonstrates": list(self.demonstrates),
            "description": self.description,
            "file": self.file,
        }

    @property
    def is_json(self) -> bool:
        return self.file.endswith(".json")

    def content(self) -> Any:
        """The conversation as a reader sees it: the text of a transcript or JSON Lines file,
        the decoded value of a JSON export."""
        return json.loads(self.text) if self.is_json else self.text

    def request(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The body of ``POST /api/v1/analyze`` that analyses this example."""
        body: dict[str, Any] = (
            {"data": self.content()} if self.is_json else {"conversation_text": self.text}
        )
        body["format"] = self.format
        if options is not None:
            body["options"] = dict(options)
        return body


@dataclass(frozen=True, slots=True)
class Catalogue:
    examples: tuple[Example, ...]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.examples]

    @property
    def categories(self) -> list[str]:
        return sorted({e.category for e in self.examples})

    def get(self, name: str) -> Example:
        for example in self.examples:
            if example.name == name:
                return example
        available = ", ".join(self.names) or "none"
        raise NotFound(f"no example named '{printable(name, 80)}'; available: {available}")

    def listed(self, category: str | None = None) -> list[Example]:
        """Every example, or those of ``category`` (none for a category no example has)."""
        if not category:
            return list(self.examples)
        return [e for e in self.examples if e.category == category]


def examples_dir(settings: Settings) -> Path:
    return Path(settings.examples_dir).expanduser() if settings.examples_dir else SHIPPED


def catalogue_for(settings: Settings) -> Catalogue:
    return load_catalogue(examples_dir(settings).resolve())


@lru_cache(maxsize=4)
def load_catalogue(directory: Path) -> Catalogue:
    """The examples of ``directory`` (no manifest: none). Read once per folder."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return Catalogue(())
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{manifest}: cannot be read as JSON ({exc})") from None
    entries = doc.get("examples") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ManifestError(f"{manifest}: expected an object with an 'examples' list")
    examples: list[Example] = []
    for position, entry in enumerate(entries):
        example = _entry(directory, entry, f"{manifest}, example {position}")
        if example.name in {e.name for e in examples}:
            raise ManifestError(f"{manifest}: the name '{example.name}' is used twice")
        examples.append(example)
    return Catalogue(tuple(examples))


def _entry(directory: Path, entry: Any, where: str) -> Example:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object")

    def field(key: str, kind: type) -> Any:
        value = entry.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestError(f"{where}: '{key}' must be a {kind.__name__}")
        return value

    name = field("name", str)
    if not name or not set(name) <= _NAME_CHARS:
        raise ManifestError(f"{where}: name '{name}' must be lower-case letters, digits and '-'")
    file = field("file", str)
    path = (directory / file).resolve()
    if path.parent != directory or not path.is_file():
        raise ManifestError(f"{where}: file '{file}' is not a file in {directory}")
    fmt = field("format", str)
    if fmt not in FORMATS or fmt == "auto":
        raise ManifestError(f"{where}: format '{fmt}' is not one of {', '.join(FORMATS[1:])}")
    difficulty = field("difficulty", str)
    if difficulty not in DIFFICULTIES:
        raise ManifestError(f"{where}: difficulty must be one of {', '.join(DIFFICULTIES)}")
    demonstrates = field("demonstrates", list)
    if not all(isinstance(d, str) for d in demonstrates):
        raise ManifestError(f"{where}: 'demonstrates' must be a list of strings")
    text = path.read_text(encoding="utf-8")
    if file.endswith(".json"):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: {file} is not valid JSON ({exc})") from None
    return Example(
        name=name,
        file=file,
        title=field("title", str),
        category=field("category", str),
        format=fmt,
        difficulty=difficulty,
        message_count=field("message_count", int),
        demonstrates=tuple(demonstrates),
        description=field("description", str),
        text=text,
    )
