"""kill -9 of a service process: the work it held is failed by the next one, not left
``processing`` for ever, and a live peer's work is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.factories import messages
from tests.servers import start_server


def start(db: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc, server = start_server(
        db,
        log,
        own_session=True,
        runner_heartbeat_seconds="0.5",
        runner_stale_seconds="2",
        max_conversation_bytes=str(64 * 1024 * 1024),
    )
    return proc, server.base


def status(base: str, analysis_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{base}/api/v1/analyze/{analysis_id}").json()
    return body


def test_work_of_a_killed_process_is_failed_by_the_next(tmp_path: Path) -> None:
    db, log = tmp_path / "crash.db", tmp_path / "server.log"
    big = {"messages": messages(20_000, words=40), "options": {"observer": "off"}}
    first, base = start(db, log)
    try:
        ids = []
        for _ in range(2):
            r = httpx.post(f"{base}/api/v1/analyze", json=big, timeout=60)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        running, queued = ids
        for _ in range(100):
            if status(base, running)["status"] == "processing":
                break
            time.sleep(0.05)
        assert status(base, running)["status"] == "processing"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the server and its worker processes
        first.wait(10)
    second, base = start(db, log)
    try:
        deadline = time.monotonic() + 10
        states: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            states = [status(base, i) for i in (running, queued)]
            if all(s["status"] == "failed" for s in states):
                break
            time.sleep(0.2)
        assert [s["status"] for s in states] == ["failed", "failed"], states
        assert all("submit it again" in s["error"] for s in states)
        # The second process works normally.
        r = httpx.post(
            f"{base}/api/v1/analyze",
            json={"conversation_text": "Human: hi?\nAI: hello."},
            headers={"Prefer": "wait=20"},
            timeout=30,
        )
        assert r.json()["status"] == "completed"
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(20)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_worker_processes_end_when_the_server_is_killed(tmp_path: Path) -> None:
    server, base = start(tmp_path / "orphans.db", tmp_path / "server.log")
    try:
        big = {"messages": messages(20_000, words=40), "options": {"observer": "off"}}
        assert httpx.post(f"{base}/api/v1/analyze", json=big, timeout=60).status_code == 202
        workers = _descendants(server.pid)
        assert len(workers) >= 3, workers  # fork server, parse and analysis processes
    finally:
        os.kill(server.pid, signal.SIGKILL)  # the server alone, not its process group
        server.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the server: {left}"
