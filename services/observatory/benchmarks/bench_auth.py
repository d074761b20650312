"""What resolving the principal and counting the limits add to a request, on a real server.

    uv run python benchmarks/bench_auth.py              # limits in memory and in Redis
    uv run python benchmarks/bench_auth.py --no-redis
    uv run python benchmarks/bench_auth.py --smoke      # fewer requests (CI)

For each configuration it starts ``observatory serve`` (SQLite) on a free port, creates an
API key with ``observatory keys create``, stores one small completed analysis and then has 5
clients, each a process of its own, call in turn ``GET /health`` (no principal, no limits:
the baseline), ``GET /api/v1/analyze/{id}`` without a credential (public tier) and with the
key. Configurations: limits in memory or in Redis, each with the key cache on (the default,
10 s) and off (a database lookup per request). Prints p50 / p99 per call as the client saw
it and as the server spent it (``Server-Timing``), and the server-side cost over the
baseline; SPEC §10: p99 under 50 ms with 5 concurrent clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_load import CLIENT_NICE, free_port, wait_ready  # noqa: E402

HIGH = "100000000/minute;1000000000/day"
CALLS = ("health", "public", "key")
CLI = [sys.executable, "-m", "app.cli"]


def client(port: int, path: str, secret: str, n: int) -> dict[str, list[tuple[float, float]]]:
    """One client process: ``n`` rounds of the three calls; (client, server) seconds each."""
    if CLIENT_NICE:
        os.nice(CLIENT_NICE)
    requests = {
        "health": ("/health", {}),
        "public": (path, {}),
        "key": (path, {"Authorization": f"Bearer {secret}"}),
    }
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in CALLS}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        for _ in range(n):
            for name in CALLS:
                url, headers = requests[name]
                t = time.perf_counter()
                r = c.get(url, headers=headers)
                elapsed = time.perf_counter() - t
                if r.status_code != 200:
                    raise SystemExit(f"GET {url} ({name}) -> {r.status_code}: {r.text[:200]}")
                server = float(r.headers["server-timing"].rsplit("=", 1)[1]) / 1000
                out[name].append((elapsed, server))
    return out


def create_key(env: dict[str, str]) -> str:
    """A migrated database with one API key; returns the key."""
    subprocess.run([*CLI, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*CLI, "keys", "create", "--name", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(created.stdout)["key"])


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * 0.99) - 1)]


async def measure(redis: bool, cache_seconds: float, clients: int, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")},
            "OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/auth.db",
            "OBSERVATORY_LOG_LEVEL": "WARNING",
            "OBSERVATORY_ENVIRONMENT": "test",
            "OBSERVATORY_RESULT_KEY_FILE": f"{tmp}/result.key",
            "OBSERVATORY_OBSERVER_MODE": "off",
            "OBSERVATORY_RATE_LIMIT_PUBLIC": HIGH,
            "OBSERVATORY_RATE_LIMIT_API_KEY": HIGH,
            "OBSERVATORY_READ_LIMIT_PUBLIC": "100000000/minute",
            "OBSERVATORY_READ_LIMIT_API_KEY": "100000000/minute",
            "OBSERVATORY_API_KEY_CACHE_SECONDS": str(cache_seconds),
        }
        if redis:
            env["OBSERVATORY_REDIS_URL"] = "redis://127.0.0.1:6379/0"
            env["OBSERVATORY_RATE_LIMIT_KEY_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}"
        secret = await asyncio.to_thread(create_key, env)
        port = free_port()
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [*CLI, "serve", "--port", str(port)], cwd=ROOT, env=env
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
                await wait_ready(c, proc)
                body = {"conversation_text": "Human: hi?\nAI: hello."}
                r = await c.post("/api/v1/analyze", json=body, headers={"Prefer": "wait=10"})
                path = f"/api/v1/analyze/{r.json()['id']}"
            loop = asyncio.get_running_loop()
            with ProcessPoolExecutor(clients) as pool:
                await loop.run_in_executor(pool, client, port, path, secret, 5)  # warm-up
                parts = await asyncio.gather(
                    *(
                        loop.run_in_executor(pool, client, port, path, secret, n)
                        for _ in range(clients)
                    )
                )
        finally:
            proc.terminate()
            proc.wait(30)
    samples = {name: [s for part in parts for s in part[name]] for name in CALLS}
    base = statistics.median(s for _, s in samples["health"]) * 1000
    print(
        f"limits in {'Redis' if redis else 'memory'}, key cache "
        f"{f'{cache_seconds:g} s' if cache_seconds else 'off'}, {clients} clients x {n} rounds:"
    )
    titles = {"health": "GET /health", "public": "GET result, public", "key": "GET result, key"}
    for name in CALLS:
        client_ms = [c * 1000 for c, _ in samples[name]]
        server_ms = [s * 1000 for _, s in samples[name]]
        print(
            f"  {titles[name]:<20} client p50 {statistics.median(client_ms):5.1f} "
            f"p99 {p99(client_ms):5.1f} ms | server p50 {statistics.median(server_ms):5.2f} "
            f"p99 {p99(server_ms):5.2f} ms (+{statistics.median(server_ms) - base:.2f} at p50)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="fewer requests (CI)")
    parser.add_argument("-n", type=int, default=200, help="rounds per client")
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args()
    n = 20 if args.smoke else args.n
    for redis in (False,) if args.no_redis else (False, True):
        for cache in (10.0, 0.0):
            await measure(redis, cache, args.clients, n)


if __name__ == "__main__":
    asyncio.run(main())
