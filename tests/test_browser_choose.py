"""Compare, Evaluate and Fine-tune in a real browser (issues #21, #22).

One app on a fresh ASSISTANT_HOME, driven by Debian's Chromium. The checks
read the rendered page: the columns' text, the vote and the leaderboard's
rows, the results table and the scatter's marks, the loss curve's marks
and the model card. Fine-tuning uses a tiny seeded llama (2 layers, SmolLM2's
tokenizer) registered in the home's catalog.json, so it trains in seconds
through the real code. Screenshots: test-artifacts/choose-*.png.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.browser import ARTIFACTS, app_page, chromium, need_chromium
from tests.realenv import real_settings, served, tiny_llama

pytestmark = pytest.mark.real
need_chromium()
SLOW = 300_000  # ms: cold loads and replies on a busy two-core machine
PAIR = ("smollm2-135m-instruct", "smollm2-135m-instruct-fp32")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("choose")
    settings = real_settings(root / "home")
    tiny = tiny_llama(root / "tiny")
    entry = {
        "id": "tiny-base",
        "name": "tiny test llama",
        "family": "text",
        "tasks": ["text"],
        "backend": "transformers",
        "default_for": [],
        "source": {"folder": str(tiny)},
        "license": "Apache-2.0",
        "params_m": 0.1,
        "size_mb": 7,
        "memory_mb": 20,
        "built": True,
        "context_window": 512,
    }
    settings.catalog_file.write_text(json.dumps({"models": [entry]}))
    with served(settings) as running:
        yield running


@pytest.fixture(scope="module")
def page(server):
    with chromium() as browser, app_page(browser, server[0]) as page:
        yield page


def test_compare_streams_two_blind_columns_and_a_vote_moves_the_leaderboard(page, server):
    page.get_by_role("tab", name="Compare").click()
    chosen = page.locator("#compare-models").inner_text()
    assert all(model in chosen for model in PAIR)  # the two defaults that load here
    page.locator("#compare-prompt textarea").fill("Name one fruit that is yellow.")
    page.locator("#compare-go").click()
    page.locator("#compare-votes").wait_for(state="visible", timeout=SLOW)
    page.screenshot(path=ARTIFACTS / "choose-1-compare.png", full_page=True)
    columns = [page.locator(f"#compare-col-{n}").inner_text() for n in range(2)]
    for label, text in zip("AB", columns, strict=True):
        assert text.startswith(f"Model {label}")
        assert not any(model in text for model in PAIR)  # blind: no names before the vote
        assert "tokens/s" in text and "here vs" in text  # speed and cost, here vs cloud
        assert len(text.split("\n", 2)[-1].strip()) > 10  # an answer, not an empty cell
    assert page.locator("#compare-col-2").is_hidden()
    page.locator("#vote-a").click()
    page.get_by_text("Recorded.").wait_for()
    said = page.locator("#compare-said").inner_text()
    assert PAIR[0] in said and PAIR[1] in said  # the names, revealed after the vote
    page.wait_for_function(  # the table re-renders with the two voted models
        f"document.querySelector('#leaderboard').innerText.includes('{PAIR[1]}')"
    )
    board = page.locator("#leaderboard").inner_text()
    assert board.index(PAIR[0]) < board.index(PAIR[1])  # the winner of the vote ranks first
    assert "needs 5+ votes" in board
    page.screenshot(path=ARTIFACTS / "choose-2-voted.png", full_page=True)
    assert [r["source"] for r in server[1].ledger.rows(limit=5)][:2] == ["compare", "compare"]


def test_evaluate_runs_an_uploaded_dataset_and_draws_the_score_cost_scatter(page, tmp_path):
    dataset = tmp_path / "mine.jsonl"
    dataset.write_text(
        json.dumps({"id": "fr", "input": "What is the capital of France?", "expected": ["Paris"]})
        + "\n"
        + json.dumps(
            {"id": "de", "input": "What is the capital of Germany?", "expected": ["Berlin"]}
        )
        + "\n"
    )
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-results").wait_for(state="hidden")  # nothing to show before a run
    page.locator("#eval-dataset input").click()
    page.get_by_role("option", name="my own file (upload it)").click()
    page.locator("#eval-upload input[type=file]").set_input_files(str(dataset))
    page.locator("#eval-upload").get_by_text("mine.jsonl").wait_for()
    page.locator("#eval-go").click()
    page.get_by_text("Done:").wait_for(timeout=SLOW)
    page.screenshot(path=ARTIFACTS / "choose-3-evaluate.png", full_page=True)
    table = page.locator("#eval-results").inner_text()
    assert all(model in table for model in PAIR)
    items = page.locator("#eval-items").inner_text()
    assert "fr" in items and "de" in items
    assert re.search(r"\[[01]\.00\] ", items)  # each output under its score
    assert all(model in page.locator("#eval-items thead").inner_text() for model in PAIR)
    # The scatter draws one point per model (Vega: an SVG path per symbol).
    points = page.locator("#eval-scatter .mark-symbol.role-mark path")  # not the legend's
    points.first.wait_for()
    assert points.count() == 2
    # Axes a person can read: from zero, no tick printed to six decimals ("1.000000").
    ticks = page.locator("#eval-scatter .role-axis-label text").evaluate_all(
        "texts => texts.map(t => t.textContent)"  # SVG text has no innerText
    )
    assert "0" in ticks or "0.0" in ticks or "0.00" in ticks, ticks
    assert not [t for t in ticks if re.search(r"\.\d{5,}", t)], ticks
    page.locator("#eval-use").click()
    note = page.locator("#eval-chosen")
    note.get_by_text("From now on").wait_for()
    assert "text requests go to" in note.inner_text()


def test_a_second_run_set_beside_the_first_shows_which_items_changed(page, tmp_path):
    # The same file name, ids and models, another reference for "fr": a new run
    # whose "fr" item changes score while "de" does not.
    dataset = tmp_path / "mine.jsonl"
    dataset.write_text(
        json.dumps({"id": "fr", "input": "What is the capital of France?", "expected": ["Lyon"]})
        + "\n"
        + json.dumps(
            {"id": "de", "input": "What is the capital of Germany?", "expected": ["Berlin"]}
        )
        + "\n"
    )
    page.get_by_role("tab", name="Evaluate").click()
    upload = page.locator("#eval-upload")
    clear = upload.get_by_role("button", name=re.compile("clear", re.I))
    if clear.count():  # the first run's file is still there
        clear.first.click()
    upload.locator("input[type=file]").set_input_files(str(dataset))
    upload.get_by_text("mine.jsonl").wait_for()
    status = page.locator("#eval-status")
    earlier = re.search(r"run (\w+)", status.inner_text()).group(1)
    page.locator("#eval-go").click()
    page.wait_for_function(  # "Done:" again, for another run (the earlier stays faded meanwhile)
        "(e) => { const t = document.querySelector('#eval-status').innerText;"
        " return t.includes('Done:') && !t.includes(e) && !t.includes('processing'); }",
        arg=earlier,
        timeout=SLOW,
    )
    run = re.search(r"run (\w+)", status.inner_text()).group(1)
    page.get_by_text("Two runs side by side, item by item").click()
    page.wait_for_function(  # the pickers were refreshed: B is the run just finished
        "(r) => { const b = document.querySelector('#runs-b input');"  # not drawn yet: null
        " return b !== null && b.value.startsWith(r.slice(0, 8)); }",
        arg=run,
    )
    page.locator("#runs-go").click()
    page.wait_for_function(
        "() => { const s = document.querySelector('#runs-summary');"
        " return s !== null && s.innerText.trim().length > 0; }"
    )
    page.screenshot(path=ARTIFACTS / "choose-3b-runs-side-by-side.png", full_page=True)
    summary = page.locator("#runs-summary").inner_text()
    assert "items changed score" in summary, summary
    assert all(model in summary for model in PAIR) and "→" in summary
    changed = int(re.search(r"(\d+) of 4 items changed score", summary).group(1))
    assert changed >= 1  # "fr" was right (Paris) in the first run, wrong (Lyon) now
    table = page.locator("#runs-items").inner_text()
    assert table.count("yes") == changed
    # Changed items first: every "yes" comes before the first "de" row, whose
    # reference did not move and whose score (at temperature 0) did not either.
    first_de = re.search(r"(?m)^\s*de\b", table)
    assert first_de and table.rfind("yes") < first_de.start()
    page.locator("#runs-items").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "choose-3b-runs-side-by-side.png", full_page=True)


def test_model_cards_show_what_each_model_is_and_what_it_measured_here(page):
    page.get_by_text("Model cards: what each model is, and what it measured here").click()
    cards = page.locator("#model-cards")
    # Opening the panel reads the cards anew: wait for that, not the page-load copy.
    page.wait_for_function(
        "() => { const c = document.querySelector('#model-cards');"
        " const t = c === null ? '' : c.innerText;"
        " return t.includes('on mine.jsonl') && !t.includes('queue:'); }"
    )
    text = cards.inner_text()
    assert "open (Apache-2.0)" in text and "proprietary (" in text  # gpt-4o-mini's card
    assert "grounded 0." in text  # bench answers' measured figure
    assert "median of" in text  # the ledger's medians after the evals above
    assert "contains 0.50 on mine.jsonl" in text  # the second eval run, read as the panel opens
    assert "multilingual" in text and "English only" in text
    cards.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "choose-3c-model-cards.png", full_page=True)


def test_fine_tune_shows_the_loss_curve_and_the_card_and_serves_the_model(page, server):
    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#tune-base input").click()
    page.get_by_role("option", name="tiny-base").click()
    page.locator("#tune-name textarea, #tune-name input").first.fill("tiny-tickets")
    page.locator("#tune-go").click()
    page.locator("#tune-card").get_by_text("tiny-tickets is ready").wait_for(timeout=SLOW)
    page.screenshot(path=ARTIFACTS / "choose-4-tuned.png", full_page=True)
    card = page.locator("#tune-card").inner_text()
    assert "tiny-base" in card and "Validation loss" in card and "json" in card
    assert page.locator("#tune-curve svg .mark-line path").count() >= 1  # the loss curve
    assert page.locator("#tune-stop").is_hidden() and page.locator("#tune-go").is_visible()
    # Registered without a restart: Compare offers it, and the ledger has the training row.
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-models input").click()
    page.get_by_role("option", name="tiny-tickets").wait_for()
    page.keyboard.press("Escape")
    rows = [r for r in server[1].ledger.rows(limit=50) if r["task"] == "fine_tune"]
    assert rows and rows[0]["status"] == "ok" and rows[0]["usd_cloud"] > 0
