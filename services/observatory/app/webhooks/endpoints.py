"""The owner's webhook secret, its deliveries, and re-enabling a disabled endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from app.api.deps import SessionDep
from app.auth.dependencies import AnalystDep
from app.auth.principal import Principal
from app.core.errors import Forbidden, InputError, NotFound
from app.core.ids import is_id
from app.core.problems import Problem, printable
from app.webhooks import service
from app.webhooks.models import DisabledEndpoint, WebhookDelivery, url_hash

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


class SecretCreated(BaseModel):
    secret: str = Field(description="`whsec_…`: shown once; verify `webhook-signature` with it.")
    created_at: datetime
    previous_valid_until: datetime | None = Field(
        None, description="After a rotation the old secret signs too until then."
    )


class Delivery(BaseModel):
    id: str
    event: str
    url: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class Deliveries(BaseModel):
    deliveries: list[Delivery]


def _owner(principal: Principal) -> str:
    owner = principal.owner
    if owner is None:
        raise Forbidden(
            "webhooks need an API key or a partner token: the public tier has no owner to hold "
            "a signing secret"
        )
    return owner


@router.post(
    "/secret",
    status_code=status.HTTP_201_CREATED,
    response_model=SecretCreated,
    responses={403: {"model": Problem}},
)
async def create_secret(session: SessionDep, principal: AnalystDep) -> SecretCreated:
    """Create (or rotate) the secret that signs your callbacks; it is shown only now."""
    row = await service.create_secret(session, _owner(principal))
    await session.commit()
    return SecretCreated(
        secret=row.secret, created_at=row.created_at, previous_valid_until=row.previous_until
    )


@router.get(
    "/deliveries",
    response_model=Deliveries,
    responses={
        400: {"model": Problem, "description": "`target_id` is not an id."},
        403: {"model": Problem},
    },
)
async def deliveries(
    session: SessionDep,
    principal: AnalystDep,
    target_id: str | None = Query(None, description="Only those of this analysis or batch."),
    limit: int = Query(50, ge=1, le=500),
) -> Any:
    """Your callbacks, newest first, with their attempts."""
    query = select(WebhookDelivery).where(WebhookDelivery.owner == _owner(principal))
    if target_id is not None:
        if not is_id(target_id):
            raise InputError(
                f"target_id '{printable(target_id)}' is not an analysis or batch id (a UUID)"
            )
        query = query.where(WebhookDelivery.target_id == target_id)
    rows = await session.scalars(query.order_by(WebhookDelivery.created_at.desc()).limit(limit))
    return {"deliveries": [service.view(row) for row in rows.all()]}


@router.delete(
    "/disabled",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"model": Problem}, 404: {"model": Problem}},
)
async def enable(
    session: SessionDep,
    principal: AnalystDep,
    url: str = Query(description="The callback URL that answered 410 Gone.", max_length=2048),
) -> Response:
    """Enable again a callback URL that was disabled after answering 410 Gone."""
    removed = await session.execute(
        delete(DisabledEndpoint).where(
            DisabledEndpoint.owner == _owner(principal), DisabledEndpoint.url_hash == url_hash(url)
        )
    )
    if not getattr(removed, "rowcount", 0):
        raise NotFound(f"no disabled callback URL '{printable(url, 200)}'")
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
