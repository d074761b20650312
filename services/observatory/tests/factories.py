"""Plain factory functions for test conversations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.conversation import Conversation, Message

TOPICS = [
    "the database index makes the query faster when the table grows large",
    "my garden tomatoes need more sunlight and regular watering every morning",
    "the train to the coast leaves early so we should book tickets tonight",
    "this novel builds its characters slowly before the twist in the last chapter",
]


def transcript(n: int = 6) -> str:
    lines = []
    for i in range(n):
        speaker = "Human" if i % 2 == 0 else "AI"
        lines.append(f"{speaker}: message {i} about {TOPICS[(i // 10) % len(TOPICS)]}?")
    return "\n".join(lines)


def messages(n: int, words: int = 20) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        topic = TOPICS[(i // 50) % len(TOPICS)].split()
        text = " ".join(topic[(i + k) % len(topic)] for k in range(words))
        if i % 7 == 0:
            text += " — what do you think about that?"
        out.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return out


def alternating(texts: list[str]) -> Conversation:
    """A user/assistant conversation alternating from the user, one message per text."""
    return Conversation(
        messages=tuple(
            Message(
                index=i,
                speaker="user" if i % 2 == 0 else "assistant",
                role="human" if i % 2 == 0 else "ai",
                text=t,
            )
            for i, t in enumerate(texts)
        )
    )


def weights_refusal(monkeypatch: Any, module: Any, load: Any, path: Path) -> str:
    """The message with which a trained model's ``module`` refuses the weights file at
    ``path``: its loader ``load`` raises it, and so does a process start
    (``check_models``), which loads both models. The shipped file is back afterwards."""
    from app.analysis.engine import check_models

    monkeypatch.setattr(module, "WEIGHTS_FILE", path)
    load.cache_clear()
    try:
        with pytest.raises(ValueError) as raised:
            load()
        with pytest.raises(ValueError, match=re.escape(str(raised.value))):
            check_models()
        return str(raised.value)
    finally:
        monkeypatch.undo()
        load.cache_clear()
