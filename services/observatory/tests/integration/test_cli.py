"""The `observatory` command line, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[2],
    )


def test_analyze_a_transcript_file_prints_the_result() -> None:
    proc = run("analyze", str(EXAMPLES / "debugging-session.txt"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["conversation"]["messages"] == 9
    assert set(result["patterns"]) == {"dialectic", "sentiment", "topics", "dynamics"}
    latency = result["patterns"]["dynamics"]["response_latency"]
    assert set(latency) == {"AI", "Human"}
    assert "Traceback" not in json.dumps(result["patterns"]["topics"])


def test_analyze_reads_stdin_and_json_and_respects_pattern_choice() -> None:
    body = json.dumps(
        {
            "messages": [
                {"role": "user", "content": "Hi, how are you?"},
                {"role": "assistant", "content": "Fine, thanks."},
            ]
        }
    )
    proc = run("analyze", "-", "--patterns", "dynamics", "--no-insights", "--compact", stdin=body)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert list(result["patterns"]) == ["dynamics"]
    assert "summary_points" not in result
    assert len(proc.stdout.strip().splitlines()) == 1


def test_analyze_reports_bad_input_clearly() -> None:
    proc = run("analyze", "-", stdin="just some words with no speaker")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "error:" in proc.stderr and "Speaker" in proc.stderr
    proc = run("analyze", "-", "--patterns", "dynamics,vibes", stdin="Human: hi")
    assert proc.returncode != 0 and "vibes" in proc.stderr


@pytest.mark.usefixtures("backend")
def test_db_upgrade(database_url: str) -> None:
    proc = run("db", "upgrade", "--url", database_url)
    assert proc.returncode == 0, proc.stderr
    assert "head" in proc.stdout
    again = run("db", "upgrade", "--url", database_url)
    assert again.returncode == 0, again.stderr


def test_serve_answers_docs_and_analyses_a_pasted_transcript(tmp_path: Path) -> None:
    import os
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "OBSERVATORY_LOG_LEVEL": "DEBUG",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "1"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not start within 15 s")
        assert httpx.get(f"{base}/docs").status_code == 200
        text = (EXAMPLES / "debugging-session.txt").read_text()
        r = httpx.post(
            f"{base}/api/v1/analyze",
            json={"conversation_text": text},
            headers={"Prefer": "wait=20"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "completed" and body["message_count"] == 9
        ready = httpx.get(f"{base}/health/ready").json()
        assert ready["checks"]["queue"]["workers"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        out = proc.stdout.read().decode() if proc.stdout else ""
    # The transcript never reaches the logs, even at DEBUG.
    assert "analysis.submitted" in out
    assert "flask_sqlalchemy" not in out and "driving me crazy" not in out


def test_keys_create_list_rotate_revoke(tmp_path: Path) -> None:
    env = {"OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}
    made = run("keys", "create", "--name", "lab", "--scope", "metrics", env=env)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["key"].startswith("obs_live_") and key["scopes"] == ["metrics"]
    assert "not shown again" in made.stderr
    listed = run("keys", "list", env=env)
    assert key["prefix"] in listed.stdout and key["key"] not in listed.stdout
    rotated = run("keys", "rotate", key["prefix"], "--grace-hours", "2", env=env)
    new = json.loads(rotated.stdout)
    assert new["key"] != key["key"] and new["name"] == "lab"
    old = next(k for k in json.loads(run("keys", "list", env=env).stdout) if k["id"] == key["id"])
    assert old["replaced_by"] == new["id"] and old["expires_at"] is not None
    revoked = json.loads(run("keys", "revoke", new["id"], env=env).stdout)
    assert revoked["revoked_at"] is not None
    bad = run("keys", "create", "--name", "x", "--tier", "gold", env=env)
    assert bad.returncode == 1 and "unknown tier 'gold'" in bad.stderr
    zero = run("keys", "create", "--name", "x", "--expires-in-days", "0", env=env)
    assert zero.returncode == 1 and "must be more than 0" in zero.stderr
    missing = run("keys", "revoke", "nope", env=env)
    assert missing.returncode == 1 and "no single key" in missing.stderr


def test_audit_verify_and_export(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "audit.db"
    env = {"OBSERVATORY_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    key = json.loads(run("keys", "create", "--name", "lab", env=env).stdout)
    assert run("keys", "revoke", key["id"], env=env).returncode == 0
    exported = run("audit", "export", "--since", "1d", env=env)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(e["action"], e["target"]) for e in lines] == [
        ("key.create", key["id"]),
        ("key.revoke", key["id"]),
    ]
    assert lines[0]["principal"].startswith("cli:") and key["key"] not in exported.stdout
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert "2 event(s) written" in exported.stderr
    later = run("audit", "export", "--since", "2999-01-01", env=env)
    assert later.returncode == 0 and later.stdout == ""
    bad = run("audit", "export", "--since", "yesterday", env=env)
    assert bad.returncode == 2 and "neither an ISO 8601 date" in bad.stderr

    verified = run("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout) == {
        "ok": True,
        "events": 2,
        "first_id": lines[0]["id"],
        "last_id": lines[1]["id"],
        "problems": [],
    }
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute(
            "UPDATE audit_events SET principal = 'cli:someone-else' WHERE id = ?", (lines[0]["id"],)
        )
    broken = run("audit", "verify", env=env)
    assert broken.returncode == 1
    assert f"event {lines[0]['id']}: its content does not match its hash" in broken.stdout
