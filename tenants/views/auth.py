"""Cockpit login: password, then the second factor (enrolment on first login).

The flow keeps a *pending login* in the session between the two steps: the user id,
when the password was accepted, the authentication backend and the user's session
hash. Nobody is logged in (``django.contrib.auth.login``) until the second factor is
verified, so a session that knows only the password opens nothing: the cockpit and the
API both see an anonymous visitor.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.auth import REDIRECT_FIELD_NAME, login, logout
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST
from django_otp.middleware import is_verified
from django_otp.models import Device

import audit
from audit.request_meta import client_ip
from cot import ratelimit
from cot.database.scope import cross_tenant
from tenants import passkeys, policy, two_factor
from tenants.auth_backends import enter_tenant_of
from tenants.forms import BAD_CODE_MESSAGE, THROTTLED_MESSAGE, OTPCodeForm, PasswordLoginForm
from tenants.models import User
from tenants.policy import requires_two_factor

LOCKOUT_MESSAGE = "Too many failed logins. Try again later or ask your administrator."
EXPIRED_MESSAGE = "Your login has expired. Please enter your e-mail and password again."
LOGGED_OUT_MESSAGE = "You have been logged out."
PENDING_KEY = "cot_pending_login"
# How long a password stays good for the second step; long enough to open an
# authenticator app, short enough that a forgotten half-login is soon worthless.
PENDING_MAX_AGE_SECONDS = 5 * 60


def lockout_page(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """The login page saying that an account or address is locked out (429, generic)."""
    request.current_app = site.name
    context = {**_page_context(request, site, "Log in"), "error": LOCKOUT_MESSAGE, "form": None}
    return render(request, "cockpit/login.html", context, status=429)


# --- pending login ------------------------------------------------------------------------


def _safe_next(request: HttpRequest, site: AdminSite) -> str:
    """Where to go after login: ``next`` when it stays on this site, else the cockpit index."""
    candidate = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index", current_app=site.name)


def _start_pending(request: HttpRequest, user: User, next_url: str) -> None:
    # A fresh session key: a key planted before the password step (session fixation)
    # must not be able to watch the enrolment secret or finish this login.
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "at": int(time.time()),
        "backend": getattr(user, "backend", ""),
        "hash": user.get_session_auth_hash(),
        "next": next_url,
    }


def pending_user(request: HttpRequest) -> User | None:
    """The user who passed the password step in this session, unless that expired or changed."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    user_id = pending.get("user")
    with cross_tenant("auth.pending_login"):
        user = (
            User.objects.select_related("tenant", "role").filter(pk=user_id).first()
            if isinstance(user_id, int)
            else None
        )
    fresh = time.time() - float(pending.get("at", 0)) <= PENDING_MAX_AGE_SECONDS
    # Deactivation, suspension or a password change between the steps ends the login.
    if (
        not fresh
        or user is None
        or not user.is_active
        or not user.tenant.is_active
        or not constant_time_compare(user.get_session_auth_hash(), str(pending.get("hash", "")))
    ):
        del request.session[PENDING_KEY]
        return None
    enter_tenant_of(user)
    return user


def _back_to_password_step(request: HttpRequest, site: AdminSite, *, expired: bool) -> HttpResponse:
    if expired:
        messages.error(request, EXPIRED_MESSAGE)
    return redirect(reverse("admin:login", current_app=site.name))


def finish_login(request: HttpRequest, site: AdminSite, user: User, device: Device | None) -> str:
    """Log the user in (new session key) and bind the verified device; returns where to go next."""
    pending = request.session.pop(PENDING_KEY, {})
    # The auth.login audit entry names the factor (audit.receivers reads it).
    request.cot_login_factor = two_factor.factor_name(device)  # type: ignore[attr-defined]
    # The backend that accepted the password in step 1, so login() needs no guess.
    login(request, user, backend=str(pending.get("backend") or "") or None)
    # The user object from login() lacks what OTPMiddleware adds to request.user;
    # add it so the rest of this request (e.g. the cockpit's has_permission) can ask.
    user.otp_device = None  # type: ignore[attr-defined]
    user.is_verified = functools.partial(is_verified, user)  # type: ignore[attr-defined]
    if device is not None:
        django_otp.login(request, device)
    return str(pending.get("next") or reverse("admin:index", current_app=site.name))


def _next_step(request: HttpRequest, site: AdminSite, user: User) -> HttpResponse:
    """After the password: ask for the second factor, enrol one, or log in at once."""
    if two_factor.has_second_factor(user):
        step = "admin:login_enrol" if passkey_enrolment_allowed(request, user) else "admin:login_verify"
        return redirect(reverse(step, current_app=site.name))
    if requires_two_factor(user) or policy.requires_passkey(user):
        return redirect(reverse("admin:login_enrol", current_app=site.name))
    return HttpResponseRedirect(finish_login(request, site, user, None))


def codes_accepted(user: User) -> bool:
    """Whether the login's second step takes an authenticator or backup code from ``user``.

    Where the tenant requires passkeys, a code only proves the factor of someone who has no
    passkey yet, on their way to enrolling one.
    """
    if not two_factor.has_confirmed_authenticator(user):
        return False
    return not (policy.requires_passkey(user) and passkeys.has_passkey(user))


def passkey_enrolment_allowed(request: HttpRequest, user: User) -> bool:
    """Whether this pending login may add a passkey for ``user`` before it ends.

    Someone who knows only the password may set up a first second factor, never one
    beside an existing one; a code accepted in this login (``code_verified``) proves the
    factor where the tenant requires a passkey the user does not have yet.
    """
    if not two_factor.has_second_factor(user):
        return True
    pending = request.session.get(PENDING_KEY) or {}
    return bool(pending.get("code_verified")) and policy.requires_passkey(user) and not passkeys.has_passkey(user)


def _page_context(request: HttpRequest, site: AdminSite, title: str, **extra: Any) -> dict[str, Any]:
    return {**site.each_context(request), "title": title, "subtitle": None, **extra}


def _code_refused(user: User, form: OTPCodeForm, *, throttled: bool, stage: str) -> None:
    """Show the generic error and put the refused code into the user's tenant's trail."""
    form.add_error("otp_token", THROTTLED_MESSAGE if throttled else BAD_CODE_MESSAGE)
    audit.record(
        "auth.login_failed",
        tenant=user.tenant_id,
        target=user,
        data={"stage": stage},
        actor_kind="anonymous",
        actor_label=user.email,
    )


# --- views --------------------------------------------------------------------------------


@never_cache
@csrf_protect
@login_not_required
def password_step(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """Step 1 (``/cockpit/login/``): e-mail and password; nobody is logged in yet."""
    request.current_app = site.name
    next_url = _safe_next(request, site)
    if request.method == "GET" and site.has_permission(request):
        return redirect(next_url)
    if request.method == "POST":
        # Every address is bounded, whichever accounts it tries (the lockout counts per
        # account and address together); refused before any password is checked.
        source = client_ip(request) or "unknown"
        refusal = ratelimit.check(ratelimit.limits_for("login", source, settings.RATE_LIMITS["login"]))
        if refusal is not None:
            response = lockout_page(request, site)
            response["Retry-After"] = str(refusal.retry_after)
            return response
    form = PasswordLoginForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        user = form.get_user()
        _start_pending(request, user, next_url)
        return _next_step(request, site, user)
    context = _page_context(request, site, "Log in", form=form, next=next_url)
    return render(request, "cockpit/login.html", context)


@never_cache
@csrf_protect
@login_not_required
def verify_step(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """Step 2a: the code from the authenticator app, or one backup code."""
    request.current_app = site.name
    started = PENDING_KEY in request.session
    user = pending_user(request)
    if user is None:
        return _back_to_password_step(request, site, expired=started)
    if passkey_enrolment_allowed(request, user) or not two_factor.has_second_factor(user):
        return _next_step(request, site, user)
    accepts_codes = codes_accepted(user)
    form = OTPCodeForm(data=request.POST if request.method == "POST" and accepts_codes else None)
    if form.is_valid():
        result = two_factor.verify_code(user, form.cleaned_data["otp_token"])
        if result.device is not None and policy.requires_passkey(user) and not passkeys.has_passkey(user):
            # The code proves the factor; the tenant wants a passkey before the login ends.
            request.session[PENDING_KEY] = {**request.session[PENDING_KEY], "code_verified": True}
            return redirect(reverse("admin:login_enrol", current_app=site.name))
        if result.device is not None:
            return HttpResponseRedirect(finish_login(request, site, user, result.device))
        _code_refused(user, form, throttled=result.throttled, stage="otp")
    context = _page_context(
        request,
        site,
        "Two-factor login",
        form=form if accepts_codes else None,
        passkey=passkeys.has_passkey(user),
        next=request.session[PENDING_KEY].get("next", ""),
    )
    return render(request, "cockpit/login_verify.html", context)


@never_cache
@csrf_protect
@login_not_required
def enrol_step(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """Step 2b: first login of a user who needs 2FA: set up an authenticator app."""
    request.current_app = site.name
    started = PENDING_KEY in request.session
    user = pending_user(request)
    if user is None:
        return _back_to_password_step(request, site, expired=started)
    if not passkey_enrolment_allowed(request, user):
        # Someone who knows only the password must never replace an enrolled second factor.
        return redirect(reverse("admin:login_verify", current_app=site.name))
    pending = request.session[PENDING_KEY]
    if policy.requires_passkey(user) or pending.get("code_verified"):
        # A passkey or nothing: no authenticator secret is made for a login that cannot use it.
        context = _page_context(request, site, "Add a passkey", form=None, passkey_only=True, next=pending["next"])
        return render(request, "cockpit/login_enrol.html", context)
    device = two_factor.enrolment_device(user, pending.get("enrol_device"))
    if pending.get("enrol_device") != device.pk:
        request.session[PENDING_KEY] = {**pending, "enrol_device": device.pk}
    form = OTPCodeForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        result, codes = two_factor.confirm_enrolment(user, device, form.cleaned_data["otp_token"])
        if result.device is not None:
            next_url = finish_login(request, site, user, result.device)
            # Shown in this response only; the codes are not kept anywhere readable later.
            context = _page_context(request, site, "Your backup codes", backup_codes=codes, next=next_url)
            return render(request, "cockpit/backup_codes.html", context)
        _code_refused(user, form, throttled=result.throttled, stage="enrol")
    context = _page_context(
        request,
        site,
        "Set up two-factor login",
        form=form,
        qr_svg=two_factor.qr_svg(device),
        totp_key=two_factor.manual_key(device),
        account=user.email,
        next=pending["next"],
    )
    return render(request, "cockpit/login_enrol.html", context)


@never_cache
@csrf_protect
@require_POST
@login_not_required
def logout_view(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """Log out (POST only, from the cockpit's logout button) and return to the login page."""
    request.current_app = site.name
    logout(request)
    messages.info(request, LOGGED_OUT_MESSAGE)
    return redirect(reverse("admin:login", current_app=site.name))
