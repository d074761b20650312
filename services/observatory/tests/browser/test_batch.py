"""The batch view in Chromium: a ChatGPT export with many conversations submitted as one
batch, live progress, cancel, the aggregate, opening an item and coming back, exports, the
share link, hostile titles, polling without the events stream, accessibility and phone
width."""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.analysis import analyze
from app.core.cancellation import CancelToken
from app.keys import service as keys
from tests.browser.conftest import ThreadedService, Watched
from tests.browser.test_page import _serious
from tests.servers import SERVICE
from tests.workers import Release, blocking_analysis

pytestmark = pytest.mark.browser

HOSTILE_TITLE = "<img src=x onerror=\"window.__pwned = 'title'; alert(1)\">"

BAKING = [
    ("user", "My sourdough starter smells sour and the sourdough bread does not rise. Why?"),
    ("assistant", "A sourdough starter needs regular feeding: flour and water every day."),
    ("user", "I feed the sourdough starter daily with rye flour, but the dough stays flat."),
    (
        "assistant",
        "Then proofing is too short: let the sourdough dough proof longer in a warm spot.",
    ),
    ("user", "Great, that worked! The sourdough loaf finally rose. Thank you so much."),
    ("assistant", "Glad it helped. Keep the sourdough starter warm and the bread will rise."),
]


def chatgpt_conversation(title: str, turns: list[tuple[str, str]], start: float) -> dict[str, Any]:
    """One conversation of a ChatGPT ``conversations.json``: a linear tree of messages."""
    mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "parent": None}}
    parent = "root"
    for i, (role, text) in enumerate(turns):
        node = f"{start:.0f}-{i}"
        mapping[parent]["children"] = [node]
        mapping[node] = {
            "id": node,
            "parent": parent,
            "children": [],
            "message": {
                "id": node,
                "author": {"role": role, "name": None, "metadata": {}},
                "create_time": start + 30 * i,
                "content": {"content_type": "text", "parts": [text]},
                "status": "finished_successfully",
                "metadata": {},
                "recipient": "all",
            },
        }
        parent = node
    return {"title": title, "create_time": start, "mapping": mapping, "current_node": parent}


def export(path: Path, titles: list[str]) -> Path:
    conversations = [
        chatgpt_conversation(title, BAKING, 1772446500.0 + 3600 * i)
        for i, title in enumerate(titles)
    ]
    path.write_text(json.dumps(conversations), encoding="utf-8")
    return path


TITLES = [f"Sourdough question {n}" for n in range(1, 7)] + [HOSTILE_TITLE]


@pytest.fixture
def conversations_json(tmp_path: Path) -> Path:
    return export(tmp_path / "conversations.json", TITLES)


@dataclass(frozen=True)
class HoldMarked:
    """Holds a conversation that says HOLD until released; analyses the others at once (in
    a worker process, like ``tests.workers.BlockingAnalysis``)."""

    release: Release

    def __call__(self, conversation: Any, options: Any, token: CancelToken) -> dict[str, Any]:
        if any("HOLD" in m.text for m in conversation.messages):
            while not self.release.is_set():
                time.sleep(0.005)
                token.check()
        return analyze(conversation, options, token)


def submit(watched: Watched, *files: Path) -> str:
    """Choose ``files`` for the batch and submit them; the batch id."""
    page = watched.page
    page.set_input_files("#batch-files", [str(f) for f in files])
    page.wait_for_function(
        "() => document.querySelector('#batch-chosen').textContent.includes('conversation')"
    )
    page.click("#batch-submit-button")
    page.wait_for_function("() => location.hash.startsWith('#/batch/')", timeout=30_000)
    return str(page.evaluate("location.hash")).rsplit("/", 1)[1]


def wait_until_ended(watched: Watched) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = watched.page
    try:
        page.wait_for_function(
            "() => /^(Complete|Cancelled)/.test("
            "document.querySelector('#batch-progress-text').textContent)",
            timeout=60_000,
        )
        page.wait_for_selector("#batch-aggregate:not([hidden])")
    except PlaywrightTimeout:
        shown = page.inner_text("#batch-progress-text"), statuses(watched)
        raise AssertionError(f"the batch did not end: {shown} {watched.errors}") from None


def statuses(watched: Watched) -> list[str]:
    return [
        s.strip()
        for s in watched.page.locator("#batch-items tbody tr td:nth-child(3)").all_inner_texts()
    ]


def test_an_export_becomes_one_batch_with_live_progress_and_an_aggregate(
    watched: Watched, service: ThreadedService, conversations_json: Path
) -> None:
    release = Release()
    previous = service.hold_analyses(blocking_analysis(release))
    try:
        watched.open()
        page = watched.page
        page.set_input_files("#batch-files", str(conversations_json))
        page.wait_for_function(
            "() => document.querySelector('#batch-chosen').textContent.includes('7 conversations')"
        )
        assert "Sourdough question 1" in page.inner_text("#batch-chosen")
        page.click("#batch-submit-button")
        page.wait_for_selector("#batch:not([hidden])", timeout=30_000)
        page.wait_for_function(
            "() => /^(Queued|Running)/.test("
            "document.querySelector('#batch-progress-text').textContent)"
        )
        assert page.is_visible("#batch-cancel")
        assert page.locator("#batch-items tbody tr").count() == 7
        assert set(statuses(watched)) <= {"Pending", "Processing"}
        assert page.evaluate("document.activeElement.id") == "batch-heading"
        # What is still queued moves to another priority.
        page.select_option("#batch-priority", "high")
        page.click("#batch-priority-apply")
        page.wait_for_function(
            "() => document.querySelector('#announce').textContent.includes('high priority')"
        )
        moved = re.match(r"(\d+) queued", page.inner_text("#announce"))
        assert moved and int(moved.group(1)) >= 1, page.inner_text("#announce")
        from axe_playwright_python.sync_playwright import Axe

        assert _serious(Axe().run(page)) == []
        watched.screenshot("batch-running")
    finally:
        release.set()
        service.hold_analyses(previous)
    wait_until_ended(watched)
    assert page.inner_text("#batch-progress-text").startswith("Complete: 7 of 7")
    assert page.evaluate("document.querySelector('#batch-progress-bar').value") == 1
    # Each item's status followed the stream to its end.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#batch-items tbody tr td:nth-child(3)')]"
        ".every(td => td.textContent.trim() === 'Completed')"
    )
    assert page.locator("#batch-items a.open-item").count() == 7
    assert page.is_hidden("#batch-cancel")

    # The aggregate: tone bars counting every conversation, the pattern types, a theme.
    tones = page.locator("#batch-charts section").first
    assert tones.locator("h4").inner_text() == "Overall tone"
    counts = [int(n.split()[0]) for n in tones.locator("td.num").all_inner_texts()]
    assert sum(counts) == 7
    assert tones.locator(".bar").count() == len(counts)
    assert page.locator("#batch-charts section").nth(1).locator("tbody tr").count() >= 1
    assert "sourdough" in page.inner_text("#batch-themes")
    assert page.locator("#batch-dynamics tbody tr").count() >= 3
    watched.screenshot("batch-desktop")

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    watched.screenshot("batch-phone")
    watched.assert_clean()


def test_an_export_given_to_the_single_form_is_offered_as_a_batch(
    watched: Watched, conversations_json: Path
) -> None:
    watched.open()
    page = watched.page
    page.set_input_files("#file", str(conversations_json))
    page.wait_for_selector("#many-hint:not([hidden])")
    assert "holds 7 conversations" in page.inner_text("#many-hint")
    page.click("#many-submit")
    page.wait_for_function("() => location.hash.startsWith('#/batch/')", timeout=30_000)
    wait_until_ended(watched)
    assert page.locator("#batch-items tbody tr").count() == 7
    watched.assert_clean()


def test_each_item_shows_its_own_status_while_the_batch_runs(
    watched: Watched, service: ThreadedService, tmp_path: Path
) -> None:
    held = [("user", "HOLD this one, please."), ("assistant", "Holding it for you.")]
    conversations = [
        chatgpt_conversation(f"Quick {n}", BAKING, 1772446500.0 + 3600 * n) for n in range(3)
    ] + [chatgpt_conversation("Held", held, 1772460000.0)]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(conversations), encoding="utf-8")
    release = Release()
    previous = service.hold_analyses(HoldMarked(release))
    try:
        watched.open()
        submit(watched, path)
        page = watched.page
        page.wait_for_function(
            "() => [...document.querySelectorAll('#batch-items tbody td:nth-child(3)')]"
            ".map(td => td.textContent.trim()).join() === "
            "'Completed,Completed,Completed,Processing'",
            timeout=30_000,
        )
        # The progress line and the rows are updated from the same event, one after the
        # other: wait for the line too rather than read it at once.
        page.wait_for_function(
            "() => document.querySelector('#batch-progress-text').textContent"
            ".trim().startsWith('Running: 3 of 4')",
            timeout=30_000,
        )
        assert page.locator("#batch-items a.open-item").count() == 3
        assert page.is_visible("#batch-cancel")
        assert page.is_hidden("#batch-aggregate")
    finally:
        release.set()
        service.hold_analyses(previous)
    wait_until_ended(watched)
    assert statuses(watched) == ["Completed"] * 4
    watched.assert_clean()


def test_an_item_opens_in_the_result_view_and_back(
    watched: Watched, conversations_json: Path
) -> None:
    watched.open()
    batch_id = submit(watched, conversations_json)
    wait_until_ended(watched)
    page = watched.page
    second = page.locator("#batch-items a.open-item").nth(1)
    analysis_id = second.get_attribute("data-analysis")
    second.click()
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.evaluate("location.hash") == f"#/analysis/{analysis_id}"
    assert page.is_hidden("#batch")
    # The transcript of what this tab submitted, beside the item's result.
    assert page.locator("#transcript > li").count() == 6
    assert "sourdough starter smells sour" in page.inner_text("#msg-0")
    assert page.locator("#findings button.finding").count() >= 1

    page.click("#batch-back-link")
    page.wait_for_selector("#batch:not([hidden])")
    assert page.evaluate("location.hash") == f"#/batch/{batch_id}"
    assert page.is_hidden("#result")
    page.wait_for_function(
        f"() => document.activeElement.dataset.analysis === {json.dumps(analysis_id)}"
    )

    # Keyboard: the focused link opens its item with Enter; the browser's Back returns.
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    page.go_back()
    page.wait_for_selector("#batch:not([hidden])")
    assert page.is_hidden("#result")
    watched.assert_clean()


def test_the_share_link_reloads_the_batch(
    watched: Watched, browser: Any, conversations_json: Path
) -> None:
    watched.open()
    batch_id = submit(watched, conversations_json)
    wait_until_ended(watched)
    page = watched.page
    share = page.input_value("#batch-share-link")
    assert share == f"{watched.base}/#/batch/{batch_id}"
    page.reload()
    wait_until_ended(watched)
    assert page.locator("#batch-items tbody tr").count() == 7

    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(share)
        fresh.wait_for_selector("#batch-aggregate:not([hidden])", timeout=30_000)
        assert fresh.inner_text("#batch-progress-text").startswith("Complete")
        assert fresh.locator("#batch-items a.open-item").count() == 7
        fresh.locator("#batch-items a.open-item").first.click()
        fresh.wait_for_selector("#result:not([hidden])")
        # Another browser: the result, without the transcript the service never kept.
        assert fresh.locator("#transcript > li").count() == 0
        assert fresh.is_visible("#batch-back-link")
    finally:
        other.close()
    watched.assert_clean()


def test_a_hostile_title_renders_as_text(watched: Watched, tmp_path: Path) -> None:
    hostile = export(tmp_path / "conversations.json", [HOSTILE_TITLE, "<script>alert(2)</script>"])
    watched.open()
    page = watched.page
    page.set_input_files("#batch-files", str(hostile))
    page.wait_for_function(
        "() => document.querySelector('#batch-chosen').textContent.includes('2 conversations')"
    )
    assert HOSTILE_TITLE in page.inner_text("#batch-chosen")
    submit(watched, hostile)
    wait_until_ended(watched)
    refs = page.locator("#batch-items tbody th").all_inner_texts()
    assert refs == [HOSTILE_TITLE, "<script>alert(2)</script>"]
    page.locator("#batch-items a.open-item").first.click()
    page.wait_for_selector("#result:not([hidden])")
    page.click("#batch-back-link")
    page.wait_for_selector("#batch:not([hidden])")
    assert page.locator("#batch img, #batch-submit img, #batch script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert watched.dialogs == []
    watched.assert_clean()


def test_cancel_stops_the_batch(
    watched: Watched, service: ThreadedService, conversations_json: Path
) -> None:
    release = Release()
    previous = service.hold_analyses(blocking_analysis(release))
    try:
        watched.open()
        batch_id = submit(watched, conversations_json)
        page = watched.page
        page.wait_for_selector("#batch-cancel", state="visible")
        page.click("#batch-cancel")
        wait_until_ended(watched)
    finally:
        release.set()
        service.hold_analyses(previous)
    assert page.inner_text("#batch-progress-text").startswith("Cancelled")
    assert page.is_hidden("#batch-cancel")
    assert "Cancelled" in statuses(watched)
    body = httpx.get(f"{service.base}/api/v1/analyze/batch/{batch_id}").json()
    assert body["status"] == "cancelled"
    watched.assert_clean()


def test_several_files_make_one_batch(watched: Watched, tmp_path: Path) -> None:
    first = tmp_path / "first.txt"
    first.write_text("Human: Is the bridge open?\nAI: Yes, since Monday.\n", encoding="utf-8")
    second = export(tmp_path / "second.json", ["Bread", "More bread"])
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    watched.open()
    submit(watched, first, second, empty)
    page = watched.page
    assert "1 could not be accepted" in page.inner_text("#batch-chosen")
    wait_until_ended(watched)
    refs = page.locator("#batch-items tbody th").all_inner_texts()
    assert refs == ["first.txt", "Bread", "More bread", "empty.txt"]
    assert statuses(watched) == ["Completed", "Completed", "Completed", "Rejected"]
    # The reason an item was refused, next to it.
    assert "empty" in page.locator("#batch-items tbody tr").nth(3).inner_text()

    # Only the items of one status.
    page.select_option("#batch-filter", "rejected")
    page.wait_for_function("() => document.querySelectorAll('#batch-items tbody tr').length === 1")
    assert page.locator("#batch-items tbody th").all_inner_texts() == ["empty.txt"]
    assert page.inner_text("#batch-shown") == "1 of 4 conversations are rejected."
    page.select_option("#batch-filter", "completed")
    page.wait_for_function("() => document.querySelectorAll('#batch-items tbody tr').length === 3")
    page.select_option("#batch-filter", "")
    page.wait_for_function("() => document.querySelectorAll('#batch-items tbody tr').length === 4")
    watched.assert_clean()


def test_files_dropped_on_the_form_are_chosen(watched: Watched) -> None:
    watched.open()
    page = watched.page
    transfer = page.evaluate_handle(
        """() => {
            const transfer = new DataTransfer();
            const one = JSON.stringify([{title: "Dropped", mapping: {}}, {title: "Also", mapping: {}}]);
            transfer.items.add(new File([one], "conversations.json", {type: "application/json"}));
            transfer.items.add(new File(["Human: Hi\\nAI: Hello"], "chat.txt", {type: "text/plain"}));
            return transfer;
        }"""
    )
    page.dispatch_event("#batch-form", "drop", {"dataTransfer": transfer})
    page.wait_for_function(
        "() => document.querySelector('#batch-chosen').textContent.includes('3 conversations')"
    )
    assert "2 files" in page.inner_text("#batch-chosen")
    assert page.evaluate("document.querySelector('#batch-files').files.length") == 2
    watched.assert_clean()


def test_an_export_is_sent_without_what_the_service_does_not_read(
    watched: Watched, service: ThreadedService, tmp_path: Path
) -> None:
    """Tool calls, hidden context, attachments and per-message metadata stay in the file;
    the conversation the service parses is the same as from the whole export."""
    fixture = SERVICE / "tests" / "fixtures" / "exports" / "chatgpt_conversations.json"
    original = json.loads(fixture.read_text(encoding="utf-8"))[0]
    padded = json.loads(json.dumps(original))
    for node in padded["mapping"].values():
        if node.get("message"):
            node["message"]["metadata"]["citations"] = ["x" * 2000]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([padded, original]), encoding="utf-8")
    page = watched.page
    sent: list[int] = []
    page.on(
        "request",
        lambda r: (
            sent.append(len(r.post_data or ""))
            if r.method == "POST" and r.url.endswith("/analyze/batch")
            else None
        ),
    )
    watched.open()
    submit(watched, path)
    wait_until_ended(watched)
    assert sent and sent[0] < path.stat().st_size / 4
    ids = [
        page.locator("#batch-items a.open-item").nth(i).get_attribute("data-analysis")
        for i in range(2)
    ]
    direct = httpx.post(
        f"{service.base}/api/v1/analyze", json={"data": original}, headers={"Prefer": "wait=30"}
    ).json()
    for analysis_id in ids:
        item = httpx.get(f"{service.base}/api/v1/analyze/{analysis_id}").json()
        assert item["fingerprint"] == direct["fingerprint"]
        assert item["message_count"] == direct["message_count"]
    watched.assert_clean()


def test_hundreds_of_conversations_are_paged(watched: Watched, tmp_path: Path) -> None:
    short = [("user", "Is the bridge open today?"), ("assistant", "Yes, it reopened on Monday.")]
    conversations = [
        chatgpt_conversation(f"Bridge {n}", short, 1772446500.0 + 60 * n) for n in range(120)
    ]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(conversations), encoding="utf-8")
    watched.open()
    submit(watched, path)
    wait_until_ended(watched)
    page = watched.page
    assert page.inner_text("#batch-progress-text").startswith("Complete: 120 of 120")
    assert page.locator("#batch-items tbody tr").count() == 50
    assert page.inner_text("#batch-page") == "1–50 of 120"
    assert page.is_disabled("#batch-previous")
    page.click("#batch-next")
    page.wait_for_function(
        "() => document.querySelector('#batch-page').textContent === '51–100 of 120'"
    )
    assert page.locator("#batch-items tbody th").first.inner_text() == "Bridge 50"
    page.click("#batch-next")
    page.wait_for_function(
        "() => document.querySelector('#batch-page').textContent === '101–120 of 120'"
    )
    assert page.locator("#batch-items tbody tr").count() == 20
    assert page.is_disabled("#batch-next")
    # A status across every page, without paging.
    page.select_option("#batch-filter", "completed")
    page.wait_for_function(
        "() => document.querySelectorAll('#batch-items tbody tr').length === 120"
    )
    assert page.is_hidden("#batch-pager")
    watched.assert_clean()


def test_an_export_downloads_every_item(watched: Watched, conversations_json: Path) -> None:
    watched.open()
    batch_id = submit(watched, conversations_json)
    wait_until_ended(watched)
    with watched.page.expect_download() as info:
        watched.page.click("button[data-batch-export='jsonl']")
    download = info.value
    assert download.suggested_filename == f"batch-{batch_id}.jsonl"
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == TITLES
    watched.assert_clean()


def test_progress_is_polled_without_the_events_stream(
    watched: Watched, conversations_json: Path
) -> None:
    page = watched.page
    page.route(re.compile(r".*/batch/[^/]+/events$"), lambda route: route.abort())
    watched.open()
    submit(watched, conversations_json)
    wait_until_ended(watched)
    assert page.inner_text("#batch-progress-text").startswith("Complete: 7 of 7")
    # Chromium logs the refused stream as a failed load.
    watched.errors = [e for e in watched.errors if "/events" not in e]
    watched.assert_clean()


def test_too_many_conversations_name_the_limit(watched: Watched, tmp_path: Path) -> None:
    short = [("user", "Hi"), ("assistant", "Hello")]
    path = tmp_path / "conversations.json"
    conversations = [chatgpt_conversation(f"C{n}", short, 1.0e9 + n) for n in range(1001)]
    path.write_text(json.dumps(conversations), encoding="utf-8")
    watched.open()
    page = watched.page
    page.set_input_files("#batch-files", str(path))
    page.wait_for_function(
        "() => document.querySelector('#batch-chosen').textContent.includes('1,001')"
    )
    page.click("#batch-submit-button")
    page.wait_for_selector("#batch-error:not([hidden])", timeout=30_000)
    assert "at most 1000 conversations" in page.inner_text("#batch-error")
    assert page.is_hidden("#batch")
    watched.errors = [e for e in watched.errors if "400" not in e]
    watched.assert_clean()


def test_an_unknown_batch_says_so(watched: Watched) -> None:
    watched.open("#/batch/00000000-0000-4000-8000-000000000000")
    watched.page.wait_for_function(
        "() => document.querySelector('#batch-progress-text').textContent.includes('No batch')"
    )
    watched.errors = [e for e in watched.errors if "404" not in e]
    watched.assert_clean()


def test_no_serious_accessibility_violations(watched: Watched, conversations_json: Path) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    watched.open()
    page = watched.page
    submit(watched, conversations_json)
    wait_until_ended(watched)
    assert _serious(axe.run(page)) == []
    page.set_viewport_size({"width": 390, "height": 844})
    assert _serious(axe.run(page)) == []
    page.locator("#batch-items a.open-item").first.click()
    page.wait_for_selector("#result:not([hidden])")
    assert _serious(axe.run(page)) == []
    watched.assert_clean()


def new_key(service: ThreadedService) -> str:
    """An API key stored in the service's database (through an engine of the test's own)."""

    async def create() -> str:
        engine = create_async_engine(service.app.state.service.settings.database_url)
        try:
            async with async_sessionmaker(engine)() as session, session.begin():
                return (await keys.create(session, name="browser")).secret
        finally:
            await engine.dispose()

    # Playwright's loop runs in this thread: the key is made in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create()).result()


def test_the_api_key_applies_to_the_batch(
    watched: Watched, service: ThreadedService, conversations_json: Path
) -> None:
    secret = new_key(service)
    watched.open()
    page = watched.page
    page.click("#access summary")
    page.fill("#api-key", secret)
    page.dispatch_event("#api-key", "change")
    batch_id = submit(watched, conversations_json)
    wait_until_ended(watched)
    # The batch belongs to the key: without it the service does not know it.
    url = f"{service.base}/api/v1/analyze/batch/{batch_id}"
    assert httpx.get(url).status_code == 404
    assert httpx.get(url, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    with page.expect_download() as info:
        page.click("button[data-batch-export='csv']")
    assert Path(info.value.path()).read_text(encoding="utf-8").startswith("item_position")
    page.locator("#batch-items a.open-item").first.click()
    page.wait_for_selector("#result:not([hidden])")
    watched.assert_clean()
