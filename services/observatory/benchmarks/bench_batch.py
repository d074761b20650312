"""A batch of 1,000 short conversations through a real server: time to the first item
started and to the whole batch completed, with one and with two analysis processes.

    uv run python benchmarks/bench_batch.py              # 1,000 conversations, 1 and 2 workers
    uv run python benchmarks/bench_batch.py --smoke      # 100 conversations (CI)
    uv run python benchmarks/bench_batch.py --queue redis   # API-only serve + worker processes

Starts ``observatory serve`` (SQLite, local analysis only) on a free port for each worker
count, submits the batch and polls its status every 200 ms. With the in-process queue the
workers are analysis processes of serve; with ``--queue redis`` (Redis at
``OBSERVATORY_BENCH_REDIS``, default redis://127.0.0.1:6379/12) serve answers the API only
and each worker is an ``observatory worker`` process running one analysis at a time.
SPEC §10: 1,000 short conversations finished within 60 s with two workers, the first item
started within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_load import free_port, wait_ready  # noqa: E402

TOPICS = ("the train timetable", "a sourdough starter", "a laptop that will not boot", "rent")


def conversation(i: int) -> dict[str, str]:
    topic = TOPICS[i % len(TOPICS)]
    return {
        "id": f"conv-{i}",
        "text": (
            f"Human: Can you help me with {topic}? It has been bothering me all week.\n"
            f"AI: Of course. What have you tried so far with {topic}?\n"
            "Human: Not much, honestly. I read a guide but it was confusing.\n"
            "AI: Let's go step by step, then. First, tell me what you expected to happen.\n"
            "Human: That makes sense, thanks. I expected it to just work.\n"
            "AI: Fair enough. Try the first step and tell me what you see."
        ),
    }


async def run(workers: int, n: int, queue: str) -> tuple[float, float, dict[str, int]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")},
            "OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/batch.db",
            "OBSERVATORY_LOG_LEVEL": "WARNING",
            "OBSERVATORY_ENVIRONMENT": "test",
            "OBSERVATORY_RESULT_KEY_FILE": f"{tmp}/result.key",
            "OBSERVATORY_OBSERVER_MODE": "off",
            "OBSERVATORY_WORKER_CONCURRENCY": str(workers),
            # The benchmark polls five times a second: more than the public read budget.
            "OBSERVATORY_READ_LIMIT_PUBLIC": "1000000/minute",
        }
        workers_env = {}
        if queue == "redis":
            from cryptography.fernet import Fernet

            env |= {
                "OBSERVATORY_QUEUE_BACKEND": "redis",
                "OBSERVATORY_QUEUE_REDIS_URL": os.environ.get(
                    "OBSERVATORY_BENCH_REDIS", "redis://127.0.0.1:6379/12"
                ),
                "OBSERVATORY_QUEUE_NAME": f"bench-{port}",
                "OBSERVATORY_QUEUE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            }
            workers_env = {**env, "OBSERVATORY_WORKER_CONCURRENCY": "1"}
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env
        )
        helpers = [
            subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
                [sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=workers_env
            )
            for _ in range(workers if queue == "redis" else 0)
        ]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
                await wait_ready(c, proc)
                body = {"conversations": [conversation(i) for i in range(n)]}
                t0 = time.perf_counter()
                r = await c.post("/api/v1/analyze/batch", json=body)
                if r.status_code != 202:
                    raise SystemExit(f"batch refused: {r.status_code} {r.text[:300]}")
                accepted = time.perf_counter() - t0
                path = f"/api/v1/analyze/batch/{r.json()['batch_id']}?limit=1"
                first = None
                while True:
                    reply = await c.get(path)
                    if reply.status_code != 200:
                        raise SystemExit(f"GET batch: {reply.status_code} {reply.text[:300]}")
                    status = reply.json()
                    counts = status["counts"]
                    now = time.perf_counter() - t0
                    if first is None and counts["processing"] + counts["completed"] > 0:
                        first = now
                    if status["status"] in ("completed", "cancelled"):
                        break
                    if now > 600:
                        raise SystemExit(f"batch did not finish in 600 s: {counts}")
                    await asyncio.sleep(0.2)
                print(f"    (accepted after {accepted:.2f} s)")
                return first or now, now, counts
        finally:
            for p in (*helpers, proc):
                p.terminate()
            for p in (*helpers, proc):
                p.wait(60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="100 conversations (CI)")
    parser.add_argument("-n", type=int, default=1000, help="conversations in the batch")
    parser.add_argument("--queue", choices=("inprocess", "redis"), default="inprocess")
    args = parser.parse_args()
    n = 100 if args.smoke else args.n
    where = "in-process queue" if args.queue == "inprocess" else "Redis queue, worker processes"
    print(f"batch of {n} short conversations (6 messages each), {where}, local only:")
    for workers in (1, 2):
        first, total, counts = await run(workers, n, args.queue)
        print(
            f"  {workers} worker(s): first item started {first:5.2f} s, completed {total:6.2f} s "
            f"({n / total:5.1f} conversations/s; {counts['completed']} completed, "
            f"{counts['failed']} failed)"
        )


if __name__ == "__main__":
    asyncio.run(main())
