"""Headless chromium (the system's, never a downloaded one) driven by Playwright's sync API."""

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module.

    Playwright's sync API keeps an asyncio loop running in the main thread, so Django
    would refuse the (synchronous, safe) database calls of the test code. The variable
    that allows them is set only while the browser runs: set for the whole process it
    would leak into other tests' subprocesses, where ``check --deploy`` rejects it.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def page(browser: Browser, live_server: Any) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test, against the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 960, "height": 720})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
