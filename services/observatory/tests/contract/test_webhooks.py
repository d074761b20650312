"""Callbacks: who may ask for them, Standard Webhooks signatures checked by the reference
verifier, retries, 410, no redirects, batches, and every address a callback may not reach."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.contract.test_access import bearer, new_key
from tests.contract.test_batches import BREAD, batch, until_done

TEXT = "Human: Is it raining?\nAI: No, it is sunny."


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server that records what it is sent and answers from a script."""

    answers: list[int] = field(default_factory=list)  # status per request, then 200
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def wait_for(self, n: int, seconds: float = 20.0) -> list[Received]:
        for _ in range(int(seconds / 0.05)):
            if len(self.received) >= n:
                return self.received
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {n} callbacks, got {len(self.received)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            if self.path == "/drip":  # the status line, one byte every 0.3 s
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.3)
                return
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"http://127.0.0.1:{state.port}/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "webhook_allowed_networks": "127.0.0.0/8,::1/128",
        "webhook_retry_seconds": "0.2,0.2",
        "webhook_poll_seconds": 0.1,
        "aggregate_min_conversations": 3,
    }


async def owner_with_secret(client: httpx.AsyncClient, app: Any) -> tuple[dict[str, str], str]:
    key = await new_key(app)
    r = await client.post("/api/v1/webhooks/secret", headers=bearer(key.secret))
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert secret.startswith("whsec_")
    return bearer(key.secret), secret


def submit(url: str, **options: Any) -> dict[str, Any]:
    return {"conversation_text": TEXT, "options": {"callback_url": url, **options}}


async def test_callbacks_need_an_owner_and_a_secret(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    r = await client.post("/api/v1/analyze", json=submit(receiver.url()))
    assert r.status_code == 403 and "needs an API key" in r.json()["detail"]
    key = await new_key(app)
    r = await client.post(
        "/api/v1/analyze", json=submit(receiver.url()), headers=bearer(key.secret)
    )
    assert r.status_code == 400 and "POST /api/v1/webhooks/secret" in r.json()["detail"]
    r = await client.post("/api/v1/webhooks/secret")
    assert r.status_code == 403


async def test_a_completed_analysis_is_announced_signed(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, secret = await owner_with_secret(client, app)
    r = await client.post(
        "/api/v1/analyze", json=submit(receiver.url(host="localhost")), headers=headers
    )
    assert r.status_code == 202, r.text
    analysis_id = r.json()["id"]
    (got,) = await receiver.wait_for(1)
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "analysis.completed"
    assert payload["data"]["id"] == analysis_id and payload["data"]["status"] == "completed"
    assert payload["data"]["url"] == f"/api/v1/analyze/{analysis_id}"
    assert "sunny" not in got.body.decode()  # the event names the result, never its content
    # Sent to the checked address, the name only in Host.
    assert got.headers["Host"] == f"localhost:{receiver.port}"
    assert got.headers["webhook-id"].startswith("msg_")
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43).verify(got.body, got.headers)
    r = await client.get(f"/api/v1/webhooks/deliveries?target_id={analysis_id}", headers=headers)
    (delivery,) = r.json()["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1


async def test_a_failed_analysis_is_announced(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, secret = await owner_with_secret(client, app)
    body = submit(receiver.url(), observer="required")  # no Ollama here: it fails
    assert (await client.post("/api/v1/analyze", json=body, headers=headers)).status_code == 202
    (got,) = await receiver.wait_for(1)
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "analysis.failed" and payload["data"]["error"]


async def test_failures_are_retried_with_the_same_id(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, secret = await owner_with_secret(client, app)
    receiver.answers = [500, 503]
    r = await client.post("/api/v1/analyze", json=submit(receiver.url()), headers=headers)
    analysis_id = r.json()["id"]
    attempts = await receiver.wait_for(3)
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    for attempt in attempts:
        Webhook(secret).verify(attempt.body, attempt.headers)
    await asyncio.sleep(0.3)
    r = await client.get(f"/api/v1/webhooks/deliveries?target_id={analysis_id}", headers=headers)
    (delivery,) = r.json()["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3


async def test_after_the_last_attempt_the_delivery_fails_and_redirects_are_not_followed(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, _ = await owner_with_secret(client, app)
    receiver.answers = [302, 302, 302]
    r = await client.post("/api/v1/analyze", json=submit(receiver.url()), headers=headers)
    analysis_id = r.json()["id"]
    attempts = await receiver.wait_for(3)
    await asyncio.sleep(0.5)
    assert all(a.path == "/hook" for a in receiver.received)  # never /elsewhere
    assert len(attempts) == 3
    r = await client.get(f"/api/v1/webhooks/deliveries?target_id={analysis_id}", headers=headers)
    (delivery,) = r.json()["deliveries"]
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert "redirects are not followed" in delivery["last_error"]


async def test_410_disables_the_endpoint_until_enabled_again(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, _ = await owner_with_secret(client, app)
    receiver.answers = [410]
    url = receiver.url()
    await client.post("/api/v1/analyze", json=submit(url), headers=headers)
    await receiver.wait_for(1)
    for _ in range(40):
        r = await client.post("/api/v1/analyze", json=submit(url), headers=headers)
        if r.status_code == 400:
            break
        await asyncio.sleep(0.05)
    assert r.status_code == 400 and "410 Gone" in r.json()["detail"]
    r = await client.delete("/api/v1/webhooks/disabled", params={"url": url}, headers=headers)
    assert r.status_code == 204
    r = await client.post("/api/v1/analyze", json=submit(url), headers=headers)
    assert r.status_code == 202


async def test_a_rotated_secret_signs_alongside_the_old_one_for_a_day(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, old = await owner_with_secret(client, app)
    r = await client.post("/api/v1/webhooks/secret", headers=headers)
    new, until = r.json()["secret"], r.json()["previous_valid_until"]
    assert new != old and until
    await client.post("/api/v1/analyze", json=submit(receiver.url()), headers=headers)
    (got,) = await receiver.wait_for(1)
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)


async def test_a_batch_announces_its_end_and_its_items_do_not(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, secret = await owner_with_secret(client, app)
    body = batch(*BREAD[:3], callback_url=receiver.url())
    r = await client.post("/api/v1/analyze/batch", json=body, headers=headers)
    assert r.status_code == 202, r.text
    batch_id = r.json()["batch_id"]
    (got,) = await receiver.wait_for(1)
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "batch.completed" and payload["data"]["batch_id"] == batch_id
    assert payload["data"]["counts"]["completed"] == 3
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 1
    done = await until_done(client, batch_id, **headers)
    assert done["webhook"]["status"] == "delivered" and done["webhook"]["attempts"] == 1
    item = done["items"][0]["analysis_id"]
    one = (await client.get(f"/api/v1/analyze/{item}", headers=headers)).json()
    assert one["options"]["callback_url"] is None


@pytest.mark.parametrize("settings_overrides", [{}])  # no network allowed
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://2130706433/hook",
        "http://0177.0.0.1/hook",
        "http://0x7f.0.0.1/hook",
        "http://127.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[fe80::1]/hook",
        "http://[::7f00:1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:0:7f00:1]/hook",
        "http://[fec0::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "http:///hook",
        "javascript:alert(1)",
    ],
)
async def test_callbacks_may_not_reach_private_addresses(
    client: httpx.AsyncClient, app: Any, url: str
) -> None:
    key = await new_key(app)
    await client.post("/api/v1/webhooks/secret", headers=bearer(key.secret))
    r = await client.post("/api/v1/analyze", json=submit(url), headers=bearer(key.secret))
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "callback_url" in detail
    assert "public" in detail or "http" in detail or "user name" in detail or "host" in detail


async def test_the_batch_view_and_deliveries_belong_to_their_owner(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    headers, _ = await owner_with_secret(client, app)
    other = await new_key(app)
    r = await client.post("/api/v1/analyze", json=submit(receiver.url()), headers=headers)
    analysis_id = r.json()["id"]
    await receiver.wait_for(1)
    r = await client.get(
        f"/api/v1/webhooks/deliveries?target_id={analysis_id}", headers=bearer(other.secret)
    )
    assert r.status_code == 200 and r.json()["deliveries"] == []
    assert json.loads(receiver.received[0].body)["data"]["id"] == analysis_id


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "webhook_allowed_networks": "127.0.0.0/8,::1/128",
            "webhook_retry_seconds": "60",
            "webhook_poll_seconds": 0.1,
            "webhook_timeout_seconds": 1.0,
        }
    ],
)
async def test_a_receiver_that_drips_its_answer_holds_no_one(
    client: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    """Each attempt has an overall deadline (not one per read), and the body of an answer
    is never read: a receiver that sends its status line a byte at a time costs its own
    attempt one timeout, and callbacks to others go out meanwhile."""
    from sqlalchemy import select

    from app.webhooks.models import WebhookDelivery

    headers, _ = await owner_with_secret(client, app)
    slow = await client.post(
        "/api/v1/analyze",
        json=submit(receiver.url("/drip")),
        headers={**headers, "Prefer": "wait=10"},
    )
    fast = await client.post(
        "/api/v1/analyze",
        json=submit(receiver.url("/hook")),
        headers={**headers, "Prefer": "wait=10"},
    )
    assert slow.status_code == fast.status_code == 200
    got = await receiver.wait_for(2, seconds=10)
    assert {r.path for r in got} == {"/drip", "/hook"}
    for _ in range(100):
        async with app.state.service.sessions() as session:
            rows = {
                r.url.rsplit("/", 1)[1]: r
                for r in (await session.scalars(select(WebhookDelivery))).all()
            }
        if rows["drip"].attempts and rows["hook"].status == "delivered":
            break
        await asyncio.sleep(0.1)
    assert rows["hook"].status == "delivered"
    drip = rows["drip"]
    assert drip.status == "pending" and drip.attempts == 1
    assert drip.last_error == "no answer within 1 seconds"
