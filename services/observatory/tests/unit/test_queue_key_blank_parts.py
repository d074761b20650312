"""A queue key setting made only of separators and blanks (``","``, ``" , "``) holds no key:
queued conversations must still be sealed (with keys derived from the result keys) or the
setting refused, never stored in clear in Redis."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.core.crypto import ResultCipher
from app.jobs.envelope import PayloadSealError, Sealer


@pytest.mark.parametrize("configured", [",", " , ", ",,"])
def test_a_queue_key_of_separators_only_never_stores_payloads_in_clear(configured: str) -> None:
    try:
        Settings(_env_file=None, queue_encryption_key=configured)  # type: ignore[call-arg]
    except ValidationError:
        return  # refused at start: fine
    sealer = Sealer.for_queue(configured, ResultCipher([("k1", b"\x01" * 32)]))
    stored = sealer.seal(b"the conversation")
    assert sealer.encrypts
    assert b"the conversation" not in stored


@pytest.mark.parametrize("configured", [",", " , "])
def test_a_queue_key_of_separators_only_never_opens_an_unsealed_payload(configured: str) -> None:
    """What a worker opens it unpickles: a payload written to Redis unsealed (by anyone who
    can write there) must be refused, whatever the queue key setting holds."""
    try:
        Settings(_env_file=None, queue_encryption_key=configured)  # type: ignore[call-arg]
    except ValidationError:
        return
    worker = Sealer.for_queue(configured, ResultCipher([("k1", b"\x01" * 32)]))
    with pytest.raises(PayloadSealError):
        worker.open(b"P" + b"any pickle someone wrote to Redis")
