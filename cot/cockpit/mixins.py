"""The one tenant-scoping mixin every cockpit ``ModelAdmin`` goes through.

Django's admin asks ``user.has_perm`` who may do what, and ``User`` answers ``False``
on purpose. This mixin answers every such question through the access layer
(``tenants.access``) instead: the rows listed, the object opened, every foreign-key
choice, autocomplete answers, raw-id labels and list-filter choices. A changelist
filters only through the admin's own list filters, search and date hierarchy
(``ScopedChangeList``): any other query-string lookup is refused, and no lookup, search
or sort ever touches a secret field (``access.touches_secret``). Writes never go
through ``form.save()``: subclasses implement ``create_object``, ``update_object`` and,
where rows may go, ``delete_object`` by calling a ``services.do_*`` function with the
request's user as actor, so the tenant always comes from the caller, never a form.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import TO_FIELD_VAR
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core import checks
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import LazyObject

from cot.text import text_problem
from tenants import access
from tenants.models import Action, User
from tenants.querysets import TenantQuerySet

if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object

# Set on the request when a service refused a write the form had accepted.
_SERVICE_ERROR_ATTR = "_cot_service_error"


def acting_user(request: HttpRequest) -> User:
    """The request's user as the actor of a service call (the cockpit admits no one else)."""
    # request.user is a lazy proxy (twice: auth, then django-otp). Model fields and the
    # database router want the real object, which also carries this request's marks
    # (read-only token, support grant), so unwrap it rather than load the row again,
    # and put it back on the request: the audit trail takes its actor from there.
    user: Any = request.user
    while isinstance(user, LazyObject):
        proxy: Any = user
        proxy.pk  # noqa: B018 (evaluates the proxy)
        user = proxy._wrapped
    if not isinstance(user, User):
        raise PermissionDenied
    request.user = user
    return user


def visible_rows(model: type[models.Model], user: Any) -> models.QuerySet[Any] | None:
    """Rows of ``model`` that ``user`` may view, or ``None`` when ``model`` is not tenant data.

    Models outside the access layer (``auth.Group``, ``auth.Permission``, …) get ``None``
    so that callers leave them out of forms instead of offering every row.
    """
    rows = model._default_manager.all()
    if not isinstance(rows, TenantQuerySet):
        return None
    return rows.restrict(user, Action.VIEW)


def changed_values(form: forms.BaseForm, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The submitted values of the fields the user actually changed (of ``names``, if given).

    Services write only what they are handed, so an unchanged field never overwrites a
    column another request changed meanwhile.
    """
    wanted = form.changed_data if names is None else [name for name in names if name in form.changed_data]
    return {name: form.cleaned_data[name] for name in wanted}


def report_service_error(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ``ValidationError`` on ``form``: on the named field, else above the form."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


class ServiceForm(forms.ModelForm):
    """Base form of cockpit admins: validates input, and shows what a service refused.

    Text follows the API's rule (``cot.text``): no control or direction characters, line
    breaks only in multi-line fields.
    """

    service_error: ValidationError | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, value in list(cleaned.items()):
            widget = self.fields[name].widget if name in self.fields else None
            # Secrets (passwords, tokens) are checked by their own rules, never shown anyway.
            if isinstance(value, str) and widget is not None and not isinstance(widget, forms.PasswordInput):
                multi_line = isinstance(widget, forms.Textarea)
                problem = text_problem(value, multi_line=multi_line)
                if problem is not None:
                    self.add_error(name, problem)
        if self.service_error is not None:
            report_service_error(self, self.service_error)
        return cleaned


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """Raw-id widget whose label names only rows in ``queryset`` (the caller's visible rows).

    Django's widget looks the typed id up in the unrestricted manager and prints the
    row's name next to the box, which would name another tenant's rows.
    """

    def __init__(self, rel: Any, admin_site: Any, queryset: models.QuerySet[Any], **kwargs: Any) -> None:
        super().__init__(rel, admin_site, **kwargs)
        self.queryset = queryset

    def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
        key = self.rel.get_related_field().name
        try:
            reachable = self.queryset.filter(**{key: value}).exists()
        except (ValueError, TypeError, ValidationError):
            reachable = False
        return super().label_and_url_for_value(value) if reachable else ("", "")


class ScopedChangeList(ChangeList):
    """A changelist that filters through the admin's list filters, search and date hierarchy only.

    Django applies every other query-string parameter that names a local field as a
    lookup (``?password__startswith=…``); each such request answers one question about
    every listed row. Whatever no list filter or date hierarchy consumed is refused.
    """

    def get_filters(self, request: HttpRequest) -> Any:
        specs, has_filters, remaining, duplicates, active = super().get_filters(request)
        hierarchy = {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"} if self.date_hierarchy else set()
        stray = sorted(set(remaining) - hierarchy)
        if stray:
            raise DisallowedModelAdminLookup(f"Filtering by {', '.join(stray)} is not allowed.")
        return specs, has_filters, remaining, duplicates, active


class TenantScopedAdminMixin(_AdminBase):
    """Put first in every cockpit ``ModelAdmin``'s bases; see the module docstring."""

    form = ServiceForm
    # Whose rules decide whether the (possibly empty) list opens; the admin's own model
    # unless set (payload lists name devices.Device, whose rights they follow).
    listed_for: type[models.Model] | None = None

    # --- reads -------------------------------------------------------------------------

    def rows(self, request: HttpRequest, action: str) -> models.QuerySet[Any]:
        """Rows of this admin's model on which the caller may perform ``action``."""
        return access.restrict_queryset(self.model._default_manager.all(), request.user, action)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        return access.restrict_queryset(super().get_queryset(request), request.user, Action.VIEW)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        # Django answers a missing object with a redirect and a "doesn't exist" message;
        # out of reach must be indistinguishable from missing, and both are a plain 404.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} matches the given query.")
        return obj

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet[Any], search_term: str
    ) -> tuple[models.QuerySet[Any], bool]:
        # Callers pass get_queryset()'s rows today; restricting again keeps it so if one does not.
        queryset = access.restrict_queryset(queryset, request.user, Action.VIEW)
        return super().get_search_results(request, queryset, search_term)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ScopedChangeList

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        return not access.touches_secret(self.model, lookup) and super().lookup_allowed(lookup, value, request)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """Django's admin checks, plus: no list filter, search, column or ordering on a secret field."""
        errors = list(super().check(**kwargs))
        named = [
            *(spec[0] if isinstance(spec, (tuple, list)) else spec for spec in self.list_filter),
            *(name.lstrip("^=@") for name in self.search_fields),
            *self.list_display,
            *(self.ordering or ()),
            *(self.sortable_by or ()),
            *([self.date_hierarchy] if self.date_hierarchy else []),
        ]
        for name in named:
            if isinstance(name, str) and access.touches_secret(self.model, name):
                errors.append(
                    checks.Error(
                        f"{type(self).__name__} lists, filters, searches or sorts on the secret field '{name}'.",
                        obj=type(self),
                        id="cot.E001",
                    )
                )
        return errors

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Relation filters offer only related rows that the caller's visible rows point at."""
        scoped: list[Any] = []
        for spec in super().get_list_filter(request):
            path, filter_class = spec if isinstance(spec, (tuple, list)) else (spec, None)
            filter_class = filter_class if isinstance(filter_class, type) else None
            lists_all_rows = filter_class is None or (
                issubclass(filter_class, admin.RelatedFieldListFilter)
                and not issubclass(filter_class, admin.RelatedOnlyFieldListFilter)
            )
            if isinstance(path, str) and lists_all_rows and get_fields_from_path(self.model, path)[-1].is_relation:
                spec = (path, admin.RelatedOnlyFieldListFilter)
            scoped.append(spec)
        return scoped

    # --- permissions: the access layer, never user.has_perm ------------------------------

    def _may(self, request: HttpRequest, action: str, obj: Any) -> bool:
        rows = self.rows(request, action)
        if obj is None:
            return rows.exists()
        return obj.pk is not None and rows.filter(pk=obj.pk).exists()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            # The list opens to whoever may ever see such rows (or add one), also while it
            # is empty: a new tenant's pages are there from the start, with what to do next.
            listed = self.listed_for or self.model
            return self.has_add_permission(request) or access.may_view_model(request.user, listed)
        return self._may(request, Action.VIEW, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, Action.CHANGE, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, Action.DELETE, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access.can_add(request.user, self.model)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    # --- form choices ------------------------------------------------------------------

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        choices = visible_rows(db_field.remote_field.model, request.user)
        if choices is None:
            return None
        kwargs["queryset"] = choices
        if db_field.name in self.raw_id_fields and "widget" not in kwargs:
            kwargs["widget"] = ScopedRawIdWidget(
                db_field.remote_field, self.admin_site, choices, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        choices = visible_rows(db_field.remote_field.model, request.user)
        if choices is None:
            return None
        kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if not issubclass(form, ServiceForm):
            raise TypeError(f"{type(self).__name__}.form must derive from ServiceForm.")
        # get_form builds a fresh class on every call, so this reaches this request only.
        form.service_error = getattr(request, _SERVICE_ERROR_ATTR, None)
        return form

    # --- views -------------------------------------------------------------------------

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if object_id is not None:
            # Django skips the lookup for "save as new"; the URL must still 404 when out of reach.
            to_field = request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR))
            allowed = to_field if to_field and self.to_field_allowed(request, to_field) else None
            self.get_object(request, unquote(object_id), allowed)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            if request.method != "POST" or getattr(request, _SERVICE_ERROR_ATTR, None) is not None:
                raise
            # The service refused after the form validated, and its transaction rolled
            # back. Run the same POST again; this time the form reports the refusal.
            setattr(request, _SERVICE_ERROR_ATTR, exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            url_name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change"
            return HttpResponseRedirect(reverse(url_name, args=(object_id,)))

    def get_actions(self, request: HttpRequest) -> Any:
        # Deletes go one by one through their service, on the object's own page.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- writes: services only ---------------------------------------------------------

    def create_object(self, request: HttpRequest, form: Any) -> models.Model:
        """Create the row from ``form.cleaned_data`` through its service; return it."""
        raise NotImplementedError(f"{type(self).__name__} creates nothing.")

    def update_object(self, request: HttpRequest, obj: Any, form: Any) -> None:
        """Apply ``form.changed_data`` to ``obj`` through its service."""
        raise NotImplementedError(f"{type(self).__name__} changes nothing.")

    def delete_object(self, request: HttpRequest, obj: Any) -> None:
        """Delete ``obj`` through its service."""
        raise NotImplementedError(f"{type(self).__name__} deletes nothing.")

    def save_form(self, request: HttpRequest, form: Any, change: Any) -> Any:
        # The form only validates; the service builds and stores the row.
        return form.instance

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: Any) -> None:
        if change:
            self.update_object(request, obj, form)
            return
        created = self.create_object(request, form)
        # The admin goes on with ``obj`` (messages, redirect to its page): make it the new row.
        for field in obj._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        obj._state.db = created._state.db

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: Any) -> None:
        # Relations are part of the service call; nothing is saved behind it.
        return None

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_object(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_object(request, obj)

    # --- Django's LogEntry: off ----------------------------------------------------------
    # Its table is global and the index's "Recent actions" reads it; the audit trail
    # (written by the services) is the record of changes, scoped to the tenant.

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> None:  # type: ignore[override]
        return None

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> None:  # type: ignore[override]
        return None

    def log_deletion(self, request: HttpRequest, obj: Any, object_repr: str) -> None:  # type: ignore[override]
        return None

    def log_deletions(self, request: HttpRequest, queryset: Any) -> None:  # type: ignore[override]
        return None


class CreateOnlyAdminMixin(_AdminBase):
    """For rows made in the cockpit and then only shown (tokens, grants, registrations).

    Put it before ``TenantScopedAdminMixin``: after creation the page is read-only, and
    nothing is changed or deleted through the form (revoking and accepting are actions).
    """

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def count_per_row(rows: models.QuerySet[Any], field: str) -> Coalesce:
    """An annotation: how many of ``rows`` point at each listed object through ``field``.

    ``rows`` come already restricted to what the caller may see; one subquery in the list's
    own query instead of a count per row.
    """
    counted = rows.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(total=Count("pk"))
    return Coalesce(Subquery(counted.values("total")), 0)
