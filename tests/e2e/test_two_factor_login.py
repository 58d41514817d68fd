"""First login with authenticator enrolment, then password + code, then a wrong code.

Runs in real time against the live server: the test computes codes the way an
authenticator app does from the key shown on the enrolment page.
"""

import time
from base64 import b32decode
from pathlib import Path
from typing import Any

import pytest
from django_otp.oath import TOTP, hotp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tenants.forms import BAD_CODE_MESSAGE
from tests.e2e.pages import screenshot_dir
from tests.factories import PASSWORD, make_tenant, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])]

STEP = 30


def code_at(key: bytes, when: float) -> str:
    totp = TOTP(key, STEP, 0, 6, 0)
    totp.time = when
    return f"{totp.token():06d}"


def next_accepted_code(user: Any, key: bytes) -> str:
    """A code for the next time step the server accepts, as a phone would show it shortly.

    django-otp takes each step once (after ``last_t``) and tracks the app's clock drift,
    so the step is taken from the device's state, not from the wall clock alone.
    """
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    now_step = int(time.time()) // STEP
    return f"{hotp(key, max(device.last_t + 1, now_step + device.drift), digits=6):06d}"


def refused_code(key: bytes) -> str:
    """A code far from every time step the server could accept now."""
    now = time.time()
    near = {code_at(key, now + offset * STEP) for offset in range(-4, 5)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)


def log_in_with_password(page: Page, email: str) -> None:
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form input[type=submit]")


def log_out(page: Page) -> None:
    page.click("#logout-form button[type=submit]")
    expect(page).to_have_url("/cockpit/login/")
    expect(page.locator(".messagelist")).to_contain_text("You have been logged out.")


def test_two_factor_enrolment_login_and_refusal(page: Page, live_server: Any, tmp_path: Path) -> None:
    user = make_user(make_tenant("acme"), "administrator", email="admin@acme.test")
    shots = screenshot_dir(tmp_path)

    # First visit: the cockpit sends us to the password step, then to enrolment.
    page.goto("/cockpit/")
    expect(page).to_have_url("/cockpit/login/?next=/cockpit/")
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/enrol/")
    expect(page.locator(".cockpit-qr svg")).to_be_visible()
    key = b32decode(page.locator("#totp-key").inner_text().replace(" ", ""))
    page.screenshot(path=str(shots / "cockpit-enrol.png"), full_page=True)

    page.fill("#id_otp_token", code_at(key, time.time()))
    page.click("#login-form input[type=submit]")
    codes = page.locator("#backup-codes li")
    expect(codes).to_have_count(10)
    page.get_by_role("link", name="Continue to the cockpit").click()
    expect(page).to_have_url("/cockpit/")
    expect(page.locator("#site-name")).to_have_text("cot cockpit")
    expect(page.locator("#logout-form")).to_be_visible()
    page.screenshot(path=str(shots / "cockpit-index.png"))
    log_out(page)

    # Back at the cockpit: it asks again. Password, then a fresh code: the enrolment
    # code's time step is spent, and the server tolerates one step of clock drift.
    page.goto("/cockpit/")
    expect(page).to_have_url("/cockpit/login/?next=/cockpit/")
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/verify/")
    page.fill("#id_otp_token", next_accepted_code(user, key))
    page.click("#login-form input[type=submit]")
    expect(page).to_have_url("/cockpit/")
    expect(page.locator("#logout-form")).to_be_visible()
    log_out(page)

    # A wrong code is refused with the error on the page, and the cockpit stays closed.
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/verify/")
    page.fill("#id_otp_token", refused_code(key))
    page.click("#login-form input[type=submit]")
    expect(page.locator(".errorlist")).to_contain_text(BAD_CODE_MESSAGE)
    expect(page).to_have_url("/cockpit/login/verify/")
    page.goto("/cockpit/")
    expect(page).to_have_url("/cockpit/login/?next=/cockpit/")
