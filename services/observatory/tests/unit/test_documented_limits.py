"""The body-size limit as the README and .env.example state it is the one the code applies,
and .env.example holds each setting and each comment block once."""

from __future__ import annotations

import re
from pathlib import Path

from app.api.body import ENVELOPE_ALLOWANCE, JSON_ESCAPE_FACTOR, request_body_limit
from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def test_the_stated_body_limit_is_the_codes() -> None:
    settings = Settings(_env_file=None)
    conversation_mb = settings.max_conversation_bytes // MB
    envelope_mb = ENVELOPE_ALLOWANCE // MB
    total_mb = request_body_limit(settings) / MB
    assert total_mb == JSON_ESCAPE_FACTOR * conversation_mb + envelope_mb
    readme = (ROOT / "README.md").read_text()
    stated = f"{JSON_ESCAPE_FACTOR} × {conversation_mb} MB + {envelope_mb} MB = {total_mb:g} MB"
    assert stated in readme
    env = (ROOT / ".env.example").read_text()
    block = env.split("OBSERVATORY_MAX_CONVERSATION_BYTES=")[0].rsplit("\n\n", 1)[1]
    assert f"{JSON_ESCAPE_FACTOR} × this + {envelope_mb} MB" in block
    assert f"{total_mb:g} MB by default" in block
    assert f"OBSERVATORY_MAX_CONVERSATION_BYTES={settings.max_conversation_bytes}\n" in env


def test_env_example_has_no_duplicated_setting_or_block() -> None:
    text = (ROOT / ".env.example").read_text()
    names = re.findall(r"^(OBSERVATORY_[A-Z0-9_]+)=", text, re.MULTILINE)
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)
    blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
    repeated = {b for b in blocks if blocks.count(b) > 1}
    assert not repeated, repeated
    # No comment line (longer than a heading) said twice either.
    comments = [line for line in text.splitlines() if line.startswith("# ") and len(line) > 30]
    assert len(comments) == len(set(comments))
