"""Forms of the cockpit login: the password step and the second-factor code."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest

from cot.database.scope import cross_tenant, tenant_scope
from tenants.access import caller_for
from tenants.models import User

LOGIN_FAILED_MESSAGE = "E-mail or password is incorrect."
SUSPENDED_MESSAGE = "Your organisation's access is suspended."
NO_ACCESS_MESSAGE = "Your account has no access to the cockpit. Ask your administrator."
BAD_CODE_MESSAGE = "The code is not valid. Check your authenticator app and try again."
THROTTLED_MESSAGE = "Too many wrong codes. Wait a few seconds, then try again."

_CODE_SEPARATORS = re.compile(r"[\s-]+")


class PasswordLoginForm(forms.Form):
    """Step 1: e-mail and password.

    The e-mail field is called ``username`` because django-axes reads that POST field
    (``AXES_USERNAME_FORM_FIELD``) to count failures per account.
    """

    username = forms.EmailField(
        label="E-mail",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.user_cache: User | None = None
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        email, password = cleaned.get("username"), cleaned.get("password")
        if email is None or password is None:
            return cleaned
        # authenticate() with the request lets axes refuse locked-out accounts and count
        # this attempt; its failure signal also writes ``auth.login_failed`` to the trail.
        user = authenticate(request=self.request, username=email, password=password)
        if user is None:
            raise forms.ValidationError(self._failure_message(email, password), code="invalid_login")
        if caller_for(user) is None:
            raise forms.ValidationError(NO_ACCESS_MESSAGE, code="no_access")
        self.user_cache = user
        return cleaned

    def get_user(self) -> User:
        """The authenticated user; only after ``is_valid()`` returned ``True``."""
        assert self.user_cache is not None
        return self.user_cache

    def _failure_message(self, email: str, password: str) -> str:
        """The generic message, or the suspension notice once the password proved right.

        Always one more password hash, whatever the case, so the answer time tells
        nothing about whether the account exists or its tenant is suspended.
        """
        if getattr(self.request, "axes_locked_out", False):
            return LOGIN_FAILED_MESSAGE  # AxesMiddleware answers with the lockout page instead
        with cross_tenant("auth.login"):
            user = User.objects.select_related("tenant").filter(email__iexact=email).first()
        if user is not None and user.is_active and not user.tenant.is_active:
            with tenant_scope(user.tenant_id):  # an upgraded hash is saved
                right = user.check_password(password)
            if right:
                return SUSPENDED_MESSAGE
        else:
            User().set_password(password)
        return LOGIN_FAILED_MESSAGE


class OTPCodeForm(forms.Form):
    """Step 2: a 6-digit authenticator code or a backup code (shape only, no verification)."""

    otp_token = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )

    def clean_otp_token(self) -> str:
        # People copy codes as "123 456" or "abcd-efgh"; compare without the separators.
        token = _CODE_SEPARATORS.sub("", self.cleaned_data["otp_token"]).lower()
        if not token:
            raise forms.ValidationError("Enter the code.", code="required")
        return token
