"""Within-tenant checks for rows reached through a device group, for API endpoints and cockpit admins.

The cross-tenant mixins (``api_isolation``, ``admin_isolation``) test the outer wall: an
administrator never reaches another tenant's rows. Inside one tenant a second wall
stands: a Standard user reaches only the device groups granted to the user or the
user's role (django-guardian object permissions, ``devices.access``), and through them
their devices, operations and payload rows. These mixins test that wall the way
NetBox's constrained-permission tests test an ObjectPermission with a constraint: one
row the constraint admits answers 200 and is listed, one row it does not admit answers
404 on every verb and is not listed, and the refused row is left as it was.

A test class mixes one in beside its cross-tenant mixin and says how to make a row in a
given device group (``make_in_group``). The checks run twice, with the rights granted
to the user and to the user's role, since the access layer reads both.
``tests/security/test_endpoint_matrix.py`` and ``tests/cockpit/test_callers.py`` fail
when an endpoint or admin whose access rule follows device groups has no such class
(``group_scoped``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from django.db import models
from django.test import Client
from rest_framework.test import APIClient

from cot.api.urls import router
from devices.models import DeviceGroup
from tenants.access import registration
from tenants.models import Role, Tenant, User
from tests.factories import api_client, grant, ids, make_group, make_tenant, make_user
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url, row_state

#: What the Standard user holds on the granted group (and nothing on the other one).
RIGHTS = ("view", "change")


def group_scoped(model: type[models.Model]) -> bool:
    """Whether ``model``'s access rule reaches rows through device-group grants.

    Rules built by ``devices.access.in_granted_groups`` (groups, devices, operations)
    are, and so is ``payload_rule``: payload rows follow their device's group.
    """
    from devices.access import in_granted_groups, payload_rule

    entry = registration(model._meta.label)
    if entry is None:
        return False
    return entry.rows is payload_rule or entry.rows.__qualname__.startswith(f"{in_granted_groups.__qualname__}.")


@dataclass
class GroupScene:
    """One tenant; ``viewer`` is a Standard user holding ``RIGHTS`` on ``granted`` and nothing on ``other``.

    ``allowed`` is a row in ``granted``, ``refused`` a row in ``other``.
    """

    tenant: Tenant
    viewer: User
    granted: DeviceGroup
    other: DeviceGroup
    allowed: Any
    refused: Any


def _group_scene(make_in_group: Any, holder: str) -> GroupScene:
    tenant = make_tenant()
    viewer = make_user(tenant, Role.Kind.STANDARD)
    granted, other = make_group(tenant), make_group(tenant)
    if holder == "user":
        grant(granted, list(RIGHTS), user=viewer)
    else:
        grant(granted, list(RIGHTS), role=viewer.role)
    return GroupScene(tenant, viewer, granted, other, make_in_group(granted), make_in_group(other))


@pytest.mark.django_db(databases=["default", "telemetry"])
class ApiGroupScopeChecks:
    """Mix into a group-scoped endpoint's test class; set ``endpoint`` and ``make_in_group``."""

    endpoint: ClassVar[str]  # e.g. "/api/v1/devices/"

    def make_in_group(self, group: DeviceGroup) -> Any:
        """A row of the endpoint reached through ``group`` (the group itself for device groups)."""
        raise NotImplementedError

    def update_payload(self) -> dict[str, Any]:
        """A valid PATCH body, or ``{}`` when the endpoint's rows cannot be updated."""
        return {}

    @pytest.fixture(params=["user", "role"])
    def group_scene(self, request: Any, db: Any) -> tuple[GroupScene, APIClient]:
        scene = _group_scene(self.make_in_group, request.param)
        return scene, api_client(scene.viewer)

    def _url(self, obj: Any) -> str:
        return f"{self.endpoint}{obj.pk}/"

    def test_only_the_granted_groups_rows_are_listed(self, group_scene: tuple[GroupScene, APIClient]) -> None:
        scene, client = group_scene
        response = client.get(self.endpoint)
        assert response.status_code == 200
        listed = ids(response)
        assert scene.allowed.pk in listed
        assert scene.refused.pk not in listed

    def retrievable(self) -> bool:
        """Whether the endpoint has a detail route (measurements and events are lists alone)."""
        (viewset,) = [view for prefix, view, _ in router.registry if f"/api/v1/{prefix}/" == self.endpoint]
        return hasattr(viewset, "retrieve")

    def test_granted_row_is_readable(self, group_scene: tuple[GroupScene, APIClient]) -> None:
        """Detail answers 200 (a list-only endpoint answers 404 for every row, granted or not)."""
        scene, client = group_scene
        assert client.get(self._url(scene.allowed)).status_code == (200 if self.retrievable() else 404)
        if self.update_payload():
            response = client.patch(self._url(scene.allowed), self.update_payload(), format="json")
            assert response.status_code == 200, response.content

    def test_other_groups_row_detail_is_404(self, group_scene: tuple[GroupScene, APIClient]) -> None:
        scene, client = group_scene
        assert client.get(self._url(scene.refused)).status_code == 404

    def test_other_groups_row_update_is_404(self, group_scene: tuple[GroupScene, APIClient]) -> None:
        scene, client = group_scene
        before, url = row_state(scene.refused), self._url(scene.refused)
        assert client.patch(url, self.update_payload(), format="json").status_code in (404, 405)
        assert client.put(url, self.update_payload(), format="json").status_code in (404, 405)
        assert row_state(scene.refused) == before

    def test_other_groups_row_delete_is_404(self, group_scene: tuple[GroupScene, APIClient]) -> None:
        scene, client = group_scene
        assert client.delete(self._url(scene.refused)).status_code in (404, 405)
        assert type(scene.refused)._default_manager.filter(pk=scene.refused.pk).exists()


@pytest.mark.django_db(databases=["default", "telemetry"])
class AdminGroupScopeChecks:
    """Mix into a group-scoped cockpit admin's test class; set ``model`` and ``make_in_group``."""

    model: ClassVar[type[models.Model]]

    def make_in_group(self, group: DeviceGroup) -> Any:
        """A row of the admin's model reached through ``group`` (the group itself for device groups)."""
        raise NotImplementedError

    @pytest.fixture(params=["user", "role"])
    def group_scene(self, request: Any, db: Any) -> tuple[GroupScene, Client]:
        scene = _group_scene(self.make_in_group, request.param)
        return scene, cockpit_client(scene.viewer)

    def test_only_the_granted_groups_rows_are_in_the_changelist(self, group_scene: tuple[GroupScene, Client]) -> None:
        scene, client = group_scene
        response = client.get(admin_url(self.model, "changelist"))
        assert response.status_code == 200
        pks = changelist_pks(response)
        assert scene.allowed.pk in pks
        assert scene.refused.pk not in pks
        assert object_url(scene.refused) not in response.content.decode()

    def test_granted_row_change_page_is_200(self, group_scene: tuple[GroupScene, Client]) -> None:
        scene, client = group_scene
        assert client.get(object_url(scene.allowed)).status_code == 200
        assert client.get(object_url(scene.allowed, "history")).status_code == 200

    def test_other_groups_row_pages_are_404(self, group_scene: tuple[GroupScene, Client]) -> None:
        scene, client = group_scene
        before = row_state(scene.refused)
        for view in ("change", "history", "delete"):
            assert client.get(object_url(scene.refused, view)).status_code == 404, view
        assert client.post(object_url(scene.refused), {"name": "hijacked"}).status_code == 404
        assert client.post(object_url(scene.refused, "delete"), {"post": "yes"}).status_code == 404
        assert row_state(scene.refused) == before
