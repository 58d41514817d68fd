"""Support grants limited to device groups: the engineer sees those groups' devices and data, nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from devices.models import DeviceRegistration, PayloadPurge
from devices.services.groups import do_update_device_group
from devices.services.registration import do_create_registration
from devices.services.registry import do_move_devices
from firmware.services import do_create_rollout
from tenants.models import Role, SupportGrant
from tenants.services import do_create_support_grant, do_update_tenant_policy
from tests.factories import api_client, ids, make_group, make_tenant, make_user, verified_client
from tests.firmware.test_rollout_planning import image_for
from tests.support.device_rows import add_alarm, add_measurements, make_type, placed_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def site(acme: Any, acme_admin: Any, provider: Any) -> dict[str, Any]:
    """Devices, data and registrations in two groups and none; an engineer inside a grant limited to "north"."""
    north, south = make_group(acme, "north"), make_group(acme, "south")
    rows: dict[str, Any] = {"north": north, "south": south}
    for name, group in (("in_north", north), ("in_south", south), ("ungrouped", None)):
        device = placed_device(acme, group)
        if group is None:
            do_move_devices([device.pk], None, actor=acme_admin)
        rows[name] = device
        rows[f"{name}_alarm"] = add_alarm(device)
        add_measurements(device, [(timezone.now(), 1.0)])
    rows["north_registration"] = do_create_registration(external_id="N-NEW", group=north, actor=acme_admin)
    rows["south_registration"] = do_create_registration(external_id="S-NEW", group=south, actor=acme_admin)
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT, email="engineer@platform.test")
    grant, link = do_create_support_grant(
        actor=acme_admin, reason="T-42", duration_hours=2, scope="write", device_groups=[north.pk]
    )
    client = verified_client(engineer)
    assert client.post("/support/enter/", {"secret": link.partition("#")[2]}).status_code == 302
    rows.update(grant=grant, engineer=engineer, client=client)
    return rows


def test_the_engineer_sees_the_granted_groups_devices_and_their_data_only(site: dict[str, Any]) -> None:
    client = site["client"]

    assert ids(client.get("/api/v1/device-groups/")) == {site["north"].pk}
    assert ids(client.get("/api/v1/devices/")) == {site["in_north"].pk}
    assert {row["device"] for row in client.get("/api/v1/measurements/").json()["results"]} == {site["in_north"].pk}
    assert ids(client.get("/api/v1/alarms/")) == {site["in_north_alarm"].pk}
    north_registrations = set(DeviceRegistration.objects.filter(group=site["north"]).values_list("pk", flat=True))
    assert site["north_registration"].registration.pk in north_registrations
    assert ids(client.get("/api/v1/registrations/")) == north_registrations
    for outside in (site["in_south"], site["ungrouped"]):
        assert client.get(f"/api/v1/devices/{outside.pk}/").status_code == 404
        assert client.get(reverse("cockpit:devices_device_change", args=[outside.pk])).status_code == 404
    assert client.get(f"/api/v1/alarms/{site['in_south_alarm'].pk}/").status_code == 404


def test_the_cockpit_says_which_groups_and_counts_only_them(site: dict[str, Any], settings: Any) -> None:
    settings.COCKPIT_DASHBOARD_CACHE_SECONDS = 0
    page = site["client"].get("/cockpit/")

    assert page.context["panels"][0].context["total"] == 1
    assert 'only the device groups <span id="support-groups">north</span>' in page.content.decode()
    assert {row.pk for row in site["client"].get("/cockpit/devices/device/").context["cl"].queryset} == {
        site["in_north"].pk
    }


def test_the_audit_trail_shows_only_what_the_engineer_did(site: dict[str, Any]) -> None:
    client = site["client"]
    assert (
        client.patch(f"/api/v1/devices/{site['in_north'].pk}/", {"name": "looked at"}, "application/json").status_code
        == 200
    )

    entries = AuditEntry.objects.filter(pk__in=ids(client.get("/api/v1/audit/")))
    assert entries.exists() and set(entries.values_list("support_grant_id", flat=True)) == {site["grant"].pk}


def test_the_engineer_cannot_move_devices_out_of_the_granted_groups_or_add_groups(site: dict[str, Any]) -> None:
    client = site["client"]
    device = f"/api/v1/devices/{site['in_north'].pk}/"

    assert client.patch(device, {"group": site["south"].pk}, "application/json").status_code == 400
    assert client.patch(device, {"group": None}, "application/json").status_code in (400, 403)
    assert client.post("/api/v1/device-groups/", {"name": "mine"}, "application/json").status_code == 403
    operation = {"device": site["in_south"].pk, "kind": "restart"}
    assert client.post("/api/v1/operations/", operation, "application/json").status_code == 400
    site["in_north"].refresh_from_db()
    assert site["in_north"].group_id == site["north"].pk


def test_a_grant_names_only_groups_its_creator_sees(acme_admin: Any) -> None:
    foreign = make_group(make_tenant("globex"), "globex plant")

    refusals = []
    for pk in (foreign.pk, 10**9):
        with pytest.raises(ValidationError) as refused:
            do_create_support_grant(actor=acme_admin, reason="T", duration_hours=1, device_groups=[pk])
        refusals.append(refused.value.message_dict["device_groups"][0].replace(str(pk), "<id>"))
    assert refusals[0] == refusals[1] == "No such device group: <id>."


def test_the_api_creates_a_limited_grant_and_the_trail_records_it(acme: Any, acme_admin: Any) -> None:
    north = make_group(acme, "north")

    response = api_client(acme_admin).post(
        "/api/v1/support-grants/", {"reason": "T-7", "duration_hours": 1, "device_groups": [north.pk]}, format="json"
    )

    assert response.status_code == 201 and response.json()["device_groups"] == [north.pk]
    entry = AuditEntry.objects.filter(event="support_grant.create").latest("id")
    assert entry.additional_data["device_groups"] == [north.pk]


def test_the_cockpit_offers_the_tenants_groups_and_creates_a_limited_grant(acme: Any, acme_admin: Any) -> None:
    north = make_group(acme, "north")
    make_group(make_tenant("globex"), "globex plant")
    client = verified_client(acme_admin)
    add = reverse("cockpit:tenants_supportgrant_add")

    form = client.get(add).context["adminform"].form
    assert form.fields["device_groups"].choices == [(north.pk, "north")]
    response = client.post(
        add, {"duration_hours": "2", "scope": "read", "reason": "T-8", "device_groups": [str(north.pk)]}
    )

    assert response.status_code == 302
    grant = SupportGrant.objects.get(reason="T-8")
    assert grant.device_groups == [north.pk]
    page = client.get(reverse("cockpit:tenants_supportgrant_change", args=[grant.pk])).content.decode()
    assert "north" in page


def test_the_engineer_sees_the_rollouts_of_the_granted_groups_only(site: dict[str, Any]) -> None:
    acme, north, south = site["north"].tenant, site["north"].pk, site["south"].pk
    image = image_for(acme, make_type(acme), version="3.0.0")

    def rollout(name: str, groups: list[int]) -> Any:
        return do_create_rollout(image=image, name=name, waves=[{}], target_groups=groups, actor=None, tenant=acme)

    inside = rollout("north only", [north])
    outside = [rollout("south only", [south]), rollout("both", [north, south]), rollout("whole fleet", [])]
    client = site["client"]

    assert ids(client.get("/api/v1/rollouts/")) == {inside.pk}
    for other in outside:
        assert client.get(f"/api/v1/rollouts/{other.pk}/").status_code == 404
    listed = client.get(reverse("cockpit:firmware_rollout_changelist")).context["cl"].queryset
    assert {row.pk for row in listed} == {inside.pk}


def test_the_engineer_sees_purges_of_the_granted_groups_devices_only(site: dict[str, Any]) -> None:
    acme = site["north"].tenant
    inside = PayloadPurge.objects.create(tenant=acme, device_ids=[site["in_north"].pk])
    PayloadPurge.objects.create(tenant=acme, device_ids=[site["in_north"].pk, site["in_south"].pk])
    PayloadPurge.objects.create(tenant=acme, device_ids=[site["ungrouped"].pk])
    listed = site["client"].get(reverse("cockpit:devices_payloadpurge_changelist")).context["cl"].queryset
    assert {row.pk for row in listed} == {inside.pk}


def test_a_parent_outside_the_grant_is_not_named(site: dict[str, Any], acme_admin: Any) -> None:
    do_update_device_group(site["north"], {"parent": site["south"]}, actor=acme_admin)
    client = site["client"]
    assert client.get(f"/api/v1/device-groups/{site['north'].pk}/").json()["parent"] is None
    page = client.get(reverse("cockpit:devices_devicegroup_changelist")).content.decode()
    assert '<td class="field-parent_shown">-</td>' in page
    detail = client.get(reverse("cockpit:devices_devicegroup_change", args=[site["north"].pk])).content.decode()
    assert "south" not in detail
    # The tenant's administrator still sees where the group sits.
    admin_client = verified_client(acme_admin)
    assert admin_client.get(f"/api/v1/device-groups/{site['north'].pk}/").json()["parent"] == site["south"].pk
    assert (
        '<td class="field-parent_shown">south</td>'
        in admin_client.get(reverse("cockpit:devices_devicegroup_changelist")).content.decode()
    )


def test_saving_a_group_keeps_a_parent_outside_the_grant(site: dict[str, Any], acme_admin: Any) -> None:
    north, south = site["north"], site["south"]
    do_update_device_group(north, {"parent": south}, actor=acme_admin)
    client = site["client"]
    # The API shows the parent as null; sending that back changes nothing.
    patched = client.patch(
        f"/api/v1/device-groups/{north.pk}/", {"parent": None, "description": "x"}, "application/json"
    )
    assert patched.status_code == 200
    # The cockpit shows it read-only, so saving the description leaves it too.
    url = reverse("cockpit:devices_devicegroup_change", args=[north.pk])
    assert client.post(url, {"name": "north", "description": "y"}).status_code == 302
    north.refresh_from_db()
    assert (north.parent_id, north.description) == (south.pk, "y")
    assert not AuditEntry.objects.filter(event="group.move", object_pk=str(north.pk)).exclude(actor=acme_admin).exists()
    # Nor can the parent's id be searched out through the list's filters.
    listing = reverse("cockpit:devices_devicegroup_changelist")
    assert client.get(listing, {"parent__id__exact": south.pk}).status_code == 400
