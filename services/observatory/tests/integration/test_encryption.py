"""Results encrypted at rest: sealed in the database, served opened, keys rotated while
reads go on, and a configuration that cannot hold a key refused at start."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from app.analyses import repository as repo
from app.analyses.models import Analysis
from app.cli import cli
from app.core.config import Settings
from app.core.crypto import (
    Fingerprinter,
    KeyConfigError,
    ResultCipher,
    SealedResultError,
    cipher_from_settings,
    default_key_file,
    new_key_spec,
    parse_key_specs,
)
from app.main import create_app
from tests.contract.test_analyze import submit, wait_done

TEXT = (
    "Marisol: The zeppelin hangar roof leaks onto the quokka enclosure again.\n"
    "Teodor: Then we patch the zeppelin hangar roof before the quokka keepers arrive."
)
K1, K2 = new_key_spec("k1"), new_key_spec("k2")


def cipher(spec: str) -> ResultCipher:
    return ResultCipher(parse_key_specs(spec))


def test_a_sealed_result_opens_only_for_its_row_and_key() -> None:
    c = cipher(f"{K2},{K1}")
    sealed = c.seal(b'{"a": 1}', "row-1")
    assert sealed.key_id == "k2" and b'"a"' not in sealed.blob
    assert c.open(sealed.blob, "k2", "row-1") == b'{"a": 1}'
    with pytest.raises(SealedResultError, match="authentication"):
        c.open(sealed.blob, "k2", "row-2")  # moved to another row
    tampered = sealed.blob[:-1] + bytes([sealed.blob[-1] ^ 1])
    with pytest.raises(SealedResultError, match="authentication"):
        c.open(tampered, "k2", "row-1")
    with pytest.raises(SealedResultError, match="'k2', which is not in"):
        cipher(K1).open(sealed.blob, "k2", "row-1")
    # Stored in clear before encryption existed: served as it is.
    assert c.open(b"{}", None, "row-1") == b"{}"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("k1", "is not 'id:key'"),
        ("bad id!:" + "A" * 43 + "=", "is not 'id:key'"),
        ("k1:%%%", "URL-safe base64"),
        ("k1:" + "A" * 20, "AES-256 needs 32"),
        (f"{K1},{K1}", "listed twice"),
    ],
)
def test_bad_keys_are_refused_saying_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(KeyConfigError, match=says) as caught:
        parse_key_specs(spec)
    secret = spec.partition(":")[2]
    if len(secret) >= 8:
        assert secret not in str(caught.value)  # the key itself is never echoed
    with pytest.raises(ValueError, match="OBSERVATORY_RESULT_KEYS"):
        Settings(_env_file=None, result_keys=spec)


@pytest.mark.parametrize("environment", ["production", "test"])
def test_outside_development_a_key_must_be_configured(environment: str) -> None:
    with pytest.raises(ValueError, match="OBSERVATORY_RESULT_KEYS") as caught:
        Settings(_env_file=None, environment=environment)
    assert "observatory keys encryption-key" in str(caught.value)
    assert Settings(_env_file=None, environment=environment, result_keys=K1).result_keys
    assert K1 not in repr(Settings(_env_file=None, environment=environment, result_keys=K1))


def test_development_creates_a_private_key_file_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/observatory.db"
    path = default_key_file(url)
    assert path == tmp_path / "observatory-result.key"
    first = cipher_from_settings("", "", url)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = cipher_from_settings("", "", url)
    sealed = first.seal(b"{}", "r")
    assert again.open(sealed.blob, sealed.key_id, "r") == b"{}"


async def test_results_are_sealed_in_the_database_and_served_opened(
    client: httpx.AsyncClient, app: Any
) -> None:
    analysis_id = (await submit(client, {"conversation_text": TEXT})).json()["id"]
    body = await wait_done(client, analysis_id)
    assert body["status"] == "completed" and body["patterns"], body
    async with app.state.service.sessions() as session:
        row = await session.get(Analysis, analysis_id)
    assert row is not None and row.result is not None and row.result_key == "t1"
    for word in (b"zeppelin", b"quokka", b"Marisol", b"sentiment", b"patterns"):
        assert word not in row.result
    # Exports open it too.
    r = await client.get(f"/api/v1/analyze/{analysis_id}?format=markdown")
    assert r.status_code == 200 and "Marisol" in r.text


async def test_keys_rotate_while_reads_go_on(settings: Settings, tmp_path: Path) -> None:
    def app_with(keys: str) -> Any:
        return create_app(settings.model_copy(update={"result_keys": keys}))

    async def read(application: Any, analysis_id: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(f"/api/v1/analyze/{analysis_id}")

    old = app_with(K1)
    async with old.router.lifespan_context(old):
        transport = httpx.ASGITransport(app=old)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ids = [(await submit(client, {"conversation_text": TEXT})).json()["id"] for _ in "ab"]
            for analysis_id in ids:
                assert (await wait_done(client, analysis_id))["status"] == "completed"
        # One result from before encryption existed, stored in clear.
        async with old.state.service.sessions() as session, session.begin():
            row = await session.get(Analysis, ids[1])
            assert row is not None and row.result is not None
            clear = cipher(K1).open(row.result, "k1", ids[1])
            await session.execute(
                update(Analysis).where(Analysis.id == ids[1]).values(result=clear, result_key=None)
            )

    both = app_with(f"{K2},{K1}")
    async with both.router.lifespan_context(both):
        for analysis_id in ids:
            r = await read(both, analysis_id)
            assert r.status_code == 200 and r.json()["patterns"], r.text
        done = await repo.reencrypt(both.state.service.sessions, both.state.service.cipher, 1)
        assert (done.sealed, done.unreadable) == (2, 0)
        async with both.state.service.sessions() as session:
            keys = (
                await session.scalars(select(Analysis.result_key).where(Analysis.id.in_(ids)))
            ).all()
        assert keys == ["k2", "k2"]

    new = app_with(K2)
    async with new.router.lifespan_context(new):
        for analysis_id in ids:
            r = await read(new, analysis_id)
            assert r.status_code == 200 and r.json()["patterns"], r.text

    # Without the key a result was sealed with, it is a 500 that says so, never garbage.
    gone = app_with(K1)
    async with gone.router.lifespan_context(gone):
        r = await read(gone, ids[0])
        assert r.status_code == 500 and "OBSERVATORY_RESULT_KEYS" in r.json()["detail"]


def test_the_cli_prints_a_usable_key() -> None:
    result = CliRunner().invoke(cli, ["keys", "encryption-key", "--id", "spring"])
    assert result.exit_code == 0, result.output
    spec = result.output.strip()
    assert spec.startswith("spring:") and parse_key_specs(spec)[0][0] == "spring"
    result = CliRunner().invoke(cli, ["keys", "encryption-key", "--id", "no way"])
    assert result.exit_code == 2 and "--id" in result.output


async def test_the_stored_fingerprint_is_keyed(client: httpx.AsyncClient, app: Any) -> None:
    """The same conversation gets the same fingerprint, but not its plain SHA-256: a reader
    of the result cannot check a guessed conversation against it without the secret."""
    from app.conversation.parsers import parse_conversation

    plain = parse_conversation(conversation_text=TEXT).fingerprint()
    first = (await submit(client, {"conversation_text": TEXT}, wait=10)).json()
    again = (await submit(client, {"conversation_text": TEXT}, wait=10)).json()
    assert first["fingerprint"] == again["fingerprint"] != plain
    assert len(first["fingerprint"]) == 64
    other = Fingerprinter(b"s" * 32)
    assert other.of(plain) != first["fingerprint"]
    assert app.state.service.fingerprints.of(plain) == first["fingerprint"]
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings(_env_file=None, fingerprint_secret="short")
