"""The trail names who acted, records each creation once, shows seconds, and records a revocation once."""

import re

import pytest

from audit.models import AuditEntry
from devices.services.registration import device_register, do_create_registration
from devices.services.registry import do_revoke_device_credential
from tenants.models import Role
from tenants.services import do_update_tenant_policy
from tests.factories import make_device, make_user
from tests.support.cockpit import admin_url, cockpit_client

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def test_registration_events_name_the_device_or_the_policy_never_anonymous(acme):
    do_update_tenant_policy(acme, {"auto_accept_registrations": True})
    issued = do_create_registration(external_id="SN-77", actor=None, tenant=acme)
    device_register(tenant_slug="acme", external_id="SN-77", registration_token=issued.token, source="192.0.2.5")
    labels = dict(
        AuditEntry.objects.filter(event__in=["registration.auto_accept", "device.credential_issue"]).values_list(
            "event", "actor_label"
        )
    )
    assert labels == {
        "registration.auto_accept": "system (the tenant's auto-accept policy)",
        "device.credential_issue": "device SN-77 (registering)",
    }


def test_registering_a_device_records_its_creation_once_naming_the_device(acme):
    issued = do_create_registration(external_id="PUMP-1", actor=None, tenant=acme)
    do_update_tenant_policy(acme, {"auto_accept_registrations": True})
    device_register(tenant_slug="acme", external_id="PUMP-1", registration_token=issued.token, source="192.0.2.6")
    about_device = AuditEntry.objects.filter(content_type__model="device").values_list("event", "actor_label")
    assert list(about_device) == [("device.credential_issue", "device PUMP-1 (registering)")]
    assert not AuditEntry.objects.filter(actor_label="anonymous").exists()


def test_a_new_tenants_built_in_roles_are_in_its_first_entry(acme):
    entry = AuditEntry.objects.get(event="tenant.create", tenant=acme)
    assert entry.additional_data == {"roles": ["Administrator", "Standard user", "Business user"]}


def test_a_creation_is_recorded_once(acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    events = list(
        AuditEntry.objects.filter(object_pk=str(user.pk), content_type__model="user").values_list("event", flat=True)
    )
    assert events == ["user.create"]
    assert not AuditEntry.objects.filter(
        event="model.create", content_type__model__in=["tenant", "role", "user"]
    ).exists()


def test_revoking_a_revoked_credential_records_nothing_more(acme, acme_admin):
    device, _ = make_device(acme)
    do_revoke_device_credential(device, actor=acme_admin)
    do_revoke_device_credential(device, actor=acme_admin)
    assert AuditEntry.objects.filter(event="device.credential_revoke", object_pk=str(device.pk)).count() == 1


def test_the_cockpit_shows_times_to_the_second_with_the_time_zone(acme, acme_admin):
    page = cockpit_client(acme_admin).get(admin_url(AuditEntry, "changelist")).content.decode()
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", page)
