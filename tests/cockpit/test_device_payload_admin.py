"""Cockpit: the alarm list (telemetry database) and the progress of payload purges."""

from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from devices.models import Alarm, Device, DeviceGroup, PayloadPurge
from devices.services.registry import do_decommission_devices
from devices.tasks import purge_device_payload
from tenants.models import Role
from tenants.services import do_create_role
from tests.factories import grant, make_group, make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url, row_state
from tests.support.device_rows import add_alarm, add_measurements, messages_of, placed_device, run_action
from tests.support.group_scope import AdminGroupScopeChecks

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


class TestAlarmAdminIsolation(AdminIsolationChecks, AdminGroupScopeChecks):
    model = Alarm
    actions = ("acknowledge", "clear")

    def make_object(self, tenant: Any) -> Alarm:
        return add_alarm(placed_device(tenant), kind=f"overheat-{tenant.slug}")

    def make_in_group(self, group: DeviceGroup) -> Alarm:
        return add_alarm(placed_device(group.tenant, group))

    def search_term(self, obj: Any) -> str:
        return obj.type


def _purge_for(tenant: Any, actor: Any = None) -> PayloadPurge:
    device = placed_device(tenant)
    do_decommission_devices([device.pk], purge=True, actor=actor)
    return PayloadPurge.objects.get(tenant=tenant, device_ids__contains=[device.pk])


class TestPayloadPurgeAdminIsolation(AdminIsolationChecks):
    model = PayloadPurge

    def make_object(self, tenant: Any) -> PayloadPurge:
        return _purge_for(tenant)


@pytest.fixture
def client(acme_admin: Any) -> Any:
    return cockpit_client(acme_admin)


def test_alarm_list_filters_and_names_devices(client, acme):
    device = placed_device(acme, external_id="PUMP-1")
    critical = add_alarm(device, "overheat", "CRITICAL")
    warning = add_alarm(device, "door", "WARNING", status="ACKNOWLEDGED")
    url = admin_url(Alarm, "changelist")
    response = client.get(url)
    assert changelist_pks(response) == {critical.pk, warning.pk}
    content = response.content.decode()
    assert object_url(device) in content and "PUMP-1" in content
    assert changelist_pks(client.get(url, {"severity__exact": "CRITICAL"})) == {critical.pk}
    assert changelist_pks(client.get(url, {"status__exact": "ACKNOWLEDGED"})) == {warning.pk}
    assert changelist_pks(client.get(url, {"q": "door"})) == {warning.pk}
    page = client.get(object_url(critical))
    assert page.status_code == 200 and "PUMP-1" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert client.get(admin_url(Alarm, "add")).status_code == 403
    assert client.post(object_url(critical, "delete"), {"post": "yes"}).status_code == 403
    assert Alarm.objects.filter(pk=critical.pk).exists()


def test_acknowledge_and_clear_actions(client, acme, acme_admin):
    device = placed_device(acme)
    first, second = add_alarm(device, "a"), add_alarm(device, "b")
    response = run_action(client, Alarm, "acknowledge", [first.pk, second.pk])
    assert response.status_code == 302
    assert set(Alarm.objects.filter(device_id=device.pk).values_list("status", flat=True)) == {"ACKNOWLEDGED"}
    assert AuditEntry.objects.filter(event="alarm.acknowledged", actor=acme_admin).count() == 2
    run_action(client, Alarm, "clear", [first.pk, second.pk])
    assert set(Alarm.objects.filter(device_id=device.pk).values_list("status", flat=True)) == {"CLEARED"}


def test_alarm_actions_are_all_or_nothing(client, acme):
    device = placed_device(acme)
    active, acknowledged = add_alarm(device, "a"), add_alarm(device, "b", status="ACKNOWLEDGED")
    trail = AuditEntry.objects.filter(event__startswith="alarm.").count()
    response = run_action(client, Alarm, "acknowledge", [active.pk, acknowledged.pk])
    assert any("Nothing was changed" in m for m in messages_of(response))
    assert Alarm.objects.get(pk=active.pk).status == "ACTIVE"
    assert AuditEntry.objects.filter(event__startswith="alarm.").count() == trail


def test_constrained_user_sees_and_handles_only_granted_alarms(acme):
    mine, viewed, hidden = make_group(acme), make_group(acme), make_group(acme)
    user = make_user(acme, Role.Kind.STANDARD)
    grant(mine, ["view", "change"], user=user)
    grant(viewed, ["view"], user=user)
    own = add_alarm(placed_device(acme, mine))
    seen = add_alarm(placed_device(acme, viewed))
    other = add_alarm(placed_device(acme, hidden))
    client = cockpit_client(user)
    assert changelist_pks(client.get(admin_url(Alarm, "changelist"))) == {own.pk, seen.pk}
    assert client.get(object_url(other)).status_code == 404
    assert client.get(object_url(seen)).status_code == 200
    before = [row_state(a) for a in (own, seen, other)]
    run_action(client, Alarm, "clear", [own.pk, seen.pk])  # one of them only viewed: none cleared
    run_action(client, Alarm, "clear", [other.pk])
    assert [row_state(a) for a in (own, seen, other)] == before
    run_action(client, Alarm, "clear", [own.pk])
    assert Alarm.objects.get(pk=own.pk).status == "CLEARED"


def test_business_user_cannot_handle_alarms(acme):
    group = make_group(acme)
    business = make_user(acme, Role.Kind.BUSINESS)
    grant(group, ["view"], user=business)
    alarm = add_alarm(placed_device(acme, group))
    client = cockpit_client(business)
    response = client.get(admin_url(Alarm, "changelist"))
    assert changelist_pks(response) == {alarm.pk}
    assert response.context["action_form"] is None or not [
        c for c in response.context["action_form"].fields["action"].choices if c[0]
    ]
    for action in ("acknowledge", "clear"):
        run_action(client, Alarm, action, [alarm.pk])
    assert Alarm.objects.get(pk=alarm.pk).status == "ACTIVE"


def test_alarm_list_is_open_to_whoever_may_see_devices_and_to_nobody_else(acme):
    # A Standard user without a granted group yet may see devices: an empty list, with whom to ask.
    standard = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    response = standard.get(admin_url(Alarm, "changelist"))
    assert response.status_code == 200 and not changelist_pks(response)
    assert "Ask an administrator of Acme for rights on a device group" in " ".join(response.content.decode().split())
    # A role without the right to view devices never sees alarms, empty or not.
    blind = do_create_role(name="Badge readers", rights=[], actor=None, tenant=acme)
    nobody = cockpit_client(make_user(acme, blind))
    assert nobody.get(admin_url(Alarm, "changelist")).status_code == 403
    index = nobody.get(reverse("cockpit:index")).content.decode()
    assert admin_url(Alarm, "changelist") not in index


def test_purge_progress_is_shown_and_refreshes_while_running(client, acme, acme_admin):
    device = placed_device(acme)
    add_measurements(device, [(device.registered_at, 1.0)] * 3)
    do_decommission_devices([device.pk], purge=True, actor=acme_admin)
    purge = PayloadPurge.objects.get(tenant=acme)
    listing = client.get(admin_url(PayloadPurge, "changelist"))
    assert purge.pk in changelist_pks(listing)
    assert '<meta http-equiv="refresh"' in listing.content.decode()
    assert '<progress max="100" value="0">' in client.get(object_url(purge)).content.decode()
    assert purge_device_payload(purge.pk) == 3  # the job itself, run here in the test
    done = client.get(object_url(purge)).content.decode()
    assert '<progress max="100" value="100">' in done and '<meta http-equiv="refresh"' not in done
    assert client.get(admin_url(PayloadPurge, "add")).status_code == 403
    assert client.post(object_url(purge, "delete"), {"post": "yes"}).status_code == 403


def test_non_administrators_follow_only_their_own_purges(acme, acme_admin):
    decommissioner = do_create_role(name="Decommissioner", rights=["view", "change", "delete"], actor=None, tenant=acme)
    group = make_group(acme)
    user = make_user(acme, decommissioner)
    grant(group, ["view", "change", "delete"], user=user)
    admins_purge = _purge_for(acme, acme_admin)
    device = placed_device(acme, group)
    client = cockpit_client(user)
    response = run_action(client, Device, "decommission_devices", [device.pk], apply="1", purge="on")
    own_purge = PayloadPurge.objects.get(created_by=user)
    assert any(object_url(own_purge) in m for m in messages_of(response))
    assert changelist_pks(client.get(admin_url(PayloadPurge, "changelist"))) == {own_purge.pk}
    assert client.get(object_url(own_purge)).status_code == 200
    assert client.get(object_url(admins_purge)).status_code == 404
    assert changelist_pks(cockpit_client(acme_admin).get(admin_url(PayloadPurge, "changelist"))) == {
        own_purge.pk,
        admins_purge.pk,
    }


def test_purge_list_is_open_before_the_first_purge(client, acme):
    placed_device(acme)
    assert client.get(admin_url(PayloadPurge, "changelist")).status_code == 200
    standard = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    assert standard.get(admin_url(PayloadPurge, "changelist")).status_code == 403
