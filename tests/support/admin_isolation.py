"""Reusable cross-tenant checks, inherited by every cockpit ModelAdmin's tests (NetBox style).

A subclass names its model, how to make a row in a tenant and, where the admin has an
add form, a valid add payload. It inherits tests that another tenant's row answers 404
on its change, delete and history pages (GET and POST, leaving the row untouched), is
absent from the changelist, its search and the autocomplete endpoint, cannot be posted
as a foreign-key value, and that relations of another tenant's rows are absent from
the list filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import models
from django.test import Client

from audit.models import AuditEntry, tenant_id_of
from tenants.models import Tenant, User
from tests.factories import make_tenant, make_user
from tests.support.cockpit import (
    admin_url,
    autocomplete_ids,
    changelist_pks,
    cockpit_client,
    filter_choices,
    object_url,
    row_state,
)


@dataclass
class Scene:
    """Two tenants; the viewer works in ``home``; ``own`` and ``foreign`` rows, one in each."""

    home: Tenant
    other: Tenant
    viewer: User
    client: Client
    own: Any
    foreign: Any


@pytest.mark.django_db(databases=["default", "telemetry"])
class AdminIsolationChecks:
    """Mix into a test class; set the attributes below."""

    model: ClassVar[type[models.Model]]
    #: add-form fields naming a related row, with a factory making such a row in a tenant
    foreign_keys: ClassVar[dict[str, Callable[[Tenant], Any]]] = {}
    #: ``app_label.model_name.field_name`` of a relation whose remote end is ``model``
    autocomplete_through: ClassVar[str | None] = None
    #: list-filter field paths, with how to reach the related row from an object
    filter_relations: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    #: changelist actions to run against the other tenant's row
    actions: ClassVar[tuple[str, ...]] = ()

    def make_object(self, tenant: Tenant) -> Any:
        raise NotImplementedError

    def add_payload(self, tenant: Tenant) -> dict[str, Any] | None:
        """A valid add-form POST, or ``None`` when the viewer has no add form."""
        return None

    def make_viewer(self, tenant: Tenant) -> User:
        return make_user(tenant, "administrator")

    def search_term(self, obj: Any) -> str:
        return str(obj)

    @pytest.fixture
    def scene(self, db: Any) -> Scene:
        home, other = make_tenant(), make_tenant()
        viewer = self.make_viewer(home)
        own, foreign = self.make_object(home), self.make_object(other)
        return Scene(home, other, viewer, cockpit_client(viewer), own, foreign)

    @staticmethod
    def other_trail(scene: Scene) -> int:
        return AuditEntry.objects.filter(tenant=scene.other).count()

    def assert_untouched(self, scene: Scene, before: dict[str, Any], trail: int) -> None:
        assert row_state(scene.foreign) == before
        assert self.other_trail(scene) == trail, "something was written into the other tenant's trail"

    def test_own_pages_render(self, scene: Scene) -> None:
        assert scene.client.get(object_url(scene.own)).status_code == 200
        assert scene.client.get(object_url(scene.own, "history")).status_code == 200
        assert scene.client.get(admin_url(self.model, "changelist")).status_code == 200
        if self.add_payload(scene.home) is not None:
            assert scene.client.get(admin_url(self.model, "add")).status_code == 200

    def test_foreign_change_page_is_404(self, scene: Scene) -> None:
        before, trail = row_state(scene.foreign), self.other_trail(scene)
        url = object_url(scene.foreign)
        payload = self.add_payload(scene.home) or {}
        assert scene.client.get(url).status_code == 404
        assert scene.client.post(url, payload).status_code == 404
        assert scene.client.post(url, {**payload, "_saveasnew": "1"}).status_code == 404
        self.assert_untouched(scene, before, trail)

    def test_foreign_delete_page_is_404(self, scene: Scene) -> None:
        before, trail = row_state(scene.foreign), self.other_trail(scene)
        url = object_url(scene.foreign, "delete")
        assert scene.client.get(url).status_code == 404
        assert scene.client.post(url, {"post": "yes"}).status_code == 404
        self.assert_untouched(scene, before, trail)

    def test_foreign_history_page_is_404(self, scene: Scene) -> None:
        assert scene.client.get(object_url(scene.foreign, "history")).status_code == 404

    def test_foreign_object_is_absent_from_changelist(self, scene: Scene) -> None:
        response = scene.client.get(admin_url(self.model, "changelist"))
        assert response.status_code == 200
        pks = changelist_pks(response)
        assert scene.own.pk in pks
        assert scene.foreign.pk not in pks
        assert object_url(scene.foreign) not in response.content.decode()

    def test_foreign_object_is_absent_from_search(self, scene: Scene) -> None:
        term = self.search_term(scene.foreign)
        response = scene.client.get(admin_url(self.model, "changelist"), {"q": term})
        assert response.status_code == 200
        assert scene.foreign.pk not in changelist_pks(response)

    def test_foreign_object_is_absent_from_autocomplete(self, scene: Scene) -> None:
        through = self.autocomplete_through
        assert through is not None
        found = autocomplete_ids(scene.client, through)
        assert str(scene.own.pk) in found
        assert str(scene.foreign.pk) not in found
        assert str(scene.foreign.pk) not in autocomplete_ids(scene.client, through, self.search_term(scene.foreign))

    def test_foreign_relations_are_absent_from_list_filters(self, scene: Scene) -> None:
        self.make_object(scene.home)  # Django hides a filter that offers a single choice
        response = scene.client.get(admin_url(self.model, "changelist"))
        for field_path, related in self.filter_relations.items():
            choices = filter_choices(response, field_path)
            assert str(related(scene.own).pk) in choices
            assert str(related(scene.foreign).pk) not in choices

    def test_foreign_key_values_are_rejected(self, scene: Scene) -> None:
        payload = self.add_payload(scene.home)
        assert payload is not None
        count = self.model._default_manager.count()
        for field, factory in self.foreign_keys.items():
            response = scene.client.post(admin_url(self.model, "add"), {**payload, field: factory(scene.other).pk})
            assert response.status_code == 200, response.content
            assert field in response.context["adminform"].form.errors
        assert self.model._default_manager.count() == count

    def test_tenant_comes_from_the_request(self, scene: Scene) -> None:
        payload = self.add_payload(scene.home)
        assert payload is not None
        before = set(self.model._default_manager.values_list("pk", flat=True))
        response = scene.client.post(admin_url(self.model, "add"), {**payload, "tenant": scene.other.pk})
        assert response.status_code == 302, response.content
        (created,) = self.model._default_manager.exclude(pk__in=before)
        assert tenant_id_of(created) == scene.home.pk

    def test_changelist_refuses_lookups_no_filter_uses(self, scene: Scene) -> None:
        # Each such lookup answers a question about every listed row (``?password__startswith=``).
        url = admin_url(self.model, "changelist")
        for field in self.model._meta.concrete_fields:
            response = scene.client.get(url, {f"{field.name}__startswith": "a"})
            assert response.status_code == 400, f"{field.name}__startswith -> {response.status_code}"

    def test_actions_leave_foreign_object_alone(self, scene: Scene) -> None:
        before, trail = row_state(scene.foreign), self.other_trail(scene)
        for action in self.actions:
            data = {"action": action, ACTION_CHECKBOX_NAME: [scene.foreign.pk], "index": 0}
            response = scene.client.post(admin_url(self.model, "changelist"), data)
            assert response.status_code in (200, 302)  # 200: the viewer may not run it at all
        self.assert_untouched(scene, before, trail)


# Checks that only make sense for some admins; the others never collect them.
APPLIES: dict[str, Callable[[type[AdminIsolationChecks]], bool]] = {
    "test_foreign_object_is_absent_from_autocomplete": lambda cls: cls.autocomplete_through is not None,
    "test_foreign_relations_are_absent_from_list_filters": lambda cls: bool(cls.filter_relations),
    "test_foreign_key_values_are_rejected": lambda cls: bool(cls.foreign_keys) and _has_add_form(cls),
    "test_tenant_comes_from_the_request": lambda cls: _has_add_form(cls),
    "test_actions_leave_foreign_object_alone": lambda cls: bool(cls.actions),
}


def _has_add_form(cls: type[AdminIsolationChecks]) -> bool:
    return cls.add_payload is not AdminIsolationChecks.add_payload


def applies(cls: Any, test_name: str) -> bool:
    """Whether an isolation check applies to the admin tested by ``cls``."""
    if not (isinstance(cls, type) and issubclass(cls, AdminIsolationChecks)):
        return True
    rule = APPLIES.get(test_name)
    return rule is None or rule(cls)
