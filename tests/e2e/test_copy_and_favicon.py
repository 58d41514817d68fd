"""Copy and download buttons for secrets shown once, and the favicon (issue 9, point 17)."""

import time
from base64 import b32decode
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tenants.models import Role
from tests.e2e.pages import signed_in_page
from tests.e2e.test_two_factor_login import code_at, log_in_with_password
from tests.factories import make_tenant, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLIPBOARD = ["clipboard-read", "clipboard-write"]


def test_backup_codes_can_be_copied_and_downloaded(page: Page, live_server: Any) -> None:
    user = make_user(make_tenant("acme"), Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    page.context.grant_permissions(CLIPBOARD, origin=live_server.url)
    page.goto("/cockpit/")
    log_in_with_password(page, user.email)
    key = b32decode(page.locator("#totp-key").inner_text().replace(" ", ""))
    page.fill("#id_otp_token", code_at(key, time.time()))
    page.click("#login-form input[type=submit]")
    codes = page.locator("#backup-codes li")
    expect(codes).to_have_count(10)
    listed = "".join(f"{code.strip()}\n" for code in codes.all_inner_texts())

    page.click("#copy-backup-codes")
    expect(page.locator(".cockpit-copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == listed

    with page.expect_download() as started:
        page.click("#download-backup-codes")
    download = started.value
    assert download.suggested_filename == "cot-backup-codes.txt"
    assert Path(download.path()).read_text() == listed


def test_support_link_can_be_copied_and_no_duration_is_preselected(browser: Browser, live_server: Any) -> None:
    admin = make_user(make_tenant("acme"), Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    page = signed_in_page(browser, live_server, admin)
    page.context.grant_permissions(CLIPBOARD, origin=live_server.url)
    page.goto("/cockpit/tenants/supportgrant/add/")
    expect(page.locator("input[name=duration_hours]")).to_have_value("")
    page.fill("input[name=duration_hours]", "2")
    page.fill("input[name=reason]", "TICKET-43 gateway offline")
    page.click("input[name=_save]")
    link = page.inner_text("#support-link")
    assert "/support/enter/#cot_sgl_" in link

    page.get_by_role("button", name="Copy link").click()
    expect(page.locator(".cockpit-copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == link


def test_every_page_names_the_favicon(page: Page, live_server: Any) -> None:
    for url in ("/cockpit/login/", "/support/enter/"):
        page.goto(url)
        icon = page.locator("link[rel=icon]")
        expect(icon).to_have_attribute("type", "image/svg+xml")
        answer = page.request.get(icon.get_attribute("href") or "")
        assert answer.ok and answer.headers["content-type"].startswith("image/svg+xml"), url
        assert answer.text().startswith("<svg")
