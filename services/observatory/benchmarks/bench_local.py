"""Time and peak memory of the local analysis on generated conversations.

    uv run python benchmarks/bench_local.py            # 1,000 / 10,000 / 20,000 messages
    uv run python benchmarks/bench_local.py 5000       # any sizes
    uv run python benchmarks/bench_local.py --profile 10000   # cProfile, top 25 by cumtime

Messages average about 100 words and mix what real transcripts carry: questions and
answers, agreement and pushback, corrections, code blocks, log lines, tone changes and
topic changes. Generation is seeded, so runs are comparable. Time is wall-clock for one
``analyze`` call after a warm-up run on a small conversation (with CPU time beside it, which
other load on the machine disturbs less); memory is the tracemalloc peak during a second,
separate call (tracing slows the code, so it is not timed).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis import analyze
from app.conversation import Conversation, Message

TOPICS = [
    ("database", "index query planner table rows postgres migration column schema vacuum"),
    ("deploy", "container image kubernetes rollout pod health probe cluster registry release"),
    ("frontend", "component render state props css layout browser bundle hydration route"),
    ("billing", "invoice customer payment refund subscription plan tax currency ledger"),
    ("testing", "fixture mock coverage assertion flaky runner suite snapshot parametrize ci"),
]
OPENERS = [
    "How do I {w1} the {w2} without breaking the {w3}?",
    "Why does the {w1} keep failing when the {w2} changes?",
    "I think the {w1} is the real problem here, not the {w2}.",
    "That's incorrect, the {w1} reads the {w2} before the {w3} starts.",
    "You're right, my mistake, the {w1} does depend on the {w2}.",
    "I agree, moving the {w1} next to the {w2} makes sense.",
    "But the {w1} is slower than the {w2} on large inputs.",
    "Perhaps we can combine both: keep the {w1} and cache the {w2}.",
    "This is frustrating, the {w1} broke again and nothing works.",
    "Great, that fixed it! The {w1} is fast now, thanks a lot.",
    "Could you explain what the {w1} does with the {w2}?",
    "So then does the {w1} follow from the {w2}?",
]
PLAIN = [
    "The {w1} runs after the {w2} and before the {w3}.",
    "Here is what the {w1} looks like after the change to the {w2}.",
    "We moved the {w1} into its own module last week.",
]
FILLER = (
    "we looked at the {w1} and the {w2} yesterday and the numbers were close to what we "
    "expected, although the {w3} still shows a few outliers that nobody can explain yet"
)
CODE = "\n```python\nresult = {w1}.run(limit=10)  # why?\nprint(result)\n```\n"
LOG = "\nERROR 2026-03-02 10:15:03 {w1} failed: connection refused, is the {w2} up?\n"


def _fill(rng: random.Random, topic: list[str], template: str) -> str:
    w1, w2, w3 = rng.sample(topic, 3)
    return template.format(w1=w1, w2=w2, w3=w3)


def generate(count: int, seed: int = 7) -> Conversation:
    rng = random.Random(seed)
    speakers = [("Ana", "human"), ("Assistant", "ai")]
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    topic = rng.choice(TOPICS)[1].split()
    messages = []
    for i in range(count):
        if rng.random() < 0.02:
            topic = rng.choice(TOPICS)[1].split()

        # About a third of messages open with a cue (a question, a stance, a reaction).
        parts = [_fill(rng, topic, rng.choice(OPENERS if rng.random() < 0.35 else PLAIN))]
        while sum(len(p.split()) for p in parts) < rng.randint(70, 130):
            parts.append(_fill(rng, topic, FILLER).capitalize() + ".")
            roll = rng.random()
            if roll < 0.05:
                parts.append(_fill(rng, topic, CODE))
            elif roll < 0.08:
                parts.append(_fill(rng, topic, LOG))
        speaker, role = speakers[i % 2]
        messages.append(
            Message(
                index=i,
                speaker=speaker,
                role=role,  # type: ignore[arg-type]
                text=" ".join(parts),
                timestamp=start + timedelta(seconds=40 * i + rng.randint(0, 30)),
            )
        )
    return Conversation(tuple(messages), source_format="messages")


def measure(count: int) -> dict[str, float]:
    conversation = generate(count)
    size = sum(len(m.text.encode()) for m in conversation.messages)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = analyze(conversation)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    tracemalloc.start()
    analyze(conversation)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "messages": count,
        "input_mb": round(size / 1e6, 2),
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_mb": round(peak / 1e6, 1),
        "peak_x_input": round(peak / size, 1),
        "result_kb": round(len(json.dumps(result)) / 1e3, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1_000, 10_000, 20_000])
    parser.add_argument("--profile", action="store_true", help="cProfile the first size")
    args = parser.parse_args()
    analyze(generate(50))  # warm-up: imports, lexicons, compiled patterns
    if args.profile:
        conversation = generate(args.sizes[0])
        profiler = cProfile.Profile()
        profiler.runcall(analyze, conversation)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return
    for count in args.sizes:
        print(json.dumps(measure(count)))


if __name__ == "__main__":
    main()
