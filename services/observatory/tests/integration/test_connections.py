"""Connection-level limits on a real server process: headers and bodies that never finish,
malformed HTTP, oversized headers, clients that leave, and what reaches the log."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, start_server


def start(tmp: Path, **settings: str) -> tuple[subprocess.Popen[bytes], Server]:
    return start_server(tmp / "conn.db", tmp / "server.log", **settings)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    proc, srv = start(
        tmp_path_factory.mktemp("connections"),
        header_timeout_seconds="1",
        body_idle_timeout_seconds="1",
        body_timeout_seconds="3",
        max_header_bytes="8192",
    )
    try:
        yield srv
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def read_all(sock: socket.socket, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or ``limit`` passes)."""
    sock.settimeout(limit)
    chunks = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
    raise AssertionError(f"the server kept the connection open: {b''.join(chunks)[:200]!r}")


def status_and_body(response: bytes) -> tuple[int, bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower(), body


def test_a_body_shorter_than_its_content_length_is_cut_off(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 1000\r\n\r\n" + b'{"conversation_text": "Hu'
        )
        t0 = time.monotonic()
        status, head, body = status_and_body(read_all(sock))
    assert status == 408 and b"application/problem+json" in head
    assert b"stopped arriving" in body and b"pause at most 1 s" in body
    assert time.monotonic() - t0 < 5


def test_a_chunked_body_that_never_ends_is_cut_off(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b'transfer-encoding: chunked\r\n\r\n5\r\n{"con\r\n'
        )
        status, _, _ = status_and_body(read_all(sock))
    assert status == 408


def test_a_body_that_trickles_forever_hits_the_total_deadline(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100000\r\n\r\n"
        )
        t0 = time.monotonic()
        sock.settimeout(0.5)
        response = b""
        while time.monotonic() - t0 < 8 and not response:
            try:
                sock.sendall(b" ")  # one byte every half second: never idle for 1 s
                response = sock.recv(65536)
            except (BrokenPipeError, ConnectionResetError):
                break
            except TimeoutError:
                continue
        elapsed = time.monotonic() - t0
    assert response.startswith(b"HTTP/1.1 408"), response[:100]
    assert elapsed < 6, f"cut off only after {elapsed:.1f}s"


def test_headers_that_never_finish_are_cut_off(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        t0 = time.monotonic()
        status, head, body = status_and_body(read_all(sock))
    assert status == 408 and b"application/problem+json" in head
    assert b"headers did not arrive within 1 seconds" in body
    assert time.monotonic() - t0 < 5


def test_an_idle_connection_is_closed(server: Server) -> None:
    with server.connect() as sock:
        status, _, _ = status_and_body(read_all(sock))
    assert status == 408


def test_oversized_headers_are_431(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        status, head, body = status_and_body(read_all(sock))
    assert status == 431 and b"application/problem+json" in head and b"8,192 bytes" in body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Name: a\r\n\r\n",
    ],
    ids=["bad-chunk-size", "control-character", "space-in-name"],
)
def test_malformed_http_is_a_problem_json_400(server: Server, request_bytes: bytes) -> None:
    with server.connect() as sock:
        sock.sendall(request_bytes)
        status, head, body = status_and_body(read_all(sock))
    assert status == 400 and b"application/problem+json" in head
    assert b"malformed HTTP request" in body


def test_health_answers_while_many_slow_connections_are_held(server: Server) -> None:
    held = []
    try:
        for _ in range(300):
            sock = server.connect()
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finish
            held.append(sock)
        t0 = time.monotonic()
        r = httpx.get(f"{server.base}/health", timeout=5)
        assert r.status_code == 200 and time.monotonic() - t0 < 1
        # And the server lets go of them at the header deadline.
        time.sleep(2)
        closed = 0
        for sock in held:
            sock.settimeout(0.01)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if data.startswith(b"HTTP/1.1 408") or not data:
                closed += 1
        assert closed == len(held)
    finally:
        for sock in held:
            sock.close()


def test_a_client_that_leaves_mid_body_is_not_a_server_error(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 1000\r\n\r\n{"conv'
        )
        time.sleep(0.2)
    time.sleep(0.5)
    log = server.logged()
    assert "request.client_disconnected" in log and "status=499" in log
    assert "status=500" not in log


def test_control_characters_in_the_path_are_escaped_in_the_log(server: Server) -> None:
    httpx.get(f"{server.base}/api/v1/analyze/abc%00def%0Aforged=1")
    time.sleep(0.2)
    log = server.logged()
    assert "\x00" not in log
    line = next(line for line in log.splitlines() if "forged=1" in line)
    # One line, written with escapes: a forged field cannot start a line of its own.
    assert "abc\\" in line and "status=404" in line


def test_small_headers_with_a_large_body_in_the_same_packet_are_accepted(server: Server) -> None:
    text = "\\n".join(f"Human: question {i}?\\nAI: answer {i}." for i in range(4000))
    body = ('{"conversation_text": "' + text + '"}').encode()
    assert len(body) > 8192 * 4
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body
        )
        status, _, response = status_and_body(read_all(sock, limit=30))
    assert status == 202, response[:300]


def test_over_the_connection_limit_the_503_is_problem_json(tmp_path: Path) -> None:
    proc, srv = start(tmp_path, max_connections="5")
    held = []
    try:
        for _ in range(6):
            sock = srv.connect()
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # held open
            held.append(sock)
        time.sleep(0.2)
        r = httpx.get(f"{srv.base}/health", timeout=5)
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "1" and "too many open connections" in r.json()["detail"]
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert httpx.get(f"{srv.base}/health", timeout=5).status_code == 200
    finally:
        for sock in held:
            sock.close()
        proc.terminate()
        proc.wait(timeout=20)


def test_head_is_not_offered_where_it_is_not_served(server: Server) -> None:
    r = httpx.put(f"{server.base}/health")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
