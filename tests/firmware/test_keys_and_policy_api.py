"""``/api/v1/firmware-keys/`` and ``/api/v1/firmware-policy/``: administrators decide what code the fleet trusts."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from firmware import signing
from firmware.models import FirmwarePolicy, SigningKey
from firmware.services import do_add_signing_key
from tenants.models import Role
from tenants.services import do_create_support_grant, do_update_tenant_policy
from tests.factories import api_client, make_user, verified_client
from tests.support.api_isolation import TenantIsolationChecks

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def test_a_key_is_registered_from_pem_or_raw_base64_and_shown_by_id(acme_admin, keypair):
    client = api_client(acme_admin)
    response = client.post("/api/v1/firmware-keys/", {"name": "release 2026", "public_key": keypair[1]}, format="json")
    assert response.status_code == 201, response.content
    raw = signing.parse_public_key(keypair[1])
    assert response.json()["key_id"] == signing.key_id(raw)
    assert AuditEntry.objects.filter(event="firmware.key.add").exists()
    again = client.post("/api/v1/firmware-keys/", {"name": "copy", "public_key": keypair[1]}, format="json")
    assert again.status_code == 400 and "release 2026" in again.json()["public_key"][0]


@pytest.mark.parametrize(
    "text", ["", "not a key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----"]
)
def test_anything_but_an_ed25519_public_key_is_a_400(acme_admin, text):
    response = api_client(acme_admin).post("/api/v1/firmware-keys/", {"name": "k", "public_key": text}, format="json")
    assert response.status_code == 400
    assert "public_key" in response.json()
    assert not SigningKey.objects.exists()


def test_revoking_twice_is_a_conflict(acme_admin, keypair):
    key = do_add_signing_key(name="k", public_key=keypair[1], actor=acme_admin)
    client = api_client(acme_admin)
    assert client.post(f"/api/v1/firmware-keys/{key.pk}/revoke/").status_code == 200
    assert client.post(f"/api/v1/firmware-keys/{key.pk}/revoke/").status_code == 409
    assert AuditEntry.objects.filter(event="firmware.key.revoke").count() == 1


def test_only_the_tenants_administrators_manage_keys_and_policy(acme, acme_admin, keypair):
    for role in ("standard", "business"):
        client = api_client(make_user(acme, role), scope="read" if role == "business" else "write")
        assert client.get("/api/v1/firmware-keys/").status_code == 200
        assert client.get("/api/v1/firmware-policy/").json() == {
            "require_signatures": True,
            "max_image_bytes": 256 * 1024 * 1024,
            "standard_users_roll_out": False,
        }
        assert (
            client.post("/api/v1/firmware-keys/", {"name": "k", "public_key": keypair[1]}, format="json").status_code
            == 403
        )
        assert client.patch("/api/v1/firmware-policy/", {"require_signatures": False}, format="json").status_code == 403
    assert not SigningKey.objects.exists() and not FirmwarePolicy.objects.exists()
    changed = api_client(acme_admin).patch("/api/v1/firmware-policy/", {"require_signatures": False}, format="json")
    assert changed.status_code == 200 and changed.json()["require_signatures"] is False
    assert AuditEntry.objects.filter(event="firmware.policy", tenant=acme).exists()


def test_policy_input_is_checked(acme_admin):
    client = api_client(acme_admin)
    assert client.patch("/api/v1/firmware-policy/", {"max_image_bytes": 10}, format="json").status_code == 400
    assert client.patch("/api/v1/firmware-policy/", {"require_signatures": "no"}, format="json").status_code == 400
    assert client.patch("/api/v1/firmware-policy/", {"color": "red"}, format="json").status_code == 400


def test_support_engineers_change_no_firmware_even_under_a_write_grant(acme, acme_admin, provider, keypair):
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="T-2", scope="write")
    client = verified_client(engineer)
    assert client.post("/support/enter/", {"secret": link}).status_code == 302
    assert client.get("/api/v1/firmware/").status_code == 200  # looking is what a grant is for
    calls = [
        client.post("/api/v1/firmware-keys/", {"name": "k", "public_key": keypair[1]}, content_type="application/json"),
        client.patch("/api/v1/firmware-policy/", {"require_signatures": False}, content_type="application/json"),
    ]
    assert [call.status_code for call in calls] == [403, 403]
    # Uploads take an API token, which a support engineer never holds for a customer tenant.
    assert client.post("/api/v1/firmware/", {"version": "1.0.0"}).status_code == 401
    assert not SigningKey.objects.exists() and not FirmwarePolicy.objects.exists()


class TestSigningKeyIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/firmware-keys/"

    def make_object(self, tenant: Any) -> SigningKey:
        return do_add_signing_key(name="k", public_key=signing.generate_key()[1], actor=None, tenant=tenant)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "new", "public_key": signing.generate_key()[1]}

    def test_foreign_key_cannot_be_revoked(self, two_tenants: dict[str, Any]) -> None:
        foreign = two_tenants["foreign"]
        assert two_tenants["client"].post(f"{self.endpoint}{foreign.pk}/revoke/").status_code == 404
        assert SigningKey.objects.get(pk=foreign.pk).revoked_at is None


def test_the_policy_is_the_callers_tenants_own(acme_admin, globex):
    api_client(acme_admin).patch("/api/v1/firmware-policy/", {"require_signatures": False}, format="json")
    assert FirmwarePolicy.objects.get(tenant=acme_admin.tenant).require_signatures is False
    globex_client = api_client(make_user(globex))
    assert globex_client.get("/api/v1/firmware-policy/").json()["require_signatures"] is True
