"""Passkey ceremonies and the cockpit's passkey page (``tenants.passkeys`` decides; these ask it).

django-otp-webauthn's views run the WebAuthn ceremonies; these subclasses decide whose
passkey a ceremony is for:

- logging in with a passkey: the user of this session's *pending login*
  (``tenants.views.auth``), whose password was accepted; nobody else, never without it;
- adding a passkey: the user of a fully authenticated cockpit session, or the pending
  login's user where that login may set up a second factor
  (``auth.passkey_enrolment_allowed``), which then ends logged in with the new passkey.

Every refusal is a JSON error; a passkey that is another user's gets the same answer as
one that does not exist.
"""

from __future__ import annotations

from typing import Any

import django_otp
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn.utils import rewrite_exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

import audit
from tenants import passkeys, policy, two_factor
from tenants.models import User
from tenants.policy import session_is_fully_authenticated
from tenants.views import auth

LOGIN_EXPIRED = "Your login has expired. Please enter your e-mail and password again."
PASSKEY_EXISTS = "This passkey cannot be added. Use another authenticator."
REFUSED_PASSKEY = (
    exceptions.CredentialNotFound,
    exceptions.CredentialUserMismatch,
    exceptions.CredentialDisabled,
    exceptions.UnprocessableEntity,
)


class PasskeyExists(exceptions.OTPWebAuthnApiError):
    """A credential id already stored, whoever's it is (the answer never says whose)."""

    status_code = 409
    default_code = "passkey_exists"
    default_detail = PASSKEY_EXISTS


class _Ceremony:
    """What the cockpit's ceremonies share: the site, and JSON answers for every refusal."""

    site: AdminSite | None = None
    request: HttpRequest

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, exceptions.CredentialUserMismatch):
            # Whether a passkey exists for someone else is none of the caller's business.
            exc = exceptions.CredentialNotFound()
        elif isinstance(exc, (ValueError, TypeError, KeyError, AttributeError, RecursionError)):
            # JSON of the wrong shape (a list, a number where an object belongs, nesting
            # deeper than Python parses) that the library hands on unchecked: the client's
            # mistake, a 400 like malformed JSON.
            exc = exceptions.MalformedRequest()
        return super().handle_exception(exc)  # type: ignore[misc]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Every ceremony step is a POST; anything else is answered before the library looks at the session.
        if request.method != "POST":
            return self.http_method_not_allowed(request)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = JsonResponse({"detail": "Use POST.", "code": "method_not_allowed"}, status=405)
        response["Allow"] = "POST"
        return response

    def _parse_request_data(self, request: HttpRequest) -> Any:
        data = super()._parse_request_data(request)  # type: ignore[misc]
        if not isinstance(data, dict) and not hasattr(data, "getlist"):
            raise exceptions.MalformedRequest()
        return data

    def _site(self) -> AdminSite:
        assert self.site is not None, "the ceremony views are built by ceremony_urls(site)"
        return self.site


def _login_user(request: HttpRequest) -> User | None:
    """The pending login's user, if they have a passkey to log in with."""
    user = auth.pending_user(request)
    return user if user is not None and passkeys.has_passkey(user) else None


def own_passkeys_allowed(request: HttpRequest) -> bool:
    """Whether this logged-in session may list, add and remove its user's passkeys.

    A session that passed only the password (a user to whom the tenant does not require a
    second factor) may set up a first factor, never touch one beside an existing one; and
    a support engineer inside a customer's tenant manages their own passkeys outside it.
    """
    if getattr(request, "support_grant", None) is not None or not session_is_fully_authenticated(request):
        return False
    user: User = request.user  # type: ignore[assignment]
    return bool(user.is_verified()) or not two_factor.has_second_factor(user)  # type: ignore[attr-defined]


def _enrolling_user(request: HttpRequest) -> User | None:
    """Whose passkey a registration ceremony adds, or None: see the module docstring."""
    if session_is_fully_authenticated(request):
        return request.user if own_passkeys_allowed(request) else None  # type: ignore[return-value]
    # A session still logged in but no longer enough (the tenant now requires passkeys)
    # counts for nothing here: only its pending login may add one.
    user = auth.pending_user(request)
    return user if user is not None and auth.passkey_enrolment_allowed(request, user) else None


class _LoginCeremony(_Ceremony):
    """Logging in: for the pending login's user, who has a passkey; nobody else."""

    def get_user(self) -> User | None:
        return _login_user(self.request)

    def check_can_authenticate(self) -> None:
        if self.get_user() is None:
            raise exceptions.NotAuthenticated(detail=LOGIN_EXPIRED)


class _RegistrationCeremony(_Ceremony):
    """Adding a passkey: for ``_enrolling_user``."""

    def get_user(self) -> User | None:
        return _enrolling_user(self.request)

    def _check_user_verified(self, user: Any) -> None:
        # django-otp-webauthn's own check asks request.user, who is anonymous during a
        # pending login; _enrolling_user has already demanded a verified session or a
        # pending login that may add a factor, which is stricter.
        return None


@method_decorator(login_not_required, name="dispatch")
class LoginBegin(_LoginCeremony, BeginCredentialAuthenticationView):
    """Options for logging in with one of the pending login's user's passkeys."""


@method_decorator(login_not_required, name="dispatch")
class LoginComplete(_LoginCeremony, CompleteCredentialAuthenticationView):
    """Check the passkey's answer; on success log the pending user in, verified by it."""

    def complete_auth(self, device: Any) -> None:
        user = self.get_user()
        if user is None or device.user_id != user.pk:  # the pending login ended meanwhile
            raise exceptions.NotAuthenticated(detail=LOGIN_EXPIRED)
        self._next_url = auth.finish_login(self.request, self._site(), user, device)

    def get_success_url(self) -> str:
        return self._next_url

    def handle_exception(self, exc: Exception) -> HttpResponse:
        # A passkey presented and refused is a failed login; a stale or malformed request is not
        # (auditing those would let a password holder grow the trail at will).
        refused = isinstance(exc, REFUSED_PASSKEY)
        user = auth.pending_user(self.request) if refused else None
        if user is not None:
            audit.record(
                "auth.login_failed",
                tenant=user.tenant_id,
                target=user,
                data={"stage": "passkey"},
                actor_kind="anonymous",
                actor_label=user.email,
            )
        return super().handle_exception(exc)


@method_decorator(login_not_required, name="dispatch")
class RegistrationBegin(_RegistrationCeremony, BeginCredentialRegistrationView):
    """Options for adding a passkey (see ``_enrolling_user`` for whose)."""


@method_decorator(login_not_required, name="dispatch")
class RegistrationComplete(_RegistrationCeremony, CompleteCredentialRegistrationView):
    """Store the new passkey and audit it; a pending login then ends, verified by it."""

    def post(self, *args: Any, **kwargs: Any) -> JsonResponse:
        user = self.get_user()
        if user is None:  # the pending login ended since initial() asked
            raise exceptions.NotAuthenticated(detail=LOGIN_EXPIRED)
        logged_in = session_is_fully_authenticated(self.request)
        state = self.get_state()
        try:
            with transaction.atomic(), rewrite_exceptions(logger=None):
                credential = self.get_helper().register_complete(user=user, state=state, data=self.request.data)  # type: ignore[attr-defined]
                passkeys.record_passkey_added(user, credential)
                if not logged_in:
                    # The authenticator secrets this login showed can no longer become a factor.
                    two_factor.forget_pending_enrolments(user)
        except IntegrityError:
            # The credential id is unique across every tenant: the same answer whoever holds it.
            raise PasskeyExists() from None
        if not logged_in:
            next_url = auth.finish_login(self.request, self._site(), user, credential)
        else:
            if not self.request.user.is_verified():  # type: ignore[union-attr]
                # A first factor added from a password-only session verifies that session.
                django_otp.login(self.request, credential)
            next_url = reverse("admin:passkeys", current_app=self._site().name)
        return JsonResponse({"id": credential.pk, "redirect_url": next_url})


def ceremony_urls(site: AdminSite) -> list[URLPattern]:
    """The ceremonies' URLs, for ``include(..., namespace "otp_webauthn")`` (the library's scripts reverse them)."""
    catalog = login_not_required(JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]))
    return [
        path("registration/begin/", RegistrationBegin.as_view(site=site), name="credential-registration-begin"),
        path(
            "registration/complete/", RegistrationComplete.as_view(site=site), name="credential-registration-complete"
        ),
        path("authentication/begin/", LoginBegin.as_view(site=site), name="credential-authentication-begin"),
        path("authentication/complete/", LoginComplete.as_view(site=site), name="credential-authentication-complete"),
        path("jsi18n/", catalog, name="js-i18n-catalog"),
    ]


# --- the cockpit page ----------------------------------------------------------------------


NOT_HERE_MESSAGES = {
    True: "Leave the support session to manage your own passkeys.",
    False: "Log out and in again with your second factor to manage your passkeys.",
}


def passkeys_page(request: HttpRequest, site: AdminSite) -> TemplateResponse:
    """``/cockpit/passkeys/``: the caller's own passkeys, a button to add one, and removal."""
    user: User = request.user  # type: ignore[assignment]
    allowed = own_passkeys_allowed(request)
    context = {
        **site.each_context(request),
        "title": "Your passkeys",
        "subtitle": None,
        "allowed": allowed,
        "not_here": "" if allowed else NOT_HERE_MESSAGES[getattr(request, "support_grant", None) is not None],
        "passkeys": passkeys.passkeys_of(user) if allowed else [],
        "required": policy.requires_passkey(user),
    }
    return TemplateResponse(request, "cockpit/passkeys.html", context)


@require_POST
def remove_passkey(request: HttpRequest, site: AdminSite, pk: int) -> HttpResponse:
    """Remove one of the caller's passkeys (POST from the passkey page)."""
    if not own_passkeys_allowed(request):
        raise PermissionDenied(NOT_HERE_MESSAGES[getattr(request, "support_grant", None) is not None])
    try:
        passkeys.do_remove_passkey(request.user, pk)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The passkey was removed.")
    return redirect(reverse("admin:passkeys", current_app=site.name))
