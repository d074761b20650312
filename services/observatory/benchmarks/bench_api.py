"""End-to-end figures through the HTTP API on the embedded default (SQLite, in-process queue).

    uv run python benchmarks/bench_api.py            # 1,000 / 10,000 / 20,000 messages, 3 runs each
    uv run python benchmarks/bench_api.py --smoke    # 1,000 and 10,000 once (CI)

For each size it prints the time from POST to completed (client side, the request waiting
with ``Prefer: wait``), the server's own processing time, and the peak traced memory of the
whole request (tracemalloc, in a separate untimed run) against the size of the JSON body.
Then the latency of non-analysis calls (GET a result, GET /health) with 5 concurrent
clients, p50/p99 (SPEC §10: p99 under 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings
from app.main import create_app
from benchmarks.bench_local import generate


def body_for(count: int) -> bytes:
    conversation = generate(count)
    msgs = [
        {
            "speaker": m.speaker,
            "role": m.role,
            "text": m.text,
            **({"timestamp": m.timestamp.isoformat()} if m.timestamp else {}),
        }
        for m in conversation.messages
    ]
    return json.dumps({"messages": msgs, "options": {"observer": "off"}}).encode()


async def post_and_wait(client: httpx.AsyncClient, body: bytes) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    r = await client.post(
        "/api/v1/analyze",
        content=body,
        headers={"content-type": "application/json", "Prefer": "wait=60"},
    )
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        raise SystemExit(f"analysis did not complete: {r.status_code} {r.text[:300]}")
    return elapsed, r.json()


async def latency(
    client: httpx.AsyncClient, path: str, clients: int = 5, each: int = 100
) -> tuple[float, float]:
    samples: list[float] = []

    async def one() -> None:
        for _ in range(each):
            t0 = time.perf_counter()
            r = await client.get(path)
            samples.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text

    await asyncio.gather(*(one() for _ in range(clients)))
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99) - 1] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int)
    parser.add_argument("--smoke", action="store_true", help="1,000 and 10,000 once")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = args.sizes or ([1_000, 10_000] if args.smoke else [1_000, 10_000, 20_000])
    runs = 1 if args.smoke else args.runs

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            rate_limit_public="1000000/minute;10000000/day",
            read_limit_public="1000000/minute",
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            log_level="WARNING",
            environment="test",
            result_key_file=f"{tmp}/result.key",
            # The generated messages average ~100 words, so 10,000 of them (6.5 MB) exceed the
            # default 5 MB conversation limit; raise it so the figures are conservative.
            max_conversation_bytes=32 * 1024 * 1024,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=120
            ) as client:
                await post_and_wait(client, body_for(20))  # warm-up: imports, lexicons
                print(
                    f"{'messages':>9} {'body MB':>8} {'POST→done s':>12} {'server s':>9} {'peak MB':>8} {'peak/body':>9}"
                )
                last_id = ""
                for size in sizes:
                    body = body_for(size)
                    times, server = [], []
                    for _ in range(runs):
                        elapsed, result = await post_and_wait(client, body)
                        times.append(elapsed)
                        server.append(result["processing_time"])
                        last_id = result["id"]
                    tracemalloc.start()
                    await post_and_wait(client, body)
                    _, peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                    mb = len(body) / 1e6
                    print(
                        f"{size:>9,} {mb:>8.2f} {statistics.median(times):>12.3f} "
                        f"{statistics.median(server):>9.3f} {peak / 1e6:>8.1f} {peak / len(body):>9.1f}"
                    )
                each = 20 if args.smoke else 100
                for path in (f"/api/v1/analyze/{last_id}", "/health"):
                    p50, p99 = await latency(client, path, each=each)
                    shown = path if path == "/health" else "/api/v1/analyze/{id} (10k result)"
                    print(f"GET {shown}: 5 clients, p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
