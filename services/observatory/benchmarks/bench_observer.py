"""Benchmark: the observer over long conversations against the Ollama-protocol test server.

Every ``/api/chat`` call answers after ``--delay`` seconds with a valid answer citing the
chunk it was sent, so the run measures chunking, the concurrency bound and the merge tree,
not a model. Run from services/observatory::

    uv run python benchmarks/bench_observer.py --delay 0.05 --sizes 1000 10000

The lower bound printed is ``calls x delay / concurrency``: how long the calls alone must
take when the semaphore is kept full.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis import analyze
from app.conversation import Conversation, Message
from app.core.config import Settings
from app.core.logging import configure_logging
from app.observer import Observer
from tests.ollama_server import OllamaTestServer, Script

WORDS = [
    "index",
    "query",
    "plan",
    "table",
    "column",
    "scan",
    "cost",
    "latency",
    "cache",
    "replica",
    "shard",
    "commit",
    "rollback",
    "schema",
    "migration",
    "lock",
    "deadlock",
    "vacuum",
    "analyze",
    "statistics",
    "cardinality",
    "join",
    "filter",
]
HEADER = re.compile(r"^\[(\d+)\] ", re.MULTILINE)


def make_conversation(n: int, words: int) -> Conversation:
    messages = []
    for i in range(n):
        text = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(words))
        if i % 9 == 0:
            text += "? Why would that help here?"
        human = i % 2 == 0
        messages.append(
            Message(i, "Ana" if human else "Assistant", "human" if human else "ai", text)
        )
    return Conversation(tuple(messages))


def reply_for(request: dict[str, Any], delay: float) -> Script:
    user = request["messages"][1]["content"]
    if "<findings>" in user:
        body: dict[str, Any] = {
            "narrative": "A long technical exchange about query tuning.",
            "themes": [],
            "insights": [],
            "notable_exchanges": [],
        }
        return Script(content=body, delay=delay)
    block = user.split("<transcript>\n", 1)[1].split("\n</transcript>", 1)[0]
    indices = [int(i) for i in HEADER.findall(block)]
    first, last = indices[0], indices[-1]
    body = {
        "narrative": f"Messages {first} to {last} discuss query plans.",
        "themes": [{"label": "query plans", "messages": [first, last], "quote": ""}],
        "insights": [{"text": "The human keeps asking why.", "messages": [first]}],
        "notable_exchanges": [],
        "pattern_judgements": [],
        "injection_attempts": [],
    }
    return Script(content=body, delay=delay)


async def run_one(size: int, args: argparse.Namespace) -> None:
    conversation = make_conversation(size, args.words)
    started = time.perf_counter()
    local = analyze(conversation)
    local_seconds = time.perf_counter() - started
    with OllamaTestServer(models=["observer"]) as server:
        server.default_reply = lambda request: reply_for(request, args.delay)
        settings = Settings(
            observer_url=server.url,
            observer_num_ctx=args.num_ctx,
            observer_max_concurrency=args.concurrency,
            observer_analysis_timeout_seconds=3600,
            analysis_timeout_seconds=4000,
        )
        observer = Observer(settings)
        started = time.perf_counter()
        try:
            result = await observer.enrich(conversation, local, "required")
        finally:
            await observer.aclose()
        seconds = time.perf_counter() - started
        info = result["observer"]
        bound = info["calls"] * args.delay / args.concurrency
        print(
            f"{size:>6} messages  chunks {info['chunks']:>4}  merge calls {info['merge_calls']:>3}  "
            f"calls {info['calls']:>4}  observer {seconds:7.2f} s  (lower bound {bound:6.2f} s)  "
            f"concurrency {info['concurrency']} (server saw {server.max_concurrent})  "
            f"local {local_seconds:5.2f} s"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per /api/chat call")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--words", type=int, default=100, help="words per message")
    parser.add_argument("--num-ctx", type=int, default=8192)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    configure_logging("WARNING")
    print(
        f"== observer: num_ctx {args.num_ctx}, {args.words} words/message, "
        f"{args.delay:g} s per call, concurrency {args.concurrency} =="
    )
    for size in args.sizes:
        await run_one(size, args)


if __name__ == "__main__":
    asyncio.run(main())
