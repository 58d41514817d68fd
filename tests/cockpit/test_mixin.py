"""TenantScopedAdminMixin's building blocks, on admins configured the way a careless one might be."""

from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory

from cot.cockpit.mixins import ScopedRawIdWidget, TenantScopedAdminMixin
from cot.cockpit.site import cockpit
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


def test_configuring_a_secret_field_fails_the_checks():
    for options in (
        {"list_filter": ("password",)},
        {"search_fields": ("^password",)},
        {"list_display": ("email", "password")},
        {"ordering": ("-password",)},
    ):
        errors = _admin(User, **options).check()
        assert [error.id for error in errors] == ["cot.E001"], options
    for options in ({"list_filter": ("digest",)}, {"search_fields": ("user__password",)}):
        assert [error.id for error in _admin(ApiToken, **options).check()] == ["cot.E001"], options
    assert _admin(User, list_filter=("is_active",), search_fields=("email",)).check() == []


def test_lookups_through_relations_to_secrets_are_refused_even_when_filtered(acme_admin):
    # A list filter on a relation would otherwise allow lookups below it.
    probe = _admin(ApiToken, list_filter=("user",))
    request = _request(acme_admin)
    assert probe.lookup_allowed("user__id__exact", "1", request)
    assert not probe.lookup_allowed("user__password__startswith", "argon2", request)
    assert not probe.lookup_allowed("digest__lt", "8", request)


def test_every_field_that_looks_like_a_secret_is_declared_one():
    from django.apps import apps

    from tenants.access import secret_fields

    suspicious = ("password", "digest", "secret", "key", "token")
    # Fields whose name looks secret but whose value is public by design.
    public = {("firmware.SigningKey", "public_key")}  # an Ed25519 public key: anyone may hold it
    for model in apps.get_models():
        if model._meta.app_label not in {"tenants", "devices", "audit", "firmware", "otp_totp", "otp_static"}:
            continue
        for field in model._meta.concrete_fields:
            name = field.name
            if field.is_relation or not any(name == word or name.endswith(f"_{word}") for word in suspicious):
                continue
            if (model._meta.label, name) in public:
                continue
            assert name in secret_fields(model), f"{model._meta.label}.{name} looks secret but is not declared"


def test_every_cockpit_admin_uses_the_scoped_changelist(acme_admin):
    from cot.cockpit.mixins import ScopedChangeList

    request = _request(acme_admin)
    for model_admin in cockpit._registry.values():
        assert issubclass(model_admin.get_changelist(request), ScopedChangeList), type(model_admin).__name__
