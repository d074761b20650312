"""Settings, read from the environment (prefix ``OBSERVATORY_``) and an optional ``.env``."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.crypto import KeyConfigError, parse_key_specs

PLACEHOLDERS = frozenset({"changeme", "change-me", "secret", "placeholder", "test", "example"})


def _network_list(name: str, value: str) -> str:
    """``value`` if it is a comma-separated list of networks; else what is wrong in it."""
    for part in value.split(","):
        if part.strip():
            try:
                ipaddress.ip_network(part.strip())
            except ValueError as exc:
                raise ValueError(
                    f"{name}: '{part.strip()}' is not a network ({exc}); write networks such "
                    "as 10.0.0.0/8 or 127.0.0.1/32"
                ) from None
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OBSERVATORY_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"
    log_json: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    # Connections (app/server.py, docs/decisions/0007): a request's headers must arrive within
    # header_timeout_seconds and max_header_bytes; its body may pause at most
    # body_idle_timeout_seconds between chunks and must be complete within
    # body_timeout_seconds; idle kept-alive connections close after keep_alive_seconds;
    # beyond max_connections open connections new requests get 503.
    header_timeout_seconds: float = Field(10.0, gt=0)
    max_header_bytes: int = Field(64 * 1024, ge=4096)
    body_idle_timeout_seconds: float = Field(15.0, gt=0)
    body_timeout_seconds: float = Field(120.0, gt=0)
    keep_alive_seconds: int = Field(5, ge=1)
    max_connections: int = Field(1000, ge=1)
    listen_backlog: int = Field(2048, ge=1)

    # Storage: SQLite (WAL) by default; a postgresql+asyncpg:// URL for scale-out.
    database_url: str = "sqlite+aiosqlite:///./observatory.db"
    migrate_on_start: bool = True

    # Input limits (SPEC §3).
    max_messages: int = Field(20_000, ge=1)
    max_conversation_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_message_chars: int = Field(200_000, ge=1)
    max_batch_conversations: int = Field(1_000, ge=1)
    max_batch_bytes: int = Field(50 * 1024 * 1024, ge=1024)

    # A label for this process in the ``runners`` table (empty: the host name). Each process
    # also gets a unique id, so replicas may share a label; work of a process whose heartbeat
    # is older than runner_stale_seconds is failed by its peers or its successor.
    instance_id: str = Field("", max_length=64)
    runner_heartbeat_seconds: float = Field(5.0, gt=0)
    runner_stale_seconds: float = Field(30.0, gt=0)

    # The in-process job runner: analyses run at once, each in a worker process of its own,
    # and the processes that parse large submitted bodies.
    worker_concurrency: int = Field(2, ge=1)
    parse_workers: int = Field(1, ge=1)
    parse_timeout_seconds: float = Field(30.0, gt=0)
    # How much lower the worker processes' CPU priority is than the API's (nice increment).
    worker_nice: int = Field(10, ge=0, le=19)
    queue_max_size: int = Field(100, ge=1)
    # Conversations of batches waiting, on top of queue_max_size (a batch is queued whole).
    queue_max_batch_items: int = Field(10_000, ge=1)
    # A theme is shown in a batch's aggregate only when at least this many conversations
    # share it.
    aggregate_min_conversations: int = Field(5, ge=2)
    analysis_timeout_seconds: float = Field(120.0, gt=0)
    max_wait_seconds: float = Field(60.0, ge=0)
    queue_full_retry_after_seconds: int = Field(5, ge=1)

    # Where jobs wait: "inprocess" (the embedded default: this process runs them) or "redis"
    # (`observatory serve` only answers the API; `observatory worker` processes, on any
    # number of machines, run the jobs). See docs/decisions/0011-redis-job-queue.md.
    queue_backend: Literal["inprocess", "redis"] = "inprocess"
    # The queue's Redis (empty: redis_url) and the prefix of its keys.
    queue_redis_url: str = ""
    queue_name: str = Field("observatory-jobs", min_length=1, max_length=64)
    # Fernet keys (comma-separated, the first encrypts, any decrypts) for queued
    # conversations; empty: keys derived from the result keys (OBSERVATORY_RESULT_KEYS), so
    # queued conversations are always encrypted and authenticated.
    queue_encryption_key: str = ""
    # How long a queued conversation may wait in Redis before it expires (its analysis then
    # fails with that reason).
    queue_payload_ttl_seconds: int = Field(86_400, ge=10)
    # Transient failures (the observer required but unreachable) are tried again, after
    # job_retry_seconds doubled on each try (with jitter), up to job_max_tries tries in all.
    job_max_tries: int = Field(3, ge=1, le=20)
    job_retry_seconds: float = Field(5.0, ge=0)
    # A job still marked running this long past its time limit is taken to be lost with its
    # worker (killed) and handled again: failed with that reason.
    job_lost_after_seconds: float = Field(30.0, ge=1)
    # On SIGTERM a worker stops taking jobs and lets running ones finish for this long; what
    # is still running then is handed back to the queue.
    worker_shutdown_seconds: float = Field(30.0, ge=0)

    @field_validator("queue_encryption_key")
    @classmethod
    def _queue_key(cls, value: str) -> str:
        from cryptography.fernet import Fernet

        try:
            for part in value.split(","):
                if part.strip():
                    Fernet(part.strip())
        except ValueError:
            raise ValueError(
                "OBSERVATORY_QUEUE_ENCRYPTION_KEY: comma-separated Fernet keys (make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
        return value

    @model_validator(mode="after")
    def _queue(self) -> Settings:
        if self.queue_backend == "redis" and not (self.queue_redis_url or self.redis_url):
            raise ValueError(
                "OBSERVATORY_QUEUE_BACKEND=redis needs OBSERVATORY_QUEUE_REDIS_URL "
                "or OBSERVATORY_REDIS_URL"
            )
        return self

    @property
    def queue_redis(self) -> str:
        return self.queue_redis_url or self.redis_url

    # Callbacks (webhooks): networks admitted although not public (comma-separated CIDRs,
    # for tests and intranets), the time one attempt may take, the delays between attempts
    # (seconds; one more attempt than delays), and how often due deliveries are looked for.
    webhook_allowed_networks: str = ""
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60)
    webhook_retry_seconds: str = "5,300,1800,7200,18000,36000"
    webhook_poll_seconds: float = Field(1.0, gt=0)

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _delays(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            delays = [-1.0]
        if any(d < 0 for d in delays):
            raise ValueError(
                "OBSERVATORY_WEBHOOK_RETRY_SECONDS: comma-separated seconds (e.g. 5,300,1800)"
            )
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _webhook_networks(cls, value: str) -> str:
        return _network_list("OBSERVATORY_WEBHOOK_ALLOWED_NETWORKS", value)

    # Redis for limits shared by every replica (empty: in memory, one process).
    redis_url: str = ""
    rate_limit_key_prefix: str = "observatory-limits"
    # Requests per principal (SPEC §6), `N/minute;M/day` (the day is the UTC calendar day).
    rate_limit_public: str = "10/minute;500/day"
    rate_limit_api_key: str = "60/minute;5000/day"
    rate_limit_partner: str = "600/minute;50000/day"
    # Reading an analysis (GET, exports, events) has a budget of its own, for polling.
    read_limit_public: str = "120/minute"
    read_limit_api_key: str = "600/minute"
    read_limit_partner: str = "6000/minute"
    # Failed authentications (401, refused credentials) per client address; once spent,
    # credentials from that address are refused unchecked (429) until the window moves.
    auth_failure_limit: str = "20/minute;200/day"
    # How long a checked API key is remembered by one process: a revoked key stops working
    # on every replica within this many seconds (0: ask the database on every request).
    api_key_cache_seconds: float = Field(10.0, ge=0, le=300)
    # Client addresses come from the socket; X-Forwarded-For counts only from these
    # networks (comma-separated CIDRs), taking the rightmost address not among them.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        return _network_list("OBSERVATORY_TRUSTED_PROXIES", value)

    # Partner tokens (JWT): keys from a JWKS URL, a PEM public key, or an HS256 secret; the
    # accepted algorithms are fixed here ("none" is never accepted). Issuer and audience are
    # required once any key source is set.
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_algorithms: str = "RS256,ES256"
    jwt_jwks_url: str = ""
    jwt_jwks_min_refresh_seconds: float = Field(60.0, ge=1)
    jwt_public_key: str = ""
    jwt_secret: str = ""
    jwt_leeway_seconds: int = Field(30, ge=0, le=300)

    @model_validator(mode="after")
    def _jwt(self) -> Settings:
        algorithms = {a.strip() for a in self.jwt_algorithms.split(",") if a.strip()}
        if any(a.lower() == "none" for a in algorithms):
            raise ValueError("OBSERVATORY_JWT_ALGORITHMS must not contain 'none'")
        if (self.jwt_secret or self.jwt_public_key or self.jwt_jwks_url) and not (
            self.jwt_issuer and self.jwt_audience
        ):
            raise ValueError(
                "partner tokens need OBSERVATORY_JWT_ISSUER and OBSERVATORY_JWT_AUDIENCE"
            )
        if self.jwt_secret and self.environment != "development":
            weak = len(self.jwt_secret) < 32 or self.jwt_secret.lower() in PLACEHOLDERS
            if weak:
                raise ValueError(
                    "OBSERVATORY_JWT_SECRET is a placeholder or shorter than 32 characters; "
                    "set a random secret (e.g. `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'`)"
                )
        return self

    # Results encrypted at rest (SPEC §8, app/core/crypto.py): `id:key[,id:key…]`, the first
    # seals. Without it, development keeps a key in `result_key_file` (created on first start,
    # default beside the SQLite database); elsewhere a key must be configured.
    result_keys: str = Field("", repr=False)
    result_key_file: str = ""
    # Stored fingerprints are HMAC-SHA-256 under this secret (at least 32 characters); empty:
    # derived from the sealing result key, so they change when that key rotates.
    fingerprint_secret: str = Field("", repr=False)

    @field_validator("fingerprint_secret")
    @classmethod
    def _fingerprint_secret(cls, value: str) -> str:
        if value and len(value.encode()) < 32:
            raise ValueError("OBSERVATORY_FINGERPRINT_SECRET must be at least 32 bytes")
        return value

    @model_validator(mode="after")
    def _result_keys(self) -> Settings:
        if self.result_keys.strip():
            try:
                parse_key_specs(self.result_keys)
            except KeyConfigError as exc:
                raise ValueError(f"OBSERVATORY_RESULT_KEYS: {exc}") from None
        elif self.environment != "development" and not self.result_key_file:
            raise ValueError(
                "stored results are encrypted, and outside development the key must be "
                "configured: set OBSERVATORY_RESULT_KEYS to the output of `observatory keys "
                "encryption-key` (or OBSERVATORY_RESULT_KEY_FILE to a file holding it)"
            )
        return self

    # Curated example conversations (GET /examples): a folder with a manifest.json; empty:
    # the examples shipped with the service.
    examples_dir: str = ""

    # Retention (SPEC §8).
    result_ttl_days: int = Field(30, ge=1)
    metadata_ttl_days: int = Field(90, ge=1)
    # How often the service removes what outlived its period (0: never; then run
    # `observatory retention run` from cron).
    retention_interval_seconds: float = Field(3600.0, ge=0)

    # The audit log (SPEC §8, docs/decisions/0015): its own retention, how often queued
    # events are written, and how many refusals (401/403/429) a minute are written per
    # principal and in all (the rest are counted in one summary event).
    audit_retention_days: int = Field(365, ge=1)
    audit_flush_seconds: float = Field(0.2, gt=0, le=10)
    audit_denials_per_principal: int = Field(10, ge=1)
    audit_denials_overall: int = Field(600, ge=1)

    # The observer: an LLM behind Ollama's HTTP API (SPEC §4, docs/decisions/0002).
    observer_mode: Literal["auto", "off", "required"] = "auto"
    observer_url: str = "http://127.0.0.1:11434"
    observer_model: str = "observer"
    observer_request_timeout_seconds: float = Field(90.0, gt=0)
    observer_connect_timeout_seconds: float = Field(3.0, gt=0)
    # Also capped at 90 % of analysis_timeout_seconds, so the local result survives.
    observer_analysis_timeout_seconds: float = Field(100.0, gt=0)
    observer_num_ctx: int = Field(8192, ge=1024)
    observer_num_predict: int = Field(1536, ge=128)
    observer_max_concurrency: int = Field(2, ge=1)
    observer_keep_alive: str = "5m"
    observer_temperature: float = Field(0.2, ge=0, le=2)
    observer_seed: int = 42
    observer_chunk_overlap_messages: int = Field(2, ge=0, le=16)
    observer_breaker_failures: int = Field(3, ge=1)
    observer_breaker_open_seconds: float = Field(30.0, gt=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
