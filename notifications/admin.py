"""Notification rules in the cockpit: create (a webhook's secret shown once), change, rotate, delete; deliveries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from cot.cockpit.actions import run_for_each
from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user
from cot.cockpit.site import cockpit
from notifications import services
from notifications.models import EVENTS, SEVERITIES, Delivery, NotificationRule
from notifications.services.rules import EDITABLE, RECIPIENT_ROLES
from tenants.grant_scopes import device_group_choices
from tenants.models import Action, User


def _choices(field: str, request: HttpRequest) -> list[tuple[Any, str]]:
    """The values each list field of a rule may hold, as the caller sees them."""
    if field == "severities":
        return [(severity, severity.title()) for severity in SEVERITIES]
    if field == "events":
        return [(event, description) for event, (description, _) in EVENTS.items()]
    if field == "device_groups":
        return device_group_choices(request.user)
    if field == "recipient_users":
        return list(User.objects.restrict(request.user, Action.VIEW).order_by("email").values_list("pk", "email"))
    return [(role, role.title()) for role in RECIPIENT_ROLES]


class NotificationRuleForm(ServiceForm):
    """What a rule listens to and where it sends; the service checks the whole."""

    alarm_types = forms.CharField(
        required=False, help_text="Alarm types, separated by commas; empty: any type.", max_length=2000
    )

    class Meta:
        model = NotificationRule
        fields = ("channel", *EDITABLE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # On this form's own initial data: field objects are shared by every form class.
            self.initial["alarm_types"] = ", ".join(self.instance.alarm_types)

    def clean_alarm_types(self) -> list[str]:
        text = self.cleaned_data.get("alarm_types") or ""
        return [kind.strip() for kind in text.split(",") if kind.strip()]


@admin.register(NotificationRule, site=cockpit)
class NotificationRuleAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Where alarms and events go; each rule lists its recent deliveries with their response codes."""

    form = NotificationRuleForm
    list_display = ("name", "channel", "enabled", "listens_to", "target", "secret_rotated_at")
    list_filter = ("channel", "enabled")
    search_fields = ("name", "webhook_url")
    actions = ("rotate_secret",)
    readonly_fields = ("secret_rotated_at", "recent_deliveries")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = NotificationRuleForm.Meta.fields
        return fields if obj is None else (*fields, "secret_rotated_at", "recent_deliveries")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The channel stays what it was made with.
        return self.readonly_fields if obj is None else (*self.readonly_fields, "channel")

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in ("severities", "events", "device_groups", "recipient_users", "recipient_roles"):
            numeric = db_field.name in ("device_groups", "recipient_users")
            return forms.TypedMultipleChoiceField(
                choices=_choices(db_field.name, request),
                coerce=int if numeric else str,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                help_text=db_field.help_text,
            )
        if db_field.name == "webhook_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"channel": NotificationRule.Channel.WEBHOOK}

    @admin.display(description="listens to")
    def listens_to(self, obj: NotificationRule) -> str:
        parts = [f"alarms {', '.join(obj.severities)}"] if obj.severities else []
        return "; ".join(parts + list(obj.events)) or "—"

    @admin.display(description="sends to")
    def target(self, obj: NotificationRule) -> str:
        return (
            obj.webhook_url
            or f"e-mail ({len(obj.recipient_users)} users, roles: {', '.join(obj.recipient_roles) or '—'})"
        )

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, obj: NotificationRule) -> str:
        rows = Delivery.objects.filter(rule=obj.pk).order_by("-id")[:20]
        if not rows:
            return "none yet"
        return format_html(
            "<table><tr><th>when</th><th>event</th><th>status</th><th>attempts</th><th>response</th><th>error</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                        d.event,
                        d.key,
                        d.status
                        if d.batch_at is None or d.status != "pending"
                        else f"held until {d.batch_at:%Y-%m-%d %H:%M} UTC",
                        d.attempts,
                        d.response_code or "—",
                        d.error,
                    )
                    for d in rows
                ),
            ),
        )

    def create_object(self, request: HttpRequest, form: Any) -> NotificationRule:
        data = {name: form.cleaned_data.get(name) for name in EDITABLE}
        rule, secret = services.do_create_notification_rule(
            actor=acting_user(request), channel=form.cleaned_data["channel"], **data
        )
        if secret:
            messages.success(
                request,
                format_html(
                    'The webhook\'s signing secret is <code id="webhook-secret">{}</code> — copy it now, it is not '
                    "shown again (rotate it to get a new one).",
                    secret,
                ),
            )
        return rule

    def update_object(self, request: HttpRequest, obj: NotificationRule, form: Any) -> None:
        changes = {name: form.cleaned_data.get(name) for name in form.changed_data if name in EDITABLE}
        services.do_update_notification_rule(obj, changes, actor=acting_user(request))

    def delete_object(self, request: HttpRequest, obj: NotificationRule) -> None:
        services.do_delete_notification_rule(obj, actor=acting_user(request))

    def has_rotate_secret_permission(self, request: HttpRequest) -> bool:
        return self.rows(request, Action.CHANGE).exists()

    @admin.action(description="Rotate the webhook secret of selected rules", permissions=["rotate_secret"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[NotificationRule]) -> None:
        """A new secret for each selected webhook rule, shown once in the messages."""

        def step(rule: NotificationRule) -> None:
            rotated, secret = services.do_rotate_webhook_secret(rule, actor=acting_user(request))
            messages.success(request, f"New secret of “{rotated.name}”: {secret} — copy it now, it is not shown again.")

        run_for_each(self, request, queryset, step, "Rotated")
