"""An empty tenant's cockpit: every page the role may use is there, and says what to do next (issue 9, point 12)."""

from typing import Any

import pytest
from django.urls import reverse

from devices.models import Alarm, Device, DeviceGroup, DeviceRegistration
from tenants.access import may_view_model
from tenants.models import Role
from tenants.services import do_create_role
from tests.factories import make_user
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client
from tests.support.device_rows import placed_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

REGISTER = admin_url(DeviceRegistration, "add")
UPLOAD = reverse("cockpit:devices_deviceregistration_upload")


def text_of(response: Any) -> str:
    """The page's HTML with runs of white space as one space (templates wrap their sentences)."""
    return " ".join(response.content.decode().split())


def test_a_new_tenants_administrator_finds_every_device_page_with_next_steps(acme, acme_admin):
    client = cockpit_client(acme_admin)
    index = client.get(reverse("cockpit:index")).content.decode()
    for model in (Device, Alarm, DeviceRegistration, DeviceGroup):
        assert admin_url(model, "changelist") in index, model
    for model in (Device, Alarm, DeviceRegistration):
        response = client.get(admin_url(model, "changelist"))
        assert response.status_code == 200, model
        page = text_of(response)
        assert 'id="empty-state"' in page, model
        assert f'href="{REGISTER}"' in page and f'href="{UPLOAD}"' in page, model
        assert "see <code>docs/devices.md</code>" in page, model
    tree = client.get(admin_url(DeviceGroup, "tree"))
    assert tree.status_code == 200
    assert f'href="{admin_url(DeviceGroup, "add")}" id="add-group"' in text_of(tree)


def test_a_standard_user_without_groups_sees_empty_device_pages_that_say_whom_to_ask(acme):
    client = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    placed_device(acme)  # there are devices, none of them in a group granted to this user
    for url in (admin_url(Device, "changelist"), admin_url(Alarm, "changelist"), admin_url(DeviceGroup, "tree")):
        response = client.get(url)
        assert response.status_code == 200, url
        page = text_of(response)
        assert "Ask an administrator of Acme for rights on a device group." in page, url
        assert REGISTER not in page, url
    assert not changelist_pks(client.get(admin_url(Device, "changelist")))
    # Registrations hand out credentials: still the administrators' page alone.
    assert client.get(admin_url(DeviceRegistration, "changelist")).status_code == 403


def test_a_list_emptied_by_a_search_or_filter_shows_no_first_steps(acme, acme_admin):
    placed_device(acme, external_id="SN-1")
    client = cockpit_client(acme_admin)
    assert 'id="empty-state"' not in text_of(client.get(admin_url(Device, "changelist"), {"q": "nothing-matches"}))
    assert 'id="empty-state"' not in text_of(client.get(admin_url(Device, "changelist"), {"status__exact": "BLOCKED"}))


def test_roles_that_may_never_see_devices_get_no_device_pages(acme, provider):
    blind = make_user(acme, do_create_role(name="Badge readers", rights=[], actor=None, tenant=acme))
    operator = make_user(provider, Role.Kind.OPERATOR)
    for user in (blind, operator):
        client = cockpit_client(user)
        for model in (Device, Alarm, DeviceRegistration, DeviceGroup):
            assert client.get(admin_url(model, "changelist")).status_code == 403, (user, model)
        index = client.get(reverse("cockpit:index")).content.decode()
        assert admin_url(Device, "changelist") not in index


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.Kind.ADMINISTRATOR, {Device, DeviceRegistration, DeviceGroup}),
        (Role.Kind.STANDARD, {Device, DeviceGroup}),
        (Role.Kind.BUSINESS, {Device, DeviceGroup}),
    ],
)
def test_may_view_model_answers_without_a_row(acme, role, expected):
    user = make_user(acme, role)
    models = (Device, DeviceRegistration, DeviceGroup)
    assert {model for model in models if may_view_model(user, model)} == expected
