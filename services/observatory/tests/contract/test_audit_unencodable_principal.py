"""A partner token's subject is the principal written to the audit log. JSON (and so a JWT)
may carry a lone surrogate (``"\\ud800"``), which neither database can store as text: the
event must still be written (the character shown as U+FFFD, as a NUL is), not set aside,
or such a token reads without a trace."""

from __future__ import annotations

import contextlib
import time
import uuid

import httpx
import jwt
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.main import create_app
from tests.conftest import make_settings
from tests.contract.test_access import bearer

SECRET = "s" * 48
ISS, AUD = "https://partner.example", "observatory"


async def test_a_read_by_a_token_whose_subject_holds_a_lone_surrogate_is_written(
    database_url: str,
) -> None:
    app = create_app(
        make_settings(
            database_url,
            jwt_issuer=ISS,
            jwt_audience=AUD,
            jwt_secret=SECRET,
            jwt_algorithms="HS256",
            audit_flush_seconds=10,
            retention_interval_seconds=0,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            claims = {"iss": ISS, "aud": AUD, "sub": "acme\ud800", "exp": int(time.time()) + 300}
            token = jwt.encode(claims, SECRET, algorithm="HS256")
            probe = await c.get(f"/api/v1/analyze/{uuid.uuid4()}", headers=bearer(token))
            assert probe.status_code == 404, probe.text
        state = app.state.service
        with contextlib.suppress(Exception):
            await state.audit.flush()
        async with state.sessions() as session:
            written = (await session.scalars(select(AuditEvent))).all()
    request_ids = {r.request_id for r in written}
    # Expected: the read is in the log; seen: the event was refused and set aside.
    assert probe.headers["X-Request-ID"] in request_ids, [(r.action, r.principal) for r in written]
