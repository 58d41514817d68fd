"""Cockpit: signing keys. Administrators register public keys (through the service) and revoke them."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from firmware import signing
from firmware.models import SigningKey
from firmware.services import do_add_signing_key
from tenants.models import Role
from tests.factories import make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url
from tests.support.device_rows import messages_of, run_action

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def make_key(tenant: Any, name: str = "release") -> SigningKey:
    _, public = signing.generate_key()
    return do_add_signing_key(name=name, public_key=public, actor=None, tenant=tenant)


class TestSigningKeyAdminIsolation(AdminIsolationChecks):
    model = SigningKey
    actions = ("revoke",)

    def make_object(self, tenant: Any) -> SigningKey:
        return make_key(tenant)

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "new key", "public_key": signing.generate_key()[1]}

    def search_term(self, obj: Any) -> str:
        return obj.key_id


def test_add_a_key_from_pem(acme_admin, keypair):
    client = cockpit_client(acme_admin)
    response = client.post(admin_url(SigningKey, "add"), {"name": "release 2026", "public_key": keypair[1]})
    assert response.status_code == 302, response.content
    key = SigningKey.objects.get()
    assert key.key_id == signing.key_id(signing.parse_public_key(keypair[1]))
    assert AuditEntry.objects.get(event="firmware.key.add").actor == acme_admin
    page = client.get(object_url(key)).content.decode()
    assert key.key_id in page
    again = client.post(admin_url(SigningKey, "add"), {"name": "copy", "public_key": keypair[1]})
    assert again.status_code == 200
    assert "release 2026" in again.context["adminform"].form.errors["public_key"][0]


def test_a_private_key_is_refused_and_not_stored(acme_admin, keypair):
    response = cockpit_client(acme_admin).post(
        admin_url(SigningKey, "add"), {"name": "oops", "public_key": keypair[0].decode()}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["public_key"]
    assert not SigningKey.objects.exists()


def test_revoke_action(acme, acme_admin):
    key = make_key(acme)
    client = cockpit_client(acme_admin)
    response = run_action(client, SigningKey, "revoke", [key.pk])
    assert "Revoked: 1." in messages_of(response)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.get(event="firmware.key.revoke").actor == acme_admin
    again = run_action(client, SigningKey, "revoke", [key.pk])
    assert any("already revoked" in text for text in messages_of(again))


def test_standard_user_reads_keys_but_adds_none(acme, keypair):
    key = make_key(acme)
    client = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    assert key.pk in changelist_pks(client.get(admin_url(SigningKey, "changelist")))
    assert client.get(admin_url(SigningKey, "add")).status_code == 403
    assert client.post(admin_url(SigningKey, "add"), {"name": "x", "public_key": keypair[1]}).status_code == 403
    run_action(client, SigningKey, "revoke", [key.pk])
    key.refresh_from_db()
    assert key.revoked_at is None and SigningKey.objects.count() == 1


def test_support_engineer_under_a_write_grant_adds_and_revokes_nothing(acme, support_client, keypair):
    key = make_key(acme)
    assert key.pk in changelist_pks(support_client.get(admin_url(SigningKey, "changelist")))
    assert support_client.get(admin_url(SigningKey, "add")).status_code == 403
    assert support_client.post(admin_url(SigningKey, "add"), {"name": "x", "public_key": keypair[1]}).status_code == 403
    run_action(support_client, SigningKey, "revoke", [key.pk])
    key.refresh_from_db()
    assert key.revoked_at is None and SigningKey.objects.count() == 1
