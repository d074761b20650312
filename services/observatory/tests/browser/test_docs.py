"""/docs and /redoc in Chromium with every request beyond the service refused: both render
the API from the vendored assets, and their policy blocks nothing they need."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Watched

pytestmark = pytest.mark.browser
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_swagger_ui_renders_offline(watched: Watched) -> None:
    watched.open("docs")
    page = watched.page
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    assert page.locator(".opblock-summary-path", has_text="/api/v1/analyze").count() > 0
    page.locator(".opblock-summary").first.click()  # opening an operation runs more script
    page.wait_for_selector(".opblock-body", timeout=10_000)
    watched.screenshot("docs-swagger")
    watched.assert_clean()


def test_redoc_renders_offline(watched: Watched) -> None:
    watched.open("redoc")
    page = watched.page
    page.wait_for_selector("h1", timeout=20_000)
    page.wait_for_function(
        "() => document.body.innerText.includes('/api/v1/analyze')", timeout=20_000
    )
    assert "Observatory" in page.inner_text("h1")
    watched.screenshot("docs-redoc")
    # ReDoc's sidebar credit shows its logo from its CDN, unconditionally: the policy blocks
    # the load (Chromium logs the refusal, no request is made) and ReDoc hides the image.
    blocked = [e for e in watched.errors if REDOC_LOGO in e and "Content Security Policy" in e]
    assert len(blocked) <= 1
    watched.errors = [e for e in watched.errors if e not in blocked]
    assert page.locator(f"img[src='{REDOC_LOGO}']").count() == 0
    watched.assert_clean()
