"""Passkeys (WebAuthn) as a second factor beside the authenticator app.

django-otp-webauthn stores each passkey as a django-otp device, so a session verified by
one counts as verified everywhere the cockpit and the API already ask (``is_verified``).
cot uses them as a second factor only: the password comes first, always
(``OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN`` is off), and the ceremonies run for the user of
the pending login or of the verified cockpit session (``tenants.views.passkeys``).

Adding one is django-otp-webauthn's registration ceremony, audited in the same transaction
by ``record_passkey_added``; ``do_remove_passkey`` is a write path like those in
``services``: it checks, changes and audits in one transaction. A passkey is its owner's alone: nobody
else, administrators included, adds or removes one (an administrator resets a user's whole
second factor instead, ``services.users.do_reset_2fa``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.http.request import split_domain_port
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

import audit
from tenants import policy, two_factor
from tenants.models import User

LAST_PASSKEY_MESSAGE = "Your organisation requires a passkey to log in: add another one before removing this one."
LAST_FACTOR_MESSAGE = (
    "You need a second factor to log in: add another passkey or an authenticator app before removing this one."
)
NOT_FOUND_MESSAGE = "No such passkey."


class CockpitWebAuthnHelper(WebAuthnHelper):
    """The relying party is the cockpit's own host unless the operator names it.

    ``COT_WEBAUTHN_RP_ID`` and ``COT_WEBAUTHN_ORIGINS`` fix them for a deployment behind a
    proxy or with several names; unset, the host of the request (already checked against
    ``ALLOWED_HOSTS`` by Django) is both, so ``make run`` and the tests need no setting.
    """

    def get_relying_party_domain(self) -> str:
        configured = str(getattr(settings, "OTP_WEBAUTHN_RP_ID", "") or "")
        if configured:
            return configured
        domain, _port = split_domain_port(self.request.get_host())
        return domain

    def create_credential(self, user: Any, *args: Any, **kwargs: Any) -> WebAuthnCredential:
        """The library's new credential, named so the user can tell theirs apart ("Passkey 2")."""
        credential: WebAuthnCredential = super().create_credential(user, *args, **kwargs)
        credential.name = f"Passkey {WebAuthnCredential.objects.filter(user=user).count() + 1}"
        return credential

    def get_allowed_origins(self) -> list[str]:
        configured = list(getattr(settings, "OTP_WEBAUTHN_ALLOWED_ORIGINS", []) or [])
        return configured or [f"{self.request.scheme}://{self.request.get_host()}"]


def passkeys_of(user: User) -> QuerySet[WebAuthnCredential]:
    """``user``'s confirmed passkeys, oldest first."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def has_passkey(user: User) -> bool:
    """Whether ``user`` can log in with a passkey."""
    return passkeys_of(user).exists()


def record_passkey_added(user: User, credential: WebAuthnCredential) -> None:
    """Audit a passkey that django-otp-webauthn's registration just stored for ``user``."""
    audit.record(
        "2fa.passkey_added",
        tenant=user.tenant_id,
        target=user,
        actor=user,
        data={"passkey": credential.pk, "name": credential.name},
    )


def do_remove_passkey(user: User, passkey_id: int) -> None:
    """Remove one of ``user``'s own passkeys; never their last second factor where one is required.

    Another user's passkey and a missing one get the same 404.
    """
    with transaction.atomic():
        # All of them locked: two removals at once must not both see "another one is left".
        owned = list(passkeys_of(user).select_for_update())
        credential = next((c for c in owned if c.pk == passkey_id), None)
        if credential is None:
            raise Http404(NOT_FOUND_MESSAGE)
        if len(owned) == 1 and policy.requires_passkey(user):
            raise ValidationError(LAST_PASSKEY_MESSAGE)
        if len(owned) == 1 and policy.requires_two_factor(user) and not two_factor.has_confirmed_authenticator(user):
            # Without it the account would be back to "no factor", which the password alone re-enrols.
            raise ValidationError(LAST_FACTOR_MESSAGE)
        credential.delete()
        audit.record(
            "2fa.passkey_removed",
            tenant=user.tenant_id,
            target=user,
            actor=user,
            data={"passkey": passkey_id, "name": credential.name},
        )
