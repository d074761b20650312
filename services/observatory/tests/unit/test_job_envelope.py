"""A job that travels: its envelope holds ids and options only and survives JSON; its
conversation is sealed with the configured key (rotation opens old payloads), and a payload
that cannot be trusted is refused; the Redis queue's settings are checked at start."""

from __future__ import annotations

import orjson
import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from app.analysis import AnalysisOptions
from app.conversation.parsers import parse_conversation
from app.core.config import Settings
from app.core.crypto import ResultCipher
from app.jobs.base import AnalysisJob
from app.jobs.envelope import PayloadSealError, Sealer, envelope, from_envelope
from app.jobs.work import deserialise, serialise

TEXT = "Ana: Where is the Marigold-Quokka report?\nBen: In the shared folder."


def job() -> AnalysisJob:
    conversation = parse_conversation(conversation_text=TEXT)
    return AnalysisJob(
        analysis_id="a-1",
        payload=serialise(conversation),
        options=AnalysisOptions(pattern_types=frozenset({"topics", "dynamics"})),
        message_count=2,
        observer_mode="off",
        priority="high",
        batch_id="b-1",
    )


def test_the_envelope_round_trips_through_json_without_the_text() -> None:
    original = job()
    raw = orjson.dumps(envelope(original))
    assert b"Marigold" not in raw
    back = from_envelope(orjson.loads(raw), original.payload)
    assert back.analysis_id == "a-1" and back.batch_id == "b-1"
    assert back.options == original.options
    assert (back.priority, back.observer_mode, back.message_count) == ("high", "off", 2)


def test_an_unknown_envelope_version_is_refused() -> None:
    data = envelope(job())
    data["v"] = 99
    with pytest.raises(ValueError, match="version"):
        from_envelope(data)


def test_a_sealed_payload_hides_the_text_and_opens_with_the_key() -> None:
    payload = job().payload
    assert payload is not None and b"Marigold" in payload
    sealer = Sealer(Fernet.generate_key().decode())
    sealed = sealer.seal(payload)
    assert b"Marigold" not in sealed
    assert (
        deserialise(sealer.open(sealed)).char_count
        == parse_conversation(conversation_text=TEXT).char_count
    )


def test_a_rotated_key_still_opens_what_the_old_one_sealed() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = Sealer(old).seal(b"payload")
    assert Sealer(f"{new},{old}").open(sealed) == b"payload"


def test_payloads_that_cannot_be_trusted_are_refused() -> None:
    keyed = Sealer(Fernet.generate_key().decode())
    with pytest.raises(PayloadSealError, match="cannot be decrypted"):
        keyed.open(Sealer(Fernet.generate_key().decode()).seal(b"x"))
    with pytest.raises(PayloadSealError, match="unencrypted"):
        keyed.open(Sealer("").seal(b"x"))
    with pytest.raises(PayloadSealError, match="no queue encryption key"):
        Sealer("").open(keyed.seal(b"x"))


def test_the_redis_queue_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="QUEUE_REDIS_URL"):
        Settings(_env_file=None, queue_backend="redis")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="Fernet"):
        Settings(_env_file=None, queue_encryption_key="not-a-key")  # type: ignore[call-arg]
    # Production needs no queue key of its own: payloads use keys derived from the result keys.
    Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        queue_backend="redis",
        queue_redis_url="redis://127.0.0.1:6379/0",
        result_keys="k1:" + "A" * 43 + "=",
    )


def test_without_a_queue_key_payloads_are_sealed_with_keys_derived_from_the_result_keys() -> None:
    first = ("k1", b"\x01" * 32)
    second = ("k2", b"\x02" * 32)
    api = Sealer.for_queue("", ResultCipher([first]))
    sealed = api.seal(b"the conversation")
    assert b"the conversation" not in sealed and sealed.startswith(b"F")
    # A worker with the same result keys opens it; after a rotation (new key first) too.
    assert Sealer.for_queue("", ResultCipher([first])).open(sealed) == b"the conversation"
    assert Sealer.for_queue(" ", ResultCipher([second, first])).open(sealed) == b"the conversation"
    # A process with other result keys cannot, and nothing is ever stored in clear.
    with pytest.raises(PayloadSealError, match="cannot be decrypted"):
        Sealer.for_queue("", ResultCipher([second])).open(sealed)
    with pytest.raises(PayloadSealError, match="unencrypted"):
        api.open(Sealer("").seal(b"x"))
    # A configured queue key wins over derivation.
    configured = Fernet.generate_key().decode()
    assert (
        Sealer(configured).open(Sealer.for_queue(configured, ResultCipher([first])).seal(b"y"))
        == b"y"
    )
