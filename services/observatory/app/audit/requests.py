"""Which requests are audited, and the event each one makes (called once per request, after
its answer, by the request-id middleware).

An action is named by the route template and method: reading, exporting, creating,
cancelling and deleting analyses and batches, and changing webhook secrets. Any other
route is audited only when it refuses (401, 403, 429), as ``access.refused``. The
principal is the key id or token subject the request was authenticated as, or, without
one, a keyed hash of the client address (never the address itself).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from app.audit.service import DENIALS, Event
from app.core.ids import is_id

ANALYSIS = "/api/v1/analyze/{analysis_id}"
BATCH = "/api/v1/analyze/batch/{batch_id}"

ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/analyze"): "analysis.create",
    ("POST", "/examples/{name}/analyze"): "analysis.create",
    ("GET", ANALYSIS): "analysis.read",
    ("GET", f"{ANALYSIS}/events"): "analysis.read",
    ("POST", f"{ANALYSIS}/cancel"): "analysis.cancel",
    ("DELETE", ANALYSIS): "analysis.delete",
    ("DELETE", "/api/v1/analyze"): "analysis.erase_owner",
    ("POST", "/api/v1/analyze/batch"): "batch.create",
    ("GET", BATCH): "batch.read",
    ("GET", f"{BATCH}/events"): "batch.read",
    ("POST", f"{BATCH}/cancel"): "batch.cancel",
    ("POST", f"{BATCH}/priority"): "batch.priority",
    ("POST", "/api/v1/webhooks/secret"): "webhook_secret.rotate",
    ("DELETE", "/api/v1/webhooks/disabled"): "webhook_endpoint.enable",
}
# A read with ?format= other than json is an export of the whole result.
EXPORTABLE = frozenset({"analysis.read", "batch.read"})
FORMATS = frozenset({"csv", "markdown", "jsonl"})
# Paths without parameters, for a request refused before it was routed (a body too large,
# compressed or not UTF-8 is answered by the middleware).
UNROUTED = {(method, path): action for (method, path), action in ACTIONS.items() if "{" not in path}

OUTCOMES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    499: "client_closed",
}


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status in OUTCOMES:
        return OUTCOMES[status]
    return "refused" if status < 500 else "error"


def principal_of(state: dict[str, Any], scope: Any, fingerprints: Any) -> str:
    principal = state.get("principal")
    if principal is not None and principal.kind != "public":
        return str(principal.owner)
    # No credential, a refused one, or a request refused before its credential was checked
    # (a body the middleware turned away): the client address, hashed with a key.
    address = state.get("client_address") or (scope.get("client") or ("unknown",))[0]
    digest = hashlib.sha256(str(address).encode()).hexdigest()
    keyed = fingerprints.of(digest) if fingerprints is not None else digest
    return f"client:{keyed[:32]}"


def _export_format(scope: Any) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    if "format=" not in query:
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "format" and value != "json":
            # Only a format the endpoint offers is written: what else stands there may be
            # anything a client typed, a credential included.
            return str(value) if value in FORMATS else "(not a format)"
    return None


def event_for(scope: Any, status: int, request_id: str, fingerprints: Any) -> Event | None:
    """The event a finished request makes, or None when it is not audited."""
    method = "GET" if scope["method"] == "HEAD" else scope["method"]
    route = getattr(scope.get("route"), "path", None)
    if route:
        action = ACTIONS.get((method, route))
    else:
        action = UNROUTED.get((method, scope.get("path", "").rstrip("/") or "/"))
    if action is None:
        if status not in DENIALS:
            return None
        action = "access.refused"
    state: dict[str, Any] = scope.get("state") or {}
    detail: dict[str, int | str] = dict(state.get("audit_detail") or {})
    if action in EXPORTABLE:
        shown = _export_format(scope)
        if shown is not None:
            action = action.replace(".read", ".export")
            detail["format"] = shown[:16]
    if action == "access.refused":
        detail["route"] = (route or "unmatched")[:80]
        detail["method"] = scope["method"][:16]
    target = state.get("audit_target")
    if target is None:
        params = scope.get("path_params") or {}
        raw = params.get("analysis_id") or params.get("batch_id")
        if raw is not None:
            target = raw if is_id(raw) else "(not an id)"
    principal = state.get("principal")
    if principal is not None and principal.kind != "public" and principal.label:
        # Which secret of the principal: after a rotation, the old key's and the new one's
        # prefixes tell them apart (a prefix is shown in key lists; it is not the secret).
        detail["key"] = principal.label[:24]
    return Event(
        action,
        principal_of(state, scope, fingerprints),
        outcome_of(status),
        target=target,
        status=status,
        request_id=request_id,
        detail=detail or None,
    )


def events_for(scope: Any, status: int, request_id: str, fingerprints: Any) -> list[Event]:
    """The request's event, then one for each further thing it did (each analysis a batch
    created), with the same principal, outcome and request id."""
    event = event_for(scope, status, request_id, fingerprints)
    if event is None:
        return []
    more = (scope.get("state") or {}).get("audit_more") or ()
    return [
        event,
        *(
            replace(event, action=action, target=target, detail=detail)
            for action, target, detail in more
        ),
    ]
