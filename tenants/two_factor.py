"""Second-factor devices: enrolment, verification and backup codes (the login views use it).

``confirm_enrolment`` is a write path like those in ``services``: it checks the code,
confirms the device, replaces the backup codes and audits, in one transaction.

Tokens are always checked against one named device inside a transaction that locks its
row, so django-otp's throttling (exponential back-off after wrong codes) and its refusal
to accept a TOTP time step twice hold even for concurrent requests.

A pending enrolment's secret belongs to the login attempt (session) that created it:
another client that knows the password gets a secret of its own, never a copy of the one
the real user is about to confirm. Confirming one removes the others; a password change
removes them all.
"""

from __future__ import annotations

import re
from base64 import b32encode
from dataclasses import dataclass
from datetime import timedelta

import qrcode
import qrcode.image.svg
from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

import audit
from tenants.models import User

AUTHENTICATOR_NAME = "authenticator"
BACKUP_DEVICE_NAME = "backup"
BACKUP_CODE_COUNT = 10
_TOTP_TOKEN = re.compile(r"\d{6,8}")
# Unconfirmed authenticators older than this are abandoned logins (a pending login lasts 5 minutes).
ABANDONED_ENROLMENT = timedelta(hours=1)


@dataclass(frozen=True)
class Verification:
    """The outcome of checking one code: the device that accepted it, or why none did."""

    device: Device | None
    throttled: bool = False


def has_confirmed_authenticator(user: User) -> bool:
    """Whether ``user`` finished enrolment, so every login asks for a code."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def confirmed_authenticator_exists() -> Exists:
    """``has_confirmed_authenticator`` as an annotation on a queryset of users (one query for a list)."""
    return Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True))


def factor_name(device: Device | None) -> str:
    """What verified a login, in the words of the audit trail."""
    if device is None:
        return "password"
    if isinstance(device, WebAuthnCredential):
        return "passkey"
    return "backup code" if isinstance(device, StaticDevice) else "authenticator app"


def has_second_factor(user: User) -> bool:
    """Whether ``user`` has an authenticator app or a passkey, so every login asks for one."""
    return has_confirmed_authenticator(user) or WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()


def second_factor_exists() -> ExpressionWrapper:
    """``has_second_factor`` as an annotation on a queryset of users."""
    passkey = Exists(WebAuthnCredential.objects.filter(user=OuterRef("pk"), confirmed=True))
    return ExpressionWrapper(Q(confirmed_authenticator_exists()) | Q(passkey), output_field=BooleanField())


def enrolment_device(user: User, device_id: int | None = None) -> TOTPDevice:
    """This login attempt's unconfirmed authenticator: the one ``device_id`` names, or a new one.

    The caller keeps ``device_id`` in the login attempt's session, so a secret is only
    ever shown to the session that created it.
    """
    device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first() if device_id else None
    if device is None:
        TOTPDevice.objects.filter(
            user=user, confirmed=False, created_at__lt=timezone.now() - ABANDONED_ENROLMENT
        ).delete()
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def forget_pending_enrolments(user: User) -> None:
    """Remove every unconfirmed authenticator (their secrets were shown to whoever knew the old password)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()


def manual_key(device: TOTPDevice) -> str:
    """The device's secret in base32, in groups of four for typing into an app by hand."""
    key = b32encode(device.bin_key).decode("ascii")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def qr_svg(device: TOTPDevice) -> str:
    """An inline SVG QR code of the device's ``otpauth://`` URL (no image library needed)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)
    svg: str = image.to_string(encoding="unicode")
    return svg


def _verify_on(user: User, device: Device, token: str) -> Verification:
    with transaction.atomic():
        # Lock the row so two requests cannot both spend the same code or dodge throttling.
        locked = type(device).objects.select_for_update().filter(pk=device.pk, user=user).first()
        if locked is None:
            return Verification(None)
        allowed, _ = locked.verify_is_allowed()
        if not allowed:
            return Verification(None, throttled=True)
        return Verification(locked if locked.verify_token(token) else None)


def verify_code(user: User, token: str) -> Verification:
    """Check an authenticator code (digits) or a backup code against the user's confirmed devices.

    Only the device kind the token's shape points at is tried, so one wrong entry
    counts as one failure on one device. A backup code is consumed when it matches.
    """
    model: type[Device] = TOTPDevice if _TOTP_TOKEN.fullmatch(token) else StaticDevice
    throttled = False
    for device in model.objects.filter(user=user, confirmed=True).order_by("pk"):
        result = _verify_on(user, device, token)
        if result.device is not None:
            return result
        throttled = throttled or result.throttled
    return Verification(None, throttled=throttled)


def confirm_enrolment(user: User, device: TOTPDevice, token: str) -> tuple[Verification, list[str]]:
    """Confirm ``device`` with a first code; on success issue fresh backup codes.

    Returns the verification and the plain backup codes, which the caller shows once:
    they are not retrievable later. Verifying, confirming, replacing the backup codes
    and the ``2fa.enrol`` audit entry commit together.
    """
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().filter(pk=device.pk, user=user, confirmed=False).first()
        if locked is None:
            return Verification(None), []
        allowed, _ = locked.verify_is_allowed()
        if not allowed:
            return Verification(None, throttled=True), []
        if not locked.verify_token(token):
            return Verification(None), []
        locked.confirmed = True
        locked.save(update_fields=["confirmed"])
        # Secrets shown to other login attempts must never become a second authenticator.
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=locked.pk).delete()
        codes = _new_backup_codes(user)
        audit.record(
            "2fa.enrol",
            tenant=user.tenant_id,
            target=user,
            actor=user,
            data={"device": locked.name, "backup_codes": len(codes)},
        )
    return Verification(locked), codes


def _new_backup_codes(user: User) -> list[str]:
    # Codes from an earlier enrolment (before a 2FA reset) must stop working.
    StaticDevice.objects.filter(user=user).delete()
    backup = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    codes: set[str] = set()
    while len(codes) < BACKUP_CODE_COUNT:
        codes.add(StaticToken.random_token())
    ordered = sorted(codes)
    StaticToken.objects.bulk_create(StaticToken(device=backup, token=code) for code in ordered)
    return ordered
