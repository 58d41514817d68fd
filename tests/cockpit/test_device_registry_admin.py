"""Cockpit: device types and registrations (one by one, from CSV, bulk accept), through the services."""

import csv
import io
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEntry
from devices.models import DeviceRegistration, DeviceType
from devices.services.registration import do_create_registration
from tenants.models import Role
from tenants.tokens import secret_digest
from tests.factories import grant, make_group, make_user
from tests.support.admin_isolation import AdminIsolationChecks, Scene
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url, row_state
from tests.support.device_rows import make_type, messages_of, placed_device, run_action

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])  # the home page counts payload


class TestDeviceTypeAdminIsolation(AdminIsolationChecks):
    model = DeviceType
    autocomplete_through = "devices.device.type"

    def make_object(self, tenant: Any) -> DeviceType:
        return make_type(tenant)

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {
            "manufacturer": "ACME",
            "model": "Z9",
            "certified": "on",
            "certification_notes": "EN 301 489",
            "heartbeat_interval": "120",
        }

    def search_term(self, obj: Any) -> str:
        return obj.model


class TestDeviceRegistrationAdminIsolation(AdminIsolationChecks):
    model = DeviceRegistration
    foreign_keys = {"group": make_group, "type": make_type}
    actions = ("accept",)

    def make_object(self, tenant: Any) -> DeviceRegistration:
        return do_create_registration(external_id=f"EXP-{tenant.slug}", actor=None, tenant=tenant).registration

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {"external_id": "NEW-1", "registration_token": "", "type": "", "group": ""}

    def search_term(self, obj: Any) -> str:
        return obj.external_id

    def test_foreign_upload_rows_are_refused(self, scene: Scene) -> None:
        foreign_group, foreign_type = make_group(scene.other), make_type(scene.other)
        csv = f"external_id,type,group\nA-1,,{foreign_group.pk}\nA-2,{foreign_type.pk},\n"
        response = _upload(scene.client, csv)
        assert response.status_code == 200
        assert [where for where, _ in response.context["line_errors"]] == ["line 2", "line 3"]
        assert not DeviceRegistration.objects.filter(external_id__startswith="A-").exists()


@pytest.fixture
def client(acme_admin: Any) -> Any:
    return cockpit_client(acme_admin)


def _upload(client: Any, text: str, name: str = "devices.csv", raw: bytes | None = None) -> Any:
    upload = SimpleUploadedFile(name, raw if raw is not None else text.encode(), content_type="text/csv")
    return client.post(admin_url(DeviceRegistration, "upload"), {"file": upload})


def test_device_types_are_added_and_listed_read_only(client, acme):
    response = client.post(admin_url(DeviceType, "add"), TestDeviceTypeAdminIsolation().add_payload(acme))
    assert response.status_code == 302
    created = DeviceType.objects.get(tenant=acme, model="Z9")
    assert (created.certified, created.certification_notes, created.heartbeat_interval) == (True, "EN 301 489", 120)
    placed_device(acme, device_type=created)
    listing = client.get(admin_url(DeviceType, "changelist"))
    assert created.pk in changelist_pks(listing)
    assert listing.context["cl"].result_list[0].devices_total == 1
    assert client.get(admin_url(DeviceType, "changelist"), {"certified__exact": "1"}).status_code == 200
    duplicate = client.post(admin_url(DeviceType, "add"), TestDeviceTypeAdminIsolation().add_payload(acme))
    assert duplicate.status_code == 200 and "model" in duplicate.context["adminform"].form.errors
    before = row_state(created)
    assert client.post(object_url(created), {"manufacturer": "x", "model": "y"}).status_code == 403
    assert row_state(created) == before


def test_device_types_are_read_by_everyone_added_by_administrators(acme):
    device_type = make_type(acme)
    standard = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    assert standard.get(object_url(device_type)).status_code == 200
    assert standard.get(admin_url(DeviceType, "add")).status_code == 403
    assert standard.post(admin_url(DeviceType, "add"), {"manufacturer": "x", "model": "y"}).status_code == 403
    assert DeviceType.objects.filter(tenant=acme).count() == 1


def test_type_device_counts_include_only_visible_devices(acme):
    device_type = make_type(acme)
    granted, other = make_group(acme), make_group(acme)
    placed_device(acme, granted, device_type)
    placed_device(acme, other, device_type)
    user = make_user(acme, Role.Kind.STANDARD)
    grant(granted, ["view"], user=user)
    listing = cockpit_client(user).get(admin_url(DeviceType, "changelist"))
    (row,) = listing.context["cl"].result_list
    assert row.devices_total == 1


def test_registration_with_write_only_token(client, acme, acme_admin):
    group, device_type = make_group(acme), make_type(acme)
    data = {
        "external_id": "IMEI-1",
        "registration_token": "s3cret-label-token",
        "type": device_type.pk,
        "group": group.pk,
    }
    assert client.post(admin_url(DeviceRegistration, "add"), data).status_code == 302
    registration = DeviceRegistration.objects.get(tenant=acme, external_id="IMEI-1")
    assert registration.token_digest == secret_digest("s3cret-label-token")
    assert (registration.type, registration.group, registration.status) == (device_type, group, "pending")
    assert AuditEntry.objects.get(event="registration.create").actor == acme_admin
    page = client.get(object_url(registration)).content.decode()
    assert "s3cret-label-token" not in page and registration.token_digest not in page
    assert "s3cret-label-token" not in client.get(admin_url(DeviceRegistration, "add")).content.decode()
    duplicate = client.post(admin_url(DeviceRegistration, "add"), {**data, "registration_token": ""})
    assert duplicate.status_code == 200 and "external_id" in duplicate.context["adminform"].form.errors


def test_registration_without_a_token_gets_a_generated_one_shown_once(client, acme):
    response = client.post(admin_url(DeviceRegistration, "add"), {"external_id": "GEN-1"}, follow=True)
    (token,) = re.findall(r"<code id='registration-token'>(cot_reg_[\w-]+)</code>", response.content.decode())
    registration = DeviceRegistration.objects.get(tenant=acme, external_id="GEN-1")
    assert registration.token_digest == secret_digest(token)
    assert token not in client.get(object_url(registration)).content.decode()
    short = client.post(admin_url(DeviceRegistration, "add"), {"external_id": "GEN-2", "registration_token": "short"})
    assert "registration_token" in short.context["adminform"].form.errors


def test_administrators_are_told_about_wrong_registration_tokens(client, acme):
    from devices.services.registration import RegistrationRefused, device_register

    do_create_registration(external_id="LABEL-1", registration_token="right-label-token", actor=None, tenant=acme)
    assert 'id="cockpit-notices"' not in client.get(admin_url(DeviceRegistration, "changelist")).content.decode()
    with pytest.raises(RegistrationRefused):
        device_register(tenant_slug="acme", external_id="LABEL-1", registration_token="guess", source="192.0.2.1")
    index = client.get("/cockpit/").content.decode()
    assert 'id="cockpit-notices"' in index and "1 expected device(s) received wrong registration tokens" in index
    listing = client.get(admin_url(DeviceRegistration, "changelist"))
    assert any("LABEL-1: 1 wrong registration token(s)" in m for m in messages_of(listing))
    standard = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    assert 'id="cockpit-notices"' not in standard.get("/cockpit/").content.decode()


def test_status_filter_and_accept_action(client, acme, acme_admin):
    pending = [do_create_registration(external_id=f"P-{n}", actor=None, tenant=acme).registration for n in range(3)]
    url = admin_url(DeviceRegistration, "changelist")
    response = run_action(client, DeviceRegistration, "accept", [r.pk for r in pending[:2]])
    assert response.status_code == 302
    assert any("Accepted 2" in m for m in messages_of(response))
    assert changelist_pks(client.get(url, {"status__exact": "accepted"})) == {pending[0].pk, pending[1].pk}
    assert changelist_pks(client.get(url, {"status__exact": "pending"})) == {pending[2].pk}
    again = run_action(client, DeviceRegistration, "accept", [pending[0].pk, pending[2].pk])
    assert any("Accepted 1" in m and "1 were not pending" in m for m in messages_of(again))
    assert AuditEntry.objects.filter(event="registration.accept", actor=acme_admin).count() == 2


def test_csv_upload_registers_every_line_and_offers_the_tokens_once(client, acme):
    group, device_type = make_group(acme), make_type(acme)
    text = f"external_id,registration_token,type,group\nC-1,label-token-0001,{device_type.pk},{group.pk}\nC-2,,,\n"
    response = _upload(client, text, raw=b"\xef\xbb\xbf" + text.encode())  # with a byte-order mark
    assert response.status_code == 200, response.content
    rows = DeviceRegistration.objects.filter(tenant=acme).order_by("external_id")
    assert [(r.external_id, r.type, r.group) for r in rows] == [("C-1", device_type, group), ("C-2", None, None)]
    tokens = {
        row["external_id"]: row["registration_token"]
        for row in csv.DictReader(io.StringIO(response.context["tokens_csv"]))
    }
    assert tokens["C-1"] == "label-token-0001"
    assert tokens["C-2"].startswith("cot_reg_")  # generated
    assert rows[0].token_digest == secret_digest("label-token-0001") and rows[1].token_digest == secret_digest(
        tokens["C-2"]
    )
    assert 'id="registration-tokens"' in response.content.decode()
    # The download is in this response only: the list never shows a token again.
    assert tokens["C-2"] not in client.get(admin_url(DeviceRegistration, "changelist")).content.decode()


def test_csv_upload_errors_store_nothing(client, acme):
    do_create_registration(external_id="DUP", actor=None, tenant=acme)
    text = "external_id,type\nOK-1,\nDUP,\nOK-2,999999\nOK-1,\n,\n"
    response = _upload(client, text)
    assert response.status_code == 200
    errors = dict(response.context["line_errors"])
    assert set(errors) == {"line 3", "line 4", "line 5", "line 6"}
    assert "already expected" in " ".join(errors["line 3"])
    assert "twice" in " ".join(errors["line 5"])
    content = response.content.decode()
    assert "nothing was stored" in content and "line 4" in content
    assert set(DeviceRegistration.objects.values_list("external_id", flat=True)) == {"DUP"}
    for bad in ("name\nx\n", "", "external_id,colour\nX,red\n"):
        response = _upload(client, bad, raw=bad.encode() or b"\n")
        assert response.status_code == 200
    not_utf8 = _upload(client, "", raw=b"external_id\n\xff\xfe\x00bad")  # read as a stream: found on its line
    assert not_utf8.context["line_errors"] == [("file", ["The file is not UTF-8 text."])]
    assert set(DeviceRegistration.objects.values_list("external_id", flat=True)) == {"DUP"}


def test_registrations_are_for_administrators_only(acme):
    registration = do_create_registration(external_id="ADM-1", actor=None, tenant=acme).registration
    standard = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    assert standard.get(admin_url(DeviceRegistration, "changelist")).status_code == 403
    assert standard.get(object_url(registration)).status_code == 404
    assert standard.get(admin_url(DeviceRegistration, "upload")).status_code == 403
    assert _upload(standard, "external_id\nS-1\n").status_code == 403
    run_action(standard, DeviceRegistration, "accept", [registration.pk])
    registration.refresh_from_db()
    assert registration.status == "pending"
    assert not DeviceRegistration.objects.filter(external_id="S-1").exists()
