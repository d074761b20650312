"""A job as it travels between processes and machines: a JSON envelope of ids and options,
and the conversation sealed apart from it.

The envelope never holds conversation text; the payload (the parsed conversation) is kept
under a key of its own, encrypted with Fernet (configured keys, or keys derived from the
result keys), so it can be given a time to live and deleted the moment a worker takes it.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.analysis import AnalysisOptions
from app.core.crypto import ResultCipher
from app.jobs.base import PRIORITIES, AnalysisJob

ENVELOPE_VERSION = 1
_SEALED = b"F"
_PLAIN = b"P"


def envelope(job: AnalysisJob) -> dict[str, Any]:
    """``job`` without its payload, as JSON-serialisable data."""
    return {
        "v": ENVELOPE_VERSION,
        "analysis_id": job.analysis_id,
        "pattern_types": sorted(job.options.pattern_types),
        "include_insights": job.options.include_insights,
        "message_count": job.message_count,
        "observer_mode": job.observer_mode,
        "priority": job.priority,
        "batch_id": job.batch_id,
    }


def from_envelope(data: dict[str, Any], payload: bytes | None = None) -> AnalysisJob:
    if data.get("v") != ENVELOPE_VERSION:
        raise ValueError(f"unknown job envelope version {data.get('v')!r}")
    priority = str(data.get("priority", "normal"))
    return AnalysisJob(
        analysis_id=str(data["analysis_id"]),
        payload=payload,
        options=AnalysisOptions(
            pattern_types=frozenset(data["pattern_types"]),
            include_insights=bool(data["include_insights"]),
        ),
        message_count=int(data.get("message_count", 0)),
        observer_mode=str(data.get("observer_mode", "auto")),
        priority=priority if priority in PRIORITIES else "normal",
        batch_id=data.get("batch_id"),
    )


class PayloadSealError(Exception):
    """A stored payload that cannot be opened (wrong key, tampered, or sealed without one
    while a key is required)."""


class Sealer:
    """Encrypts payloads with the first of ``keys`` and opens them with any (so keys can be
    rotated); with no keys, payloads are stored as they are."""

    def __init__(self, keys: str) -> None:
        parsed = [k.strip() for k in keys.split(",") if k.strip()]
        self._fernet = MultiFernet([Fernet(k) for k in parsed]) if parsed else None

    @classmethod
    def for_queue(cls, configured: str, cipher: ResultCipher) -> Sealer:
        """The configured queue keys, or else keys derived from the result keys: every
        process that can seal results (API and workers) can open what the others queued,
        and a payload in Redis is always encrypted and authenticated (it is unpickled)."""
        if any(part.strip() for part in configured.split(",")):
            return cls(configured)
        derived = cipher.derived_keys(b"observatory queue payload")
        return cls(",".join(base64.urlsafe_b64encode(key).decode() for key in derived))

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, payload: bytes, job_id: str = "") -> bytes:
        """``payload`` sealed for the job ``job_id``: the id is sealed with it, so a payload
        copied under another job's key does not open there."""
        if self._fernet is None:
            return _PLAIN + payload
        return _SEALED + self._fernet.encrypt(_bound(job_id) + payload)

    def open(self, stored: bytes, job_id: str = "") -> bytes:
        kind, body = stored[:1], stored[1:]
        if kind == _SEALED:
            if self._fernet is None:
                raise PayloadSealError("payload is encrypted but no queue encryption key is set")
            try:
                opened = self._fernet.decrypt(body)
            except InvalidToken:
                raise PayloadSealError(
                    "payload cannot be decrypted with the configured keys"
                ) from None
            bound = _bound(job_id)
            if not opened.startswith(bound):
                raise PayloadSealError("payload was sealed for another job")
            return opened[len(bound) :]
        if kind == _PLAIN and self._fernet is None:
            return body
        raise PayloadSealError("payload was stored unencrypted while a key is required")


def _bound(job_id: str) -> bytes:
    """What a sealed payload starts with: its job's id and a NUL (ids hold no NUL)."""
    return job_id.encode() + b"\x00"
