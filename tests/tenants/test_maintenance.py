"""A tenant in maintenance: read-only refuses every write; closed answers only a notice (API, cockpit, devices)."""

from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from audit.models import AuditEntry
from devices.models import DeviceGroup
from tenants.models import Role, Tenant
from tenants.services import do_set_tenant_maintenance
from tests.factories import api_client, device_client, make_device, make_group, make_user, verified_client

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])
MODES = [Tenant.Maintenance.READ_ONLY, Tenant.Maintenance.CLOSED]


@pytest.fixture
def operator(provider: Any) -> Any:
    return make_user(provider, Role.Kind.OPERATOR, email="ops@platform.test")


def test_read_only_maintenance_lets_people_read_and_refuses_every_write(acme, acme_admin, operator):
    group = make_group(acme, "Plant")
    do_set_tenant_maintenance(acme, Tenant.Maintenance.READ_ONLY, reason="moving rights", actor=operator)

    api = api_client(acme_admin)
    assert api.get("/api/v1/device-groups/").status_code == 200
    refused = api.post("/api/v1/device-groups/", {"name": "New"}, format="json")
    assert refused.status_code == 403
    assert "in maintenance (moving rights): read-only" in refused.json()["detail"]
    assert api.delete(f"/api/v1/device-groups/{group.pk}/").status_code == 403
    assert list(DeviceGroup.objects.filter(tenant=acme).values_list("name", flat=True)) == ["Plant"]

    page = verified_client(acme_admin).get("/cockpit/devices/devicegroup/")
    assert page.status_code == 200
    assert "in maintenance (moving rights): read-only" in page.content.decode()
    added = verified_client(acme_admin).post("/cockpit/devices/devicegroup/add/", {"name": "Via cockpit"})
    assert added.status_code == 403
    assert not DeviceGroup.objects.filter(name="Via cockpit").exists()


def test_a_closed_tenant_answers_a_maintenance_notice_everywhere(acme, acme_admin, operator, globex_admin):
    _, credential = make_device(acme, make_group(acme))
    do_set_tenant_maintenance(acme, Tenant.Maintenance.CLOSED, reason="rights migration", actor=operator)

    answer = api_client(acme_admin).get("/api/v1/device-groups/")
    assert answer.status_code == 503
    assert "closed until the change is complete" in answer.json()["detail"]
    assert answer["Retry-After"] == "60"

    page = verified_client(acme_admin).get("/cockpit/devices/devicegroup/")
    assert page.status_code == 503
    assert "closed until the change is complete" in page.content.decode()
    assert "Plant" not in page.content.decode()

    device = device_client(credential).get("/api/device/v1/operations")
    assert device.status_code == 503
    assert device["Retry-After"] == "60"

    # Other tenants carry on.
    assert api_client(globex_admin).get("/api/v1/device-groups/").status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_ending_maintenance_restores_access_and_every_change_is_audited(acme, acme_admin, operator, mode):
    do_set_tenant_maintenance(acme, mode, reason="upgrade", actor=operator)
    do_set_tenant_maintenance(acme, Tenant.Maintenance.OFF, actor=operator)

    created = api_client(acme_admin).post("/api/v1/device-groups/", {"name": "After"}, format="json")
    assert created.status_code == 201
    entries = AuditEntry.objects.filter(tenant=acme, event="tenant.maintenance").order_by("seq")
    assert [entry.changes["maintenance"] for entry in entries] == [["", mode], [mode, ""]]
    assert entries[0].actor_id == operator.pk
    assert entries[0].additional_data == {"reason": "upgrade"}


def test_only_operators_set_maintenance_and_never_on_the_provider(acme, acme_admin, operator, provider):
    with pytest.raises(PermissionDenied):
        do_set_tenant_maintenance(acme, Tenant.Maintenance.CLOSED, actor=acme_admin)
    with pytest.raises(ValidationError, match="provider tenant"):
        do_set_tenant_maintenance(provider, Tenant.Maintenance.CLOSED, actor=operator)
    with pytest.raises(ValidationError, match="Unknown maintenance mode"):
        do_set_tenant_maintenance(acme, "half-open", actor=operator)
    acme.refresh_from_db()
    assert acme.maintenance == Tenant.Maintenance.OFF


def test_operators_use_the_cockpit_actions_and_the_command(acme, operator):
    client = verified_client(operator)
    done = client.post(
        "/cockpit/tenants/tenant/", {"action": "close_for_maintenance", "_selected_action": [acme.pk]}, follow=True
    )
    assert done.status_code == 200
    acme.refresh_from_db()
    assert acme.maintenance == Tenant.Maintenance.CLOSED

    call_command("tenant_maintenance", "acme", "off", stdout=StringIO())
    acme.refresh_from_db()
    assert acme.maintenance == Tenant.Maintenance.OFF
    assert AuditEntry.objects.filter(tenant=acme, event="tenant.maintenance").count() == 2


def test_registration_in_maintenance_answers_503_only_to_a_device_with_the_right_token(acme, acme_admin, operator):
    from devices.services.registration import do_create_registration

    issued = do_create_registration(external_id="SN-1", actor=acme_admin)
    registration, token = issued.registration, issued.token
    do_set_tenant_maintenance(acme, Tenant.Maintenance.READ_ONLY, actor=operator)
    body = {"tenant": "acme", "external_id": "SN-1"}
    client = device_client("")
    wrong = client.post("/api/device/v1/register", {**body, "registration_token": "x" * 12}, format="json")
    assert wrong.status_code == 404  # the same answer as for any unknown registration
    right = client.post("/api/device/v1/register", {**body, "registration_token": token}, format="json")
    assert right.status_code == 503
    assert right["Retry-After"] == "60"
    registration.refresh_from_db()
    assert registration.device_id is None


def test_a_support_engineer_inside_a_closed_tenant_gets_the_notice(acme, acme_admin, operator, provider):
    from tenants.services import do_create_support_grant

    engineer = make_user(provider, Role.Kind.SUPPORT, email="engineer@platform.test")
    _, link = do_create_support_grant(actor=acme_admin, reason="T-1", duration_hours=2, scope="read")
    client = verified_client(engineer)
    client.post("/support/enter/", {"secret": link.partition("#")[2]})
    do_set_tenant_maintenance(acme, Tenant.Maintenance.CLOSED, actor=operator)
    page = client.get("/cockpit/devices/devicegroup/")
    assert page.status_code == 503
    assert "closed until the change is complete" in page.content.decode()
