"""How long parsing takes for the largest conversation the default limits allow.

Run: ``uv run python benchmarks/bench_parsing.py``. Prints the best of several runs per input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from app.conversation.parsers import parse_conversation

N = 20_000
LINES = (
    "Could you look at this function? It fails on empty input.",
    "Sure. The loop assumes at least one item:\n```python\nfor i in range(len(xs)):\n"
    "    total: int = xs[i]\n```\nGuard it with `if not xs: return 0`.",
    "Thanks, that works. Error: none now.",
)


def transcript(*, stamped: bool) -> str:
    speakers = ("Human", "AI")
    return "\n".join(
        (f"[2026-03-02 10:{i % 60:02d}] " if stamped else "") + f"{speakers[i % 2]}: {LINES[i % 3]}"
        for i in range(N)
    )


def messages() -> list[dict[str, object]]:
    roles = ("user", "assistant")
    return [
        {"role": roles[i % 2], "content": LINES[i % 3], "timestamp": 1772446500 + i}
        for i in range(N)
    ]


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    text = transcript(stamped=True)
    plain = transcript(stamped=False)
    items = messages()
    as_json = json.dumps(items)
    cases: dict[str, Callable[[], object]] = {
        "transcript, timestamped": lambda: parse_conversation(conversation_text=text),
        "transcript, plain": lambda: parse_conversation(conversation_text=plain),
        "messages list": lambda: parse_conversation(messages=items),
        "messages as JSON text": lambda: parse_conversation(conversation_text=as_json),
    }
    for name, fn in cases.items():
        conversation = fn()
        assert len(conversation) == N, name  # type: ignore[arg-type]
        print(f"{name:26s} {N:,} messages: {best_of(5, fn) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
