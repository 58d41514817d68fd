"""Cockpit pages for device groups (with their tree) and the rights users and roles hold on them."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import NestedObjects, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router
from django.db.models import Case, F, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user, changed_values, report_service_error
from cot.cockpit.site import cockpit
from devices import selectors, services
from devices.admin.next_steps import next_steps
from devices.models import DeviceGroup
from tenants import access
from tenants.models import DEVICE_GROUP_RIGHT_CHOICES, Action, Role, User


class DeviceGroupForm(ServiceForm):
    """A device group's name, description and parent (for navigation; rights are not inherited)."""

    class Meta:
        model = DeviceGroup
        fields = ("name", "parent", "description")
        help_texts = {"parent": "Where the group sits in the group tree. Rights are not inherited from it."}


class RightsForm(forms.Form):
    """Replace the rights of exactly one user or one role; choices are the caller's visible rows."""

    user = forms.ModelChoiceField(queryset=User.objects.none(), required=False)
    role = forms.ModelChoiceField(queryset=Role.objects.none(), required=False)
    rights = forms.MultipleChoiceField(
        choices=DEVICE_GROUP_RIGHT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave all unticked to take every right away.",
    )

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["user"]).queryset = User.objects.restrict(actor, Action.VIEW)
        cast(forms.ModelChoiceField, self.fields["role"]).queryset = Role.objects.restrict(actor, Action.VIEW)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and (cleaned.get("user") is None) == (cleaned.get("role") is None):
            raise ValidationError("Choose exactly one user or one role.")
        return cleaned


@admin.register(DeviceGroup, site=cockpit)
class DeviceGroupAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Device groups; administrators also manage who holds which rights on each.

    The list and the tree are open to every role that may hold rights on groups, also
    before any group is granted to them: their empty state says whom to ask.
    """

    form = DeviceGroupForm
    list_display = ("name", "parent_shown", "description")
    search_fields = ("name",)

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        # Filtering by parent would let a caller search out the id of a parent they may not see.
        if lookup.split("__", 1)[0] == "parent":
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request: HttpRequest) -> Any:
        # A parent outside the caller's reach (rights are not inherited) is not named to them.
        visible = DeviceGroup.objects.restrict(request.user, Action.VIEW).order_by().values("pk")
        shown = Case(When(parent__in=visible, then=F("parent__name")), default=Value(""))
        return super().get_queryset(request).annotate(shown_parent=shown)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A parent outside the caller's reach is shown as "-" and not offered for change.
        hidden_parent = obj is not None and obj.parent_id is not None and not getattr(obj, "shown_parent", "")
        editable = obj is None or (self.has_change_permission(request, obj) and not hidden_parent)
        parent = "parent" if editable else "parent_shown"
        if obj is not None and access.manages_rights(request.user):
            return ("name", parent, "description", "rights_link")
        return ("name", parent, "description")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("rights_link", "parent_shown") if obj is not None else ()

    @admin.display(description="parent", ordering="shown_parent")
    def parent_shown(self, obj: DeviceGroup) -> str:
        """The parent's name where the caller can see it."""
        return str(getattr(obj, "shown_parent", "") or "-")

    @admin.display(description="rights")
    def rights_link(self, obj: DeviceGroup) -> str:
        """A link to the group's rights page."""
        url = reverse(f"{self.admin_site.name}:devices_devicegroup_rights", args=(obj.pk,))
        return format_html('<a href="{}">Who holds which rights…</a>', url)

    def create_object(self, request: HttpRequest, form: Any) -> DeviceGroup:
        data = form.cleaned_data
        return services.do_create_device_group(
            name=data["name"], description=data["description"], parent=data.get("parent"), actor=acting_user(request)
        )

    def update_object(self, request: HttpRequest, obj: DeviceGroup, form: Any) -> None:
        changes = changed_values(form)
        if changes:
            services.do_update_device_group(obj, changes, actor=acting_user(request))

    def delete_object(self, request: HttpRequest, obj: DeviceGroup) -> None:
        services.do_delete_device_group(obj, actor=acting_user(request))

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        # Say what the API says (409: what is in the way), instead of Django's confirmation
        # page listing the protected rows as if it were a matter of permissions.
        group = self.get_object(request, unquote(object_id))
        conflict = services.deletion_conflict(group) if self.has_delete_permission(request, group) else None
        if conflict is not None:
            self.message_user(request, " ".join(conflict.messages), messages.ERROR)
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:devices_devicegroup_change", args=(group.pk,)))
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # Django names every protected row (subgroups, devices, registrations), including
        # ones the caller cannot see; say only how many of each kind stand in the way.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            collector = NestedObjects(using=router.db_for_write(self.model))
            collector.collect(objs)
            kinds = Counter(str(row._meta.verbose_name_plural) for row in collector.protected)
            protected = [f"{count} {label}" for label, count in sorted(kinds.items())]
        return deleted, counts, perms_needed, protected

    def get_urls(self) -> list[URLPattern]:
        rights = path(
            "<path:object_id>/rights/",
            self.admin_site.admin_view(self.rights_view),
            name="devices_devicegroup_rights",
        )
        tree = path("tree/", self.admin_site.admin_view(self.tree_view), name="devices_devicegroup_tree")
        return [tree, rights, *super().get_urls()]

    def tree_view(self, request: HttpRequest) -> HttpResponse:
        """The groups the caller can see as a tree, with device counts, each linking to its devices."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        devices_url = reverse(f"{self.admin_site.name}:devices_device_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Group tree",
            "opts": self.opts,
            "nodes": selectors.group_tree(acting_user(request)),
            "devices_url": devices_url,
            "has_add_permission": self.has_add_permission(request),
            "next_steps": next_steps(request, self.admin_site.name),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/devices/devicegroup/tree.html", context)

    def rights_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """List the holders of rights on a group and replace one holder's rights."""
        group = self.get_object(request, unquote(object_id))  # 404 when out of reach
        if not access.manages_rights(request.user):
            raise PermissionDenied
        actor = acting_user(request)
        form = RightsForm(request.POST or None, actor=actor)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.do_set_device_group_rights(
                    group, rights=data["rights"], user=data["user"], role=data["role"], actor=actor
                )
            except ValidationError as exc:
                report_service_error(form, exc)
            else:
                self.message_user(request, f"Rights of {data['user'] or data['role']} set.", messages.SUCCESS)
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Rights on {group}",
            "opts": self.opts,
            "original": group,
            "form": form,
            "holders": self._holders(actor, group),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/devices/devicegroup/rights.html", context)

    @staticmethod
    def _holders(actor: User, group: DeviceGroup) -> list[dict[str, Any]]:
        """``rights_on`` with names; a holder the caller cannot see is left out, not named."""
        grants = services.rights_on(group)
        users = User.objects.restrict(actor, Action.VIEW).in_bulk([g["user"] for g in grants if g["user"]])
        roles = Role.objects.restrict(actor, Action.VIEW).in_bulk([g["role"] for g in grants if g["role"]])
        holders = []
        for grant in grants:
            holder = users.get(grant["user"]) if grant["user"] else roles.get(grant["role"])
            if holder is not None:
                kind = "user" if grant["user"] else "role"
                holders.append({"kind": kind, "name": str(holder), "rights": grant["rights"]})
        return sorted(holders, key=lambda h: (h["kind"], h["name"]))


# The other device pages register themselves with the cockpit on import.
