"""One dependency turns a request into a :class:`Principal`; endpoints declare it.

No credential: the public tier, keyed by the client address. A credential (``Authorization:
Bearer …`` or ``X-API-Key``) that is malformed, unknown, revoked or expired is a 401 that
says which, never a fall back to public. A credential in the URL is a 400: URLs end up in
logs, histories and referrers.
"""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from app.api.deps import ServiceState, StateDep
from app.auth.principal import Principal
from app.auth.tokens import looks_like_jwt
from app.core.database import utcnow
from app.core.errors import CredentialError, Forbidden, TooManyRequests, Unauthorized
from app.keys import service as keys
from app.limits.service import Decision

URL_CREDENTIALS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "access_token",
        "access-token",
        "accesstoken",
        "x-api-key",
        "auth",
        "authorization",
        "bearer",
    }
)
KNOWN_SCHEMES = (
    "basic",
    "digest",
    "negotiate",
    "ntlm",
    "token",
    "hoba",
    "mutual",
    "aws4-hmac-sha256",
)
_BLANK = " \t"

# Declared for the OpenAPI document (and /docs' "Authorize" button); the headers are read
# below, so that every malformed form gets its own clear error.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


@lru_cache(maxsize=16)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip())


def _trusted(address: str, networks: tuple[Any, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: Request, trusted_proxies: str) -> str:
    """The socket's peer; when that peer is a trusted proxy, the rightmost address of
    ``X-Forwarded-For`` that is not itself a trusted proxy (what a client prepends to the
    header is never believed)."""
    peer = request.client.host if request.client else "unknown"
    networks = _networks(trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [
        h.strip() for line in request.headers.getlist("x-forwarded-for") for h in line.split(",")
    ]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where an address should be: do not trust the header
    return peer


def _public(address: str) -> Principal:
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    return Principal("public", f"ip:{digest}", "public")


def _presented(request: Request) -> str | None:
    params = request.query_params.multi_items()
    if any(
        name.lower() in URL_CREDENTIALS or value.startswith(keys.KEY_PREFIX)
        for name, value in params
    ):
        raise CredentialError(
            "credentials in the URL are refused (URLs end up in logs and browser histories); "
            "send Authorization: Bearer <key> or X-API-Key: <key>"
        )
    authorizations = request.headers.getlist("authorization")
    api_keys = request.headers.getlist("x-api-key")
    if len(authorizations) > 1 or len(api_keys) > 1:
        raise CredentialError("send one credential: several Authorization or X-API-Key headers")
    bearer = None
    if authorizations:
        scheme, _, value = authorizations[0].strip(_BLANK).partition(" ")
        if scheme.lower() != "bearer":
            # Name the scheme only when it is a known one: what stands there may be a secret.
            shown = f" '{scheme}'" if scheme.lower() in KNOWN_SCHEMES else ""
            raise Unauthorized(
                f"unsupported authorization scheme{shown}; use Authorization: Bearer <key>"
            )
        bearer = value.strip(_BLANK)
        if not bearer:
            raise Unauthorized("the Authorization header has no credential after 'Bearer'")
    header_key = api_keys[0].strip(_BLANK) if api_keys else None
    if api_keys and not header_key:
        raise Unauthorized("the X-API-Key header is empty")
    if bearer and header_key and bearer != header_key:
        raise CredentialError("Authorization and X-API-Key carry different credentials; send one")
    return bearer or header_key


async def get_principal(
    request: Request,
    state: StateDep,
    _b: Annotated[object, Depends(_bearer)] = None,
    _k: Annotated[object, Depends(_api_key)] = None,
) -> Principal:
    address = client_address(request, state.settings.trusted_proxies)
    client = _public(address)
    # For the audit log: who asked (the address is hashed, with a key, before it is written).
    request.state.client_address = address
    request.state.principal = client
    try:
        credential = _presented(request)
        if credential is None:
            return client
        spent = await state.limiter.auth_failure(client, count=False)
        if spent is not None and not spent.allowed:
            raise TooManyRequests(
                f"too many failed authentications from this address ({spent.policy}); "
                f"credentials are not checked for {spent.reset_seconds} seconds",
                headers={**_limit_headers(spent), "Retry-After": str(max(1, spent.reset_seconds))},
            )
        principal = await _verify(credential, state)
        request.state.principal = principal
        return principal
    except (Unauthorized, CredentialError) as exc:
        decision = await state.limiter.auth_failure(client, count=True)
        if decision is not None:
            exc.headers = {**_limit_headers(decision), **exc.headers}
        raise


async def _verify(credential: str, state: ServiceState) -> Principal:
    if looks_like_jwt(credential) and not keys.looks_like_key(credential):
        partner: Principal = await state.tokens.verify(credential)
        return partner
    if not keys.looks_like_key(credential):
        raise Unauthorized(
            f"malformed credential: an API key is '{keys.KEY_PREFIX}' followed by 43 "
            "characters (as printed by `observatory keys create`)"
        )
    now = utcnow()
    key = state.key_cache.get(credential) if state.key_cache is not None else None
    if key is None:
        async with state.sessions() as session:
            row = await keys.lookup(session, credential)
            if row is None:
                raise Unauthorized("unknown API key")
            if row.last_used_at is None or now - row.last_used_at > keys.LAST_USED_GRANULARITY:
                row.last_used_at = now
                await session.commit()
            key = keys.CheckedKey.of(row)
        if state.key_cache is not None:
            state.key_cache.put(credential, key)
    problem = keys.why_unusable(key, now)
    if problem is not None:
        raise Unauthorized(problem)
    return Principal(
        "api_key" if key.tier == "api_key" else "partner",
        key.principal_id,
        key.tier,
        key.scopes,
        key.prefix,
    )


def _limit_headers(decision: Decision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_seconds),
        "X-RateLimit-Policy": decision.policy,
    }


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def analysis_principal(
    request: Request, state: StateDep, principal: PrincipalDep
) -> Principal:
    """The principal of an analysis request, with the ``analyze`` scope, counted against its
    limits (reads of an analysis against the read budget)."""
    if not principal.may("analyze"):
        raise Forbidden("this API key lacks the 'analyze' scope needed for analyses")
    decision = await state.limiter.hit(principal, read=request.method in ("GET", "HEAD"))
    if decision is not None:
        headers = _limit_headers(decision)
        request.state.rate_limit_headers = headers
        if not decision.allowed:
            if state.metrics is not None:
                state.metrics.rate_limited.labels(principal.tier).inc()
            raise TooManyRequests(
                f"rate limit of {decision.policy} for the {principal.tier} tier reached; "
                f"retry after {decision.reset_seconds} seconds",
                headers={**headers, "Retry-After": str(max(1, decision.reset_seconds))},
            )
    return principal


AnalystDep = Annotated[Principal, Depends(analysis_principal)]
