"""The page's example picker against the service's own examples (not a stand-in)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Watched

pytestmark = pytest.mark.browser


def test_a_shipped_example_is_chosen_and_analysed(watched: Watched) -> None:
    watched.open()
    page = watched.page
    page.wait_for_selector("#examples:not([hidden])")
    assert page.locator("#example option").count() >= 11  # the prompt and ten examples
    page.select_option("#example", "prompt-injection")
    page.wait_for_function("() => document.querySelector('#conversation').value.length > 0")
    assert "security.flags" in page.inner_text("#example-info")
    page.click("#submit-button")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.locator("#transcript > li").count() == 8
    assert "prompt_injection" in page.inner_text("#security").replace(" ", "_").lower()
    watched.assert_clean()
