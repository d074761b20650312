"""API latency while the analysis capacity is saturated, against a real server process.

    uv run python benchmarks/bench_load.py            # 10,000-message conversations, 20 s of load
    uv run python benchmarks/bench_load.py --smoke    # shorter (CI)

Starts ``observatory serve`` (SQLite, in-process queue, two analysis processes) on a free
port, measures one 10,000-message analysis end to end on the idle server, then fills the
queue with 10,000-message conversations and, while they run, has 5 clients call
``GET /health`` and ``GET /api/v1/analyze/{id}`` (a completed 10,000-message result) in
a loop. Each client is a process of its own. Prints p50 / p99 / max per call as the client saw it
and as the server spent it (its ``Server-Timing`` header); SPEC §10: p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_api import body_for  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if (await client.get("/health/ready")).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("server did not start within 30 s")


# The load generator shares the machine's two cores with the service; at a lower priority
# it measures the service rather than its own decoding of 1.7 MB responses.
CLIENT_NICE = int(os.environ.get("BENCH_CLIENT_NICE", "10"))


def caller(
    port: int, paths: dict[str, str], seconds: float, health_first: bool
) -> dict[str, list[tuple[float, float]]]:
    """One client (its own process, so clients do not share an interpreter): alternating
    GETs for ``seconds``; each sample is (client-side seconds, server-side seconds from the
    ``Server-Timing`` header)."""
    if CLIENT_NICE:
        os.nice(CLIENT_NICE)
    out: dict[str, list[tuple[float, float]]] = {"/health": [], "result": []}
    keys = ["/health", "result"] if health_first else ["result", "/health"]
    stop = time.perf_counter() + seconds
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        i = 0
        while time.perf_counter() < stop:
            key = keys[i % 2]
            i += 1
            t = time.perf_counter()
            resp = client.get(paths[key])
            elapsed = time.perf_counter() - t
            if resp.status_code != 200:
                raise SystemExit(f"GET {paths[key]} -> {resp.status_code}")
            timing = resp.headers.get("server-timing", "app;dur=nan")
            out[key].append((elapsed, float(timing.rsplit("=", 1)[1]) / 1000))
    return out


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    p99 = samples[max(0, int(len(samples) * 0.99) - 1)]
    return (
        f"n {len(samples):>5}  p50 {statistics.median(samples) * 1000:6.1f} ms  "
        f"p99 {p99 * 1000:6.1f} ms  max {samples[-1] * 1000:6.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="shorter load phase (CI)")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args()
    seconds = 6.0 if args.smoke else args.seconds

    body = body_for(args.messages)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/load.db",
            "OBSERVATORY_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "OBSERVATORY_ENVIRONMENT": "test",
            "OBSERVATORY_RESULT_KEY_FILE": f"{tmp}/result.key",
            "OBSERVATORY_MAX_CONVERSATION_BYTES": str(32 * 1024 * 1024),
            "OBSERVATORY_WORKER_CONCURRENCY": "2",
            "OBSERVATORY_QUEUE_MAX_SIZE": "100",
            # The load is one client address: the public tier's limits would refuse it.
            "OBSERVATORY_RATE_LIMIT_PUBLIC": "1000000/minute;10000000/day",
            "OBSERVATORY_READ_LIMIT_PUBLIC": "1000000/minute",
            "OBSERVATORY_AUTH_FAILURE_LIMIT": "1000000/minute",
        }
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
        )
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=120
            ) as client:
                await wait_ready(client, proc)
                headers = {"content-type": "application/json", "Prefer": "wait=60"}
                await client.post("/api/v1/analyze", content=body_for(20), headers=headers)
                t0 = time.perf_counter()
                r = await client.post("/api/v1/analyze", content=body, headers=headers)
                elapsed = time.perf_counter() - t0
                done = r.json()
                if done.get("status") != "completed":
                    raise SystemExit(f"analysis did not complete: {r.status_code} {r.text[:300]}")
                print(
                    f"{args.messages:,} messages ({len(body) / 1e6:.1f} MB body): POST→completed "
                    f"{elapsed:.2f} s, server processing {done['processing_time']:.2f} s"
                )

                # Saturate: every analysis process busy and more waiting for the whole phase.
                backlog = max(4, int(seconds / max(done["processing_time"], 0.1) * 2) + 2)
                ids = []
                for _ in range(backlog):
                    r = await client.post(
                        "/api/v1/analyze",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    if r.status_code != 202:
                        raise SystemExit(f"submission refused: {r.status_code} {r.text[:300]}")
                    ids.append(r.json()["id"])
                paths = {"/health": "/health", "result": f"/api/v1/analyze/{done['id']}"}
                loop = asyncio.get_running_loop()
                with ProcessPoolExecutor(args.clients) as clients:
                    runs = await asyncio.gather(
                        *(
                            loop.run_in_executor(clients, caller, port, paths, seconds, n % 2 == 0)
                            for n in range(args.clients)
                        )
                    )
                samples: dict[str, list[tuple[float, float]]] = {"/health": [], "result": []}
                for run in runs:
                    for key, values in run.items():
                        samples[key].extend(values)
                stats = (await client.get("/health/ready")).json()["checks"]["queue"]
                print(
                    f"while {backlog} conversations of {args.messages:,} messages were queued or "
                    f"running ({stats.get('running')} running, {stats.get('queued')} still "
                    f"queued at the end), {args.clients} client processes for {seconds:g} s:"
                )
                for key, shown in (("/health", "/health"), ("result", "/api/v1/analyze/{id}")):
                    client_side = [c for c, _ in samples[key]]
                    server_side = [s for _, s in samples[key]]
                    print(f"  GET {shown:<22} client {percentiles(client_side)}")
                    print(f"  {'':<26} server {percentiles(server_side)}")
                for analysis_id in ids:  # finished ones answer 409: fine
                    await client.post(f"/api/v1/analyze/{analysis_id}/cancel")
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    asyncio.run(main())
