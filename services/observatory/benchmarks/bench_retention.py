"""Retention on PostgreSQL: a large expired backlog removed while the API keeps answering.

    uv run python benchmarks/bench_retention.py                # 100,000 expired analyses
    uv run python benchmarks/bench_retention.py --rows 250000
    uv run python benchmarks/bench_retention.py --smoke        # 5,000 expired analyses (CI)

Drops and creates the database ``--database`` on the PostgreSQL server at
``OBSERVATORY_BENCH_POSTGRES`` (default postgresql://postgres@127.0.0.1:5432), applies the
migrations, submits a batch of live conversations through a real server (``observatory
serve``, the retention loop off) and writes the expired backlog straight into the tables
(COPY): finished analyses created long enough ago that both their result period and their
metadata period are over, a share of them with a sealed result of the size a real one has,
some in old batches and some with a callback delivery. Five clients (at a lower CPU
priority, ``BENCH_CLIENT_NICE``, default 10) then read a live result, /health and the live
batch in turn: first for a baseline window, then while the retention cleanup (what
``observatory retention run`` does, with the same settings; ``--pause`` overrides its wait
between batches) removes the backlog in a process of its own.

Printed: the rows removed by kind, the cleanup's wall time and rows per second, and the
API's p50/p95/p99 in both windows, client side against SPEC §10 (p99 under 50 ms with 5
concurrent clients) and as the server spent it (its ``Server-Timing`` header). Afterwards
every expired row must be gone and every live analysis still readable: the exit status is
non-zero if not (and, with ``--fail-over-target``, if a p99 is over the target).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

THIS = Path(__file__).resolve()
ROOT = THIS.parents[1]
sys.path.insert(0, str(ROOT))

from app.analyses.models import Analysis  # noqa: E402
from app.batches.models import Batch, BatchItem  # noqa: E402
from app.core.crypto import ResultCipher, new_key_spec, parse_key_specs  # noqa: E402
from app.core.database import create_engine  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402
from app.webhooks.models import WebhookDelivery  # noqa: E402
from benchmarks.bench_batch import conversation  # noqa: E402
from benchmarks.bench_load import free_port, wait_ready  # noqa: E402

TARGET_P99_MS = 50.0
CLIENTS = 5
CLIENT_NICE = int(os.environ.get("BENCH_CLIENT_NICE", "10"))
COPY_CHUNK = 5_000
OWNERS = [f"key:{uuid.uuid4().hex[:12]}" for _ in range(40)] + [None] * 10


@dataclass(slots=True)
class Backlog:
    analyses: int = 0
    results: int = 0
    batches: int = 0
    batch_items: int = 0
    deliveries: int = 0
    blob_bytes: int = 0


@dataclass(slots=True)
class Samples:
    # window -> (kind of call, client-side seconds, the server's own seconds)
    by_window: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


async def copy(conn: asyncpg.Connection, model: Any, rows: Iterator[dict[str, Any]]) -> int:
    """COPY ``rows`` (one value for each of the model's columns) into its table."""
    names = [c.name for c in model.__table__.columns]
    written = 0
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        if row.keys() != set(names):
            raise SystemExit(f"{model.__tablename__}: columns {sorted(row)} != {sorted(names)}")
        chunk.append(tuple(row[name] for name in names))
        if len(chunk) == COPY_CHUNK:
            await conn.copy_records_to_table(model.__tablename__, records=chunk, columns=names)
            written, chunk = written + len(chunk), []
    if chunk:
        await conn.copy_records_to_table(model.__tablename__, records=chunk, columns=names)
    return written + len(chunk)


async def fresh_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def write_backlog(
    dsn: str, n: int, cipher: ResultCipher, result_doc: bytes, seed: int
) -> Backlog:
    """``n`` finished analyses past both retention periods, with their batch items and
    callback deliveries, written by COPY."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    backlog = Backlog()
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]
    owners = [rng.choice(OWNERS) for _ in range(n)]

    def analyses() -> Iterator[dict[str, Any]]:
        for i, analysis_id in enumerate(ids):
            created = now - timedelta(days=120 + rng.random() * 240)
            started = created + timedelta(milliseconds=rng.uniform(5, 400))
            ms = rng.uniform(20, 900)
            finished = started + timedelta(milliseconds=ms)
            last_read = finished + timedelta(days=rng.random() * 20)
            roll = rng.random()
            status = "completed" if roll < 0.92 else "failed" if roll < 0.97 else "cancelled"
            sealed = None
            if status == "completed" and rng.random() < 0.6:
                sealed = cipher.seal(result_doc, analysis_id)
                backlog.results += 1
                backlog.blob_bytes += len(sealed.blob)
            messages = rng.randint(2, 400)
            yield {
                "id": analysis_id,
                "status": status,
                "owner": owners[i],
                "runner": None,
                "fingerprint": f"{rng.getrandbits(256):064x}",
                "message_count": messages,
                "char_count": messages * rng.randint(60, 400),
                "source_format": rng.choice(("plain", "messages", "chatgpt", "claude")),
                "options": json.dumps({"observer": "off", "include_insights": True}),
                "result": sealed.blob if sealed else None,
                "result_key": sealed.key_id if sealed else None,
                "error": "the conversation could not be parsed" if status == "failed" else None,
                "stage": None,
                "created_at": created,
                "started_at": started,
                "finished_at": finished,
                "processing_ms": ms,
                "last_accessed_at": last_read,
                "deleted_at": None,
                "expires_at": last_read + timedelta(days=30),
            }

    # A fifth of the backlog was submitted in batches of 100, long enough ago that the
    # batches' own metadata period is over too.
    batch_rows: list[dict[str, Any]] = []
    item_rows: list[dict[str, Any]] = []
    in_batches = ids[: n // 5]
    for start in range(0, len(in_batches), 100):
        batch_id = str(uuid.uuid4())
        members = in_batches[start : start + 100]
        created = now - timedelta(days=200 + rng.random() * 100)
        batch_rows.append(
            {
                "id": batch_id,
                "owner": owners[start],
                "total": len(members),
                "rejected": 0,
                "options": json.dumps({"observer": "off"}),
                "created_at": created,
                "cancelled_at": None,
                "finished_at": created + timedelta(minutes=5),
                "aggregate": b'{"themes": [], "tones": {}}',
                "expires_at": created + timedelta(days=30),
            }
        )
        item_rows += [
            {
                "batch_id": batch_id,
                "position": pos,
                "ref": f"conv-{pos}",
                "analysis_id": analysis_id,
                "error": None,
            }
            for pos, analysis_id in enumerate(members)
        ]

    # One analysis in ten announced its completion to a callback URL.
    def deliveries() -> Iterator[dict[str, Any]]:
        for i in range(0, n, 10):
            sent = now - timedelta(days=100 + rng.random() * 200)
            yield {
                "id": f"msg_{uuid.uuid4().hex}",
                "owner": owners[i] or "key:anonymous",
                "url": "https://hooks.example.com/observatory",
                "event": "analysis.completed",
                "target_id": ids[i],
                "payload": json.dumps({"type": "analysis.completed", "id": ids[i]}).encode(),
                "status": "delivered",
                "attempts": 1,
                "next_attempt_at": None,
                "last_attempt_at": sent,
                "last_status": 200,
                "last_error": None,
                "created_at": sent,
                "delivered_at": sent,
            }

    conn = await asyncpg.connect(dsn)
    try:
        backlog.analyses = await copy(conn, Analysis, analyses())
        backlog.batches = await copy(conn, Batch, iter(batch_rows))
        backlog.batch_items = await copy(conn, BatchItem, iter(item_rows))
        backlog.deliveries = await copy(conn, WebhookDelivery, deliveries())
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return backlog


async def submit_live(client: httpx.AsyncClient, n: int) -> tuple[str, list[str]]:
    """A batch of ``n`` conversations through the API, waited for: the live data."""
    r = await client.post(
        "/api/v1/analyze/batch", json={"conversations": [conversation(i) for i in range(n)]}
    )
    if r.status_code != 202:
        raise SystemExit(f"live batch refused: {r.status_code} {r.text[:300]}")
    batch_id = r.json()["batch_id"]
    deadline = time.monotonic() + 300
    while True:
        view = (await client.get(f"/api/v1/analyze/batch/{batch_id}?limit=1000")).json()
        if view["status"] in ("completed", "cancelled"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"live batch did not finish in 300 s: {view['counts']}")
        await asyncio.sleep(0.2)
    ids = [item["analysis_id"] for item in view["items"] if item.get("analysis_id")]
    if len(ids) != n or view["counts"].get("completed") != n:
        raise SystemExit(f"live batch: {view['counts']}")
    return batch_id, ids


async def hammer(
    client: httpx.AsyncClient, paths: list[str], window: list[str], samples: Samples
) -> None:
    """Five clients, each reading the paths in turn, until ``window[0]`` is "stop"."""

    async def one(k: int) -> None:
        i = k
        while window[0] != "stop":
            path = paths[i % len(paths)]
            i += 1
            name = window[0]
            t0 = time.perf_counter()
            try:
                r = await client.get(path)
                ok = r.status_code == 200
                detail = f"{r.status_code} {r.text[:200]}"
                timing = r.headers.get("server-timing", "app;dur=nan")
            except httpx.HTTPError as exc:
                ok, detail, timing = False, repr(exc), "app;dur=nan"
            elapsed = time.perf_counter() - t0
            if not ok:
                samples.failures.append(f"GET {path}: {detail}")
            server = float(timing.rsplit("=", 1)[1]) / 1000
            samples.by_window.setdefault(name, []).append((kind(path), elapsed, server))

    await asyncio.gather(*(one(k) for k in range(CLIENTS)))


def kind(path: str) -> str:
    if path == "/health":
        return "GET /health"
    if path.startswith("/api/v1/analyze/batch/"):
        return "GET /api/v1/analyze/batch/{id}"
    return "GET /api/v1/analyze/{id}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


def summary(label: str, got: list[tuple[str, float, float]]) -> tuple[str, float]:
    """One line: client-side p50/p95/p99/max, then the server's own p50/p99."""
    if not got:
        return f"{label:<34} no requests", 0.0
    client = [c for _, c, _ in got]
    server = [s for _, _, s in got if s == s]  # not NaN
    p99 = pct(client, 0.99)
    line = (
        f"{label:<34} n {len(got):>6}  p50 {pct(client, 0.5):6.1f}  p95 "
        f"{pct(client, 0.95):6.1f}  p99 {p99:6.1f}  max {max(client) * 1000:6.1f} ms"
    )
    if server:
        line += f"  | server p50 {pct(server, 0.5):5.1f}  p99 {pct(server, 0.99):6.1f} ms"
    return line, p99


async def leftovers(dsn: str) -> dict[str, int]:
    """Expired rows still present (the backlog is the only data created before today)."""
    conn = await asyncpg.connect(dsn)
    try:
        cutoff = datetime.now(UTC) - timedelta(days=90)
        return {
            "analyses": await conn.fetchval(
                "SELECT count(*) FROM analyses WHERE created_at < $1", cutoff
            ),
            "results": await conn.fetchval(
                "SELECT count(*) FROM analyses WHERE result IS NOT NULL AND expires_at < now()"
            ),
            "batch_items": await conn.fetchval(
                "SELECT count(*) FROM batch_items i JOIN batches b ON b.id = i.batch_id "
                "WHERE b.created_at < $1",
                cutoff,
            ),
            "deliveries": await conn.fetchval(
                "SELECT count(*) FROM webhook_deliveries d "
                "WHERE NOT EXISTS (SELECT 1 FROM analyses a WHERE a.id = d.target_id)"
            ),
        }
    finally:
        await conn.close()


async def cleanup_process(pause: float | None) -> None:
    """What ``observatory retention run`` does, with the settings from the environment:
    prepared first, then run once a line arrives on stdin; prints what it removed."""
    from app.core.config import get_settings
    from app.core.database import session_factory
    from app.core.logging import configure_logging
    from app.retention.service import DEFAULT_PAUSE, run

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    engine = create_engine(settings.database_url)
    backends: set[int] = set()  # server processes of this process's connections

    @event.listens_for(engine.sync_engine, "connect")
    def _remember(dbapi_connection: Any, _record: Any) -> None:
        backends.add(dbapi_connection.driver_connection.get_server_pid())

    try:
        await upgrade(engine)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        mine, theirs = process_cpu(), backend_cpu(backends)
        removed = await run(
            engine,
            session_factory(engine),
            settings,
            pause=DEFAULT_PAUSE if pause is None else pause,
        )
        cpu = {"cpu_process": process_cpu() - mine, "cpu_database": backend_cpu(backends) - theirs}
        print("removed " + json.dumps(removed.as_dict() | cpu), flush=True)
    finally:
        await engine.dispose()


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu(pids: set[int]) -> float:
    """CPU seconds of these PostgreSQL server processes so far (NaN if the server is not on
    this machine)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def main() -> int:
    if sys.argv[1:2] == ["--cleanup-process"]:
        await cleanup_process(float(sys.argv[2]) if len(sys.argv) > 2 else None)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="5,000 expired analyses (CI)")
    parser.add_argument("--rows", type=int, help="expired analyses (default 100,000)")
    parser.add_argument("--live", type=int, help="live analyses the clients read")
    parser.add_argument("--baseline", type=float, help="seconds of load before the cleanup")
    parser.add_argument(
        "--database", help="database to drop and create (obs_bench_retention[_smoke])"
    )
    parser.add_argument(
        "--pause",
        type=float,
        help="the cleanup's wait after each batch, as a multiple of the batch's time "
        "(default: the service's)",
    )
    parser.add_argument(
        "--fail-over-target", action="store_true", help="exit non-zero if a p99 misses 50 ms"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = args.rows or (5_000 if args.smoke else 100_000)
    live = args.live or (10 if args.smoke else 40)
    baseline = args.baseline or (3.0 if args.smoke else 10.0)
    database = args.database or (
        "obs_bench_retention_smoke" if args.smoke else "obs_bench_retention"
    )

    server = os.environ.get("OBSERVATORY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
    server = server.rstrip("/")
    dsn = f"{server}/{database}"
    url = "postgresql+asyncpg://" + dsn.split("://", 1)[1]
    key_spec = new_key_spec("bench")
    cipher = ResultCipher(parse_key_specs(key_spec))

    await fresh_database(server, database)
    await migrate(url)

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")},
        "OBSERVATORY_DATABASE_URL": url,
        "OBSERVATORY_LOG_LEVEL": "WARNING",
        "OBSERVATORY_ENVIRONMENT": "test",
        "OBSERVATORY_RESULT_KEYS": key_spec,
        "OBSERVATORY_OBSERVER_MODE": "off",
        "OBSERVATORY_RETENTION_INTERVAL_SECONDS": "0",
        "OBSERVATORY_READ_LIMIT_PUBLIC": "100000000/minute",
        "OBSERVATORY_RATE_LIMIT_PUBLIC": "1000000/minute;10000000/day",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env
    )
    ok = True
    try:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
        ) as client:
            await wait_ready(client, proc)
            batch_id, live_ids = await submit_live(client, live)
            r = await client.get(f"/api/v1/analyze/{live_ids[0]}")
            result_doc = r.content  # a real result document, sealed again for each old row

            t0 = time.perf_counter()
            backlog = await write_backlog(dsn, rows, cipher, result_doc, args.seed)
            written = time.perf_counter() - t0
            print(
                f"backlog: {backlog.analyses:,} expired analyses ({backlog.results:,} with a "
                f"sealed result of {len(result_doc) / 1024:.1f} KB, "
                f"{backlog.blob_bytes / 1e6:.0f} MB), {backlog.batch_items:,} items in "
                f"{backlog.batches:,} old batches, {backlog.deliveries:,} callback deliveries; "
                f"written in {written:.1f} s"
            )
            print(f"live: {len(live_ids)} analyses in one batch, read by {CLIENTS} clients")

            paths = [f"/api/v1/analyze/{i}" for i in live_ids]
            paths = [p for pair in zip(paths, ["/health"] * len(paths), strict=True) for p in pair]
            paths += [f"/api/v1/analyze/batch/{batch_id}?limit=100"]
            # The cleanup process is started (imports, engine, migrations checked) before the
            # load, and told to go after the baseline window: its window is the cleanup itself.
            cleanup = await asyncio.create_subprocess_exec(
                sys.executable,
                str(THIS),
                "--cleanup-process",
                *([] if args.pause is None else [str(args.pause)]),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert cleanup.stdin is not None and cleanup.stdout is not None
            if (await cleanup.stdout.readline()).strip() != b"ready":
                raise SystemExit(f"cleanup process exited with {await cleanup.wait()}")

            # The clients share the machine with what they measure: at a lower priority, as in
            # bench_load.py (BENCH_CLIENT_NICE, default 10), they take less from the server.
            if CLIENT_NICE:
                os.nice(CLIENT_NICE)
            samples = Samples()
            window = ["warm-up"]
            load = asyncio.create_task(hammer(client, paths, window, samples))
            await asyncio.sleep(1.0)
            window[0] = "baseline"
            await asyncio.sleep(baseline)
            window[0] = "cleanup"
            t0 = time.perf_counter()
            cleanup.stdin.write(b"go\n")
            await cleanup.stdin.drain()
            line = b"?"
            while line and not line.startswith(b"removed "):
                line = await cleanup.stdout.readline()
            took = time.perf_counter() - t0
            window[0] = "stop"
            await load
            if await cleanup.wait() != 0 or not line:
                raise SystemExit(f"retention run exited with {cleanup.returncode}")
            removed = json.loads(line.removeprefix(b"removed "))
            gone = removed["analyses"] + removed["batch_items"] + removed["deliveries"]
            print(
                f"removed: {removed['results']:,} results, {removed['analyses']:,} analyses, "
                f"{removed['batch_items']:,} batch items, {removed['deliveries']:,} deliveries"
            )
            print(
                f"cleanup: {took:.2f} s wall, {removed['analyses'] / took:,.0f} analyses/s, "
                f"{gone / took:,.0f} rows/s (analyses, batch items and deliveries deleted)"
            )
            busy = removed["cpu_process"] + removed["cpu_database"]
            print(
                f"cleanup CPU: {removed['cpu_process']:.1f} s in its process + "
                f"{removed['cpu_database']:.1f} s in its database connections = "
                f"{busy / took:.2f} of a core while it ran"
            )

            print(
                f"API, {CLIENTS} clients, client side in ms (target p99 < {TARGET_P99_MS:.0f} ms, "
                "SPEC §10), and the server's own time (Server-Timing):"
            )
            for name in ("baseline", "cleanup"):
                got = samples.by_window.get(name, [])
                line, p99 = summary(f"  {name}, all calls", got)
                print(line)
                for label in sorted({k for k, _, _ in got}):
                    print(summary(f"    {label}", [g for g in got if g[0] == label])[0])
                if p99 >= TARGET_P99_MS:
                    print(f"  -> p99 {p99:.1f} ms is over the target")
                    ok = ok and not args.fail_over_target
            if samples.failures:
                ok = False
                print(f"failed requests: {len(samples.failures)}, first: {samples.failures[0]}")

            left = await leftovers(dsn)
            expected = {
                "results": backlog.results,
                "analyses": backlog.analyses,
                "batch_items": backlog.batch_items,
                "deliveries": backlog.deliveries,
            }
            if any(left.values()) or any(removed[k] != v for k, v in expected.items()):
                ok = False
                print(f"NOT removed: {left}; removed {removed}, expected {expected}")
            else:
                print("after: every expired row is gone")
            unreadable = []
            for analysis_id in live_ids:
                r = await client.get(f"/api/v1/analyze/{analysis_id}")
                if r.status_code != 200 or r.json().get("status") != "completed":
                    unreadable.append(f"{analysis_id}: {r.status_code}")
            r = await client.get(f"/api/v1/analyze/batch/{batch_id}?limit=1000")
            if r.status_code != 200 or len(r.json()["items"]) != len(live_ids):
                unreadable.append(f"batch {batch_id}: {r.status_code}")
            if unreadable:
                ok = False
                print(f"live data NOT readable: {unreadable[:5]}")
            else:
                print(f"after: all {len(live_ids)} live analyses and their batch still readable")
    finally:
        proc.terminate()
        proc.wait(60)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
