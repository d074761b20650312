"""The page in a real browser: Debian's Chromium driven by Playwright, against the service
served over HTTP by uvicorn in a thread of the test process (so a test can hold an analysis
with the blocking hook of ``tests/workers.py``).

Without Chromium at OBSERVATORY_CHROMIUM (default ``/usr/bin/chromium``) the tests are
skipped loudly, unless OBSERVATORY_REQUIRE_SERVICES=1 (CI), in which case they fail;
``scripts/install-browser.sh`` installs it. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from app.main import create_app
from app.server import uvicorn_options
from tests.conftest import make_settings, service_missing
from tests.servers import SERVICE, free_port

CHROMIUM = os.environ.get("OBSERVATORY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = SERVICE / "test-artifacts" / "browser"


class ThreadedService:
    """The app under uvicorn in a background thread, on a free port."""

    def __init__(self, database: Path) -> None:
        settings = make_settings(f"sqlite+aiosqlite:///{database}", worker_concurrency=1)
        self.app = create_app(settings)
        self.port = free_port()
        options = {**uvicorn_options(settings), "log_level": "warning"}
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("the service did not start within 30 s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def hold_analyses(self, analyze_fn: Any) -> Any:
        """Run analyses with ``analyze_fn``; returns the previous function."""
        ctx = self.app.state.service.queue._ctx
        previous = ctx.analyze_fn
        ctx.analyze_fn = analyze_fn
        return previous


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedService]:
    running = ThreadedService(tmp_path_factory.mktemp("web") / "observatory.db")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"Chromium at {CHROMIUM}", "run scripts/install-browser.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    """A page and what it did: console errors, uncaught exceptions, dialogs, and requests
    that went anywhere but the service (each aborted)."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def open(self, fragment: str = "") -> None:
        self.page.goto(f"{self.base}/{fragment}")
        self.page.wait_for_load_state("networkidle")

    def assert_clean(self) -> None:
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"
        assert self.foreign == [], f"requests beyond the service: {self.foreign}"

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


# A service started without examples (OBSERVATORY_EXAMPLES_DIR pointing at none) answers the
# page's probe of /examples with 404 and the picker stays hidden; Chromium logs every failed
# load as a console error.
EXPECTED_MISSING = ("/examples",)


def _console_error(message: Any) -> str | None:
    if message.type != "error":
        return None
    url = (message.location or {}).get("url", "")
    if "Failed to load resource" in message.text and urlsplit(url).path in EXPECTED_MISSING:
        return None
    return f"{message.text} ({url})"


@pytest.fixture
def watched(browser: Any, service: ThreadedService) -> Iterator[Watched]:
    """A fresh browser context at desktop size, its network limited to the service."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    seen = Watched(page, service.base)
    own = urlsplit(service.base).netloc

    def gate(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own or route.request.url.startswith(
            ("blob:", "data:")
        ):
            route.continue_()
        else:
            seen.foreign.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page.on("console", lambda m: (e := _console_error(m)) and seen.errors.append(e))
    page.on("pageerror", lambda exc: seen.errors.append(f"uncaught: {exc}"))

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield seen
    finally:
        context.close()
