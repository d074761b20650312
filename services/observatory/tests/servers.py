"""The service as a real process (``observatory serve``) for tests of what only a real server
shows: connections, signals, logs, several processes on one database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SERVICE = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    db: Path, log: Path, *, own_session: bool = False, **settings: str
) -> tuple[subprocess.Popen[bytes], Server]:
    """Start a server on ``db`` (SQLite) logging to ``log``; ``settings`` become
    ``OBSERVATORY_<NAME>`` variables. ``own_session`` puts it and its worker processes in a
    process group of their own (to kill them together)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")},
        "OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "OBSERVATORY_LOG_LEVEL": "INFO",
        "OBSERVATORY_OBSERVER_URL": "http://127.0.0.1:9",
        "OBSERVATORY_RATE_LIMIT_PUBLIC": "1000000/minute;10000000/day",
        "OBSERVATORY_READ_LIMIT_PUBLIC": "1000000/minute",
        "OBSERVATORY_AUTH_FAILURE_LIMIT": "1000000/minute",
        **{f"OBSERVATORY_{k.upper()}": v for k, v in settings.items()},
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"],
            cwd=SERVICE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )
    server = Server(port, log)
    for _ in range(200):
        try:
            if httpx.get(f"{server.base}/health", timeout=1).status_code == 200:
                return proc, server
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the server did not start within 20 s: {log.read_text()[-2000:]}")
