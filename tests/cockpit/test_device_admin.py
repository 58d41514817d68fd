"""Cockpit: the device list, its bulk actions and the device page, through devices.services."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from devices.models import Alarm, Device, DeviceGroup, DeviceRegistration, DeviceType, Operation, PayloadPurge
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_operation
from tenants.models import Role, User
from tests.factories import grant, make_group, make_user
from tests.support.admin_isolation import AdminIsolationChecks, Scene
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, filter_choices, object_url, row_state
from tests.support.device_rows import (
    add_alarm,
    add_event,
    add_measurements,
    make_type,
    messages_of,
    placed_device,
    run_action,
)
from tests.support.group_scope import AdminGroupScopeChecks

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def _state(devices: list[Device]) -> list[dict[str, Any]]:
    return [row_state(device) for device in devices]


class TestDeviceAdminIsolation(AdminIsolationChecks, AdminGroupScopeChecks):
    model = Device
    autocomplete_through = "devices.operation.device"
    filter_relations = {"group": lambda device: device.group, "type": lambda device: device.type}
    actions = ("move_to_group", "block_devices", "decommission_devices")

    def make_object(self, tenant: Any) -> Device:
        return placed_device(tenant)

    def make_in_group(self, group: DeviceGroup) -> Device:
        return placed_device(group.tenant, group)

    def search_term(self, obj: Any) -> str:
        return obj.external_id

    def test_foreign_group_and_type_are_rejected_on_change(self, scene: Scene) -> None:
        own = scene.own
        before = row_state(own)
        base = {"name": "x", "type": own.type_id, "group": own.group_id, "attributes": "{}"}
        for field, foreign in (("group", make_group(scene.other)), ("type", make_type(scene.other))):
            response = scene.client.post(object_url(own), {**base, field: foreign.pk})
            assert response.status_code == 200
            assert field in response.context["adminform"].form.errors
        assert row_state(own) == before

    def test_foreign_device_buttons_are_404(self, scene: Scene) -> None:
        foreign = scene.foreign
        alarm = add_alarm(foreign)
        operation = do_create_operation(foreign, kind="restart", parameters={}, actor=make_user(scene.other))
        before, trail = row_state(foreign), self.other_trail(scene)
        urls = [
            admin_url(Device, "alarm_status", foreign.pk, alarm.pk, "ACKNOWLEDGED"),
            admin_url(Device, "operation_create", foreign.pk),
            admin_url(Device, "operation_cancel", foreign.pk, operation.pk),
            admin_url(Device, "unblock", foreign.pk),
        ]
        for url in urls:
            assert scene.client.post(url, {"kind": "restart"}).status_code == 404, url
        # The foreign alarm and operation through the viewer's own device: 404 as well.
        own = scene.own
        assert scene.client.post(admin_url(Device, "alarm_status", own.pk, alarm.pk, "CLEARED")).status_code == 404
        assert scene.client.post(admin_url(Device, "operation_cancel", own.pk, operation.pk)).status_code == 404
        assert Alarm.objects.get(pk=alarm.pk).status == "ACTIVE"
        assert Operation.objects.get(pk=operation.pk).status == "PENDING"
        assert Operation.objects.filter(device=foreign).count() == 1
        self.assert_untouched(scene, before, trail)

    def test_foreign_group_is_no_move_target(self, scene: Scene) -> None:
        foreign_group = make_group(scene.other)
        before = row_state(scene.own)
        response = run_action(scene.client, Device, "move_to_group", [scene.own.pk], apply="1", group=foreign_group.pk)
        assert response.status_code == 200
        assert "group" in response.context["form"].errors
        assert row_state(scene.own) == before

    def test_foreign_devices_in_a_confirmed_action_are_ignored(self, scene: Scene) -> None:
        before, trail = row_state(scene.foreign), self.other_trail(scene)
        run_action(scene.client, Device, "decommission_devices", [scene.foreign.pk], apply="1", purge="on")
        run_action(scene.client, Device, "move_to_group", [scene.foreign.pk], apply="1", group=scene.own.group_id)
        self.assert_untouched(scene, before, trail)
        assert not PayloadPurge.objects.exists()


@pytest.fixture
def client(acme_admin: Any) -> Any:
    return cockpit_client(acme_admin)


def test_list_columns_filters_and_search(client, acme, globex):
    fast, slow = make_type(acme, heartbeat=60), make_type(acme, heartbeat=3600)
    online = placed_device(acme, device_type=fast, external_id="ON-1")
    stale = placed_device(acme, device_type=fast, external_id="OFF-1")
    slow_online = placed_device(acme, device_type=slow, external_id="ON-2")
    never = placed_device(acme, external_id="NEVER-1")
    now = timezone.now()
    Device.objects.filter(pk=online.pk).update(last_seen_at=now - timedelta(seconds=60), firmware_version="1.0")
    Device.objects.filter(pk=stale.pk).update(last_seen_at=now - timedelta(seconds=600), firmware_version="2.0")
    Device.objects.filter(pk=slow_online.pk).update(last_seen_at=now - timedelta(seconds=3000))
    foreign = placed_device(globex)
    Device.objects.filter(pk=foreign.pk).update(firmware_version="9.9-globex")
    url = admin_url(Device, "changelist")
    response = client.get(url)
    content = response.content.decode()
    for heading in ("external id", "name", "type", "group", "status", "firmware version", "online", "last seen"):
        assert heading in content.lower()
    assert changelist_pks(client.get(url, {"online": "yes"})) == {online.pk, slow_online.pk}
    assert changelist_pks(client.get(url, {"online": "no"})) == {stale.pk, never.pk}
    (firmware,) = [
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "field_path", "") == "firmware_version"
    ]
    assert set(firmware.lookup_choices) == {"1.0", "2.0", ""}
    assert "9.9-globex" not in content
    assert changelist_pks(client.get(url, {"firmware_version": "2.0"})) == {stale.pk}
    assert changelist_pks(client.get(url, {"group__id__exact": online.group_id})) == {online.pk}
    assert changelist_pks(client.get(url, {"type__id__exact": slow.pk})) == {slow_online.pk}
    assert changelist_pks(client.get(url, {"q": "ON-"})) == {online.pk, slow_online.pk}
    assert changelist_pks(client.get(url, {"status__exact": "active"})) == {
        online.pk,
        stale.pk,
        slow_online.pk,
        never.pk,
    }


def test_no_add_and_no_delete(client, acme):
    device = placed_device(acme)
    assert client.get(admin_url(Device, "add")).status_code == 403
    assert client.get(object_url(device, "delete")).status_code == 403
    assert client.post(object_url(device, "delete"), {"post": "yes"}).status_code == 403
    assert Device.objects.filter(pk=device.pk, status="active").exists()


def test_change_form_goes_through_the_service(client, acme):
    device = placed_device(acme)
    target_group, target_type = make_group(acme, "Line 2"), make_type(acme)
    data = {
        "name": "Press 7",
        "type": target_type.pk,
        "group": target_group.pk,
        "attributes": '{"line": 2}',
        "certificate_fingerprint": "ab" * 32,
        "status": "blocked",  # read-only: ignored
        "external_id": "HIJACK",  # read-only: ignored
    }
    response = client.post(object_url(device), data)
    assert response.status_code == 302, response.content
    device.refresh_from_db()
    assert (device.name, device.type, device.group) == ("Press 7", target_type, target_group)
    assert device.attributes == {"line": 2} and device.certificate_fingerprint == "ab" * 32
    assert (device.status, device.external_id) != ("blocked", "HIJACK")


def test_move_to_group_asks_for_the_group_then_moves(client, acme, acme_admin):
    devices = [placed_device(acme) for _ in range(3)]
    target = make_group(acme, "Target")
    first = run_action(client, Device, "move_to_group", [d.pk for d in devices])
    assert first.status_code == 200
    assert first.context["count"] == 3 and "group" in first.context["form"].fields
    assert all(d.group_id != target.pk for d in Device.objects.filter(pk__in=[d.pk for d in devices]))
    done = run_action(client, Device, "move_to_group", [d.pk for d in devices], apply="1", group=target.pk)
    assert done.status_code == 302
    assert set(Device.objects.filter(pk__in=[d.pk for d in devices]).values_list("group", flat=True)) == {target.pk}
    entry = AuditEntry.objects.get(event="device.move")
    assert entry.actor == acme_admin and entry.additional_data["group"] == target.pk
    assert any("Moved 3 device(s)" in m for m in messages_of(done))


def test_block_action(client, acme):
    devices = [placed_device(acme) for _ in range(2)]
    response = run_action(client, Device, "block_devices", [d.pk for d in devices])
    assert response.status_code == 302
    assert set(Device.objects.filter(pk__in=[d.pk for d in devices]).values_list("status", flat=True)) == {"blocked"}
    assert AuditEntry.objects.filter(event="device.block").count() == 1


def test_decommission_confirms_and_links_to_purge_progress(client, acme):
    devices = [placed_device(acme) for _ in range(2)]
    ids = [d.pk for d in devices]
    page = run_action(client, Device, "decommission_devices", ids)
    assert page.status_code == 200
    assert "Also purge payload data" in page.content.decode()
    assert Device.objects.filter(pk__in=ids, status="active").count() == 2
    done = run_action(client, Device, "decommission_devices", ids, apply="1", purge="on")
    assert done.status_code == 302
    assert set(Device.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"decommissioned"}
    purge = PayloadPurge.objects.get(tenant=acme)
    assert sorted(purge.device_ids) == sorted(ids)
    message = next(m for m in messages_of(done) if "Decommissioned 2" in m)
    assert object_url(purge) in message
    assert client.get(object_url(purge)).status_code == 200


def test_decommission_without_purge_starts_no_job(client, acme):
    device = placed_device(acme)
    run_action(client, Device, "decommission_devices", [device.pk], apply="1")
    device.refresh_from_db()
    assert device.status == "decommissioned" and not PayloadPurge.objects.exists()


@pytest.fixture
def constrained(acme: Any) -> dict[str, Any]:
    """A Standard user with view and change on ``mine``, view only on ``seen``, nothing on ``hidden``."""
    mine, seen, hidden = make_group(acme, "Mine"), make_group(acme, "Seen"), make_group(acme, "Hidden")
    user = make_user(acme, Role.Kind.STANDARD)
    grant(mine, ["view", "change"], user=user)
    grant(seen, ["view"], user=user)
    return {
        "user": user,
        "client": cockpit_client(user),
        "mine": placed_device(acme, mine),
        "seen": placed_device(acme, seen),
        "hidden": placed_device(acme, hidden),
        "groups": (mine, seen, hidden),
    }


def test_constrained_user_sees_only_granted_groups(constrained):
    client, mine, seen, hidden = (constrained[k] for k in ("client", "mine", "seen", "hidden"))
    response = client.get(admin_url(Device, "changelist"))
    assert changelist_pks(response) == {mine.pk, seen.pk}
    assert str(hidden.group_id) not in filter_choices(response, "group")
    assert client.get(object_url(mine)).status_code == 200
    for view in ("change", "history"):
        assert client.get(object_url(hidden, view)).status_code == 404
    before = row_state(hidden)
    assert client.post(object_url(hidden), {"name": "hijacked"}).status_code == 404
    assert client.post(admin_url(Device, "unblock", hidden.pk)).status_code == 404
    assert row_state(hidden) == before
    # A group the user only views is no target for devices.
    response = client.post(object_url(mine), {"name": "m", "group": seen.group_id, "attributes": "{}"})
    assert response.status_code == 200 and "group" in response.context["adminform"].form.errors
    assert (
        client.post(object_url(mine), {"name": "renamed", "group": mine.group_id, "attributes": "{}"}).status_code
        == 302
    )
    mine.refresh_from_db()
    assert mine.name == "renamed"


def test_bulk_actions_are_all_or_nothing(constrained):
    client, mine, seen = constrained["client"], constrained["mine"], constrained["seen"]
    mine_group = constrained["groups"][0]
    other_mine = placed_device(mine.tenant, mine_group)
    before = _state([mine, seen, other_mine])
    pks = [mine.pk, seen.pk, other_mine.pk]
    response = run_action(client, Device, "block_devices", pks)
    assert any("Nothing was changed" in m for m in messages_of(response))
    response = run_action(client, Device, "move_to_group", pks, apply="1", group=mine_group.pk)
    assert any("Nothing was changed" in m for m in messages_of(response))
    assert _state([mine, seen, other_mine]) == before
    # Standard users hold no delete right: decommissioning is not offered at all.
    run_action(client, Device, "decommission_devices", [mine.pk], apply="1")
    assert _state([mine, seen, other_mine]) == before
    # The reachable part alone goes through.
    run_action(client, Device, "block_devices", [mine.pk, other_mine.pk])
    assert set(Device.objects.filter(pk__in=[mine.pk, other_mine.pk]).values_list("status", flat=True)) == {"blocked"}


def test_move_to_an_unknown_group_moves_nothing(client, acme):
    devices = [placed_device(acme) for _ in range(2)]
    before = _state(devices)
    response = run_action(client, Device, "move_to_group", [d.pk for d in devices], apply="1", group=10**9)
    assert response.status_code == 200 and "group" in response.context["form"].errors
    assert _state(devices) == before


def test_business_user_cannot_act(acme):
    group = make_group(acme)
    business = make_user(acme, Role.Kind.BUSINESS)
    grant(group, ["view"], user=business)
    device = placed_device(acme, group)
    alarm = add_alarm(device)
    operation = do_create_operation(device, kind="restart", parameters={}, actor=make_user(acme))
    client = cockpit_client(business)
    response = client.get(admin_url(Device, "changelist"))
    assert changelist_pks(response) == {device.pk}
    assert response.context["action_form"] is None or not [
        c for c in response.context["action_form"].fields["action"].choices if c[0]
    ]
    page = client.get(object_url(device))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="_save"' not in content and "Acknowledge" not in content and "Create operation" not in content
    before, trail = row_state(device), AuditEntry.objects.exclude(event__startswith="auth.").count()
    for action in ("move_to_group", "block_devices", "decommission_devices"):
        run_action(client, Device, action, [device.pk], apply="1", group=group.pk)
    assert client.post(object_url(device), {"name": "x", "group": group.pk, "attributes": "{}"}).status_code == 403
    assert client.post(admin_url(Device, "alarm_status", device.pk, alarm.pk, "CLEARED")).status_code == 403
    assert client.post(admin_url(Device, "operation_create", device.pk), {"kind": "reboot"}).status_code == 403
    assert client.post(admin_url(Device, "operation_cancel", device.pk, operation.pk)).status_code == 403
    assert row_state(device) == before
    assert Alarm.objects.get(pk=alarm.pk).status == "ACTIVE"
    assert list(Operation.objects.filter(device=device).values_list("kind", "status")) == [("restart", "PENDING")]
    assert AuditEntry.objects.exclude(event__startswith="auth.").count() == trail


# --- the device page ---------------------------------------------------------------------


def test_device_page_shows_chart_alarms_events_operations_and_audit(client, acme, acme_admin):
    device = placed_device(acme)
    now = timezone.now()
    add_measurements(device, [(now - timedelta(minutes=m), 20 + (m % 7)) for m in range(1, 600)])
    add_measurements(
        device, [(now - timedelta(minutes=m), 50.0) for m in range(1, 100)], kind="c8y_Humidity", series="H"
    )
    add_measurements(device, [(now - timedelta(days=3), 99.0)])  # outside the 24 hours shown
    add_alarm(device, "overheat", "CRITICAL")
    add_event(device, "door_opened", "Door opened at the back")
    do_create_operation(device, kind="restart", parameters={"delay": 5}, actor=acme_admin)
    response = client.get(object_url(device))
    assert response.status_code == 200
    content = response.content.decode()
    chart = content.split('id="device-chart"')[1].split("<!-- end of device chart -->")[0]
    assert chart.count("<svg") == 2 and chart.count("<polyline") == 2
    assert "<script" not in chart
    charts = {chart.type: chart for chart in response.context["charts"]}
    temperature = charts["c8y_Temperature"].lines[0]
    assert temperature.values == 599 and temperature.buckets <= 300
    assert "overheat" in content and "Door opened at the back" in content and "restart" in content
    assert "device.credential_issue" in content  # the audit entry of its registration
    assert len(response.context["audit_entries"]) >= 1
    year = client.get(object_url(device), {"range": "365d"})
    assert year.context["chart_range"] == "365d"
    year_charts = {chart.type: chart for chart in year.context["charts"]}
    assert year_charts["c8y_Temperature"].lines[0].values == 600
    assert year_charts["c8y_Humidity"].lines[0].dot is not None  # a single bucket: drawn as a dot


def test_device_page_audit_is_for_administrators_only(constrained):
    page = constrained["client"].get(object_url(constrained["mine"]))
    assert page.status_code == 200
    assert page.context["audit_entries"] == [] and 'id="device-audit"' not in page.content.decode()


def test_alarm_buttons(client, acme, acme_admin):
    device = placed_device(acme)
    alarm = add_alarm(device)
    other_device_alarm = add_alarm(placed_device(acme))
    url = admin_url(Device, "alarm_status", device.pk, alarm.pk, "ACKNOWLEDGED")
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 302
    assert Alarm.objects.get(pk=alarm.pk).status == "ACKNOWLEDGED"
    again = client.post(url)
    assert any("cannot become" in m for m in messages_of(again))
    assert client.post(admin_url(Device, "alarm_status", device.pk, alarm.pk, "CLEARED")).status_code == 302
    assert Alarm.objects.get(pk=alarm.pk).status == "CLEARED"
    assert AuditEntry.objects.filter(event="alarm.cleared", actor=acme_admin).exists()
    wrong = admin_url(Device, "alarm_status", device.pk, other_device_alarm.pk, "CLEARED")
    assert client.post(wrong).status_code == 404
    assert client.post(admin_url(Device, "alarm_status", device.pk, alarm.pk, "ACTIVE")).status_code == 404
    assert Alarm.objects.get(pk=other_device_alarm.pk).status == "ACTIVE"


def test_operations_are_created_and_cancelled(client, acme, acme_admin):
    device = placed_device(acme)
    create = admin_url(Device, "operation_create", device.pk)
    assert client.post(create, {"kind": "configure", "parameters": '{"interval": 30}'}).status_code == 302
    operation = Operation.objects.get(device=device)
    assert (operation.kind, operation.parameters, operation.created_by) == ("configure", {"interval": 30}, acme_admin)
    assert client.post(create, {"kind": "restart", "parameters": "  "}).status_code == 302
    assert Operation.objects.get(device=device, kind="restart").parameters == {}
    for bad in ({"kind": "x", "parameters": "[1, 2]"}, {"kind": "x", "parameters": "{oops"}, {"kind": ""}):
        response = client.post(create, bad)
        assert any("No operation created" in m for m in messages_of(response)), bad
    assert Operation.objects.filter(device=device).count() == 2
    assert "{&quot;interval&quot;: 30}" in client.get(object_url(device)).content.decode()
    cancel = admin_url(Device, "operation_cancel", device.pk, operation.pk)
    assert client.post(cancel).status_code == 302
    operation.refresh_from_db()
    assert operation.status == "CANCELLED"
    assert AuditEntry.objects.filter(event="operation.cancel", actor=acme_admin).exists()


def test_unblock_button_is_for_administrators(client, acme):
    group = make_group(acme)
    device = placed_device(acme, group)
    run_action(client, Device, "block_devices", [device.pk])
    # A Standard user who may change the device still cannot make its credential work again.
    standard = make_user(acme, Role.Kind.STANDARD)
    grant(group, ["view", "change"], user=standard)
    other = cockpit_client(standard)
    assert 'id="device-unblock"' not in other.get(object_url(device)).content.decode()
    assert other.post(admin_url(Device, "unblock", device.pk)).status_code == 403
    device.refresh_from_db()
    assert device.status == "blocked"
    page = client.get(object_url(device)).content.decode()
    assert 'id="device-unblock"' in page
    assert client.post(admin_url(Device, "unblock", device.pk)).status_code == 302
    device.refresh_from_db()
    assert device.status == "active"


def test_group_filter_link_from_tree_lists_the_group(client, acme):
    group = make_group(acme, "Linked")
    inside, outside = placed_device(acme, group), placed_device(acme)
    tree = client.get(admin_url(DeviceGroup, "tree"))
    link = f"{admin_url(Device, 'changelist')}?group__id__exact={group.pk}"
    assert link in tree.content.decode()
    assert changelist_pks(client.get(link)) == {inside.pk}
    assert outside.pk not in changelist_pks(client.get(link))


def test_select_across_moves_the_filtered_selection_only(client, acme):
    source, target = make_group(acme, "Source"), make_group(acme, "Target")
    inside = [placed_device(acme, source) for _ in range(3)]
    outside = placed_device(acme)
    url = f"{admin_url(Device, 'changelist')}?group__id__exact={source.pk}"
    data = {"action": "move_to_group", "_selected_action": [str(inside[0].pk)], "index": 0, "select_across": "1"}
    page = client.post(url, data)
    assert page.status_code == 200 and page.context["count"] == 3 and page.context["form_action"] == url
    assert client.post(url, {**data, "apply": "1", "group": target.pk}).status_code == 302
    assert set(Device.objects.filter(pk__in=[d.pk for d in inside]).values_list("group", flat=True)) == {target.pk}
    outside.refresh_from_db()
    assert outside.group_id != target.pk


@pytest.mark.parametrize("superuser", [False, True])
def test_platform_operators_see_no_devices_or_payload(acme, provider, superuser):
    operator = make_user(provider, Role.Kind.OPERATOR)
    if superuser:
        User.objects.filter(pk=operator.pk).update(is_superuser=True)
        operator.refresh_from_db()
    device = placed_device(acme)
    rows: list[Any] = [
        device,
        device.type,
        add_alarm(device),
        do_create_registration(external_id="OPS-1", actor=None, tenant=acme).registration,
    ]
    purge_device = placed_device(acme)
    run_action(
        cockpit_client(make_user(acme)), Device, "decommission_devices", [purge_device.pk], apply="1", purge="on"
    )
    rows.append(PayloadPurge.objects.get(tenant=acme))
    client = cockpit_client(operator)
    for model in (Device, DeviceType, Alarm, DeviceRegistration, PayloadPurge):
        response = client.get(admin_url(model, "changelist"))
        assert response.status_code in (200, 403), model
        if response.status_code == 200:
            assert not changelist_pks(response), model
    for row in rows:
        assert client.get(object_url(row)).status_code == 404, row
    assert client.get(admin_url(DeviceGroup, "tree")).status_code in (200, 403)
    assert device.external_id not in client.get(admin_url(DeviceGroup, "tree")).content.decode()
