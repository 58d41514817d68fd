"""Test fixtures built through the real services, so tests exercise the real write paths."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from django.test import Client
from django_otp_webauthn.models import WebAuthnCredential
from rest_framework.test import APIClient

from devices.models import DeviceGroup
from devices.services import do_create_device_group, do_set_device_group_rights
from tenants.models import ApiToken, Role, Tenant, User
from tenants.services import builtin_role, do_create_api_token, do_create_tenant, do_create_user

PASSWORD = "a-long-test-passphrase-42"
_seq = itertools.count(1)


def make_tenant(slug: str | None = None, *, provider: bool = False) -> Tenant:
    n = next(_seq)
    slug = slug or f"tenant-{n}"
    return do_create_tenant(slug=slug, name=slug.title(), provider=provider)


def make_user(tenant: Tenant, role: str | Role = Role.Kind.ADMINISTRATOR, *, email: str | None = None) -> User:
    role_obj = role if isinstance(role, Role) else builtin_role(tenant, role)
    email = email or f"{role_obj.kind}-{next(_seq)}@{tenant.slug}.test"
    return do_create_user(email=email, role=role_obj, password=PASSWORD, actor=None, tenant=tenant)


def make_token(user: User, scope: str = ApiToken.Scope.WRITE) -> str:
    _, secret = do_create_api_token(user=user, name=f"token-{next(_seq)}", scope=scope, actor=None)
    return secret


def make_group(tenant: Tenant, name: str | None = None) -> DeviceGroup:
    return do_create_device_group(name=name or f"group-{next(_seq)}", actor=None, tenant=tenant)


def grant(group: DeviceGroup, rights: list[str], *, user: User | None = None, role: Role | None = None) -> None:
    do_set_device_group_rights(group, rights=rights, user=user, role=role, actor=None)


def api_client(user: User | None = None, scope: str = ApiToken.Scope.WRITE) -> APIClient:
    """A client authenticated with a fresh API token of ``user`` (anonymous without)."""
    return bearer_client(make_token(user, scope)) if user is not None else APIClient()


def ids(response: Any) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def _client_verified_by(user: User, device: Any) -> Client:
    """A browser-like client logged in as ``user``, its second factor verified by ``device``."""
    from django_otp import DEVICE_ID_SESSION_KEY

    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def verified_client(user: User) -> Client:
    """A browser-like client logged in with a verified second factor (as after the 2FA login)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="authenticator", confirmed=True
    )
    return _client_verified_by(user, device)


def stored_passkey(user: User) -> WebAuthnCredential:
    """A passkey row as registration leaves it (its key is never used: no signature is checked here)."""
    return WebAuthnCredential.objects.create(
        user=user,
        name="Security key",
        credential_id=secrets.token_bytes(32),
        public_key=secrets.token_bytes(77),
        confirmed=True,
    )


def passkey_client(user: User) -> Client:
    """A cockpit session verified by a passkey, as after logging in with one."""
    return _client_verified_by(user, WebAuthnCredential.objects.filter(user=user).first() or stored_passkey(user))


def make_device(tenant: Tenant, group: DeviceGroup | None = None, external_id: str | None = None) -> tuple[Any, str]:
    """A registered, active device and its credential, through the real registration flow."""
    from devices.services.registration import device_register, do_accept_registrations, do_create_registration

    external_id = external_id or f"SN-{next(_seq):06d}"
    issued = do_create_registration(external_id=external_id, group=group, actor=None, tenant=tenant)
    do_accept_registrations([issued.registration.pk], actor=None)
    answer = device_register(tenant_slug=tenant.slug, external_id=external_id, registration_token=issued.token)
    assert answer.device is not None and answer.credential is not None
    return answer.device, answer.credential


def bearer_client(secret: str) -> APIClient:
    """A client sending ``Authorization: Bearer <secret>`` (an API token or a device credential)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def device_client(credential: str) -> APIClient:
    """A client speaking to the device API with a device credential."""
    return bearer_client(credential)
