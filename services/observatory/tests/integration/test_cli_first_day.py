"""The command line as a new user meets it: a wrong path, a readable summary, progress on a
terminal, and the wrapper that runs it from any directory without uv on the PATH."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import messages

SERVICE = Path(__file__).resolve().parents[2]
ROOT = SERVICE.parents[1]
EXAMPLES = SERVICE / "examples"


def run(*args: str, stderr: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=120,
        cwd=SERVICE,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_missing_file_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    assert one_error_line(run("analyze", str(tmp_path / "nope.txt"))).endswith(
        "nope.txt: no such file"
    )
    assert "is a directory" in one_error_line(run("analyze", str(tmp_path)))
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    assert "not UTF-8 text" in one_error_line(run("analyze", str(binary)))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    secret = tmp_path / "chat.txt"
    secret.write_text("Human: hi\nAI: hello")
    secret.chmod(0)
    assert "permission denied" in one_error_line(run("analyze", str(secret)))


def test_a_read_refused_by_the_system_is_one_line_and_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same path as above for a run as root (which reads any file, so the test above
    cannot make one unreadable there): the system's refusal is simulated at the read."""
    from typer.testing import CliRunner

    from app.cli import cli

    secret = tmp_path / "chat.txt"
    secret.write_text("Human: hi\nAI: hello")
    real_read_text = Path.read_text

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        if self == secret:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", refuse)
    result = CliRunner().invoke(cli, ["analyze", str(secret)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"error: {secret}: permission denied"], result.output


def test_format_text_prints_a_readable_summary() -> None:
    proc = run("analyze", str(EXAMPLES / "prompt-injection.txt"), "--format", "text")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Conversation: 8 messages")
    assert "Speakers: Human (4 messages" in out
    assert "Security: prompt_injection in messages 0, 4" in out
    assert "Confidence: " in out and "Summary:" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    # JSON stays the default.
    assert json.loads(run("analyze", str(EXAMPLES / "prompt-injection.txt")).stdout)


def test_the_input_format_has_its_own_option() -> None:
    export = str(EXAMPLES / "chatgpt-export.json")
    proc = run("analyze", export, "--input-format", "chatgpt", "--compact")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["conversation"]["format"] == "chatgpt"
    proc = run("analyze", export, "-i", "claude")
    assert proc.returncode == 2 and "claude" in proc.stderr.lower()
    proc = run("analyze", export, "--format", "chatgpt")
    assert proc.returncode == 2 and "--input-format chatgpt" in proc.stderr


def long_input(tmp_path: Path) -> Path:
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"messages": messages(1200, words=12)}))
    return path


def run_on_terminal(*args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run with standard error on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    try:
        proc = run(*args, stderr=follower)
    finally:
        os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal is closed and drained
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc, shown.decode()


def test_long_input_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    path = str(long_input(tmp_path))
    proc, shown = run_on_terminal("analyze", path, "--compact")
    assert proc.returncode == 0
    assert "analysing 1,200 messages" in shown and "done in" in shown
    assert json.loads(proc.stdout)["conversation"]["messages"] == 1200
    # Piped (a log, a CI job): nothing but the result.
    piped = run("analyze", path, "--compact")
    assert piped.returncode == 0 and piped.stderr == ""
    # And it can be turned off on a terminal, or on for a pipe.
    _, shown = run_on_terminal("analyze", path, "--compact", "--no-progress")
    assert "analysing" not in shown
    forced = run("analyze", path, "--compact", "--progress")
    assert "done in" in forced.stderr


def test_short_input_shows_no_progress_on_a_terminal() -> None:
    _, shown = run_on_terminal("analyze", str(EXAMPLES / "debugging-session.txt"))
    assert "analysing" not in shown


def _path_without_uv() -> str:
    keep = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not os.access(os.path.join(d, "uv"), os.X_OK)
    ]
    return os.pathsep.join(keep)


def test_the_wrapper_runs_the_cli_from_any_directory(tmp_path: Path) -> None:
    """From a folder outside the repository, with a path relative to it; without uv on the
    PATH when the setup scripts installed uv into .tools/ (otherwise uv stays on the PATH, so
    the test does not install anything)."""
    (tmp_path / "chat.txt").write_text("Ana: Shall we meet at 10?\nBo: Yes, 10 works for me.")
    env = {**os.environ}
    if (ROOT / ".tools" / "bin" / "uv").is_file():
        env["PATH"] = _path_without_uv()
        assert shutil.which("uv", path=env["PATH"]) is None
    wrapper = str(ROOT / "scripts" / "observatory")
    proc = subprocess.run(
        ["bash", wrapper, "analyze", "chat.txt", "--format", "text"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Conversation: 2 messages")
    missing = subprocess.run(
        ["bash", wrapper, "analyze", "gone.txt"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == "error: gone.txt: no such file"
