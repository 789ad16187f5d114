"""Debian's Chromium under Playwright, as every real-browser test file opens it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"  # the screenshots to look at
# The flags that work on these machines (see the env notes): without the
# background-networking ones Chromium keeps dialling Google and being refused.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need_chromium() -> None:
    """Skip the calling test module without Chromium; in CI its absence is a failure."""
    if CHROMIUM is not None:
        return
    if os.environ.get("CI"):  # .ci/run installs it
        raise RuntimeError("CI without chromium: .ci/run should have installed it")
    pytest.skip(
        "Debian's chromium is not installed: apt-get install chromium", allow_module_level=True
    )


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium, closed at the end."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def app_page(browser, url: str) -> Iterator[object]:
    """A desktop-sized page of the app at ``url`` (its own cookies), once the message box is up."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.locator("#input textarea").wait_for()
    try:
        yield page
    finally:
        context.close()
