"""Stored results encrypted at rest: AES-256-GCM, one key id on each row so keys rotate.

``OBSERVATORY_RESULT_KEYS`` lists ``id:key`` pairs (the key 32 bytes in URL-safe base64);
the first seals new results, the others only open what they sealed. Without it, the
development default keeps one key in a file it creates with mode 0600 on first start and
says so in the log; elsewhere the service refuses to start without a configured key
(see :class:`app.core.config.Settings`). The row id is authenticated with each result, so
a sealed result moved to another row does not open. See docs/decisions/0013-results-encrypted-at-rest.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core import patterns

log = structlog.get_logger(__name__)

NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID = patterns.compile(r"[A-Za-z0-9_-]{1,32}")


class KeyConfigError(ValueError):
    """The configured keys cannot be used; the message says what is wrong."""


class SealedResultError(Exception):
    """A stored result does not open: its key is not configured, or it was altered."""


def new_key_spec(key_id: str | None = None) -> str:
    """A fresh ``id:key`` pair for ``OBSERVATORY_RESULT_KEYS``."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()}"


def parse_key_specs(text: str) -> list[tuple[str, bytes]]:
    """``id:key[,id:key…]`` → pairs, first first; a bad entry raises with what is wrong
    (never the key itself)."""
    pairs: list[tuple[str, bytes]] = []
    for n, spec in enumerate((s.strip() for s in text.split(",")), start=1):
        if not spec:
            continue
        key_id, sep, encoded = spec.partition(":")
        if not sep or not KEY_ID.fullmatch(key_id):
            raise KeyConfigError(
                f"result key {n} is not 'id:key' with an id of 1 to 32 letters, digits, '-' "
                "or '_'; create one with `observatory keys encryption-key`"
            )
        try:
            key = base64.b64decode(encoded.strip().encode(), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise KeyConfigError(f"result key '{key_id}' is not URL-safe base64") from None
        if len(key) != KEY_BYTES:
            raise KeyConfigError(
                f"result key '{key_id}' is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
            )
        if any(key_id == seen for seen, _ in pairs):
            raise KeyConfigError(f"result key id '{key_id}' is listed twice")
        pairs.append((key_id, key))
    return pairs


@dataclass(frozen=True, slots=True)
class Sealed:
    blob: bytes
    key_id: str


class ResultCipher:
    """Seals with the current key; opens with whichever key a row names."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyConfigError("no result key configured")
        self.current = keys[0][0]
        self.current_key = keys[0][1]
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self._raw = [key for _, key in keys]

    def derived_keys(self, purpose: bytes) -> list[bytes]:
        """32-byte keys for another use (HKDF-SHA-256 with ``purpose`` as its info), one per
        configured key, the current key's first: what one sealed, the others still open."""
        return [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)
            for key in self._raw
        ]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, plaintext: bytes, row_id: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, plaintext, self._aad(row_id, self.current))
        return Sealed(nonce + sealed, self.current)

    def open(self, blob: bytes, key_id: str | None, row_id: str) -> bytes:
        """The plaintext of a stored result; ``key_id`` None is a result stored in clear
        before encryption existed (``observatory keys reencrypt`` seals those too)."""
        if key_id is None:
            return blob
        aead = self._keys.get(key_id)
        if aead is None:
            raise SealedResultError(
                f"result sealed with key '{key_id}', which is not in OBSERVATORY_RESULT_KEYS"
            )
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad(row_id, key_id))
        except InvalidTag:
            raise SealedResultError("stored result failed authentication (altered?)") from None

    @staticmethod
    def _aad(row_id: str, key_id: str) -> bytes:
        return f"observatory-result\x00{row_id}\x00{key_id}".encode()


def default_key_file(database_url: str) -> Path:
    """Beside the SQLite database file, else in the working directory."""
    marker = ":///"
    if database_url.startswith("sqlite") and marker in database_url:
        path = database_url.split(marker, 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).expanduser().resolve().parent / "observatory-result.key"
    return Path("observatory-result.key").resolve()


def load_or_create_key_file(path: Path) -> list[tuple[str, bytes]]:
    """The keys in ``path``; if it does not exist, one new key written there (mode 0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    with os.fdopen(fd, "w") as f:
        f.write(new_key_spec() + "\n")
    log.warning(
        "result_key.created",
        path=str(path),
        note="results are encrypted with this key; keep it with the database, or set "
        "OBSERVATORY_RESULT_KEYS",
    )
    return _read_key_file(path)


def _read_key_file(path: Path) -> list[tuple[str, bytes]]:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("result_key.file_readable_by_others", path=str(path), mode=oct(mode))
    pairs = parse_key_specs(path.read_text().replace("\n", ","))
    if not pairs:
        raise KeyConfigError(f"the result key file {path} holds no key")
    return pairs


def cipher_from_settings(result_keys: str, result_key_file: str, database_url: str) -> ResultCipher:
    """The configured keys, else the key file (created on first use). Settings have already
    refused a missing key outside development."""
    if result_keys.strip():
        return ResultCipher(parse_key_specs(result_keys))
    path = Path(result_key_file) if result_key_file else default_key_file(database_url)
    return ResultCipher(load_or_create_key_file(path))


class Fingerprinter:
    """The stored fingerprint: HMAC-SHA-256 under a server secret of the conversation's
    SHA-256, so whoever reads a result cannot confirm a guessed conversation against it
    (a plain hash of a short chat is easy to guess), while the same conversation still gets
    the same fingerprint from the same service."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise KeyConfigError("the fingerprint secret must be at least 32 bytes")
        self._secret = secret

    @classmethod
    def derived(cls, cipher_key: bytes) -> Fingerprinter:
        """A secret derived (HKDF-SHA-256) from a result key, for when none is configured."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"observatory fp")
        return cls(hkdf.derive(cipher_key))

    def of(self, digest_hex: str) -> str:
        return hmac.new(self._secret, bytes.fromhex(digest_hex), hashlib.sha256).hexdigest()


def fingerprinter_from(secret: str, cipher: ResultCipher) -> Fingerprinter:
    """``OBSERVATORY_FINGERPRINT_SECRET`` if set, else derived from the sealing key (which
    changes fingerprints of new analyses when that key rotates)."""
    if secret:
        return Fingerprinter(secret.encode())
    return Fingerprinter.derived(cipher.current_key)
