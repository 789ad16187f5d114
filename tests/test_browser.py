"""End to end in a real browser: Debian's Chromium driven by Playwright, real models.

The app runs as `make run` serves it (UI and API on one port). Each test
saves a screenshot under test-artifacts/ (CI keeps them; look at them).
.ci/run installs chromium; on a machine without it these tests are skipped
with a message saying how to install it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import ARTIFACTS, app_page, chromium, need_chromium
from tests.realenv import real_settings, served

pytestmark = pytest.mark.real
DATA = Path(__file__).parent / "data"
MEMOS = Path(__file__).parent.parent / "bench" / "data" / "answers" / "memos"
need_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(real_settings(tmp_path_factory.mktemp("web") / "home")) as running:
        yield running


@pytest.fixture(scope="module")
def page(server):
    with chromium() as browser, app_page(browser, server[0]) as page:
        yield page


def _ask(page, text: str, files: tuple[Path, ...] = ()) -> str:
    """Send a message and return the chat's text once the reply is complete."""
    if files:
        page.locator("#input input[type=file]").set_input_files([str(f) for f in files])
        page.locator('#input [aria-label="File thumbnail"]').first.wait_for()  # uploaded
    box = page.locator("#input textarea")
    box.fill(text)
    box.press("Enter")
    page.locator("#input textarea[disabled]").wait_for()  # the turn has started...
    page.locator("#input textarea:not([disabled])").wait_for(timeout=180_000)  # ...and ended
    return page.locator("#chat").inner_text()


def test_a_typed_question_streams_a_reply_with_its_route_badge(page):
    page.locator("#input textarea").fill("What is the capital of France?")
    page.locator("#input textarea").press("Enter")
    # Streamed: part of the reply is on the page while the box is still locked.
    page.locator("#chat .bot").first.wait_for()
    assert page.locator("#input textarea[disabled]").count() == 1
    page.locator("#input textarea:not([disabled])").wait_for()
    page.screenshot(path=ARTIFACTS / "1-chat.png", full_page=True)
    chat = page.locator("#chat").inner_text()
    assert "Paris" in chat and "smollm2-135m-instruct · text" in chat


def test_an_uploaded_wav_is_transcribed(page):
    chat = _ask(page, "transcribe this", (DATA / "speech_en.wav",))
    page.screenshot(path=ARTIFACTS / "2-speech.png", full_page=True)
    assert "whisper-base · asr" in chat
    assert "fox" in chat.lower() and "lazy" in chat.lower()


def test_a_voice_memo_sent_alone_names_its_chat_by_what_was_heard(page):
    page.locator("#new-chat").click()
    page.locator("#chat .placeholder-content").wait_for()
    memo = MEMOS / "remind-me-to-water-the-tomato-plants-on-saturday.wav"
    page.locator("#input input[type=file]").set_input_files([str(memo)])
    page.locator('#input [aria-label="File thumbnail"]').first.wait_for()
    page.locator("#input textarea").press("Enter")  # no words: the recording is the message
    page.locator("#input textarea[disabled]").wait_for()
    page.locator("#input textarea:not([disabled])").wait_for(timeout=180_000)
    page.screenshot(path=ARTIFACTS / "2-memo.png", full_page=True)
    assert "To remember: water the tomato plants on Saturday." in page.locator("#chat").inner_text()
    # The sidebar names the chat by what was heard (it said "New chat" for good).
    named = page.locator("#chat-list label", has_text="water the tomato plants")
    named.wait_for(timeout=10_000)
    assert named.inner_text().strip().startswith("Remind me to water"), named.inner_text()


def test_an_uploaded_picture_is_read_and_answered(page):
    import skimage

    photo = Path(skimage.__file__).parent / "data" / "chelsea.png"
    chat = _ask(page, "What animal is this?", (photo,))
    page.screenshot(path=ARTIFACTS / "3-picture.png", full_page=True)
    assert "efficientnet-lite0+rapidocr" in chat, chat[-500:]
    # The answer comes first, then the readers' findings: a cat class leads them.
    seen = chat.split("chelsea.png: looks like ")[-1].split(" (")[0]
    assert seen in {"tabby", "tiger cat", "Egyptian cat"}
    # The photo shows in the chat: the upload is served back to this browser
    # (assistant/web/owners.py keeps it from every other one).
    shown = page.locator("#chat img").first
    assert shown.evaluate("img => img.complete && img.naturalWidth") == 451
    # (Whether the 135M model then says "cat" depends on the chat so far: once it
    # said "leopard". tests/test_real_vision.py checks the answer on a fresh chat.)


def test_a_picture_is_drawn_with_a_progress_bar_and_shown(page):
    # 100 steps (a few seconds on a CPU), so the progress bar is on screen long enough to see.
    from playwright.sync_api import expect

    page.get_by_text("Pictures: steps, guidance, seed, size, edits").click()
    steps = page.locator("#steps input")
    # Typed too early, the box's own first value (0) overwrote it: wait for that first.
    expect(steps).to_have_value("0")
    page.wait_for_timeout(300)
    steps.fill("100")
    steps.press("Tab")
    page.wait_for_timeout(300)
    expect(steps).to_have_value("100")
    seen_progress = []
    box = page.locator("#input textarea")
    box.fill("draw a red circle on a blue background")
    box.press("Enter")
    page.locator("#input textarea[disabled]").wait_for()
    while page.locator("#input textarea[disabled]").count():
        text = page.locator("#chat").inner_text()
        if "/100" in text:
            seen_progress.append(text)
        page.wait_for_timeout(50)
    page.screenshot(path=ARTIFACTS / "5-drawing.png", full_page=True)
    chat = page.locator("#chat").inner_text()
    assert "demo-scenes · image_generation" in chat, chat[-500:]
    assert "Drew “draw a red circle on a blue background”" in chat
    # Only the steps were changed: the untouched Guidance box keeps the model's own (3).
    assert "100 steps, guidance 3," in chat, chat[-500:]
    drawn = page.locator("#chat img").last
    drawn.wait_for()
    assert drawn.evaluate("img => img.complete && img.naturalWidth") == 256  # 32×32, ×8
    assert seen_progress, "no step of the progress bar was seen"


def test_the_costs_tab_shows_the_new_rows(page, server):
    page.get_by_role("tab", name="Costs").click()
    page.locator("#costs-refresh").click()
    table = page.locator("#costs-models")
    table.get_by_text("whisper-base").first.wait_for()
    page.screenshot(path=ARTIFACTS / "4-costs.png", full_page=True)
    text = table.inner_text()
    assert "smollm2-135m-instruct" in text and "efficientnet-lite0+rapidocr" in text
    rows = [r for r in server[1].ledger.rows() if r["source"] == "ui"]
    assert {r["task"] for r in rows} >= {"text", "asr", "vision"}
