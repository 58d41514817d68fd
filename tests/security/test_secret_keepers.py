"""Whatever mints or returns a secret is for the tenant's administrators alone.

Device credentials, registration tokens (and accepting a registration, which lets a
device collect a credential), unblocking a device (its credential works again) and API
tokens: a credential outlives its holder's deactivation and a support grant's 24 hours,
so a Standard user, a custom role with ``change``, a support engineer under any grant
and an API token never get one.
"""

from typing import Any

import pytest

from devices.models import Device, DeviceRegistration
from devices.services.registration import do_create_registration
from devices.services.registry import do_block_devices
from tenants.models import ApiToken, Role
from tenants.services import do_create_role, do_create_support_grant, do_update_tenant_policy
from tests.factories import api_client, grant, make_device, make_group, make_user, verified_client

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def scene(acme: Any, acme_admin: Any) -> dict[str, Any]:
    group = make_group(acme)
    device, _ = make_device(acme, group)
    blocked, _ = make_device(acme, group)
    do_block_devices([blocked.pk], actor=acme_admin)
    registration = do_create_registration(external_id="PENDING-1", actor=None, tenant=acme).registration
    return {"group": group, "device": device, "blocked": blocked, "registration": registration}


def _secret_calls(client: Any, scene: dict[str, Any]) -> dict[str, Any]:
    device, blocked, registration = scene["device"], scene["blocked"], scene["registration"]
    return {
        "rotate": client.post(f"/api/v1/devices/{device.pk}/credential/rotate/"),
        "unblock": client.post(f"/api/v1/devices/{blocked.pk}/unblock/"),
        "register": client.post("/api/v1/registrations/", {"external_id": "NEW-1"}, format="json"),
        "register_csv": client.post("/api/v1/registrations/csv/", {"csv": "external_id\nNEW-2\n"}, format="json"),
        "accept": client.post(f"/api/v1/registrations/{registration.pk}/accept/"),
    }


def _nothing_minted(scene: dict[str, Any]) -> None:
    device = Device.objects.get(pk=scene["device"].pk)
    assert device.credential_digest == scene["device"].credential_digest
    assert Device.objects.get(pk=scene["blocked"].pk).status == "blocked"
    assert not DeviceRegistration.objects.filter(external_id__startswith="NEW-").exists()
    assert DeviceRegistration.objects.get(pk=scene["registration"].pk).status == "pending"


@pytest.mark.parametrize("kind", ["standard", "custom"])
def test_users_with_change_rights_get_no_secrets(acme, scene, kind):
    role: Any = Role.Kind.STANDARD
    if kind == "custom":
        role = do_create_role(name="Operators", rights=["view", "change", "delete"], actor=None, tenant=acme)
    user = make_user(acme, role)
    grant(scene["group"], ["view", "change", "delete"], user=user)
    client = api_client(user)
    assert client.get(f"/api/v1/devices/{scene['device'].pk}/").status_code == 200  # they do see the device
    answers = _secret_calls(client, scene)
    # Registrations are not even visible to them: that one is out of reach (404).
    assert {name: answer.status_code for name, answer in answers.items()} == {
        **dict.fromkeys(answers, 403),
        "accept": 404,
    }
    assert "administrators" in answers["rotate"].json()["detail"]
    _nothing_minted(scene)


def test_support_engineers_get_no_secrets_even_under_a_write_grant(acme, acme_admin, provider, scene):
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="T-1", scope="write")
    client = verified_client(engineer)
    assert client.post("/support/enter/", {"secret": link}).status_code == 302
    assert client.get(f"/api/v1/devices/{scene['device'].pk}/").status_code == 200  # inside the tenant
    assert client.get("/api/v1/registrations/").status_code == 200  # looking is what a grant is for
    calls = {
        "rotate": client.post(f"/api/v1/devices/{scene['device'].pk}/credential/rotate/"),
        "unblock": client.post(f"/api/v1/devices/{scene['blocked'].pk}/unblock/"),
        "register": client.post("/api/v1/registrations/", {"external_id": "NEW-1"}, content_type="application/json"),
        "accept": client.post(f"/api/v1/registrations/{scene['registration'].pk}/accept/"),
        "token": client.post("/api/v1/tokens/", {"name": "x"}, content_type="application/json"),
    }
    assert {name: answer.status_code for name, answer in calls.items()} == dict.fromkeys(calls, 403)
    # The cockpit's doors to the same secrets are shut as well.
    assert client.get("/cockpit/devices/deviceregistration/add/").status_code == 403
    assert client.post(f"/cockpit/devices/device/{scene['blocked'].pk}/unblock/").status_code == 403
    _nothing_minted(scene)


def test_administrators_hold_the_secrets_but_not_through_a_read_token(acme_admin, scene):
    read = api_client(acme_admin, scope=ApiToken.Scope.READ)
    assert read.post(f"/api/v1/devices/{scene['device'].pk}/credential/rotate/").status_code == 403
    _nothing_minted(scene)
    answers = _secret_calls(api_client(acme_admin), scene)
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "rotate": 200,
        "unblock": 200,
        "register": 201,
        "register_csv": 201,
        "accept": 200,
    }
    assert answers["rotate"].json()["credential"].startswith("cot_dev_")
    assert answers["register"].json()["registration_token"].startswith("cot_reg_")


def test_a_token_cannot_mint_a_token(acme_admin):
    client = api_client(acme_admin)  # a write token
    response = client.post("/api/v1/tokens/", {"name": "child", "scope": "write"}, format="json")
    assert response.status_code == 403
    assert "cockpit" in response.json()["detail"] and "token" in response.json()["detail"]
    assert ApiToken.objects.filter(user=acme_admin).count() == 1  # only the client's own
    session = verified_client(acme_admin)
    created = session.post("/api/v1/tokens/", {"name": "from the cockpit"}, content_type="application/json")
    assert created.status_code == 201 and created.json()["token"].startswith("cot_pat_")
