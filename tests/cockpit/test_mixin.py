"""TenantScopedAdminMixin's building blocks, on admins configured the way a careless one might be."""

from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory

from tenants.admin_mixins import ScopedRawIdWidget, TenantScopedAdminMixin
from tenants.admin_site import cockpit
from tenants.models import ApiToken, Role, User
from tenants.services import builtin_role
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _request(user: User) -> Any:
    request = RequestFactory().get("/cockpit/")
    request.user = user
    return request


def _admin(model: type, **options: Any) -> Any:
    """A throwaway cockpit admin for ``model`` (not registered) with ``options`` set."""
    admin_class = type("ProbeAdmin", (TenantScopedAdminMixin, admin.ModelAdmin), options)
    return admin_class(model, cockpit)


def test_raw_id_label_names_only_visible_rows(acme_admin, globex):
    probe = _admin(User, raw_id_fields=("role",), fields=("email", "role"))
    form = probe.get_form(_request(acme_admin))()
    widget = form.fields["role"].widget
    assert isinstance(widget, ScopedRawIdWidget)
    own, foreign = builtin_role(acme_admin.tenant, "standard"), builtin_role(globex, "standard")
    assert widget.label_and_url_for_value(own.pk)[0] == "Standard user"
    assert widget.label_and_url_for_value(foreign.pk) == ("", "")
    assert widget.label_and_url_for_value("not-a-number") == ("", "")


def test_choices_are_restricted_and_untenanted_relations_dropped(acme_admin, globex):
    probe = _admin(User, fields=("email", "role", "groups", "user_permissions"))
    form = probe.get_form(_request(acme_admin))()
    assert "groups" not in form.fields and "user_permissions" not in form.fields
    roles = set(form.fields["role"].queryset)
    assert roles == set(Role.objects.filter(tenant=acme_admin.tenant))


def test_relation_filters_become_related_only(acme_admin):
    probe = _admin(ApiToken, list_filter=("user", ("user", admin.RelatedFieldListFilter), "scope"))
    filters = probe.get_list_filter(_request(acme_admin))
    assert filters == [("user", admin.RelatedOnlyFieldListFilter)] * 2 + ["scope"]


def test_search_stays_within_visible_rows(acme_admin, globex):
    foreign = make_user(globex, "standard", email="needle@globex.test")
    probe = _admin(User, search_fields=("email",))
    rows, _ = probe.get_search_results(_request(acme_admin), User.objects.all(), "needle")
    assert foreign not in rows


def test_permissions_come_from_the_access_layer(acme_admin, globex_admin):
    probe = _admin(User)
    request = _request(acme_admin)
    assert probe.has_view_permission(request, acme_admin)
    assert probe.has_change_permission(request, acme_admin)
    assert not probe.has_view_permission(request, globex_admin)
    assert not probe.has_change_permission(request, globex_admin)
    assert not probe.has_delete_permission(request, globex_admin)
    standard = make_user(acme_admin.tenant, "standard")
    assert not probe.has_add_permission(_request(standard))
    assert not probe.has_change_permission(_request(standard))
