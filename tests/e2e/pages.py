"""Helpers of the browser tests: signed-in pages and where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from playwright.sync_api import Browser, Page

from tests.factories import verified_client


def signed_in_page(browser: Browser, live_server: Any, user: Any, *, width: int = 1100, height: int = 800) -> Page:
    """A browser already past the two-factor login (tested on its own in test_two_factor_login)."""
    session = verified_client(user).cookies["sessionid"].value
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    return context.new_page()


def screenshot_dir(tmp_path: Path) -> Path:
    """docs/img when refreshing the documentation (COT_SCREENSHOTS=1), else a temporary folder.

    A normal test run must not rewrite tracked images (each run would change them a little).
    """
    if os.environ.get("COT_SCREENSHOTS"):
        target = Path(settings.BASE_DIR) / "docs" / "img"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path
