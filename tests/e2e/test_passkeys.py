"""Passkeys in a real browser: enrolled at first login, used at the next, required by policy.

Chromium's virtual authenticator (DevTools protocol, ``WebAuthn.addVirtualAuthenticator``)
stands in for a security key: it creates real credentials and signs real assertions, so
the server verifies them exactly as it would a hardware key's.
"""

from __future__ import annotations

import time
from base64 import b32decode
from pathlib import Path
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import Page, expect

from audit.models import AuditEntry
from tenants.services import do_update_tenant_policy
from tests.e2e.pages import screenshot_dir
from tests.e2e.test_two_factor_login import code_at, log_in_with_password, log_out, next_accepted_code
from tests.factories import make_tenant, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])]


def add_virtual_authenticator(page: Page) -> Any:
    """A platform authenticator that confirms every request at once (presence and user verification)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, authenticator["authenticatorId"]


def signatures(cdp: Any, authenticator_id: str) -> int:
    """How many assertions the virtual authenticator has signed with its credentials."""
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    return sum(int(c["signCount"]) for c in credentials)


def test_passkey_is_enrolled_at_first_login_and_logs_in_next_time(page: Page, tmp_path: Path) -> None:
    user = make_user(make_tenant("acme"), "administrator", email="admin@acme.test")
    cdp, authenticator = add_virtual_authenticator(page)
    shots = screenshot_dir(tmp_path)

    # First login: no second factor yet, so the enrolment page offers a passkey.
    page.goto("/cockpit/")
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/enrol/")
    page.click("#passkey-register-button")
    expect(page).to_have_url("/cockpit/")
    expect(page.locator("#logout-form")).to_be_visible()
    credential = WebAuthnCredential.objects.get(user=user)
    assert AuditEntry.objects.filter(event="2fa.passkey_added", actor=user).count() == 1
    # The enrolment page also showed an authenticator app's secret: gone with the passkey chosen.
    assert not TOTPDevice.objects.filter(user=user).exists()
    log_out(page)

    # Next login: password, then the passkey (no code form: the user has no authenticator app).
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/verify/")
    expect(page.locator("#id_otp_token")).to_have_count(0)
    page.screenshot(path=str(shots / "cockpit-passkey-login.png"))
    before = signatures(cdp, authenticator)
    page.click("#passkey-verification-button")
    expect(page).to_have_url("/cockpit/")
    assert signatures(cdp, authenticator) == before + 1
    logins = AuditEntry.objects.filter(event="auth.login", actor=user).order_by("seq")
    assert [entry.additional_data["factor"] for entry in logins] == ["passkey", "passkey"]
    credential.refresh_from_db()
    assert credential.last_used_at is not None

    # The passkey page lists it; removing the only passkey is allowed (no policy asks for one).
    page.click("#passkeys-link")
    expect(page.locator("#passkey-list tbody tr")).to_have_count(1)
    page.screenshot(path=str(shots / "cockpit-passkeys.png"))


def test_required_passkey_is_added_after_the_code_and_then_the_only_way_in(page: Page) -> None:
    tenant = make_tenant("acme")
    user = make_user(tenant, "administrator", email="admin@acme.test")
    cdp, authenticator = add_virtual_authenticator(page)

    # The user enrols an authenticator app first, as before the policy.
    page.goto("/cockpit/")
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/enrol/")
    key = b32decode(page.locator("#totp-key").inner_text().replace(" ", ""))
    page.fill("#id_otp_token", code_at(key, time.time()))
    page.click("#login-form input[type=submit]")
    page.get_by_role("link", name="Continue to the cockpit").click()
    expect(page).to_have_url("/cockpit/")
    # A page without live regions: the home page's own refresh would reload it when the policy changes.
    page.click("#passkeys-link")
    expect(page).to_have_url("/cockpit/passkeys/")

    # The administrator requires passkeys: the open session, verified by a code, ends.
    do_update_tenant_policy(tenant, {"require_passkeys": True}, actor=None)
    page.reload()
    expect(page).to_have_url("/cockpit/login/?next=/cockpit/passkeys/")

    # The code still proves the factor, but the login ends only with a new passkey.
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/verify/")
    page.fill("#id_otp_token", next_accepted_code(user, key))
    page.click("#login-form input[type=submit]")
    expect(page).to_have_url("/cockpit/login/enrol/")
    expect(page.locator("#totp-key")).to_have_count(0)
    page.click("#passkey-register-button")
    expect(page).to_have_url("/cockpit/passkeys/")
    log_out(page)

    # From now on the passkey is the only second factor the login offers.
    log_in_with_password(page, user.email)
    expect(page).to_have_url("/cockpit/login/verify/")
    expect(page.locator("#id_otp_token")).to_have_count(0)
    page.click("#passkey-verification-button")
    expect(page).to_have_url("/cockpit/")
    assert signatures(cdp, authenticator) >= 1

    # Its last passkey cannot be removed while the policy stands.
    page.click("#passkeys-link")
    page.locator("#passkey-list button").click()
    expect(page.locator(".messagelist")).to_contain_text("add another one before removing this one")
    assert WebAuthnCredential.objects.filter(user=user).count() == 1
