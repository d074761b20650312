"""Partner tokens: JWT bearer tokens verified with PyJWT.

Keys come from one of: a JWKS URL (cached; fetched again when a token names an unknown
``kid``, at most once per ``jwt_jwks_min_refresh_seconds``), a configured public key (PEM),
or a shared secret (HS256). The accepted algorithms are fixed by configuration, never taken
from the token, so ``alg: none`` and key confusion (an HS256 token "signed" with the RSA
public key) fail. ``iss``, ``aud``, ``exp`` and ``nbf`` are checked with a small leeway; the
subject is the principal.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import structlog

from app.auth.principal import Principal
from app.core.config import Settings
from app.core.errors import ServiceUnavailable, Unauthorized

log = structlog.get_logger(__name__)

HMAC = ("HS256", "HS384", "HS512")


def looks_like_jwt(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 3 and all(parts[:2])


class TokenVerifier:
    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self._s = settings
        self.algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
        self.enabled = bool(settings.jwt_secret or settings.jwt_public_key or settings.jwt_jwks_url)
        self._client = client
        self._jwks: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _jwks_key(self, kid: str | None) -> Any:
        if kid in self._jwks:
            return self._jwks[kid]
        async with self._lock:
            if kid not in self._jwks and (
                time.monotonic() - self._fetched_at >= self._s.jwt_jwks_min_refresh_seconds
                or not self._fetched_at
            ):
                await self._refresh()
        if kid not in self._jwks:
            raise Unauthorized("the token's key id (kid) is not among the issuer's keys")
        return self._jwks[kid]

    async def _refresh(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        try:
            r = await self._client.get(self._s.jwt_jwks_url)
            r.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(r.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.error("jwks.unavailable", error=type(exc).__name__)
            raise ServiceUnavailable(
                "partner tokens cannot be verified now (the issuer's key set is unreachable); "
                "retry later",
                headers={"Retry-After": "30"},
            ) from None
        finally:
            self._fetched_at = time.monotonic()
        self._jwks = {k.key_id: k.key for k in keyset.keys if k.key_id}

    async def _key(self, header: dict[str, Any]) -> Any:
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise Unauthorized(
                f"token algorithm '{str(alg)[:16]}' is not accepted; allowed: "
                f"{', '.join(self.algorithms)}"
            )
        if alg in HMAC:
            if not self._s.jwt_secret:
                raise Unauthorized("HMAC-signed tokens are not accepted by this server")
            return self._s.jwt_secret
        if self._s.jwt_jwks_url:
            return await self._jwks_key(header.get("kid"))
        if self._s.jwt_public_key:
            return self._s.jwt_public_key
        raise Unauthorized("tokens signed with a public-key algorithm are not accepted here")

    async def verify(self, token: str) -> Principal:
        if not self.enabled:
            raise Unauthorized("partner tokens (JWT) are not accepted by this server")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token: its header is not valid JWT") from None
        key = await self._key(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=self._s.jwt_audience,
                issuer=self._s.jwt_issuer,
                leeway=self._s.jwt_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the token is for another audience (aud)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(
                "the token was issued by an issuer this server does not trust"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the token lacks the '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token ({type(exc).__name__})") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 100:
            raise Unauthorized("the token's subject (sub) must be a string of 1 to 100 characters")
        scope = claims.get("scope", "analyze")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset({"analyze"})
        return Principal("partner", subject, "partner", scopes, f"token:{subject[:40]}")
