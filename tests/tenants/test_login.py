"""The cockpit's two-step login: password, then TOTP (enrolment on first login) or a backup code.

Everything runs through the Django test client against the real views, database and
django-otp devices. Time is frozen with time_machine, so each test decides when the next
TOTP time step begins (django-otp accepts every time step only once).
"""

from __future__ import annotations

import html
import re
import time
from base64 import b32decode
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEntry
from tenants.forms import BAD_CODE_MESSAGE, LOGIN_FAILED_MESSAGE, SUSPENDED_MESSAGE, THROTTLED_MESSAGE
from tenants.models import User
from tenants.services import do_set_password, do_set_tenant_status, do_update_tenant_policy
from tenants.two_factor import confirm_enrolment, enrolment_device
from tenants.views.auth import EXPIRED_MESSAGE, LOCKOUT_MESSAGE, PENDING_KEY, PENDING_MAX_AGE_SECONDS
from tests.factories import PASSWORD, make_user

LOGIN = "/cockpit/login/"
VERIFY = "/cockpit/login/verify/"
ENROL = "/cockpit/login/enrol/"
LOGOUT = "/cockpit/logout/"
INDEX = "/cockpit/"
ME = "/api/v1/me/"

# After login the cockpit's home page counts payload data too.
pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def clock() -> Iterator[Any]:
    """Frozen time at the start of a TOTP step; ``clock.shift(30)`` moves to the next one."""
    start = (int(time.time()) // 30) * 30
    with time_machine.travel(datetime.fromtimestamp(start, tz=UTC), tick=False) as traveller:
        yield traveller


def totp_code(device: TOTPDevice) -> str:
    """The code an authenticator app shows right now for ``device``."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """A 6-digit code that no step in the device's tolerance window accepts."""
    device.refresh_from_db()
    valid = set()
    for offset in range(-3, 4):
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + offset)
        valid.add(f"{totp.token():06d}")
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in valid)


def enrol(user: User) -> tuple[TOTPDevice, list[str]]:
    """Enrol ``user`` the way the enrolment page does, with the current code."""
    device = enrolment_device(user)
    result, codes = confirm_enrolment(user, device, totp_code(device))
    assert result.device is not None
    return result.device, codes


def password_step(client: Client, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(LOGIN, {"username": email, "password": password, **extra})


def events(name: str, user: User | None = None) -> list[AuditEntry]:
    qs = AuditEntry.objects.filter(event=name).order_by("seq")
    if user is not None:
        qs = qs.filter(object_pk=str(user.pk))
    return list(qs)


def text(response: Any) -> str:
    """The page as a reader sees it (entities such as &#x27; resolved)."""
    return html.unescape(response.content.decode())


def is_logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


# --- step 1: password ------------------------------------------------------------------------


def test_login_page_is_the_cockpit_login(client: Client, db: Any) -> None:
    response = client.get(INDEX)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={INDEX}"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b'name="username"' in page.content and b'name="password"' in page.content
    assert b"csrfmiddlewaretoken" in page.content
    assert b"cot cockpit" in page.content


def test_wrong_password_and_unknown_email_get_the_same_generic_message(client: Client, acme_admin: User) -> None:
    wrong = password_step(client, acme_admin.email, "not-the-password-at-all")
    unknown = password_step(client, "nobody@acme.test", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert LOGIN_FAILED_MESSAGE in text(response)
        assert "suspended" not in text(response)
    assert PENDING_KEY not in client.session
    assert not is_logged_in(client)
    failed = events("auth.login_failed")
    assert [e.additional_data["stage"] for e in failed] == ["password", "password"]


def test_correct_password_starts_a_pending_login_without_logging_in(client: Client, acme_admin: User) -> None:
    client.get(LOGIN)
    key_before = client.session.session_key
    response = password_step(client, acme_admin.email.upper())  # e-mails match case-insensitively
    assert response.status_code == 302
    assert response["Location"] == ENROL
    session = client.session
    assert session[PENDING_KEY]["user"] == acme_admin.pk
    assert session.session_key != key_before  # no session fixation across the password step
    assert not is_logged_in(client)
    assert events("auth.login") == []


def test_password_alone_opens_neither_cockpit_nor_api(client: Client, acme_admin: User, clock: Any) -> None:
    enrol(acme_admin)
    assert password_step(client, acme_admin.email)["Location"] == VERIFY
    cockpit = client.get(INDEX)
    assert cockpit.status_code == 302
    assert cockpit["Location"].startswith(LOGIN)
    assert client.get(ME).status_code in (401, 403)
    assert client.get("/cockpit/tenants/user/").status_code in (302, 404)


def test_suspended_tenant_is_told_only_after_the_correct_password(client: Client, acme: Any, acme_admin: User) -> None:
    do_set_tenant_status(acme, "suspended", actor=None)
    wrong = password_step(client, acme_admin.email, "not-the-password-at-all")
    assert LOGIN_FAILED_MESSAGE in text(wrong)
    assert SUSPENDED_MESSAGE not in text(wrong)
    right = password_step(client, acme_admin.email)
    assert right.status_code == 200
    assert SUSPENDED_MESSAGE in text(right)
    assert PENDING_KEY not in client.session
    assert not is_logged_in(client)


def test_account_without_cockpit_access_is_refused_after_the_password(client: Client, acme_admin: User) -> None:
    User.objects.filter(pk=acme_admin.pk).update(role=None)
    response = password_step(client, acme_admin.email)
    assert response.status_code == 200
    assert "no access to the cockpit" in text(response)
    assert PENDING_KEY not in client.session


def test_axes_locks_out_after_the_failure_limit(client: Client, acme_admin: User) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    statuses = [password_step(client, acme_admin.email, f"wrong-password-{n}").status_code for n in range(limit)]
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert statuses[-1] == 429
    # Locked out: even the right password gets the lockout page and no pending login.
    locked = password_step(client, acme_admin.email)
    assert locked.status_code == 429
    assert LOCKOUT_MESSAGE in text(locked)
    assert PENDING_KEY not in client.session
    assert not is_logged_in(client)


def _attempt(email: str, password: str, address: str) -> Any:
    return Client().post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=address)


def test_a_stranger_elsewhere_cannot_lock_a_user_out(acme_admin: User) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        _attempt(acme_admin.email, f"wrong-password-{n}", "198.51.100.66")
    assert _attempt(acme_admin.email, PASSWORD, "198.51.100.66").status_code == 429  # that address is locked out
    assert _attempt(acme_admin.email, PASSWORD, "203.0.113.10").status_code == 302  # the user, elsewhere, is not


def test_spelling_the_email_differently_does_not_dodge_the_lockout(acme_admin: User) -> None:
    variants = [
        acme_admin.email.upper(),
        acme_admin.email.title(),
        f"  {acme_admin.email}  ",
        acme_admin.email.swapcase(),
    ]
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        _attempt(variants[n % len(variants)], f"wrong-password-{n}", "198.51.100.69")
    assert _attempt(acme_admin.email, PASSWORD, "198.51.100.69").status_code == 429
    assert len(events("auth.login_failed", acme_admin)) == limit


def test_attempts_refused_by_the_lockout_are_counted_not_chained(acme_admin: User, clock: Any) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for n in range(limit):
        _attempt(acme_admin.email, f"wrong-password-{n}", "198.51.100.67")
    for n in range(12):
        assert _attempt(acme_admin.email, f"more-guesses-{n}", "198.51.100.67").status_code == 429
    assert len(events("auth.login_failed", acme_admin)) == limit
    [lockout] = events("auth.lockout", acme_admin)
    assert lockout.tenant_id == acme_admin.tenant_id
    # The user, elsewhere, logs in; the login's entry says how many attempts were refused meanwhile.
    user_client = Client()
    user_client.post(LOGIN, {"username": acme_admin.email, "password": PASSWORD}, REMOTE_ADDR="203.0.113.11")
    user_client.get(ENROL)
    device = TOTPDevice.objects.get(user=acme_admin)
    user_client.post(ENROL, {"otp_token": totp_code(device)}, REMOTE_ADDR="203.0.113.11")
    [login] = events("auth.login", acme_admin)
    assert login.additional_data == {"refused_while_locked_out": 12, "factor": "authenticator app"}


def test_every_address_is_bounded_whichever_accounts_it_tries(acme_admin: User, clock: Any) -> None:
    answers = [_attempt(f"nobody-{n}@acme.test", "guess-guess-guess", "198.51.100.68").status_code for n in range(31)]
    assert answers[:30] == [200] * 30
    assert answers[30] == 429
    assert len(events("auth.login_failed")) == 30


def test_login_form_requires_a_csrf_token(acme_admin: User) -> None:
    client = Client(enforce_csrf_checks=True)
    assert password_step(client, acme_admin.email).status_code == 403
    page = client.get(LOGIN)
    token = page.cookies[settings.CSRF_COOKIE_NAME].value
    assert password_step(client, acme_admin.email, csrfmiddlewaretoken=token).status_code == 302


# --- step 2b: enrolment ----------------------------------------------------------------------


def test_enrolment_confirms_a_device_and_shows_ten_backup_codes_once(
    client: Client, acme_admin: User, clock: Any
) -> None:
    password_step(client, acme_admin.email)
    page = client.get(ENROL)
    assert page.status_code == 200
    page_html = page.content.decode()
    device = TOTPDevice.objects.get(user=acme_admin)
    assert device.name == "authenticator" and not device.confirmed
    assert "<svg" in page_html and 'id="qr-path"' in page_html
    key = re.search(r'id="totp-key">([A-Z2-7 ]+)<', page_html)
    assert key is not None
    assert b32decode(key.group(1).replace(" ", "")) == device.bin_key

    response = client.post(ENROL, {"otp_token": totp_code(device)})
    assert response.status_code == 200
    shown_page = text(response)
    assert 'id="backup-codes"' in shown_page
    shown = re.findall(r"<li><code>([a-z2-7]+)</code></li>", shown_page)
    assert len(shown) == 10
    assert "Continue to the cockpit" in shown_page
    device.refresh_from_db()
    assert device.confirmed
    backup = StaticDevice.objects.get(user=acme_admin)
    assert backup.name == "backup"
    assert sorted(StaticToken.objects.filter(device=backup).values_list("token", flat=True)) == sorted(shown)
    [enrolled] = events("2fa.enrol", acme_admin)
    assert enrolled.tenant_id == acme_admin.tenant_id

    # Logged in and verified: the cockpit and the session API open.
    assert is_logged_in(client)
    assert client.get(INDEX).status_code == 200
    assert client.get(ME).status_code == 200
    # The codes are never shown again: the enrolment page is gone with the pending login.
    again = client.get(ENROL)
    assert again.status_code == 302
    assert not any(code in text(client.get(INDEX)) for code in shown)


def _shown_key(response: Any) -> bytes:
    found = re.search(rb'id="totp-key">([^<]+)<', response.content)
    assert found is not None
    return found.group(1)


def test_a_pending_enrolment_secret_belongs_to_its_login_attempt(client: Client, acme_admin: User, clock: Any) -> None:
    password_step(client, acme_admin.email)
    mine = _shown_key(client.get(ENROL))
    assert _shown_key(client.get(ENROL)) == mine  # a reload shows the same secret
    # Someone who once knew the initial password starts a login of their own:
    intruder = Client()
    password_step(intruder, acme_admin.email)
    assert _shown_key(intruder.get(ENROL)) != mine  # never a copy of the real user's secret
    their_device = TOTPDevice.objects.get(pk=intruder.session[PENDING_KEY]["enrol_device"])
    my_device = TOTPDevice.objects.get(pk=client.session[PENDING_KEY]["enrol_device"])
    client.post(ENROL, {"otp_token": totp_code(my_device)})
    # The real user confirmed: the other secret is gone and can never become an authenticator.
    assert list(TOTPDevice.objects.filter(user=acme_admin)) == [my_device]
    assert not TOTPDevice.objects.filter(pk=their_device.pk).exists()
    clock.shift(30)
    response = intruder.post(ENROL, {"otp_token": "123456"})
    assert response.status_code == 302 and response["Location"] == VERIFY
    assert not is_logged_in(intruder)


def test_a_password_change_deletes_unconfirmed_authenticators(client: Client, acme_admin: User) -> None:
    from tenants.services import do_set_password

    password_step(client, acme_admin.email)
    client.get(ENROL)
    assert TOTPDevice.objects.filter(user=acme_admin, confirmed=False).exists()
    do_set_password(acme_admin, "another-long-passphrase-43", actor=None)
    assert not TOTPDevice.objects.filter(user=acme_admin).exists()


def test_wrong_enrolment_code_is_refused(client: Client, acme_admin: User, clock: Any) -> None:
    password_step(client, acme_admin.email)
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=acme_admin)
    response = client.post(ENROL, {"otp_token": wrong_code(device)})
    assert response.status_code == 200
    assert BAD_CODE_MESSAGE in text(response)
    device.refresh_from_db()
    assert not device.confirmed
    assert not StaticDevice.objects.filter(user=acme_admin).exists()
    assert not is_logged_in(client)
    assert [e.additional_data["stage"] for e in events("auth.login_failed", acme_admin)] == ["enrol"]


def test_password_alone_cannot_replace_an_enrolled_authenticator(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    password_step(client, acme_admin.email)
    response = client.get(ENROL)
    assert response.status_code == 302
    assert response["Location"] == VERIFY
    assert list(TOTPDevice.objects.filter(user=acme_admin)) == [device]


# --- step 2a: code ---------------------------------------------------------------------------


def test_login_with_a_totp_code(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    clock.shift(30)  # the enrolment code's time step is spent
    assert password_step(client, acme_admin.email)["Location"] == VERIFY
    page = client.get(VERIFY)
    assert page.status_code == 200
    assert b'name="otp_token"' in page.content
    pending_key = client.session.session_key
    response = client.post(VERIFY, {"otp_token": totp_code(device)})
    assert response.status_code == 302
    assert response["Location"] == INDEX
    assert is_logged_in(client)
    assert client.session.session_key != pending_key  # login() rotated the key
    assert PENDING_KEY not in client.session
    assert client.get(INDEX).status_code == 200
    assert client.get(ME).json()["email"] == acme_admin.email
    assert len(events("auth.login", acme_admin)) == 1


def test_a_totp_code_works_only_once(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    clock.shift(30)
    code = totp_code(device)
    password_step(client, acme_admin.email)
    assert client.post(VERIFY, {"otp_token": code}).status_code == 302
    other = Client()
    password_step(other, acme_admin.email)
    clock.shift(5)  # past the one-second throttle, still the same time step
    replay = other.post(VERIFY, {"otp_token": code})
    assert replay.status_code == 200
    assert not is_logged_in(other)


def test_login_with_a_backup_code_consumes_it(client: Client, acme_admin: User, clock: Any) -> None:
    _, codes = enrol(acme_admin)
    password_step(client, acme_admin.email)
    # Copied with a separator and in capitals, as people do.
    typed = f"{codes[3][:4].upper()}-{codes[3][4:].upper()}"
    response = client.post(VERIFY, {"otp_token": typed})
    assert response.status_code == 302
    assert is_logged_in(client)
    assert client.get(INDEX).status_code == 200
    remaining = set(StaticToken.objects.filter(device__user=acme_admin).values_list("token", flat=True))
    assert remaining == set(codes) - {codes[3]}

    again = Client()
    password_step(again, acme_admin.email)
    reused = again.post(VERIFY, {"otp_token": codes[3]})
    assert reused.status_code == 200
    assert BAD_CODE_MESSAGE in text(reused)
    assert not is_logged_in(again)


def test_wrong_code_is_refused_audited_and_throttled(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    clock.shift(30)
    password_step(client, acme_admin.email)
    response = client.post(VERIFY, {"otp_token": wrong_code(device)})
    assert response.status_code == 200
    assert BAD_CODE_MESSAGE in text(response)
    assert not is_logged_in(client)
    assert client.get(INDEX).status_code == 302
    [failed] = events("auth.login_failed", acme_admin)
    assert failed.tenant_id == acme_admin.tenant_id
    assert failed.additional_data == {"stage": "otp"}
    assert failed.actor_kind == "anonymous"
    assert failed.actor_label == acme_admin.email
    device.refresh_from_db()
    assert device.throttling_failure_count == 1

    # django-otp's back-off: even the right code waits for the throttle delay (1 s here).
    throttled = client.post(VERIFY, {"otp_token": totp_code(device)})
    assert throttled.status_code == 200
    assert THROTTLED_MESSAGE in text(throttled)
    clock.shift(2)
    assert client.post(VERIFY, {"otp_token": totp_code(device)}).status_code == 302
    assert is_logged_in(client)


def test_pending_login_expires_after_five_minutes(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    password_step(client, acme_admin.email)
    clock.shift(PENDING_MAX_AGE_SECONDS + 1)
    response = client.post(VERIFY, {"otp_token": totp_code(device)})
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert not is_logged_in(client)
    assert PENDING_KEY not in client.session
    assert EXPIRED_MESSAGE in text(client.get(LOGIN))
    device.refresh_from_db()
    assert device.last_t < TOTP(device.bin_key, device.step, device.t0).t()  # the code was not spent


def test_password_change_between_the_steps_ends_the_pending_login(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    clock.shift(30)
    password_step(client, acme_admin.email)
    do_set_password(acme_admin, "another-long-passphrase-77", actor=None)
    response = client.post(VERIFY, {"otp_token": totp_code(device)})
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert not is_logged_in(client)


def test_verify_page_without_a_pending_login_goes_back_to_the_password(client: Client, db: Any) -> None:
    for url in (VERIFY, ENROL):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == LOGIN


def test_next_is_followed_only_within_the_site(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    clock.shift(30)
    password_step(client, acme_admin.email, next="/cockpit/password_change/")
    assert client.post(VERIFY, {"otp_token": totp_code(device)})["Location"] == "/cockpit/password_change/"

    clock.shift(30)
    other = Client()
    password_step(other, acme_admin.email, next="https://evil.example/")
    assert other.post(VERIFY, {"otp_token": totp_code(device)})["Location"] == INDEX


# --- users without two-factor requirement, and logout ----------------------------------------


def test_user_who_needs_no_second_factor_logs_in_with_the_password(client: Client, acme: Any) -> None:
    do_update_tenant_policy(acme, {"require_2fa": False}, actor=None)
    user = make_user(acme, "standard")
    response = password_step(client, user.email)
    assert response.status_code == 302
    assert response["Location"] == INDEX
    assert is_logged_in(client)
    assert client.get(INDEX).status_code == 200
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_administrators_need_a_second_factor_whatever_the_policy(client: Client, acme: Any, acme_admin: User) -> None:
    do_update_tenant_policy(acme, {"require_2fa": False}, actor=None)
    assert password_step(client, acme_admin.email)["Location"] == ENROL
    assert not is_logged_in(client)


def test_an_enrolled_device_is_asked_for_even_without_the_requirement(client: Client, acme: Any, clock: Any) -> None:
    do_update_tenant_policy(acme, {"require_2fa": False}, actor=None)
    user = make_user(acme, "standard")
    enrol(user)
    assert password_step(client, user.email)["Location"] == VERIFY
    assert not is_logged_in(client)


def test_logout_ends_the_session(client: Client, acme_admin: User, clock: Any) -> None:
    device, _ = enrol(acme_admin)
    clock.shift(30)
    password_step(client, acme_admin.email)
    client.post(VERIFY, {"otp_token": totp_code(device)})
    index = client.get(INDEX)
    assert index.status_code == 200
    assert b'id="logout-form"' in index.content

    assert client.get(LOGOUT).status_code == 405  # only the POST from the logout button
    response = client.post(LOGOUT)
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert not is_logged_in(client)
    assert client.get(INDEX)["Location"].startswith(LOGIN)
    assert client.get(ME).status_code in (401, 403)
    assert len(events("auth.logout", acme_admin)) == 1
    assert "You have been logged out." in text(client.get(LOGIN))


def test_a_password_hashed_by_an_older_hasher_is_upgraded_at_login(client: Client, acme_admin: User) -> None:
    """The upgrade is a write in the user's tenant, before the request has entered it (row-level security)."""
    User.objects.filter(pk=acme_admin.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    response = password_step(client, acme_admin.email)
    assert response.status_code == 302
    assert response["Location"] == ENROL
    acme_admin.refresh_from_db()
    assert acme_admin.password.startswith("argon2")
