"""The page at ``/`` in Chromium: submit, progress, result, highlights, exports, cancel,
hostile markup, accessibility, phone width, and no request beyond the service."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ThreadedService, Watched
from tests.servers import SERVICE
from tests.workers import Release, blocking_analysis

pytestmark = pytest.mark.browser

TRANSCRIPT = (
    "Human: Why does my Python loop never end? I am getting frustrated.\n"
    "AI: Because the counter is never incremented inside the loop body.\n"
    "Human: That is wrong, I do increment it. This is terrible.\n"
    "AI: You are right, sorry: the increment is inside the if branch, so it is skipped.\n"
    "Human: Oh I see, thanks! That makes sense now, great help.\n"
    "AI: Glad it helped. Move the increment out of the branch and it will stop.\n"
)

# Markup that would run script or open a dialog if any of it reached the DOM as HTML.
HOSTILE = (
    "Human: <script>window.__pwned = 'script'; alert('script')</script> does this run?\n"
    "AI: <img src=x onerror=\"window.__pwned = 'img'; alert('img')\"> no.\n"
    "Human: [click me](javascript:alert('link')) <a href=\"javascript:alert('a')\">link</a>\n"
    'AI: <svg onload="alert(\'svg\')"></svg><iframe src="javascript:alert(1)"></iframe> ok?\n'
    "Human: \"><b onmouseover=alert('b')>bold</b> thanks, that makes sense!\n"
)


def analyse(watched: Watched, text: str) -> str:
    """Paste ``text``, submit, wait for the result; the analysis id."""
    page = watched.page
    page.fill("#conversation", text)
    page.click("#submit-button")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    match = re.fullmatch(r"#/analysis/([0-9a-f-]+)", page.evaluate("location.hash"))
    assert match, page.evaluate("location.hash")
    return match.group(1)


def test_paste_shows_progress_then_the_result(watched: Watched, service: ThreadedService) -> None:
    release = Release()
    previous = service.hold_analyses(blocking_analysis(release))
    try:
        watched.open()
        page = watched.page
        page.fill("#conversation", TRANSCRIPT)
        page.click("#submit-button")
        page.wait_for_selector("#progress:not([hidden])")
        page.wait_for_function(
            "() => document.querySelector('#progress-text').textContent.startsWith('Running')"
        )
        assert page.is_visible("#cancel")
        assert page.is_hidden("#result")
    finally:
        release.set()
        service.hold_analyses(previous)
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.is_hidden("#progress")

    assert page.locator("#transcript > li").count() == 6
    first = page.locator("#msg-0")
    assert "Human" in first.inner_text() and "never end" in first.inner_text()
    assert page.locator("#tone-chart svg polyline").count() == 2
    assert page.locator("#tone-chart svg circle").count() == 6
    assert page.locator("#speakers tbody tr").count() == 2
    assert page.locator("#findings button.finding").count() >= 2
    assert page.locator("#summary li").count() >= 3
    assert re.search(r"\d+ %", page.inner_text("#confidence"))
    assert "unavailable" in page.inner_text("#observer")
    assert page.locator(".timeline button").count() >= 1
    share = page.input_value("#share-link")
    assert re.fullmatch(rf"{re.escape(watched.base)}/#/analysis/[0-9a-f-]+", share)
    watched.screenshot("result-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    # Nothing wider than the phone's screen: the tables scroll inside their own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    watched.screenshot("result-phone")
    watched.assert_clean()


def test_a_finding_highlights_the_messages_it_cites(watched: Watched) -> None:
    watched.open()
    analyse(watched, TRANSCRIPT)
    page = watched.page
    finding = page.locator("#findings button.finding").first
    cited = [int(i) for i in finding.get_attribute("data-messages").split(",")]
    assert cited
    finding.click()
    highlighted = page.eval_on_selector_all(
        ".message.highlight", "nodes => nodes.map(n => Number(n.id.slice(4)))"
    )
    assert highlighted == cited
    assert finding.get_attribute("aria-pressed") == "true"
    assert page.evaluate("document.activeElement.id") == f"msg-{cited[0]}"

    # Keyboard: another finding, by Tab and Enter, moves the highlight.
    moment_or_shift = page.locator("#findings button.finding").nth(1)
    moment_or_shift.focus()
    page.keyboard.press("Enter")
    second = [int(i) for i in moment_or_shift.get_attribute("data-messages").split(",")]
    highlighted = page.eval_on_selector_all(
        ".message.highlight", "nodes => nodes.map(n => Number(n.id.slice(4)))"
    )
    assert highlighted == second
    assert finding.get_attribute("aria-pressed") == "false"
    watched.assert_clean()


@pytest.mark.parametrize(
    ("button", "suffix", "check"),
    [
        ("json", "json", lambda text: json.loads(text)["status"] == "completed"),
        ("csv", "csv", lambda text: text.splitlines()[0].count(",") >= 2),
        ("markdown", "md", lambda text: text.lstrip().startswith("#")),
    ],
)
def test_export_downloads_a_file(watched: Watched, button: str, suffix: str, check: Any) -> None:
    watched.open()
    analysis_id = analyse(watched, TRANSCRIPT)
    with watched.page.expect_download() as info:
        watched.page.click(f"button[data-export='{button}']")
    download = info.value
    assert download.suggested_filename == f"analysis-{analysis_id}.{suffix}"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert check(text), text[:500]
    watched.assert_clean()


def test_cancel_stops_a_running_analysis(watched: Watched, service: ThreadedService) -> None:
    release = Release()
    previous = service.hold_analyses(blocking_analysis(release))
    try:
        watched.open()
        page = watched.page
        page.fill("#conversation", TRANSCRIPT)
        page.click("#submit-button")
        page.wait_for_function(
            "() => document.querySelector('#progress-text').textContent.startsWith('Running')"
        )
        analysis_id = page.evaluate("location.hash").rsplit("/", 1)[1]
        page.click("#cancel")
        page.wait_for_function(
            "() => document.querySelector('#progress-text').textContent.includes('cancelled')",
            timeout=15_000,
        )
    finally:
        release.set()
        service.hold_analyses(previous)
    assert page.is_hidden("#result")
    status = httpx.get(f"{service.base}/api/v1/analyze/{analysis_id}").json()["status"]
    assert status == "cancelled"
    watched.assert_clean()


def test_hostile_markup_renders_as_text(watched: Watched) -> None:
    watched.open()
    analyse(watched, HOSTILE)
    page = watched.page
    page.locator("#findings button.finding, #moments button.finding").first.click()
    page.hover("#msg-4")
    assert page.evaluate("window.__pwned") is None
    assert watched.dialogs == []
    # Not one element came from the conversation: no script, image, frame, SVG, bold or
    # link in the transcript, and no javascript: URL anywhere in the document.
    assert page.locator("#transcript script, #transcript img, #transcript iframe").count() == 0
    assert page.locator("#transcript svg, #transcript b, #transcript a").count() == 0
    assert page.locator("[href^='javascript' i], [src^='javascript' i]").count() == 0
    assert "<script>window.__pwned" in page.inner_text("#msg-0")
    assert "<img src=x onerror=" in page.inner_text("#msg-1")
    assert "javascript:alert('link')" in page.inner_text("#msg-2")
    watched.screenshot("hostile-markup")
    watched.assert_clean()


def test_the_shared_link_reloads_the_result(watched: Watched, browser: Any) -> None:
    watched.open()
    analysis_id = analyse(watched, TRANSCRIPT)
    page = watched.page
    page.reload()
    page.wait_for_selector("#result:not([hidden])")
    assert page.locator("#transcript > li").count() == 6  # kept in this tab

    # Another browser: the result, without the transcript the service never kept.
    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(f"{watched.base}/#/analysis/{analysis_id}")
        fresh.wait_for_selector("#result:not([hidden])")
        assert fresh.locator("#findings button.finding").count() >= 2
        assert fresh.locator("#transcript > li").count() == 0
        assert "keeps no conversation text" in fresh.inner_text("#transcript-note")
    finally:
        other.close()
    watched.assert_clean()


def test_an_unknown_id_says_so(watched: Watched) -> None:
    watched.open("#/analysis/00000000-0000-4000-8000-000000000000")
    watched.page.wait_for_function(
        "() => document.querySelector('#progress-text').textContent.includes('No analysis')"
    )
    # The 404 of the lookup is the expected answer, logged by Chromium as a failed load.
    watched.errors = [e for e in watched.errors if "404" not in e]
    watched.assert_clean()


def test_an_input_error_is_shown_next_to_the_form(watched: Watched) -> None:
    watched.open()
    page = watched.page
    page.click("#submit-button")
    assert "Paste a conversation" in page.inner_text("#form-error")
    page.fill("#conversation", "just one line without any speaker")
    page.click("#submit-button")
    page.wait_for_selector("#form-error:not([hidden])")
    assert page.is_hidden("#result")
    watched.errors = [e for e in watched.errors if "400" not in e]
    watched.assert_clean()


def _serious(results: Any) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def test_no_serious_accessibility_violations(watched: Watched) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    watched.open()
    page = watched.page
    assert _serious(axe.run(page)) == []
    analyse(watched, TRANSCRIPT)
    page.locator("#findings button.finding").first.click()
    assert _serious(axe.run(page)) == []
    page.set_viewport_size({"width": 390, "height": 844})
    assert _serious(axe.run(page)) == []
    watched.assert_clean()


def test_the_form_works_from_the_keyboard(watched: Watched) -> None:
    watched.open()
    page = watched.page
    page.focus("#conversation")
    page.keyboard.insert_text(TRANSCRIPT)
    # Tab through the form to the submit button, then Enter.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "submit-button":
            break
    else:
        raise AssertionError("the submit button is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.evaluate("document.activeElement.id") == "result-heading"
    watched.assert_clean()


def test_an_opened_file_is_analysed(watched: Watched) -> None:
    export = SERVICE / "tests" / "fixtures" / "exports" / "chatgpt_conversations.json"
    watched.open()
    page = watched.page
    page.set_input_files("#file", str(export))
    page.wait_for_function("() => document.querySelector('#conversation').value.length > 0")
    page.click("#submit-button")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.locator("#transcript > li").count() >= 2
    watched.assert_clean()


EXAMPLES = {
    "examples": [
        {
            "name": "sky",
            "title": "Why the sky is blue",
            "category": "education",
            "format": "text",
            "difficulty": "easy",
            "message_count": 6,
            "demonstrates": ["question_answer", "correction"],
        }
    ]
}


def test_an_example_is_chosen_and_analysed(watched: Watched) -> None:
    """Against the examples contract (answered here by the browser, not the service)."""
    detail = {
        **EXAMPLES["examples"][0],
        "content": TRANSCRIPT,
        "request": {"conversation_text": TRANSCRIPT, "options": {"pattern_types": ["dynamics"]}},
    }
    page = watched.page
    page.route(
        re.compile(r".*/examples$"),
        lambda route: route.fulfill(json=EXAMPLES),
    )
    page.route(re.compile(r".*/examples/sky$"), lambda route: route.fulfill(json=detail))
    watched.open()
    page.wait_for_selector("#examples:not([hidden])")
    page.select_option("#example", "sky")
    page.wait_for_function("() => document.querySelector('#conversation').value.length > 0")
    assert "question_answer" in page.inner_text("#example-info")
    page.uncheck("input[value='sentiment']")
    page.click("#submit-button")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    # The example's own request, with the options chosen on the page.
    assert page.is_hidden("#tone-section")
    assert page.locator("#speakers tbody tr").count() == 2
    watched.assert_clean()


def test_the_picker_shows_only_when_the_service_offers_examples(
    watched: Watched, service: ThreadedService
) -> None:
    r = httpx.get(f"{service.base}/examples")
    offered = r.status_code == 200 and bool(r.json().get("examples"))
    watched.open()
    assert watched.page.is_hidden("#examples") is not offered
    watched.assert_clean()
