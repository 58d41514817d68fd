"""Cockpit: the firmware policy. The list page is the caller's own policy as a form; only
administrators save it (through the service, audited); another tenant's policy is never shown."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from firmware.models import FirmwarePolicy
from firmware.models.policy import DEFAULT_MAX_IMAGE_BYTES, MIB
from firmware.services import do_update_firmware_policy
from tenants.models import Role
from tests.factories import make_user
from tests.support.admin_isolation import AdminIsolationChecks, Scene
from tests.support.cockpit import admin_url, cockpit_client, object_url

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

SAVE = "_save_policy"


class TestFirmwarePolicyAdminIsolation(AdminIsolationChecks):
    """The inherited checks fit as they are: the page is a scoped changelist of the one row
    (plus the form), and the row's own pages are the mixin's. Added: the form shows the
    caller's own values, never the other tenant's."""

    model = FirmwarePolicy

    def make_object(self, tenant: Any) -> FirmwarePolicy:
        return do_update_firmware_policy({"max_image_bytes": (2 + tenant.pk) * MIB}, actor=None, tenant=tenant)

    def test_the_form_shows_the_callers_own_policy(self, scene: Scene) -> None:
        response = scene.client.get(admin_url(FirmwarePolicy, "changelist"))
        form = response.context["policy_form"]
        assert form.initial["max_image_bytes"] == scene.own.max_image_bytes
        assert str(scene.foreign.max_image_bytes) not in response.content.decode()


def post_policy(client: Any, **values: Any) -> Any:
    data = {"require_signatures": "on", "max_image_bytes": str(DEFAULT_MAX_IMAGE_BYTES), SAVE: "Save", **values}
    if data["require_signatures"] is None:
        del data["require_signatures"]
    return client.post(admin_url(FirmwarePolicy, "changelist"), data)


def test_the_defaults_are_shown_before_any_row_exists(acme_admin):
    response = cockpit_client(acme_admin).get(admin_url(FirmwarePolicy, "changelist"))
    assert response.status_code == 200
    form = response.context["policy_form"]
    assert form.initial["require_signatures"] is True
    assert form.initial["max_image_bytes"] == DEFAULT_MAX_IMAGE_BYTES
    assert 'name="_save_policy"' in response.content.decode()
    assert not FirmwarePolicy.objects.exists()


def test_administrator_saves_the_policy_audited(acme, acme_admin):
    client = cockpit_client(acme_admin)
    response = post_policy(client, require_signatures=None, max_image_bytes=str(8 * MIB))
    assert response.status_code == 302, response.content
    policy = FirmwarePolicy.objects.get(tenant=acme)
    assert (policy.require_signatures, policy.max_image_bytes) == (False, 8 * MIB)
    entry = AuditEntry.objects.get(event="firmware.policy")
    assert entry.actor == acme_admin and entry.tenant == acme
    # The row's own page saves through the service too.
    again = client.post(object_url(policy), {"require_signatures": "on", "max_image_bytes": str(8 * MIB)})
    assert again.status_code == 302
    policy.refresh_from_db()
    assert policy.require_signatures is True
    assert AuditEntry.objects.filter(event="firmware.policy").count() == 2


def test_out_of_range_is_a_form_error(acme_admin):
    response = post_policy(cockpit_client(acme_admin), max_image_bytes="10")
    assert response.status_code == 200
    assert "max_image_bytes" in response.context["policy_form"].errors
    assert not FirmwarePolicy.objects.exists()


def test_standard_user_reads_it_only(acme):
    client = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    page = client.get(admin_url(FirmwarePolicy, "changelist"))
    assert page.status_code == 200
    assert 'name="_save_policy"' not in page.content.decode()
    assert all(field.disabled for field in page.context["policy_form"].fields.values())
    assert post_policy(client, require_signatures=None).status_code == 403
    assert not FirmwarePolicy.objects.exists()


def test_nobody_adds_or_deletes_policy_rows(acme, acme_admin):
    policy = do_update_firmware_policy({"require_signatures": False}, actor=None, tenant=acme)
    client = cockpit_client(acme_admin)
    assert client.get(admin_url(FirmwarePolicy, "add")).status_code == 403
    assert client.post(object_url(policy, "delete"), {"post": "yes"}).status_code == 403
    assert FirmwarePolicy.objects.filter(tenant=acme).exists()


def test_support_engineer_under_a_write_grant_changes_nothing(acme, support_client):
    page = support_client.get(admin_url(FirmwarePolicy, "changelist"))
    assert page.status_code == 200 and 'name="_save_policy"' not in page.content.decode()
    assert post_policy(support_client, require_signatures=None).status_code == 403
    assert not FirmwarePolicy.objects.exists()
    policy = do_update_firmware_policy({"max_image_bytes": 4 * MIB}, actor=None, tenant=acme)
    response = support_client.post(object_url(policy), {"max_image_bytes": str(8 * MIB)})
    assert response.status_code == 403
    policy.refresh_from_db()
    assert policy.require_signatures is True and policy.max_image_bytes == 4 * MIB
