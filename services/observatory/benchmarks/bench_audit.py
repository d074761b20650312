"""What the audit log costs (SPEC §8: writing the event must not add more than a few ms to a
request).

    uv run python benchmarks/bench_audit.py                      # SQLite
    uv run python benchmarks/bench_audit.py --postgres           # and PostgreSQL (127.0.0.1)
    uv run python benchmarks/bench_audit.py --smoke              # CI: fewer requests

Prints:
1. the request's own share: building its event and queueing it (µs per request);
2. the background writer: one chained append transaction of 1 and of 200 events (ms), on
   each database;
3. GET of an analysis through the API with 5 concurrent clients, p50/p99, with the audit
   log on and with it taken out of the running app (the figures SPEC §10 bounds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audit import service as audit
from app.audit.requests import event_for
from app.auth.principal import Principal
from app.core.config import Settings
from app.core.crypto import Fingerprinter
from app.core.database import create_engine, session_factory
from app.core.migrate import upgrade
from app.main import create_app
from benchmarks.bench_api import latency

TEXT = "Ada: The kiln cracked two vases overnight.\nBo: Then we lower the kiln ramp rate."


def request_share(count: int) -> float:
    """µs per request to build the event from the ASGI scope and queue it."""
    log = audit.AuditLog(None, interval=3600, max_pending=count + 1)  # type: ignore[arg-type]
    scope: dict[str, Any] = {
        "method": "GET",
        "route": SimpleNamespace(path="/api/v1/analyze/{analysis_id}"),
        "path_params": {"analysis_id": "0b8a5d8e-6a0e-4d0c-9a51-6f1b2f0e9c11"},
        "query_string": b"",
        "client": ("203.0.113.9", 50000),
        "state": {"principal": Principal("api_key", "k1", "api_key"), "client_address": "x"},
    }
    fingerprints = Fingerprinter(b"s" * 32)
    t0 = time.perf_counter()
    for _ in range(count):
        event = event_for(scope, 200, "req-1", fingerprints)
        assert event is not None
        log.record(event)
    return (time.perf_counter() - t0) / count * 1e6


async def appends(url: str, rounds: int) -> tuple[float, float]:
    """Median ms of one append transaction holding 1 and 200 events."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        figures = []
        for size in (1, 200):
            samples = []
            for n in range(rounds):
                batch = [
                    audit.Event("bench.event", "system:bench", "ok", target=f"{n}-{i}")
                    for i in range(size)
                ]
                t0 = time.perf_counter()
                await audit.append(sessions, batch)
                samples.append((time.perf_counter() - t0) * 1000)
            figures.append(statistics.median(samples))
        report = await audit.verify(sessions)
        assert report.ok, report.problems
        return figures[0], figures[1]
    finally:
        await engine.dispose()


async def through_the_api(database_url: str, key_file: str, each: int) -> None:
    settings = Settings(
        rate_limit_public="1000000/minute;10000000/day",
        read_limit_public="1000000/minute",
        database_url=database_url,
        log_level="WARNING",
        environment="test",
        result_key_file=key_file,
        retention_interval_seconds=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post(
                "/api/v1/analyze", json={"conversation_text": TEXT}, headers={"Prefer": "wait=30"}
            )
            path = f"/api/v1/analyze/{r.json()['id']}"
            state = app.state.service
            writer = state.audit
            await latency(client, path, each=10)  # warm-up
            rows = []
            for label in ("on", "off", "on", "off"):
                state.audit = writer if label == "on" else None
                p50, p99 = await latency(client, path, each=each)
                rows.append((label, p50, p99))
            state.audit = writer
            for label in ("on", "off"):
                mine = [r for r in rows if r[0] == label]
                p50 = statistics.median(r[1] for r in mine)
                p99 = max(r[2] for r in mine)
                print(
                    f"GET /api/v1/analyze/{{id}}, 5 clients, audit {label:>3}: "
                    f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (SPEC §10: p99 < 50 ms)"
                )
            print(f"audit events the app wrote at the end: {await writer.flush()}")


async def _admin(server: str, statement: str) -> None:
    connection = await asyncpg.connect(f"postgresql://{server}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgres@127.0.0.1:5432",
        metavar="USER@HOST:PORT",
        help="also measure appends on PostgreSQL, in a database made for the run",
    )
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    count, rounds, each = (20_000, 20, 20) if args.smoke else (200_000, 100, 200)

    print(f"request share (build + queue the event): {request_share(count):.1f} µs per request")
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("SQLite", f"sqlite+aiosqlite:///{tmp}/audit.db")]
        scratch = f"obs_bench_audit_{os.getpid()}"
        if args.postgres:
            await _admin(args.postgres, f'CREATE DATABASE "{scratch}"')
            urls.append(("PostgreSQL", f"postgresql+asyncpg://{args.postgres}/{scratch}"))
        try:
            for name, url in urls:
                one, many = await appends(url, rounds)
                print(
                    f"append on {name}: 1 event {one:.2f} ms, 200 events {many:.2f} ms "
                    f"({many / 200 * 1000:.0f} µs per event), chain verified"
                )
        finally:
            if args.postgres:
                await _admin(args.postgres, f'DROP DATABASE IF EXISTS "{scratch}"')
        await through_the_api(f"sqlite+aiosqlite:///{tmp}/api.db", f"{tmp}/result.key", each)


if __name__ == "__main__":
    asyncio.run(main())
