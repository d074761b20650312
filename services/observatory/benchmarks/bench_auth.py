"""What resolving the principal and counting the limits add to a request.

    uv run python benchmarks/bench_auth.py              # memory and Redis (127.0.0.1:6379)
    uv run python benchmarks/bench_auth.py --no-redis

In-process (ASGI transport), 5 concurrent clients: ``GET /api/v1/analyze/{id}`` of a small
completed result as the public tier and with an API key, with limits in memory and in
Redis, against ``GET /health`` (no auth, no limits) as the baseline. Prints p50 / p99 of the
server time (``Server-Timing``) per case and the difference to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings
from app.keys import service as keys
from app.main import create_app

HIGH = "100000000/minute;1000000000/day"


CLIENTS = 5


async def timings(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int
) -> list[float]:
    out: list[float] = []

    async def one() -> None:
        for _ in range(n):
            r = await client.get(path, headers=headers)
            assert r.status_code == 200, r.text
            out.append(float(r.headers["server-timing"].rsplit("=", 1)[1]))

    await asyncio.gather(*(one() for _ in range(CLIENTS)))
    return sorted(out)


def p(values: list[float], q: float) -> float:
    return values[max(0, int(len(values) * q) - 1)]


async def run(backend: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extra: dict[str, Any] = {}
        if backend == "redis":
            extra = {
                "redis_url": "redis://127.0.0.1:6379/0",
                "rate_limit_key_prefix": f"bench-{uuid.uuid4().hex[:8]}",
            }
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp}/auth.db",
            environment="test",
            log_level="WARNING",
            observer_mode="off",
            rate_limit_public=HIGH,
            rate_limit_api_key=HIGH,
            read_limit_public="100000000/minute",
            read_limit_api_key="100000000/minute",
            **extra,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            async with app.state.service.sessions() as session, session.begin():
                created = await keys.create(session, name="bench")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
                body = {"conversation_text": "Human: hi?\nAI: hello."}
                r = await c.post("/api/v1/analyze", json=body, headers={"Prefer": "wait=10"})
                path = f"/api/v1/analyze/{r.json()['id']}"
                await timings(c, "/health", {}, 20)  # warm-up
                base = await timings(c, "/health", {}, n)
                public = await timings(c, path, {}, n)
                keyed = await timings(c, path, {"Authorization": f"Bearer {created.secret}"}, n)
        print(f"limits in {backend}, {CLIENTS} clients x {n} requests, server time (ms):")
        for name, values in (
            ("GET /health", base),
            ("GET result, public", public),
            ("GET result, API key", keyed),
        ):
            print(
                f"  {name:<22} p50 {statistics.median(values):6.2f}  p99 {p(values, 0.99):6.2f}"
                f"  (+{statistics.median(values) - statistics.median(base):.2f} ms at p50)"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("-n", type=int, default=200, help="requests per client")
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args()
    global CLIENTS
    CLIENTS = args.clients
    await run("memory", args.n)
    if not args.no_redis:
        await run("redis", args.n)


if __name__ == "__main__":
    asyncio.run(main())
