"""Reading the weights file of a trained model (``tone_model``, ``reply_model``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_weights(path: Path, trainer: str, key: str, expected: list[str]) -> tuple[Any, str]:
    """The JSON document of ``path`` whose ``key`` lists ``expected``, and the advice to
    append to any later complaint about it; a ValueError that names the file and the
    command that rewrites it when it is missing, unreadable or fitted on something else."""
    retrain = f"{path}: retrain with benchmarks/{trainer} --write"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        found = raw.get(key)
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"unreadable ({exc!r}); {retrain}") from exc
    if found != expected:
        raise ValueError(f"fitted on other {key}; {retrain}")
    return raw, retrain
